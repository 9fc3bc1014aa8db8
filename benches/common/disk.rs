//! The on-disk benchmark trees (shared by `scale` and `scan_resolve`): rank folders of valid
//! small `.ckpt` files whose append entries agree with their names, and a `meta.json` naming
//! the newest step — the healthy job the goals of issue 11 are stated for (a tree of
//! one-byte files measures the damaged-shard path instead).

use ckptscope::writer::ckpt::small_shard as shard;
use std::path::Path;

/// `ranks` folders × `steps` shards (`llama_rank_R-E_2.ckpt`) + meta.json (the newest step
/// everywhere), generated once: a marker file says the tree at `root` is complete.
pub fn generate(root: &Path, ranks: usize, steps: usize) {
    let marker = root.join(format!(".complete-valid-{ranks}-{steps}"));
    if marker.exists() {
        return;
    }
    let _ = std::fs::remove_dir_all(root);
    let bodies: Vec<Vec<u8>> = (1..=steps as u64).map(shard).collect();
    for r in 0..ranks {
        let dir = root.join(format!("rank_{r}"));
        std::fs::create_dir_all(&dir).unwrap();
        for (i, b) in bodies.iter().enumerate() {
            let e = i + 1;
            std::fs::write(dir.join(format!("llama_rank_{r}-{e}_2.ckpt")), b).unwrap();
        }
        let meta = format!("{{\"last_epoch\": {steps}, \"last_step\": 2, \"last_ckpt_file\": \"llama_rank_{r}-{steps}_2.ckpt\"}}");
        std::fs::write(dir.join("meta.json"), meta).unwrap();
    }
    std::fs::write(marker, b"").unwrap();
}
