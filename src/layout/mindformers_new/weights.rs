//! The weights stage per rank (`mindformers-new-format.md` §7.5, §9): after the stages every
//! rank shares, each rank reads its own shards of the loaded folder. A shard whose header or
//! bytes are missing fails the rank that reads it (`Loaded nothing from …`); one ckptscope
//! could not check leaves that rank's answer unknown; one whose data is wrong but whose
//! structure is whole (a CRC or SHA-256 mismatch, encryption) loads silently — a warning.

use super::analysis::{folder_of, verdict_text, Names, RankAnswer, Shards, StageError, UNREAD};
use super::names::{parse_shard_name, ShardKind};
use super::resolve::At;
use crate::model::{FileRead, ShardCheck, Tree, Verdict};
use crate::py::json::PyValue;
use crate::resolve::warnings::Warning;

/// What a rank meets reading one shard.
enum Read {
    Fails(ShardCheck),
    Unknown(String),
    Silent(ShardCheck),
}

/// How a verdict reads: the loader needs the header and every byte it describes.
fn read_of(check: Option<ShardCheck>, file: &str) -> Option<Read> {
    let Some(c) = check else {
        return Some(Read::Unknown(format!("{file} has not been checked yet")));
    };
    match c.verdict {
        Verdict::Ok => None,
        Verdict::ZeroByte | Verdict::Truncated | Verdict::NotACheckpoint | Verdict::Corrupt => {
            Some(Read::Fails(c))
        }
        Verdict::CrcMismatch | Verdict::HashMismatch | Verdict::Encrypted | Verdict::Incomplete => {
            Some(Read::Silent(c))
        }
        Verdict::Unreadable | Verdict::NotRegular | Verdict::Changed | Verdict::InProgress => {
            Some(Read::Unknown(format!("{file}: {}", verdict_text(&c))))
        }
    }
}

/// What the weights stage reads from.
pub struct Reads<'a> {
    pub tree: &'a Tree,
    pub shards: Shards<'a>,
    pub no_load_optim: bool,
    /// The job's world size when given (`--world-size`, `RANK_SIZE`).
    pub world: Option<u64>,
}

impl Reads<'_> {
    /// Every rank's answer (`ranks` of them) after the shared stages `answer`, and warnings
    /// for shards that load silently wrong.
    pub fn per_rank(
        &self,
        ranks: u64,
        answer: &Result<(Option<At>, super::context::Resumed), StageError>,
    ) -> (Vec<RankAnswer>, Vec<Warning>) {
        let loads = |rank| match answer {
            Err(e) => RankAnswer::Raises {
                rank,
                error: e.clone(),
            },
            Ok((d, r)) => RankAnswer::Loads {
                rank,
                load_path: d.as_ref().map(|d| d.shown.clone()),
                initial_step: r.initial_step.to_string(),
                initial_epoch: r.initial_epoch.to_string(),
            },
        };
        let Ok((Some(d), _)) = answer else {
            return ((0..ranks).map(loads).collect(), Vec::new());
        };
        let folder = folder_of(d);
        let Some(node) = self.tree.dirs.get(&folder) else {
            return ((0..ranks).map(loads).collect(), Vec::new());
        };
        // one pass over the folder in listing order (a folder of 100,000 entries is read once,
        // not once per rank); a rank's first damaged shard is the one it fails on
        let mut totals: Vec<u64> = Vec::new();
        let mut damaged: Vec<(u64, crate::model::Name, Read)> = Vec::new();
        for e in node.listing.entries() {
            let Some(n) = parse_shard_name(&e.name) else {
                continue;
            };
            totals.push(n.total);
            if n.kind == ShardKind::Opt && self.no_load_optim {
                continue;
            }
            if let Some(read) = read_of((self.shards)(&folder, &e.name), &e.name) {
                damaged.push((n.idx, e.name, read));
            }
        }
        let mut silent = Vec::new();
        let resharded = self.world.is_some_and(|w| totals.iter().any(|t| *t != w));
        let mut out: Vec<RankAnswer> = (0..ranks).map(loads).collect();
        for (rank, file, read) in damaged {
            let unknown = |why: String| RankAnswer::Raises {
                rank,
                error: StageError {
                    stage: "weights",
                    class: UNREAD.into(),
                    message: why,
                },
            };
            if resharded && !matches!(read, Read::Silent(_)) {
                // which rank reads a shard when resharding is not modelled: every rank unknown
                let why = format!("{folder}/{file} is damaged and the job's world size differs from the checkpoint's: which rank reads it when resharding is not modelled");
                for (r, slot) in out.iter_mut().enumerate() {
                    *slot = RankAnswer::Raises {
                        rank: r as u64,
                        error: StageError {
                            stage: "weights",
                            class: UNREAD.into(),
                            message: why.clone(),
                        },
                    };
                }
                break;
            }
            let Some(slot) = out.get_mut(rank as usize) else {
                continue;
            };
            match read {
                Read::Fails(c) => {
                    if !matches!(slot, RankAnswer::Raises { .. }) {
                        *slot = RankAnswer::Raises {
                            rank,
                            error: self.loaded_nothing(d, node, &file, rank, &c),
                        };
                    }
                }
                // a rank that certainly fails on an earlier shard stays failing
                Read::Unknown(why) => {
                    if !matches!(slot, RankAnswer::Raises { .. }) {
                        *slot = unknown(why);
                    }
                }
                Read::Silent(c) => silent.push(Warning {
                    code: "silent_damage",
                    message: format!("{folder}/{file}: {} — rank {rank} loads it without an error, and trains on wrong values", verdict_text(&c)),
                    rank: Some(rank),
                    path: Some(format!("{folder}/{file}")),
                }),
            }
        }
        (out, silent)
    }

    /// W-E5 for rank `rank` reading damaged `file` of `d`: the count and examples are the
    /// parameters `metadata.json` stores there for that rank (the same-layout rule, §9); what
    /// the file "holds" is ckptscope's verdict.
    fn loaded_nothing(
        &self,
        d: &At,
        node: &crate::model::DirNode,
        file: &str,
        rank: u64,
        check: &ShardCheck,
    ) -> StageError {
        let mapped = mapped_params(node, file, rank);
        let holds = match check.verdict {
            Verdict::ZeroByte => {
                "<unreadable: error: unpack requires a buffer of 8 bytes>".to_owned()
            }
            _ => format!("<ckptscope: {}>", verdict_text(check)),
        };
        StageError {
            stage: "weights",
            class: "ValueError".into(),
            message: format!(
                "Loaded nothing from '{}'. 'metadata.json' maps {} parameter(s) to this file, e.g. {}, but the file holds none of them; it holds {holds}. The checkpoint's metadata and its contents disagree.",
                d.join(file).shown,
                mapped.len(),
                py_list(&mapped[..mapped.len().min(5)])
            ),
        }
    }
}

