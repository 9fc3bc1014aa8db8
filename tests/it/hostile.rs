//! Hostile input is normal input: every case builds its input in a temporary folder, runs the
//! real command (the binary, or its entry point in-process when a filesystem fault must come
//! through the seam), and checks the exit code, the stderr line, and that nothing was written.

use crate::common;
use ckptscope::cli::{verify_cmd, Cli, Command};
use ckptscope::fsys::{FaultyFs, Fs, RawEntry, ReadSeek, RealFs};
use ckptscope::model::{FileRead, Stat};
use ckptscope::writer::run::{run, Launch};
use ckptscope::Environment;
use clap::Parser;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

fn bin(args: &[&str]) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_ckptscope"))
        .args(args)
        .output()
        .unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A seed run (4 ranks, 3 steps) in a fresh folder: `(tmp, root)`.
fn seed() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("checkpoint");
    run(&root, &Launch::seed(), |_| true).unwrap();
    (tmp, root)
}

/// `verify` in-process through `fs`: (exit code, stdout, stderr).
fn verify_with(fs: Arc<dyn Fs>, args: &[&str]) -> (i32, String, String) {
    let argv: Vec<&str> = ["ckptscope", "verify"]
        .iter()
        .chain(args)
        .copied()
        .collect();
    let Some(Command::Verify(a)) = Cli::parse_from(argv).command else {
        unreachable!()
    };
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let env = Environment::with(&[], "/");
    let code = verify_cmd(&a, fs, &env, &mut out, &mut err);
    (
        code,
        String::from_utf8_lossy(&out).into_owned(),
        String::from_utf8_lossy(&err).into_owned(),
    )
}

/// Item 2: a file that changes while it is read. Through the seam, every `stat` after the file
/// was opened — by path, or of the open file itself — reports a new size (a truncation
/// mid-hash), deterministically.
struct ShrinksWhileRead {
    opened: AtomicBool,
}

impl Fs for ShrinksWhileRead {
    fn stat(&self, p: &Path) -> std::io::Result<Stat> {
        let mut st = RealFs.stat(p)?;
        if self.opened.load(Ordering::Relaxed) && st.kind == ckptscope::model::FileKind::File {
            st.size /= 2;
        }
        Ok(st)
    }
    fn read_dir(&self, p: &Path) -> std::io::Result<Vec<RawEntry>> {
        RealFs.read_dir(p)
    }
    fn read_small(&self, p: &Path, limit: u64) -> FileRead {
        RealFs.read_small(p, limit)
    }
    fn open(&self, p: &Path) -> std::io::Result<(Box<dyn ReadSeek>, Stat)> {
        let (f, st) = RealFs.open(p)?;
        self.opened.store(true, Ordering::Relaxed);
        Ok((Box::new(Shrunk(f)), st))
    }
    fn canonicalize(&self, p: &Path) -> std::io::Result<PathBuf> {
        RealFs.canonicalize(p)
    }
}

/// An open file whose `fstat` says it shrank to half.
struct Shrunk(Box<dyn ReadSeek>);

impl std::io::Read for Shrunk {
    fn read(&mut self, b: &mut [u8]) -> std::io::Result<usize> {
        self.0.read(b)
    }
}

impl std::io::Seek for Shrunk {
    fn seek(&mut self, to: std::io::SeekFrom) -> std::io::Result<u64> {
        self.0.seek(to)
    }
}

impl ReadSeek for Shrunk {
    fn restat(&self) -> Option<std::io::Result<Stat>> {
        let mut st = self.0.restat()?.ok()?;
        st.size /= 2;
        Some(Ok(st))
    }
}

#[test]
fn a_file_that_changes_while_hashed_is_never_ok() {
    let (_tmp, root) = seed();
    let file = root.join("rank_0/llama3_1_8b_rank_0-20_2.ckpt");
    let fs = Arc::new(ShrinksWhileRead {
        opened: AtomicBool::new(false),
    });
    let (code, out, _) = verify_with(fs, &[file.to_str().unwrap(), "--hash", "--json"]);
    let v: Value = serde_json::from_str(&out).unwrap();
    let s = &v["shards"][0];
    assert_eq!(s["verdict"], "changed", "{s}");
    assert!(
        s["detail"]
            .as_str()
            .unwrap()
            .contains("changed while it was read"),
        "{s}"
    );
    assert_ne!(code, 0, "a file that changed is not verified");
}

