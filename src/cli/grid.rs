//! `ckptscope grid DIR`: the step × rank grid as plain text (for bug reports and terminals
//! without the TUI): the session's grid after every shard was verified (cheap pass).

use super::fail;
use crate::fsys::Fs;
use crate::job::{Environment, JobFlags};
use crate::session::Session;
use crate::verify::tree::TreeOptions;
use std::io::Write;
use std::sync::Arc;

#[derive(clap::Args, Debug)]
pub struct GridArgs {
    /// The checkpoint folder (holding rank_0/ … rank_N/).
    pub dir: std::ffi::OsString,
    /// Further roots: the same folder on the job's other nodes, when it is not shared (each
    /// node's disk holds its own ranks' folders). Their rank folders are merged into one view,
    /// and each rank is answered as its node sees its own folder.
    #[arg(value_name = "MORE_ROOTS")]
    pub more_roots: Vec<std::ffi::OsString>,
    /// ASCII glyphs only (terminals in CJK locales draw `● · —` two columns wide).
    #[arg(long)]
    pub ascii: bool,
    #[command(flatten)]
    pub job: JobFlags,
}

pub fn grid_cmd(
    a: &GridArgs,
    mut fs: Arc<dyn Fs>,
    env: &Environment,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> i32 {
    let ctx = match super::gather(&mut fs, env, &a.dir, &a.more_roots, &a.job) {
        Ok(c) => c,
        Err(e) => return fail(err, &e.to_string()),
    };
    // the folder as given (a name that is not UTF-8 escaped)
    let dir = ctx.root.clone();
    match fs.stat(&ctx.canonical) {
        Ok(s) if s.kind == crate::model::FileKind::Dir => {}
        Ok(s) if s.kind == crate::model::FileKind::File => {
            return fail(err, &format!("{} is a single file: the grid shows the rank folders of a checkpoint folder; `ckptscope resolve` and `verify` take one file", dir));
        }
        Ok(s) => {
            return fail(
                err,
                &format!(
                    "{} is {}, not a folder; pass the checkpoint folder that holds rank_0/ …",
                    dir, s.kind
                ),
            );
        }
        Err(e) => {
            return fail(
                err,
                &format!(
                    "{}: {e}; pass the checkpoint folder that holds rank_0/ …",
                    dir
                ),
            );
        }
    }
    let mut session = match Session::open_job(fs.clone(), ctx, crate::session::Every::Checked) {
        Ok(s) => s.without_events(),
        Err(e) => return fail(err, &e),
    };
    let opts = TreeOptions {
        deep: false,
        step: None,
        now: std::time::SystemTime::now(),
        workers: 0,
    };
    session.verify_all(&opts, &Default::default(), &mut |_, _| {});
    let g = session.grid();
    let unit = match g.columns.iter().any(|c| c.new.is_some()) {
        true => "iteration folders",
        false => "steps",
    };
    // (a job spread over several roots: all of them, in the order given)
    let roots = session.ctx().roots_label();
    let g = session.grid();
    let title = format!(
        "ckptscope grid — {} ({} ranks × {} {unit})",
        crate::report::terminal::safe(&roots),
        g.ranks.len(),
        g.columns.len()
    );
    let mut text = crate::report::terminal::safe_text(&crate::grid::text::render(g, &title));
    // shards the grid cannot hold are named, not silently left out
    let unshown: Vec<String> = session
        .analysis()
        .warnings
        .iter()
        .filter(|w| w.code == "step_out_of_range")
        .filter_map(|w| w.path.clone())
        .collect();
    if !unshown.is_empty() {
        let e_g = crate::report::terminal::safe(&unshown[0]).into_owned();
        text.push_str(&format!(
            "\nnot shown: {} shard(s) whose epoch or step does not fit in 64 bits (e.g. {e_g}); see ckptscope resolve\n",
            unshown.len()
        ));
    }
    if a.ascii {
        text = text
            .chars()
            .map(|c| crate::ui::theme::ascii_of(c.encode_utf8(&mut [0; 4])).unwrap_or(c))
            .collect();
    }
    if let Err(e) = out.write_all(text.as_bytes()) {
        if e.kind() != std::io::ErrorKind::BrokenPipe {
            return fail(err, &format!("cannot write the grid: {e}"));
        }
    }
    let outcome = session.analysis().outcome();
    let code = super::resolve::exit_status(outcome, session.tree(), err);
    session.dispose();
    super::say_costs(&*fs, err);
    code
}
