//! The mount table, read once per job through the filesystem seam. Two questions are asked of
//! it: MindFormers' own shared-path test (any NFS/nfs4/dpc mount whose mountpoint is a string
//! prefix of the folder, spec §5.4) and the watcher's (does the folder sit on a filesystem where
//! another host's writes produce no local inotify events). Both read the same lines.

use serde::Serialize;

/// One line of `/proc/self/mounts` (what psutil's `disk_partitions(all=True)` reports).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Mount {
    pub device: String,
    pub mountpoint: String,
    pub fstype: String,
    pub opts: String,
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
fn unescape(s: &str) -> String {
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
pub fn mount_of<'a>(mounts: &'a [Mount], path: &str) -> Option<&'a Mount> {
    let covers = |mp: &str| {
        mp == "/" || path == mp || path.starts_with(&format!("{}/", mp.trim_end_matches('/')))
    };
    let mut best: Option<&Mount> = None;
    for m in mounts.iter().filter(|m| covers(&m.mountpoint)) {
        if best.is_none_or(|b| m.mountpoint.len() >= b.mountpoint.len()) {
            best = Some(m);
        }
    }
    best
}

/// Why `path` must be polled, when the mount holding it is a network or parallel filesystem.
pub fn network_reason(mounts: &[Mount], path: &str) -> Option<String> {
    let m = mount_of(mounts, path)?;
    is_network_fs(&m.fstype).then(|| {
        format!(
            "{path} is on {} ({}): writes from other hosts produce no local events, so it is polled",
            m.fstype, m.mountpoint
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "\
/dev/vda1 / ext4 rw,relatime 0 0
server:/export /mnt/nfs nfs4 rw,vers=4.2 0 0
10.0.0.1@tcp:/fs /lustre lustre rw 0 0
fs1 /gpfs/fs1 gpfs rw 0 0
u@h:/data /home/u/remote fuse.sshfs rw,nosuid 0 0
/dev/vdb /mnt/nfs/local ext4 rw 0 0
srv:/x /data/my\\040run nfs rw 0 0
";

    #[test]
    fn parses_and_unescapes() {
        let m = parse_mounts(SAMPLE);
        assert_eq!(m.len(), 7);
        assert_eq!(
            (m[1].mountpoint.as_str(), m[1].fstype.as_str()),
            ("/mnt/nfs", "nfs4")
        );
        assert_eq!(m[6].mountpoint, "/data/my run");
        assert_eq!(m[4].opts, "rw,nosuid");
    }

    #[test]
    fn finds_the_covering_mount_and_its_kind() {
        let m = parse_mounts(SAMPLE);
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
        assert!(network_reason(&m, "/lustre/job").is_some_and(|r| r.contains("lustre")));
        assert_eq!(network_reason(&m, "/home/u/local"), None);
    }
}