/// Item 4: an unreadable rank folder is an `unreadable` entry, exit 2 and a stderr line in
/// `verify`; an unreadable root too (through the seam: CI runs as root).
#[test]
fn unreadable_folders_are_reported_not_hidden() {
    let (_tmp, root) = seed();
    let fs = Arc::new(FaultyFs {
        faults: vec![(root.join("rank_2"), 13)],
        ..Default::default()
    });
    let (code, out, err) = verify_with(fs, &[root.to_str().unwrap()]);
    assert_eq!(code, 2, "{out}\n{err}");
    assert!(
        out.contains(
            "rank 2      unreadable       rank_2/  cannot list the folder (Permission denied)"
        ),
        "{out}"
    );
    assert!(out.contains("1 folder(s) could not be checked"), "{out}");
    assert!(
        err.contains("rank_2") && err.contains("Permission denied"),
        "{err}"
    );
    let fs = Arc::new(FaultyFs {
        faults: vec![(root.clone(), 13)],
        ..Default::default()
    });
    let (code, out, err) = verify_with(fs, &[root.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(out.is_empty(), "{out}");
    assert!(
        err.contains("cannot list the folder (Permission denied)")
            && err.contains("run ckptscope as a user who can read it"),
        "{err}"
    );
}

/// A new-format `iteration_*` folder that cannot be listed is "could not be checked" (exit
/// 2: the answer is open), as an unreadable rank folder is — not a folder MindFormers rejects
/// (exit 1). Through the seam: CI runs as root.
#[test]
fn an_unlistable_iteration_folder_leaves_verify_open() {
    let tmp = tempfile::tempdir().unwrap();
    let from = common::fixtures()
        .parent()
        .unwrap()
        .join("mindformers-new/tree-healthy-2rank");
    assert!(from.is_dir(), "fixture missing: {}", from.display());
    common::copy_tree(&from, &tmp.path().join("t"));
    let root = tmp.path().join("t/checkpoint");
    let fs = Arc::new(FaultyFs {
        faults: vec![(root.join("iteration_00000008"), 13)],
        ..Default::default()
    });
    let (code, out, err) = verify_with(fs, &[root.to_str().unwrap()]);
    assert_eq!(code, 2, "{out}\n{err}");
    assert!(out.contains("1 folder(s) could not be checked"), "{out}");
    assert!(!out.contains("folder or tracker problem"), "{out}");
}

/// Item 4, grid: an unreadable rank's cells say so (`!`), not "missing"; exit 2.
#[test]
fn the_grid_shows_unreadable_ranks_as_unreadable() {
    let (_tmp, root) = seed();
    let fs: Arc<dyn Fs> = Arc::new(FaultyFs {
        faults: vec![(root.join("rank_1"), 13)],
        ..Default::default()
    });
    let env = Environment::with(&[], "/");
    let ctx =
        ckptscope::JobContext::gather(&*fs, &env, root.to_str().unwrap(), &Default::default())
            .unwrap();
    let mut s = ckptscope::Session::open(fs, ctx);
    common::verify_all(&mut s);
    let g = s.grid();
    assert!(
        (0..g.columns.len()).all(|c| g.cell(1, c) == ckptscope::grid::cell::CellState::Unreadable)
    );
    let Some(Command::Grid(a)) =
        Cli::parse_from(["ckptscope", "grid", root.to_str().unwrap()]).command
    else {
        unreachable!()
    };
    let fs: Arc<dyn Fs> = Arc::new(FaultyFs {
        faults: vec![(root.join("rank_1"), 13)],
        ..Default::default()
    });
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = ckptscope::cli::grid_cmd(&a, fs, &env, &mut out, &mut err);
    let text = String::from_utf8_lossy(&out);
    assert_eq!(code, 2);
    assert!(
        text.lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["rank", "1", "!", "!", "!^"]),
        "{text}"
    );
}

/// Item 5: `verify` that finds nothing says why and exits non-zero.
#[test]
fn verify_that_finds_nothing_says_what_to_pass() {
    let (tmp, root) = seed();
    let o = bin(&["verify", tmp.path().to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains(&format!("did you mean {}?", root.display())),
        "{}",
        stderr(&o)
    );
    let empty = tmp.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let o = bin(&["verify", empty.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("no shards found under"),
        "{}",
        stderr(&o)
    );
    let renamed = tmp.path().join("model.bin");
    std::fs::copy(root.join("rank_0/llama3_1_8b_rank_0-20_2.ckpt"), &renamed).unwrap();
    let o = bin(&["verify", renamed.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("not named *.ckpt or *.safetensors"),
        "{}",
        stderr(&o)
    );
    let o = bin(&["verify", root.to_str().unwrap(), "--step", "99_2"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("no shard of step 99_2"),
        "{}",
        stderr(&o)
    );
}

/// Item 6: a `meta.json` ckptscope will not read (too large, or a FIFO) makes the answer
/// unknown — exit 2 with the reason on stderr — never "MindFormers would FAIL".
#[test]
fn inputs_ckptscope_cannot_read_are_not_mindformers_verdicts() {
    let (_tmp, root) = seed();
    let meta = root.join("rank_1/meta.json");
    std::fs::remove_file(&meta).unwrap();
    std::fs::write(&meta, vec![b' '; 5 << 20]).unwrap();
    let r = root.to_str().unwrap();
    let o = bin(&["resolve", r]);
    assert_eq!(o.status.code(), Some(2));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(!text.contains("FAIL"), "{text}");
    assert!(text.contains("ckptscope cannot tell"), "{text}");
    assert!(
        stderr(&o).contains("rank_1/meta.json is 5242880 bytes"),
        "{}",
        stderr(&o)
    );
    let o = bin(&["resolve", r, "--json"]);
    assert_eq!(o.status.code(), Some(2));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    for rank in v["mindformers"]["per_rank"].as_array().unwrap() {
        assert!(
            rank["unknown"].is_string() && rank["error"].is_null(),
            "{rank}"
        );
    }
    std::fs::remove_file(&meta).unwrap();
    let fifo = std::process::Command::new("mkfifo").arg(&meta).status();
    assert!(
        fifo.is_ok_and(|s| s.success()),
        "mkfifo is needed for this test"
    );
    let o = bin(&["resolve", r]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("is a FIFO (named pipe), not a regular file"),
        "{}",
        stderr(&o)
    );
}

/// Item 7: a rank folder that can be searched but not listed (mode 0711). Python opens its
/// `meta.json` (search permission suffices) and fails only when it lists the folder; the
/// answer must say that, not "meta.json is not found". Through the seam: only the listing of
/// `rank_1` fails with EACCES.
#[test]
fn a_searchable_unlistable_rank_folder_is_modelled_as_the_os_does() {
    let (tmp, root) = seed();
    let fs = Arc::new(FaultyFs {
        faults: vec![(root.join("rank_1"), 13)],
        ..Default::default()
    });
    let env = Environment::with(&[], tmp.path());
    let ctx =
        ckptscope::JobContext::gather(&*fs, &env, root.to_str().unwrap(), &Default::default())
            .unwrap();
    let mut s = ckptscope::Session::open(fs, ctx);
    let a = s.analysis().clone();
    let meta = format!("{}/rank_1/meta.json", root.display());
    assert!(
        !a.mindformers.log.iter().any(|l| l.contains(&meta)),
        "meta.json is readable: {:?}",
        a.mindformers.log
    );
    let e = a.mindformers.rank0_error.expect("listing rank_1 fails");
    assert_eq!(e.class, "PermissionError");
    assert_eq!(
        e.first_line(),
        format!("[Errno 13] Permission denied: '{}/rank_1'", root.display())
    );
    assert!(matches!(
        &a.mindformers.per_rank[1],
        ckptscope::resolve::mindformers::RankResult::Error(x) if x.message.contains("Permission denied")
    ));
}

/// Item 8: `--write-manifest` never writes into the tree — not inside it, not through a
/// symlink into it, not through another name (hard link) of one of its files — and a file it
/// may write is replaced by a rename, never written through.
#[test]
fn a_manifest_is_never_written_into_the_tree() {
    let (tmp, root) = seed();
    let r = root.to_str().unwrap();
    let shard = root.join("rank_0/llama3_1_8b_rank_0-20_2.ckpt");
    let before = std::fs::read(&shard).unwrap();
    let link = tmp.path().join("sums-link");
    std::os::unix::fs::symlink(&shard, &link).unwrap();
    let hard = tmp.path().join("sums-hard");
    std::fs::hard_link(&shard, &hard).unwrap();
    for (dest, why) in [
        (root.join("SHA256SUMS"), "inside the checkpoint tree"),
        (link.clone(), "a symlink to a file of the tree"),
        (
            hard.clone(),
            "another name (hard link) of a file of the tree",
        ),
    ] {
        let o = bin(&["verify", r, "--write-manifest", dest.to_str().unwrap()]);
        assert_eq!(o.status.code(), Some(2), "{}", dest.display());
        assert!(stderr(&o).contains(why), "{}", stderr(&o));
        assert!(o.stdout.is_empty(), "refused before verifying anything");
    }
    assert_eq!(std::fs::read(&shard).unwrap(), before);
    assert!(!root.join("SHA256SUMS").exists());
    let ok = tmp.path().join("sums.txt");
    std::fs::write(&ok, b"old").unwrap();
    let o = bin(&["verify", r, "--write-manifest", ok.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let text = std::fs::read_to_string(&ok).unwrap();
    assert_eq!(text.lines().count(), 12, "{text}");
    assert_eq!(std::fs::read(&shard).unwrap(), before);
}

/// Item 8: a destination that is not a regular file is refused before anything is verified:
/// the manifest replaces its destination by a rename, which would turn a device node into a
/// file (`/dev/null` for the whole machine) or replace a symlink instead of writing through it.
/// The nodes here are made in a temp folder, so a regression cannot break the machine.
#[test]
fn a_manifest_never_replaces_a_device_a_fifo_or_a_link() {
    let (tmp, root) = seed();
    let r = root.to_str().unwrap();
    let t = tmp.path();
    let null = t.join("null");
    let made = std::process::Command::new("mknod")
        .arg(&null)
        .args(["c", "1", "3"])
        .status()
        .is_ok_and(|s| s.success());
    let fifo = t.join("fifo");
    assert!(std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .is_ok_and(|s| s.success()));
    let target = t.join("target.txt");
    std::fs::write(&target, b"mine").unwrap();
    let link = t.join("link");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let dir = t.join("dir");
    std::fs::create_dir(&dir).unwrap();
    let mut cases = vec![
        (fifo.clone(), "a FIFO (named pipe), not a regular file"),
        (link.clone(), "a symbolic link, not a regular file"),
        (dir.clone(), "a folder, not a regular file"),
    ];
    if made {
        cases.push((null.clone(), "a character device, not a regular file"));
    } else {
        eprintln!("mknod is not permitted here: the device case is not run (the FIFO case is)");
    }
    for (dest, says) in cases {
        let before = std::fs::symlink_metadata(&dest).unwrap().file_type();
        let o = bin(&["verify", r, "--write-manifest", dest.to_str().unwrap()]);
        assert_eq!(o.status.code(), Some(2), "{}", dest.display());
        assert!(stderr(&o).contains(says), "{}", stderr(&o));
        assert_eq!(stderr(&o).lines().count(), 1);
        assert!(o.stdout.is_empty(), "refused before verifying anything");
        let after = std::fs::symlink_metadata(&dest).unwrap().file_type();
        assert_eq!(before, after, "{} is what it was", dest.display());
    }
    assert_eq!(std::fs::read(&target).unwrap(), b"mine");
}

/// Verifying one rank folder or one shard, the tree to stay out of is still the checkpoint
/// folder it belongs to; and a bind mount of the tree is the tree under another name.
#[test]
fn a_manifest_stays_out_of_the_tree_whatever_was_verified() {
    let (tmp, root) = seed();
    let rank0 = root.join("rank_0");
    let shard = rank0.join("llama3_1_8b_rank_0-20_2.ckpt");
    for (path, dest) in [
        (rank0.clone(), root.join("SHA256SUMS")),
        (shard.clone(), root.join("rank_2/SUMS")),
        (shard.clone(), rank0.join("SUMS")),
    ] {
        let o = bin(&[
            "verify",
            path.to_str().unwrap(),
            "--write-manifest",
            dest.to_str().unwrap(),
        ]);
        assert_eq!(
            o.status.code(),
            Some(2),
            "{} → {}",
            path.display(),
            dest.display()
        );
        assert!(
            stderr(&o).contains("inside the checkpoint tree"),
            "{}",
            stderr(&o)
        );
        assert!(!dest.exists());
    }
    // a rank folder that is a symlink to a folder elsewhere is still a folder of the tree
    let ext = tmp.path().join("ext");
    std::fs::create_dir(&ext).unwrap();
    std::fs::rename(root.join("rank_1"), ext.join("rank_1")).unwrap();
    std::os::unix::fs::symlink(ext.join("rank_1"), root.join("rank_1")).unwrap();
    for dest in [
        root.join("rank_1/SUMS"),
        ext.join("rank_1/SUMS"),
        root.clone(),
    ] {
        let o = bin(&[
            "verify",
            root.to_str().unwrap(),
            "--write-manifest",
            dest.to_str().unwrap(),
        ]);
        assert_eq!(o.status.code(), Some(2), "{}", dest.display());
        assert!(stderr(&o).contains("the checkpoint tree"), "{}", stderr(&o));
    }
    assert!(!ext.join("rank_1/SUMS").exists());
    let alias = tmp.path().join("alias");
    std::fs::create_dir(&alias).unwrap();
    let rank_alias = tmp.path().join("rank_alias");
    std::fs::create_dir(&rank_alias).unwrap();
    let bound = std::process::Command::new("mount")
        .args([
            "--bind",
            root.join("rank_2").to_str().unwrap(),
            rank_alias.to_str().unwrap(),
        ])
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if bound {
        let dest = rank_alias.join("SUMS");
        let o = bin(&[
            "verify",
            root.to_str().unwrap(),
            "--write-manifest",
            dest.to_str().unwrap(),
        ]);
        let _ = std::process::Command::new("umount")
            .arg(&rank_alias)
            .status();
        assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
        assert!(!root.join("rank_2/SUMS").exists());
    }
    let mounted = std::process::Command::new("mount")
        .args(["--bind", root.to_str().unwrap(), alias.to_str().unwrap()])
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !mounted {
        eprintln!("mount --bind is not permitted here: the bind-mount alias case is not run");
        return;
    }
    let dest = alias.join("rank_0/SUMS");
    let o = bin(&[
        "verify",
        root.to_str().unwrap(),
        "--write-manifest",
        dest.to_str().unwrap(),
    ]);
    let _ = std::process::Command::new("umount").arg(&alias).status();
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("inside the checkpoint tree"),
        "{}",
        stderr(&o)
    );
    assert!(!rank0.join("SUMS").exists());
}

/// A manifest names every shard the way `sha256sum -c` reads it back — names holding a
/// newline, a backslash or bytes that are not UTF-8 included — and gets the mode a new file
/// gets (0666 less the umask), not the temporary file's 0600.
#[test]
fn a_manifest_round_trips_through_sha256sum() {
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::fs::PermissionsExt;
    let (tmp, root) = seed();
    let shard = root.join("rank_0/llama3_1_8b_rank_0-20_2.ckpt");
    for odd in [&b"odd\nname\\x.ckpt"[..], b"\xff\xfe.ckpt"] {
        std::fs::copy(
            &shard,
            root.join("rank_0").join(std::ffi::OsStr::from_bytes(odd)),
        )
        .unwrap();
    }
    let dest = tmp.path().join("SUMS");
    let o = bin(&[
        "verify",
        root.to_str().unwrap(),
        "--write-manifest",
        dest.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let text = std::fs::read(&dest).unwrap();
    assert_eq!(text.split(|b| *b == b'\n').count(), 15, "14 shards");
    let c = std::process::Command::new("sha256sum")
        .arg("-c")
        .arg(&dest)
        .current_dir(&root)
        .output()
        .expect("sha256sum (coreutils) is needed for this test");
    assert!(c.status.success(), "{}", String::from_utf8_lossy(&c.stdout));
    assert_eq!(
        c.stdout
            .split(|b| *b == b'\n')
            .filter(|l| l.ends_with(b": OK"))
            .count(),
        14
    );
    let umask = std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| {
            l.strip_prefix("Umask:")
                .map(|v| u32::from_str_radix(v.trim(), 8).unwrap())
        })
        .unwrap();
    let mode = std::fs::metadata(&dest).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o666 & !umask);
}

/// Item 9: manifests that are FIFOs, or symlinks to endless devices, are never opened: no
/// hang, no memory blow-up; the report says they were ignored.
#[test]
fn hostile_manifests_are_ignored_with_a_reason() {
    let (_tmp, root) = seed();
    let fifo = root.join("SHA256SUMS");
    assert!(std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .is_ok_and(|s| s.success()));
    std::os::unix::fs::symlink("/dev/zero", root.join("rank_1/SHA256SUMS")).unwrap();
    std::os::unix::fs::symlink(
        "/dev/urandom",
        root.join("rank_2/llama3_1_8b_rank_2-20_2.ckpt.sha256"),
    )
    .unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_ckptscope"))
        .args(["verify", root.to_str().unwrap(), "--hash"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let start = std::time::Instant::now();
    while child.try_wait().unwrap().is_none() {
        assert!(
            start.elapsed() < std::time::Duration::from_secs(30),
            "verify hangs on a FIFO or an endless manifest"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let o = child.wait_with_output().unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(0), "{out}{}", stderr(&o));
    assert!(
        out.contains("SHA256SUMS: a FIFO (named pipe), not a regular file; never opened"),
        "{out}"
    );
    assert!(
        out.contains("rank_1/SHA256SUMS: a character device, not a regular file; never opened"),
        "{out}"
    );
    assert!(out.contains(".ckpt.sha256: a character device"), "{out}");
}

/// No control byte outside line breaks (C0, DEL, C1).
fn clean(out: &[u8]) -> Result<(), String> {
    let text = String::from_utf8_lossy(out);
    for (i, c) in text.chars().enumerate() {
        if c != '\n' && (c.is_control()) {
            return Err(format!("control character U+{:04X} at char {i}", c as u32));
        }
    }
    Ok(())
}

/// Item 11: names and `meta.json` content with control sequences (OSC 52 clipboard, OSC 0
/// title, a carriage return forging an "ok" line) are escaped in every text output.
#[test]
fn control_bytes_from_the_tree_never_reach_the_terminal() {
    let (_tmp, root) = seed();
    let r0 = root.join("rank_0");
    std::fs::write(
        r0.join("evil\r\x1b]52;c;aGk=\x07rank 0      ok      x.ckpt"),
        b"x",
    )
    .unwrap();
    std::fs::write(r0.join("title\x1b]0;pwned\x07\u{9b}31m.safetensors"), b"x").unwrap();
    std::fs::remove_file(r0.join("meta.json")).unwrap();
    std::fs::write(
        r0.join("meta.json"),
        "{\"last_epoch\": 20, \"last_step\": 2, \"last_ckpt_file\": \"\\u001b]0;x\\u0007llama3_1_8b_rank_0-20_2.ckpt\"}",
    )
    .unwrap();
    let r = root.to_str().unwrap();
    for args in [
        vec!["resolve", r],
        vec![r],
        vec!["verify", r],
        vec!["grid", r],
    ] {
        let o = bin(&args);
        clean(&o.stdout).unwrap_or_else(|e| panic!("{args:?} stdout: {e}"));
        clean(&o.stderr).unwrap_or_else(|e| panic!("{args:?} stderr: {e}"));
    }
    let o = bin(&["verify", r]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains("evil\\x0d\\x1b]52;c;aGk=\\x07rank 0"),
        "{text}"
    );
    // text `watch`: the snapshot and the first events
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_ckptscope"))
        .args(["watch", r, "--no-verify"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(800));
    std::fs::write(r0.join("late\x1b[2J.ckpt"), b"x").unwrap();
    std::thread::sleep(std::time::Duration::from_millis(800));
    child.kill().unwrap();
    let o = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("late\\x1b[2J.ckpt"), "{text}");
    assert!(text.starts_with("watching "), "{text}");
    assert!(
        !text.contains("Inotify {"),
        "item 14: human words, not debug output: {text}"
    );
    clean(&o.stdout).unwrap();
}

/// A newline in a name, in `meta.json` content or in the root's own path never starts a line
/// of its own: names are shown escaped (`\x0a`), so nothing from the tree can forge a
/// "safe resume step" line under a NONE verdict.
#[test]
fn newlines_from_the_tree_never_forge_a_line() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().join("job\nFORGED root");
    std::fs::create_dir(&base).unwrap();
    common::copy_fixture("tree-seed", &base);
    let root = base.join("checkpoint");
    let r0 = root.join("rank_0");
    std::fs::write(r0.join("x\nFORGED file.ckpt"), b"x").unwrap();
    std::fs::write(r0.join("y\r\nFORGED crlf.tmp"), b"x").unwrap();
    std::fs::create_dir(root.join("rank_x\n\nFORGED folder")).unwrap();
    std::fs::write(
        root.join("rank_1/meta.json"),
        "{\"last_epoch\": 20, \"last_step\": 2, \"last_ckpt_file\": \"a\\nFORGED meta-20_2.ckpt\"}",
    )
    .unwrap();
    std::fs::write(
        root.join("rank_2/meta.json"),
        "{\"last_epoch\": \"\\nFORGED value\"}",
    )
    .unwrap();
    let r = root.to_str().unwrap();
    for args in [
        vec!["resolve", r],
        vec!["resolve", r, "--all"],
        vec!["verify", r],
        vec!["verify", r, "--all"],
        vec!["grid", r],
    ] {
        let o = bin(&args);
        for (what, out) in [("stdout", &o.stdout), ("stderr", &o.stderr)] {
            let text = String::from_utf8_lossy(out);
            assert!(
                !text.lines().any(|l| l.trim_start().starts_with("FORGED")),
                "{args:?} {what}:\n{text}"
            );
        }
    }
    let text = String::from_utf8_lossy(&bin(&["resolve", r]).stdout).into_owned();
    assert!(text.contains("x\\x0aFORGED file.ckpt"), "{text}");
    assert!(text.contains("escaped_name"), "{text}");
}

/// A scenario's own texts (description, narration, expectation labels) cannot forge lines or
/// reach the terminal raw.
#[test]
fn scenario_texts_are_escaped_in_the_narration() {
    let tmp = tempfile::tempdir().unwrap();
    let sc = tmp.path().join("evil.toml");
    std::fs::write(
        &sc,
        r#"name = "evil"
description = "d\nFORGED description \u001b]0;title\u0007"
outcome = "o\nFORGED outcome"
[run]
ranks = 2
[[timeline]]
event = "train"
steps = 10
say = "s\nFORGED say \u009b31m"
[[expect]]
label = "l\nFORGED label \u001b[2J"
mindformers = "llama3_1_8b_rank_0-10_2.ckpt"
"#,
    )
    .unwrap();
    let o = bin(&["demo", "--no-tui", sc.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        !text.lines().any(|l| l.trim_start().starts_with("FORGED")),
        "{text}"
    );
    clean(&o.stdout).unwrap();
    assert!(text.contains("l\\x0aFORGED label"), "{text}");
}

/// Scenario mistakes are named with the event and the fix: a batch size of 0 before anything
/// is written; a truncation longer than the shard (which would grow it) when it happens.
#[test]
fn scenario_mistakes_name_the_event_and_the_fix() {
    let tmp = tempfile::tempdir().unwrap();
    let head = "name = \"x\"\ndescription = \"d\"\noutcome = \"o\"\n[run]\nranks = 2\n[[timeline]]\nevent = \"train\"\nsteps = 20\n";
    let gbs = tmp.path().join("gbs.toml");
    std::fs::write(
        &gbs,
        format!("{head}[[timeline]]\nevent = \"resume\"\nsteps = 10\nglobal_batch_size = 0\n"),
    )
    .unwrap();
    let o = bin(&["demo", "--no-tui", gbs.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("resume global_batch_size = 0: expected 1"),
        "{}",
        stderr(&o)
    );
    assert!(o.stdout.is_empty(), "refused before writing anything");
    let cut = tmp.path().join("cut.toml");
    std::fs::write(&cut, format!("{head}[[timeline]]\nevent = \"truncate\"\nrank = 1\nstep = \"10_2\"\nbytes = 1000000000\n")).unwrap();
    let o = bin(&["demo", "--no-tui", cut.to_str().unwrap()]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(2), "{out}");
    assert!(
        out.contains(
            "timeline event 2 (truncate): truncate to 1000000000 bytes: the shard has only"
        ),
        "{out}"
    );
}

/// A `meta.json` naming a file whose name holds a backslash or a tab finds that file (shown
/// escaped): MindFormers works on the raw names and resumes from it.
#[test]
fn meta_names_with_escaped_characters_find_their_files() {
    for stem in ["a\\b", "a\tb"] {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("checkpoint");
        for r in 0..2 {
            let d = root.join(format!("rank_{r}"));
            std::fs::create_dir_all(&d).unwrap();
            let name = format!("{stem}_rank_{r}-20_2.ckpt");
            std::fs::write(d.join(&name), common::valid_shard(20)).unwrap();
            let meta =
                serde_json::json!({"last_epoch": 20, "last_step": 2, "last_ckpt_file": name});
            std::fs::write(d.join("meta.json"), meta.to_string()).unwrap();
        }
        let o = bin(&["resolve", root.to_str().unwrap()]);
        let text = String::from_utf8_lossy(&o.stdout);
        assert_eq!(o.status.code(), Some(0), "{stem:?}: {text}");
        assert!(
            text.contains("safe resume step: 20_2 — the same as MindFormers' pick"),
            "{text}"
        );
    }
}

/// Item 12: names that are not UTF-8 are read by their bytes and shown escaped: a shard with
/// such a name gets its real verdict, and a rank folder with such a name is listed (not
/// "cannot list the folder … run as the training user").
#[test]
fn names_that_are_not_utf8_are_read_by_their_bytes() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    let (_tmp, root) = seed();
    let good = root.join("rank_0/llama3_1_8b_rank_0-20_2.ckpt");
    let odd_file = root
        .join("rank_0")
        .join(OsStr::from_bytes(b"weights-\xff.ckpt"));
    std::fs::copy(&good, &odd_file).unwrap();
    let odd_dir = root.join(OsStr::from_bytes(b"rank_\xfe"));
    std::fs::create_dir(&odd_dir).unwrap();
    std::fs::copy(&good, odd_dir.join("x.ckpt")).unwrap();
    let o = bin(&["verify", root.to_str().unwrap(), "--all"]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.lines()
            .any(|l| l.contains("weights-\\xff.ckpt") && l.contains(" ok ")),
        "{out}"
    );
    assert!(
        out.lines()
            .any(|l| l.starts_with("rank_\\xfe") && l.contains("x.ckpt")),
        "{out}"
    );
    assert!(!out.contains("No such file"), "{out}");
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_ckptscope"))
        .arg("verify")
        .arg("--all")
        .arg(&odd_file)
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(0), "{out}{}", stderr(&o));
    assert!(
        out.contains("weights-\\xff.ckpt") && out.contains(" ok "),
        "{out}"
    );
    let o = bin(&["resolve", root.to_str().unwrap()]);
    let e = stderr(&o);
    assert!(!e.contains("cannot list the folder"), "{e}");
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains("rank_\\xfe"),
        "the stray entry is named: {text}"
    );
}

/// One file of a tree digest: path, size, mode, mtime, content hash.
type Digested = (PathBuf, u64, u32, std::time::SystemTime, String);

/// A file-tree digest: every path, size, mode, mtime and content hash.
fn digest(root: &Path) -> Vec<Digested> {
    use std::os::unix::fs::MetadataExt;
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let m = std::fs::symlink_metadata(&p).unwrap();
            if m.is_dir() {
                stack.push(p.clone());
            }
            let h = if m.is_file() {
                ckptscope::verify::sha256_file(&p).unwrap()
            } else {
                String::new()
            };
            out.push((p, m.len(), m.mode(), m.modified().unwrap(), h));
        }
    }
    out.sort();
    out
}

/// Huge safetensors headers (hundreds of thousands of tensors) parse under one shared budget,
/// and the memory of each is returned after it: three hard links to a 17 MB header, checked by
/// three workers, peak near one parse (≈ 250 MB) instead of three (≈ 750 MB without it).
#[test]
fn huge_safetensors_headers_share_one_memory_budget() {
    use std::fmt::Write;
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("checkpoint");
    let mut json = String::from("{");
    for i in 0..280_000 {
        let _ = write!(
            json,
            "\"t{i:07}\":{{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[0,0]}},"
        );
    }
    json.pop();
    json.push('}');
    let mut bytes = (json.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(json.as_bytes());
    let first = root.join("rank_0/x_rank_0-1_1.safetensors");
    for r in 0..3 {
        let dir = root.join(format!("rank_{r}"));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join(format!("x_rank_{r}-1_1.safetensors"));
        if r == 0 {
            std::fs::write(&f, &bytes).unwrap();
        } else {
            std::fs::hard_link(&first, &f).unwrap();
        }
    }
    let r = root.to_str().unwrap();
    let (code, out, err, rss) = run_bounded(
        &["verify", r, "--jobs", "3"],
        &[],
        std::time::Duration::from_secs(120),
    );
    assert_eq!(code, Some(1), "{err}");
    assert!(out.contains("3 shards: 3 incomplete"), "{out}");
    assert!(rss < 450 * 1024, "{} MB resident", rss / 1024);
}

fn varint(mut v: u64, out: &mut Vec<u8>) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// A `.ckpt` record whose tensor has a packed dims field of `dims_len` zero bytes (written
/// sparse: a hole on disk), followed by a valid checkpoint's records.
fn dims_bomb(path: &Path, dims_len: u64) {
    use std::io::Write;
    let mut tensor = vec![0x0a];
    varint(dims_len, &mut tensor);
    let tensor_len = tensor.len() as u64 + dims_len;
    let mut value = vec![0x0a, 1, b'w', 0x12];
    varint(tensor_len, &mut value);
    let value_len = value.len() as u64 + tensor_len;
    let mut head = vec![0x0a];
    varint(value_len, &mut head);
    head.extend_from_slice(&value);
    head.extend_from_slice(&tensor);
    let mut f = std::fs::File::create(path).unwrap();
    f.write_all(&head).unwrap();
    f.set_len(head.len() as u64 + dims_len).unwrap();
    drop(f);
    let mut f = std::fs::OpenOptions::new().append(true).open(path).unwrap();
    f.write_all(&common::valid_shard(20)).unwrap();
}

/// The `.ckpt` walker's memory does not grow with a field's length: a packed dims field of
/// 300 MB (a hole on disk) is refused after 64 dims — verify and resolve stay small and fast.
#[test]
fn a_dims_bomb_is_refused_in_bounded_memory() {
    let (tmp, root) = seed();
    let _keep = tmp;
    let bomb = root.join("rank_0/llama3_1_8b_rank_0-25_2.ckpt");
    dims_bomb(&bomb, 300 << 20);
    let r = root.to_str().unwrap();
    let (_, out, err, rss) = run_bounded(
        &["verify", r, "--all"],
        &[],
        std::time::Duration::from_secs(60),
    );
    assert!(out.contains("more than 64 dims"), "{out}{err}");
    assert!(rss < 150 * 1024, "verify: {} MB resident", rss / 1024);
    let (_, _, err, rss) = run_bounded(&["resolve", r], &[], std::time::Duration::from_secs(60));
    assert!(
        rss < 150 * 1024,
        "resolve: {} MB resident: {err}",
        rss / 1024
    );
}

/// Many large `meta.json` files (sparse: nearly free on disk) do not add up in memory: past a
/// 64 MiB allowance they are not read, and the answer is "unknown" (exit 2), not a guess.
#[test]
fn many_large_metas_stay_within_one_allowance() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("checkpoint");
    for r in 0..200 {
        let d = root.join(format!("rank_{r}"));
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(
            d.join(format!("x_rank_{r}-1_1.ckpt")),
            common::valid_shard(1),
        )
        .unwrap();
        let f = std::fs::File::create(d.join("meta.json")).unwrap();
        f.set_len(4_194_000).unwrap();
    }
    let r = root.to_str().unwrap();
    for cmd in ["resolve", "grid"] {
        let args = [cmd, r, "--device-num-per-node", "256"];
        let (code, _, err, rss) = run_bounded(&args, &[], std::time::Duration::from_secs(60));
        assert_eq!(code, Some(2), "{cmd}: {err}");
        assert!(err.contains("meta.json"), "{cmd}: {err}");
        assert!(rss < 300 * 1024, "{cmd}: {} MB resident", rss / 1024);
    }
}

/// Run the binary with a time limit; return (exit code, stdout, stderr, peak RSS in KiB).
///
/// The peak is the child's own `VmHWM`, read at its exit stop (ptrace `PTRACE_EVENT_EXIT`, when
/// its memory is still mapped), not `wait4`'s `ru_maxrss`: Linux folds the high-water mark of
/// the memory a process had before `exec` into `ru_maxrss` (`exec_mmap` in fs/exec.c), and a
/// spawned child's was this test process's — which, with other tests running in it, can be
/// hundreds of MB. Where ptrace is refused, `ru_maxrss` (an upper bound) is the fallback.
fn run_bounded(
    args: &[&str],
    env: &[(&str, &str)],
    limit: std::time::Duration,
) -> (Option<i32>, String, String, i64) {
    use std::os::unix::process::CommandExt;
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_ckptscope"));
    cmd.args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .stdin(std::process::Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    // SAFETY: only an async-signal-safe system call between fork and exec; if it is refused
    // the child runs untraced (and the measure falls back to ru_maxrss)
    unsafe {
        cmd.pre_exec(|| {
            libc::ptrace(libc::PTRACE_TRACEME, 0, 0, 0);
            Ok(())
        });
    }
    // reaped below with wait4 (for its resource usage), not with `Child::wait`
    #[allow(clippy::zombie_processes)]
    let mut child = cmd.spawn().unwrap();
    let pid = child.id() as libc::pid_t;
    let (mut so, mut se) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut so, &mut s).ok();
        s
    });
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut se, &mut s).ok();
        s
    });
    let start = std::time::Instant::now();
    let (mut status, mut usage): (libc::c_int, libc::rusage) = (0, unsafe { std::mem::zeroed() });
    let (mut own_peak, mut traced) = (None, false);
    loop {
        // SAFETY: wait4 on our own child, with valid pointers to locals
        let r = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut usage) };
        if r == pid && libc::WIFSTOPPED(status) {
            let sig = libc::WSTOPSIG(status);
            let deliver = if status >> 8 == libc::SIGTRAP | (libc::PTRACE_EVENT_EXIT << 8) {
                own_peak = vm_hwm(pid); // exiting, its memory still mapped
                0
            } else if sig == libc::SIGTRAP && !traced {
                // the stop after exec: report the exit too; kill the child if this thread dies
                let opts = libc::PTRACE_O_TRACEEXIT | libc::PTRACE_O_EXITKILL;
                // SAFETY: our tracee, in a ptrace-stop
                unsafe { libc::ptrace(libc::PTRACE_SETOPTIONS, pid, 0, opts as libc::c_long) };
                traced = true;
                0
            } else {
                sig // a signal for the child: delivered as it would be untraced
            };
            // SAFETY: our tracee, in a ptrace-stop
            unsafe { libc::ptrace(libc::PTRACE_CONT, pid, 0, deliver as libc::c_long) };
            continue;
        }
        if r == pid {
            break;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            panic!("{args:?} still running after {limit:?} (a hang)");
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let code = libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status));
    (
        code,
        out.join().unwrap(),
        err.join().unwrap(),
        own_peak.unwrap_or(usage.ru_maxrss),
    )
}

