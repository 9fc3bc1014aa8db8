//! `is_publicly_accessible_path` (spec §5.4): whether MindFormers believes every node sees the
//! checkpoint folder. It decides between the cross-rank by-meta path and "each rank takes its
//! own newest file". The report says which step decided, because ckptscope may run on a machine
//! that is not a training node.

use super::config::{EnvFacts, PathFacts};
use serde::Serialize;

/// Which step of the check decided, and how.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "by", rename_all = "snake_case")]
pub enum SharedDecision {
    /// `W <= DEVICE_NUM_PER_NODE`.
    SingleNode {
        world_size: u64,
        device_num_per_node: i64,
    },
    ModelArts,
    /// A mount whose fstype is nfs/nfs4/dpc (or whose options mention fuse.sshfs) covers the path.
    Mount {
        mountpoint: String,
        fstype: String,
    },
    /// `realpath(D)` starts with `realpath(s)` for an element `s` of `SHARED_PATHS`.
    SharedPaths {
        element: String,
    },
    /// None matched: MindFormers treats the folder as node-local.
    NotShared,
}

impl SharedDecision {
    pub fn is_shared(&self) -> bool {
        !matches!(self, SharedDecision::NotShared)
    }
}

/// `world_size` is the job's effective world size (see [`EnvFacts::world_size_for`]).
pub fn publicly_accessible(env: &EnvFacts, paths: &PathFacts, world_size: u64) -> SharedDecision {
    if (world_size as i128) <= env.device_num_per_node as i128 {
        return SharedDecision::SingleNode {
            world_size,
            device_num_per_node: env.device_num_per_node,
        };
    }
    if env.modelarts {
        return SharedDecision::ModelArts;
    }
    for m in &env.mounts {
        let fstype = m.fstype.to_lowercase();
        let net = matches!(fstype.as_str(), "nfs" | "nfs4" | "dpc")
            || m.opts.to_lowercase().contains("fuse.sshfs");
        if m.mountpoint != "/" && paths.abspath.starts_with(&m.mountpoint) && net {
            return SharedDecision::Mount {
                mountpoint: m.mountpoint.clone(),
                fstype: m.fstype.clone(),
            };
        }
    }
    for (element, real) in &paths.shared_realpaths {
        if element.is_empty() {
            continue;
        }
        if paths.realpath.starts_with(real.as_str()) {
            return SharedDecision::SharedPaths {
                element: element.clone(),
            };
        }
    }
    SharedDecision::NotShared
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::mounts::parse_mounts;

    #[test]
    fn any_matching_mount_counts_and_prefix_is_plain() {
        let env = EnvFacts {
            device_num_per_node: 8,
            mounts: parse_mounts("s:/ /data/a nfs rw 0 0\n"),
            ..Default::default()
        };
        let paths = PathFacts {
            abspath: "/data/ab/ckpt".into(),
            realpath: "/data/ab/ckpt".into(),
            ..Default::default()
        };
        assert!(publicly_accessible(&env, &paths, 16).is_shared());
        let sshfs = EnvFacts {
            mounts: parse_mounts("h:/ /data fuse.sshfs rw 0 0\n"),
            ..env
        };
        assert_eq!(
            publicly_accessible(&sshfs, &paths, 16),
            SharedDecision::NotShared
        );
    }
}
