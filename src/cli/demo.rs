//! `ckptscope demo`: the seed walkthrough into a fresh (or given, empty) folder.

use super::fail;
use std::io::Write;
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct DemoArgs {
    /// Write into this folder (must be empty or absent) instead of a temporary one.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Keep the written files (a temporary folder is removed otherwise).
    #[arg(long)]
    pub keep: bool,
}

pub fn demo_cmd(a: &DemoArgs, out: &mut dyn Write, err: &mut dyn Write) -> i32 {
    let (dir, guard) = match &a.out {
        Some(dir) => {
            if dir.exists()
                && std::fs::read_dir(dir)
                    .map(|mut d| d.next().is_some())
                    .unwrap_or(true)
            {
                return fail(
                    err,
                    &format!(
                        "{}: not empty; the demo writes only into an empty or new folder",
                        dir.display()
                    ),
                );
            }
            (dir.clone(), None)
        }
        None => match tempfile::Builder::new().prefix("ckptscope-demo-").tempdir() {
            Ok(t) => (t.path().to_path_buf(), Some(t)),
            Err(e) => return fail(err, &format!("cannot create a temporary folder: {e}")),
        },
    };
    let r = crate::demo::seed_walkthrough(&dir, out);
    if a.keep || a.out.is_some() {
        let _ = writeln!(out, "files kept in {}", dir.display());
        if let Some(g) = guard {
            let _ = g.keep();
        }
    }
    match r {
        Ok(_) => 0,
        Err(e) => fail(err, &format!("demo failed: {e}")),
    }
}
