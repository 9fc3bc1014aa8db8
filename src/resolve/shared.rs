//! `is_publicly_accessible_path` (spec §5.4): whether MindFormers believes every node sees the
//! checkpoint folder. It decides between the cross-rank by-meta path and "each rank takes its
//! own newest file". The report says which step decided, because ckptscope may run on a machine
//! that is not a training node.

use super::config::{EnvFacts, Mount, PathFacts};
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

pub fn publicly_accessible(env: &EnvFacts, paths: &PathFacts) -> SharedDecision {
    if (env.world_size as i128) <= env.device_num_per_node as i128 {
        return SharedDecision::SingleNode {
            world_size: env.world_size,
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

/// Parse `/proc/self/mounts` (fstab format: device, mountpoint, fstype, options, with octal
/// escapes such as `\040` for a space).
pub fn parse_mounts(text: &str) -> Vec<Mount> {
    text.lines()
        .filter_map(|line| {
            let mut f = line.split_ascii_whitespace();
            let device = unescape(f.next()?);
            let mountpoint = unescape(f.next()?);
            let fstype = unescape(f.next()?);
            let opts = unescape(f.next().unwrap_or(""));
            Some(Mount {
                device,
                mountpoint,
                fstype,
                opts,
            })
        })
        .collect()
}

/// Decode the octal escapes (`\040` …) the kernel uses in mount tables.
pub(crate) fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = (b[i + 1] - b'0') as u32 * 64
                + (b[i + 2] - b'0') as u32 * 8
                + (b[i + 3] - b'0') as u32;
            out.push(v as u8);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_table_unescapes() {
        let m =
            parse_mounts("srv:/x /mnt/my\\040data nfs4 rw,relatime 0 0\n/dev/sda1 / ext4 rw 0 0\n");
        assert_eq!(m[0].mountpoint, "/mnt/my data");
        assert_eq!(m[0].fstype, "nfs4");
        assert_eq!(m[1].mountpoint, "/");
    }

    #[test]
    fn any_matching_mount_counts_and_prefix_is_plain() {
        let env = EnvFacts {
            world_size: 16,
            device_num_per_node: 8,
            mounts: parse_mounts("s:/ /data/a nfs rw 0 0\n"),
            ..Default::default()
        };
        let paths = PathFacts {
            abspath: "/data/ab/ckpt".into(),
            realpath: "/data/ab/ckpt".into(),
            ..Default::default()
        };
        assert!(publicly_accessible(&env, &paths).is_shared());
        let sshfs = EnvFacts {
            mounts: parse_mounts("h:/ /data fuse.sshfs rw 0 0\n"),
            ..env
        };
        assert_eq!(
            publicly_accessible(&sshfs, &paths),
            SharedDecision::NotShared
        );
    }
}
