//! Which filesystem a path lives on, from `/proc/self/mountinfo`. On network and parallel
//! filesystems another host's writes produce no local inotify events, so the watcher must poll.

use crate::resolve::shared::unescape;
use serde::Serialize;

/// One `mountinfo` line's useful fields.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct MountInfo {
    pub mountpoint: String,
    pub fstype: String,
    pub source: String,
}

/// Parse `/proc/self/mountinfo`: `id parent maj:min root mountpoint opts [optional…] - fstype
/// source superopts`, with octal escapes (`\040`) in paths.
pub fn parse_mountinfo(text: &str) -> Vec<MountInfo> {
    text.lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let mountpoint = unescape(left.split(' ').nth(4)?);
            let mut r = right.split(' ');
            let fstype = r.next()?.to_owned();
            let source = unescape(r.next().unwrap_or(""));
            Some(MountInfo {
                mountpoint,
                fstype,
                source,
            })
        })
        .collect()
}

/// Filesystem types whose writes from other hosts are invisible to local inotify.
pub fn is_network_fs(fstype: &str) -> bool {
    let t = fstype.to_ascii_lowercase();
    const NET: [&str; 17] = [
        "nfs",
        "nfs4",
        "lustre",
        "gpfs",
        "beegfs",
        "cifs",
        "smb3",
        "smbfs",
        "ceph",
        "9p",
        "dpc",
        "glusterfs",
        "afs",
        "orangefs",
        "pvfs2",
        "ocfs2",
        "gfs2",
    ];
    NET.contains(&t.as_str()) || t == "fuse" || t.starts_with("fuse.") || t.starts_with("fuseblk")
}

/// The mount that holds `path` (an absolute, resolved path): the longest mountpoint that is a
/// whole-component prefix of it; the last such line wins (later mounts hide earlier ones).
pub fn mount_of<'a>(mounts: &'a [MountInfo], path: &str) -> Option<&'a MountInfo> {
    let covers = |mp: &str| {
        mp == "/" || path == mp || path.starts_with(&format!("{}/", mp.trim_end_matches('/')))
    };
    let mut best: Option<&MountInfo> = None;
    for m in mounts.iter().filter(|m| covers(&m.mountpoint)) {
        if best.is_none_or(|b| m.mountpoint.len() >= b.mountpoint.len()) {
            best = Some(m);
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "\
22 1 252:1 / / rw,relatime shared:1 - ext4 /dev/vda1 rw
40 22 0:45 / /mnt/nfs rw,relatime shared:20 - nfs4 server:/export rw,vers=4.2
41 22 0:46 / /lustre rw shared:21 - lustre 10.0.0.1@tcp:/fs rw
42 22 0:47 / /gpfs/fs1 rw shared:22 - gpfs fs1 rw
43 22 0:48 / /home/u/remote rw,nosuid shared:23 - fuse.sshfs u@h:/data rw
44 40 252:2 / /mnt/nfs/local rw shared:24 - ext4 /dev/vdb rw
45 22 0:49 / /data/my\\040run rw - nfs srv:/x rw
";

    #[test]
    fn parses_sample_lines() {
        let m = parse_mountinfo(SAMPLE);
        assert_eq!(m.len(), 7);
        assert_eq!(
            (m[1].mountpoint.as_str(), m[1].fstype.as_str()),
            ("/mnt/nfs", "nfs4")
        );
        assert_eq!(m[6].mountpoint, "/data/my run");
    }

    #[test]
    fn finds_the_covering_mount_and_its_kind() {
        let m = parse_mountinfo(SAMPLE);
        let kind = |p: &str| mount_of(&m, p).map(|x| (x.fstype.clone(), is_network_fs(&x.fstype)));
        assert_eq!(kind("/mnt/nfs/run/checkpoint"), Some(("nfs4".into(), true)));
        assert_eq!(kind("/lustre/job/ckpt"), Some(("lustre".into(), true)));
        assert_eq!(kind("/gpfs/fs1/x"), Some(("gpfs".into(), true)));
        assert_eq!(
            kind("/home/u/remote/ckpt"),
            Some(("fuse.sshfs".into(), true))
        );
        assert_eq!(kind("/home/u/local"), Some(("ext4".into(), false)));
        assert_eq!(
            kind("/mnt/nfs/local/ckpt"),
            Some(("ext4".into(), false)),
            "the nested local mount holds it"
        );
        assert_eq!(
            kind("/mnt/nfsx/ckpt"),
            Some(("ext4".into(), false)),
            "whole components only"
        );
        assert_eq!(kind("/data/my run/ckpt"), Some(("nfs".into(), true)));
    }
}
