//! An in-memory checkpoint tree for the benchmarks that measure the model, the resolvers and
//! the grid without a filesystem (shared by `render` and `incremental`).

use ckptscope::model::*;
use std::collections::BTreeMap;

fn stat(kind: FileKind, t: i64) -> Stat {
    Stat {
        kind,
        size: 1 << 30,
        mtime_sec: t,
        mtime_nsec: 0,
        ino: 1,
        dev: 1,
        mode: 0o400,
        ctime_ns: t * 1_000_000_000,
    }
}

fn entry(name: String, kind: FileKind, t: i64) -> Entry {
    Entry {
        name: name.into(),
        lstat: Ok(stat(kind, t)),
        extra: None,
    }
}

/// Rank `r`'s folder with steps `1 ..= steps` (`E_2` names) and a meta.json on the newest.
pub fn rank_dir(r: u64, steps: u64) -> DirNode {
    let mut entries: Vec<Entry> = (1..=steps)
        .map(|e| {
            entry(
                format!("llama_rank_{r}-{e}_2.ckpt"),
                FileKind::File,
                1_700_000_000 + e as i64,
            )
        })
        .collect();
    entries.push(entry("meta.json".into(), FileKind::File, 1));
    let meta = format!("{{\"last_epoch\": {steps}, \"last_step\": 2, \"last_ckpt_file\": \"llama_rank_{r}-{steps}_2.ckpt\"}}");
    DirNode {
        stat: None,
        listing: Listing::Entries(entries.into()),
        meta: Some(FileRead::Bytes(meta.into_bytes())),
        probed: Vec::new(),
        control: Vec::new(),
        memo: Default::default(),
        origin: 0,
    }
}

/// An in-memory tree: `ranks` folders with `steps` shards each, meta.json on the newest.
pub fn tree(ranks: u64, steps: u64) -> Tree {
    let mut dirs = BTreeMap::new();
    let mut root = Vec::new();
    for r in 0..ranks {
        let name = format!("rank_{r}");
        root.push(entry(name.clone(), FileKind::Dir, 0));
        dirs.insert(name, rank_dir(r, steps).into());
    }
    Tree {
        root: "/bench/checkpoint".into(),
        state: RootState::Dir(Listing::Entries(root.into())),
        dirs,
        root_files: Default::default(),
        verdicts: Default::default(),
        multi: None,
        host_paths: None,
    }
}