/// `VmHWM` (KiB) of process `pid`: the peak resident size of its current memory image only.
fn vm_hwm(pid: libc::pid_t) -> Option<i64> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

/// Items 9 and 10: every file a user names is opened non-blocking and size-capped, and every
/// flag value is validated: a FIFO or an endless device as `--config` or as a demo scenario,
/// absurd world sizes, worker counts, poll intervals and speeds — each is exit 2 with one
/// stderr line naming the value and the fix, in bounded time and memory, the tree untouched.
#[test]
fn hostile_arguments_are_usage_errors_in_bounded_time_and_memory() {
    let (tmp, root) = seed();
    let r = root.to_str().unwrap();
    let fifo = tmp.path().join("run.yaml");
    assert!(std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .is_ok_and(|s| s.success()));
    let f = fifo.to_str().unwrap();
    let huge = tmp.path().join("huge.toml");
    std::fs::write(
        &huge,
        "name = \"huge\"\ndescription = \"d\"\noutcome = \"o\"\n[run]\nranks = 100000000\n[[timeline]]\nevent = \"train\"\nsteps = 40\n",
    )
    .unwrap();
    let many = tmp.path().join("many.toml");
    std::fs::write(
        &many,
        "name = \"many\"\ndescription = \"d\"\noutcome = \"o\"\n[run]\nranks = 1024\nsave_steps = 1\n[[timeline]]\nevent = \"train\"\nsteps = 100000\n",
    )
    .unwrap();
    let bad = tmp.path().join("bad.toml");
    std::fs::write(&bad, "name = \"bad\"\n[run]\nranks = 4\n").unwrap();
    let (huge, many, bad) = (
        huge.to_str().unwrap(),
        many.to_str().unwrap(),
        bad.to_str().unwrap(),
    );
    let before = digest(&root);
    type Case<'a> = (Vec<&'a str>, Vec<(&'a str, &'a str)>, &'a str);
    let cases: Vec<Case> = vec![
        (
            vec!["resolve", r, "--config", f],
            vec![],
            "a FIFO (named pipe), not a regular file",
        ),
        (
            vec!["resolve", r, "--config", "/dev/zero"],
            vec![],
            "a character device, not a regular file",
        ),
        (
            vec!["resolve", r, "--config", "/dev/urandom"],
            vec![],
            "not a regular file",
        ),
        (
            vec!["demo", f, "--no-tui"],
            vec![],
            "a FIFO (named pipe), not a regular file",
        ),
        (
            vec!["demo", "/dev/zero", "--no-tui"],
            vec![],
            "not a regular file",
        ),
        (
            vec!["demo", huge, "--no-tui"],
            vec![],
            "run.ranks = 100000000: expected 1 … 1024",
        ),
        (
            vec!["demo", bad, "--no-tui"],
            vec![],
            "line 1, column 1: missing field `description`",
        ),
        (
            vec!["demo", many, "--no-tui"],
            vec![],
            "a demo writes at most 200000",
        ),
        (
            vec!["resolve", r, "--world-size", "0"],
            vec![],
            "a job has at least one rank",
        ),
        (
            vec!["resolve", r],
            vec![("RANK_SIZE", "0")],
            "a job has at least one rank",
        ),
        (
            vec!["resolve", r, "--world-size", "1000000000000"],
            vec![],
            "at most 131072 ranks",
        ),
        (
            vec!["grid", r, "--world-size", "100000000"],
            vec![],
            "at most 131072 ranks",
        ),
        (
            vec!["resolve", r],
            vec![("RANK_SIZE", "many")],
            "RANK_SIZE many",
        ),
        (
            vec!["verify", r, "--jobs", "100000"],
            vec![],
            "--jobs 100000",
        ),
        (vec!["watch", r, "--poll", "1e300"], vec![], "--poll 1e300"),
        (vec!["watch", r, "--poll", "0"], vec![], "--poll 0"),
        (
            vec!["watch", r, "--poll", "1e-300", "--no-inotify"],
            vec![],
            "--poll 1e-300: expected a number of seconds from 0.05",
        ),
        (
            vec!["demo", "--no-tui", "--out", "/dev/null"],
            vec![],
            "--out /dev/null is a character device, not a folder",
        ),
        (
            vec!["demo", "--no-tui", "--out", f],
            vec![],
            "is a FIFO (named pipe), not a folder",
        ),
        (
            vec!["demo", "--no-tui", "--speed", "1e-300"],
            vec![],
            "--speed",
        ),
        (
            vec!["resolve", r, "--global-batch-size=-4"],
            vec![],
            "--global-batch-size -4",
        ),
    ];
    for (args, env, says) in cases {
        let (code, out, err, rss) = run_bounded(&args, &env, std::time::Duration::from_secs(20));
        assert_eq!(code, Some(2), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{args:?}: one stderr line: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
        assert!(out.is_empty(), "{args:?}: nothing on stdout: {out}");
        assert!(rss < 200 * 1024, "{args:?}: {rss} KiB resident");
        clean(err.as_bytes()).unwrap();
    }
    assert_eq!(digest(&root), before, "the tree is untouched");
}

/// An output that cannot be written (a full disk: `/dev/full`) is an error with the cause,
/// exit 2 — from the event stream and the demo narration as from every report.
#[test]
fn a_full_output_is_an_error_not_a_silent_exit() {
    let (_tmp, root) = seed();
    let r = root.to_str().unwrap();
    for args in [
        vec!["watch", r, "--ndjson"],
        vec!["demo", "--no-tui"],
        vec!["resolve", r],
    ] {
        let full = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .unwrap();
        let o = std::process::Command::new(env!("CARGO_BIN_EXE_ckptscope"))
            .args(&args)
            .stdout(full)
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(
            stderr(&o).contains("No space left on device"),
            "{args:?}: {}",
            stderr(&o)
        );
    }
}

/// `rank_N` entries that are not folders (a file, a link loop) are named by `verify`, not
/// skipped: MindFormers counts them and that rank fails (exit 1).
#[test]
fn rank_entries_that_are_not_folders_are_reported_by_verify() {
    let (_tmp, root) = seed();
    std::fs::remove_dir_all(root.join("rank_1")).unwrap();
    std::os::unix::fs::symlink("rank_1", root.join("rank_1")).unwrap();
    std::fs::remove_dir_all(root.join("rank_2")).unwrap();
    std::fs::write(root.join("rank_2"), b"x").unwrap();
    let o = bin(&["verify", root.to_str().unwrap()]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(out.contains("rank 1      not_a_folder"), "{out}");
    assert!(
        out.contains("a symbolic link that leads to no folder"),
        "{out}"
    );
    assert!(out.contains("rank 2      not_a_folder"), "{out}");
}

/// A checkpoint folder whose own path is not UTF-8 (item 12): every command reads it as it is
/// and shows it escaped, with the answer the same folder gives under a UTF-8 name.
#[test]
fn a_root_whose_path_is_not_utf8_is_read_and_shown_escaped() {
    use std::os::unix::ffi::OsStrExt;
    let (tmp, root) = seed();
    let odd = tmp.path().join(std::ffi::OsStr::from_bytes(b"ckpt\xff"));
    std::fs::rename(&root, &odd).unwrap();
    let shown = format!("{}/ckpt\\xff", tmp.path().display());
    let run = |args: &[&std::ffi::OsStr]| {
        let o = std::process::Command::new(env!("CARGO_BIN_EXE_ckptscope"))
            .args(args)
            .output()
            .unwrap();
        let out = String::from_utf8_lossy(&o.stdout).into_owned();
        (
            o.status.code(),
            out,
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    };
    let arg = |s: &'static str| std::ffi::OsStr::new(s);
    let (code, out, err) = run(&[arg("resolve"), odd.as_os_str(), arg("--json")]);
    assert_eq!(code, Some(0), "{out}{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["load_checkpoint"], shown.as_str());
    assert_eq!(
        v["mindformers"]["per_rank"][0]["resume_training"],
        "llama3_1_8b_rank_0-20_2.ckpt"
    );
    let (code, out, err) = run(&[arg("verify"), odd.as_os_str()]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains("12 shards: 12 ok"), "{out}{err}");
    let (code, out, err) = run(&[arg("grid"), odd.as_os_str()]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains(&shown), "{out}{err}");
    assert!(!out.contains('\u{fffd}'), "no lossy replacement: {out}");
    // a folder literally named `ckpt\xff` (a backslash) is shown otherwise: one form per path
    let literal = tmp.path().join("ckpt\\xff");
    std::fs::create_dir_all(literal.join("rank_0")).unwrap();
    let (_, out, err) = run(&[arg("resolve"), literal.as_os_str(), arg("--json")]);
    let v: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}{err}"));
    assert_eq!(
        v["load_checkpoint"],
        format!("{}/ckpt\\x5cxff", tmp.path().display()).as_str()
    );
}

/// A folder named like a flag, given after `--` to the default command, is a folder.
#[test]
fn a_folder_named_like_a_flag_after_double_dash_is_a_folder() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("-x");
    run(&dir, &Launch::seed(), |_| true).unwrap();
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_ckptscope"))
        .current_dir(tmp.path())
        .args(["--", "-x"])
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{out}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        out.contains("resume from llama3_1_8b_rank_0-20_2.ckpt"),
        "{out}"
    );
}

/// A FIFO where the resume record goes is named, never opened (a rank reading its own node's
/// copy would block on it).
#[test]
fn a_fifo_resume_record_is_a_warning_and_never_opened() {
    let (tmp, root) = seed();
    let rec = tmp.path().join("resume_record");
    std::fs::create_dir_all(&rec).unwrap();
    let fifo = rec.join("latest_checkpointed_iteration.txt");
    assert!(std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let r = root.to_str().unwrap();
    let (code, out, err, _) = run_bounded(
        &["resolve", r, "--json"],
        &[],
        std::time::Duration::from_secs(30),
    );
    assert_eq!(code, Some(0), "{out}{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    let codes: Vec<&str> = v["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|w| w["code"].as_str())
        .collect();
    assert!(codes.contains(&"resume_record_not_regular"), "{codes:?}");
}

/// A step too large for ckptscope's model (MindFormers reads any Python int) is named in a
/// warning instead of silently missing from the grid and the safe pick (found by a hostile
/// re-test: the safe pick said "differs from MindFormers' pick" with no reason).
#[test]
fn a_step_beyond_64_bits_is_a_warning_not_a_silent_gap() {
    let (_tmp, root) = seed();
    let huge = "99999999999999999999";
    for r in 0..4 {
        let d = root.join(format!("rank_{r}"));
        let name = format!("llama3_1_8b_rank_{r}-{huge}_2.ckpt");
        std::fs::copy(
            d.join(format!("llama3_1_8b_rank_{r}-20_2.ckpt")),
            d.join(&name),
        )
        .unwrap();
        std::fs::write(
            d.join("meta.json"),
            format!("{{\"last_epoch\": {huge}, \"last_step\": 2, \"last_ckpt_file\": \"{name}\"}}"),
        )
        .unwrap();
    }
    let r = root.to_str().unwrap();
    let (_, out, err, _) = run_bounded(
        &["resolve", r, "--json"],
        &[],
        std::time::Duration::from_secs(30),
    );
    let v: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}{err}"));
    assert_eq!(
        v["mindformers"]["per_rank"][0]["resume_training"],
        format!("llama3_1_8b_rank_0-{huge}_2.ckpt").as_str(),
        "{v}"
    );
    let flagged = v["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .any(|w| w["code"] == "step_out_of_range");
    assert!(flagged, "{}", v["warnings"]);
    // the plain grid says what it leaves out
    let (_, out, err, _) = run_bounded(&["grid", r], &[], std::time::Duration::from_secs(30));
    assert!(
        out.contains("not shown: 4 shard(s) whose epoch or step does not fit in 64 bits"),
        "{out}{err}"
    );
}