/// A folder without `metadata.json`: before reading anything, the loader builds the metadata
/// by loading every `*.safetensors` file whole, in `glob` (listing) order, and fails on the
/// first file it cannot load or the first parameter an earlier file already had (§7.5 step 3,
/// `generate_default_metadata_from_checkpoint`) — on every rank alike. Tensor names come from
/// the headers when they can be read now; otherwise the message says whose files collide.
pub(super) fn generated_metadata(
    tree: &Tree,
    d: &At,
    shards: Shards,
    names: Names,
) -> Option<StageError> {
    let folder = folder_of(d);
    let node = tree.dirs.get(&folder)?;
    if node
        .listing
        .find("metadata.json")
        .is_some_and(|e| e.exists())
    {
        return None;
    }
    let err = |class: &str, message: String| StageError {
        stage: "weights",
        class: class.into(),
        message,
    };
    let mut seen: std::collections::HashSet<String> = Default::default();
    let mut writers: Vec<(u64, ShardKind)> = Vec::new();
    for e in node.listing.entries() {
        if !e.name.ends_with(".safetensors") || e.name.starts_with('.') {
            continue;
        }
        if !e.is_file() {
            // glob lists it and the loader opens it: a folder, a FIFO … — what happens is unknown
            return Some(err(UNREAD, format!("{} is not a regular file, and the loader opens every *.safetensors here (no metadata.json)", d.join(&e.name).shown)));
        }
        let path = d.join(&e.name).shown;
        match shards(&folder, &e.name).map(|c| c.verdict) {
            Some(Verdict::ZeroByte) => return Some(err("ValueError", "cannot mmap an empty file".into())),
            Some(Verdict::Truncated | Verdict::NotACheckpoint | Verdict::Corrupt) => {
                return Some(err(
                    "ValueError",
                    format!("Fail to parse the input safetensors: '{path}'. Please check the correctness of the file."),
                ))
            }
            // not read, or changing: what the loader meets is unknown
            Some(Verdict::Unreadable | Verdict::NotRegular | Verdict::Changed | Verdict::InProgress) | None => {
                return Some(err(UNREAD, format!("{path} could not be checked, and the loader reads it whole here (no metadata.json)")))
            }
            // whole structure, wrong values: it loads
            Some(_) => {}
        }
        match names(&folder, &e.name) {
            Some(ns) => {
                if let Some(dup) = ns.iter().find(|n| seen.contains(*n)) {
                    return Some(err(
                        "RuntimeError",
                        format!("Duplicate parameter_name found: {dup}."),
                    ));
                }
                seen.extend(ns);
            }
            None => {
                if let Some(n) = parse_shard_name(&e.name) {
                    if let Some((other, _)) =
                        writers.iter().find(|(i, k)| *k == n.kind && *i != n.idx)
                    {
                        return Some(err("RuntimeError", format!("Duplicate parameter_name found: <the first parameter both {folder}'s rank {other} and rank {} shards hold>.", n.idx)));
                    }
                    writers.push((n.idx, n.kind));
                }
            }
        }
    }
    None
}

/// The parameters `metadata.json` stores in `file` for rank `rank` (sorted, unique).
fn mapped_params(node: &crate::model::DirNode, file: &str, rank: u64) -> Vec<String> {
    let Some((_, FileRead::Bytes(b))) = node.control.iter().find(|(n, _)| n == "metadata.json")
    else {
        return Vec::new();
    };
    let Ok(m) = crate::py::json::load(b) else {
        return Vec::new();
    };
    let Some(PyValue::Dict(sd)) = m.get("storage_data") else {
        return Vec::new();
    };
    let mut out: Vec<String> = sd
        .iter()
        .filter(|(_, v)| match v {
            PyValue::List(es) => es.iter().any(|e| {
                e.get("file_name") == Some(&PyValue::Str(file.to_owned()))
                    && matches!(e.get("storage_rank"), Some(PyValue::Int(r)) if r.to_i64() == i64::try_from(rank).ok())
            }),
            _ => false,
        })
        .filter_map(|(k, _)| param_of(k))
        .collect();
    out.sort();
    out.dedup();
    out
}

/// `name` from a `storage_data` key `"('name', (0,))"`.
fn param_of(key: &str) -> Option<String> {
    let rest = key.strip_prefix("('")?;
    Some(rest[..rest.find("', (")?].to_owned())
}

/// A Python list of strings as `repr` prints it.
fn py_list(xs: &[String]) -> String {
    let items: Vec<String> = xs.iter().map(|x| crate::py::py_repr(x)).collect();
    format!("[{}]", items.join(", "))
}
