//! Shard names of the new format (`mindformers-new-format.md` §2.3):
//! `{prefix}-{model|opt}-{idx:07d}-{total:07d}.safetensors` (no prefix: `model-…`). The
//! prefix may itself hold `-model-` or `-opt-`, so the name is read from its end.

/// Which part of the training state a shard holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShardKind {
    Model,
    Opt,
}

/// A parsed new-format shard name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShardName {
    pub prefix: Option<String>,
    pub kind: ShardKind,
    /// The writer's index (the rank, in a normal save).
    pub idx: u64,
    /// How many files of its kind the save has (the world size, in a normal save).
    pub total: u64,
}

/// At least 7 ASCII digits (`{:07d}` pads, never truncates).
fn number(s: &str) -> Option<u64> {
    (s.len() >= 7 && s.bytes().all(|b| b.is_ascii_digit()))
        .then(|| s.parse().ok())
        .flatten()
}

/// The parts of a new-format shard's file name, or `None` for any other name.
pub fn parse_shard_name(name: &str) -> Option<ShardName> {
    let stem = name.strip_suffix(".safetensors")?;
    let (rest, total) = stem.rsplit_once('-')?;
    let (rest, idx) = rest.rsplit_once('-')?;
    let (prefix, kind) = match rest.rsplit_once('-') {
        Some((p, k)) => (Some(p.to_owned()), k),
        None => (None, rest),
    };
    let kind = match kind {
        "model" => ShardKind::Model,
        "opt" => ShardKind::Opt,
        _ => return None,
    };
    Some(ShardName {
        prefix,
        kind,
        idx: number(idx)?,
        total: number(total)?,
    })
}

/// The optimizer shard saved beside model shard `name` (the kind is the third part from the
/// end: a prefix may hold `-model-` itself); `None` when `name` is not a model shard.
pub fn opt_sibling(name: &str) -> Option<String> {
    if parse_shard_name(name)?.kind != ShardKind::Model {
        return None;
    }
    let stem = name.strip_suffix(".safetensors")?;
    let mut tail = stem.rsplitn(3, '-');
    let (total, idx, rest) = (tail.next()?, tail.next()?, tail.next()?);
    let head = rest.strip_suffix("model")?;
    Some(format!("{head}opt-{idx}-{total}.safetensors"))
}

/// How many ranks wrote model shards among `names` (distinct writer indices): more than one,
/// and a folder without `metadata.json` cannot be loaded (§6.3, §7.5).
pub fn model_writers<S: AsRef<str>>(names: impl IntoIterator<Item = S>) -> usize {
    let mut w: Vec<u64> = names
        .into_iter()
        .filter_map(|n| parse_shard_name(n.as_ref()))
        .filter(|n| n.kind == ShardKind::Model)
        .map(|n| n.idx)
        .collect();
    w.sort_unstable();
    w.dedup();
    w.len()
}

#[cfg(test)]
mod tests {

    #[test]
    fn the_optimizer_shard_beside_a_model_shard() {
        for (model, opt) in [
            (
                "model-0000001-0000002.safetensors",
                Some("opt-0000001-0000002.safetensors"),
            ),
            (
                "llama-model-0000003-0000008.safetensors",
                Some("llama-opt-0000003-0000008.safetensors"),
            ),
            // a prefix that holds -model- itself keeps it
            (
                "my-model-7b-model-0000002-0000008.safetensors",
                Some("my-model-7b-opt-0000002-0000008.safetensors"),
            ),
            ("llama-opt-0000003-0000008.safetensors", None),
            ("meta.json", None),
        ] {
            assert_eq!(super::opt_sibling(model).as_deref(), opt, "{model}");
        }
    }
    use super::*;

    #[test]
    fn names_are_read_from_their_end() {
        let n = parse_shard_name("CKP-model-0000003-0000008.safetensors").unwrap();
        assert_eq!(
            (n.prefix.as_deref(), n.kind, n.idx, n.total),
            (Some("CKP"), ShardKind::Model, 3, 8)
        );
        let n = parse_shard_name("my-model-opt-0000000-0000002.safetensors").unwrap();
        assert_eq!(
            (n.prefix.as_deref(), n.kind),
            (Some("my-model"), ShardKind::Opt)
        );
        let n = parse_shard_name("model-0000001-0000002.safetensors").unwrap();
        assert_eq!((n.prefix, n.idx), (None, 1));
        assert_eq!(
            parse_shard_name("x-model-12345678-0000002.safetensors").map(|n| n.idx),
            Some(12_345_678)
        );
        for bad in [
            "CKP-model-0000003-0000008.tmp",
            "CKP-model-003-008.safetensors",
            "CKP-weights-0000003-0000008.safetensors",
            "llama_rank_0-20_2.safetensors",
            "CKP-model-000000a-0000008.safetensors",
        ] {
            assert_eq!(parse_shard_name(bad), None, "{bad}");
        }
    }
}
