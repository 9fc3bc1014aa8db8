//! `ckptscope resolve`: the job context, a session on the tree, the report and the exit code.

use super::fail;
use crate::fsys::Fs;
use crate::job::{Environment, JobFlags};
use crate::model::Tree;
use crate::report::text::TextOptions;
use crate::resolve::Outcome;
use crate::session::Session;
use std::io::Write;
use std::sync::Arc;

#[derive(clap::Args, Debug)]
pub struct ResolveArgs {
    /// MindFormers' load_checkpoint: the folder holding rank_0/ … rank_N/ (or one weight file).
    pub load_checkpoint: std::ffi::OsString,
    /// Further roots: the same folder on the job's other nodes, when it is not shared (each
    /// node's disk holds its own ranks' folders). Their rank folders are merged into one view,
    /// and each rank is answered as its node sees its own folder.
    #[arg(value_name = "MORE_ROOTS")]
    pub more_roots: Vec<std::ffi::OsString>,
    #[command(flatten)]
    pub job: JobFlags,
    /// Print the JSON document instead of the human report.
    #[arg(long)]
    pub json: bool,
    /// List every rank and every warned-about file (the report groups them otherwise).
    #[arg(long)]
    pub all: bool,
    /// Only these ranks in the text report, e.g. 3,900-910.
    #[arg(long, value_name = "LIST")]
    pub ranks: Option<String>,
    /// Only warnings about this step's files in the text report, e.g. 20_2.
    #[arg(long, value_name = "E_S")]
    pub step: Option<String>,
}

/// `ckptscope resolve`, reading through `fs` (tests inject faults there) in environment `env`.
pub fn resolve_cmd(
    a: &ResolveArgs,
    mut fs: Arc<dyn Fs>,
    env: &Environment,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> i32 {
    let opts = match text_options(a) {
        Ok(o) => o,
        Err(m) => return fail(err, &m),
    };
    let ctx = match super::gather(&mut fs, env, &a.load_checkpoint, &a.more_roots, &a.job) {
        Ok(c) => c,
        Err(e) => return fail(err, &e.to_string()),
    };
    let mut session = match Session::open_job(fs.clone(), ctx, crate::session::Every::Needed) {
        Ok(s) => s.without_events(),
        Err(e) => return fail(err, &e),
    };
    let code = report(&mut session, a.json.then_some(a.all), &opts, out, err);
    session.dispose();
    super::say_costs(&*fs, err);
    code
}

fn text_options(a: &ResolveArgs) -> Result<TextOptions, String> {
    let ranks = match &a.ranks {
        None => None,
        Some(r) => Some(
            crate::report::group::parse_ranks(r)
                .ok_or_else(|| format!("--ranks {r}: expected ranks and ranges, e.g. 3,900-910"))?,
        ),
    };
    let step = match &a.step {
        None => None,
        Some(s) => Some(
            s.split_once('_')
                .and_then(|(e, st)| Some((e.parse().ok()?, st.parse().ok()?)))
                .ok_or_else(|| format!("--step {s}: expected EPOCH_STEP, e.g. 20_2"))?,
        ),
    };
    Ok(TextOptions {
        all: a.all,
        ranks,
        step,
    })
}

/// Print the session's answer (JSON when `json` is `Some(all)`, else text) and return the
/// contract's exit status.
pub(crate) fn report(
    session: &mut Session,
    json: Option<bool>,
    opts: &TextOptions,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> i32 {
    let analysis = session.analysis();
    let text = if let Some(all) = json {
        let doc = match crate::report::json::new_format_document(analysis, all) {
            Some(n) => serde_json::to_string_pretty(&n),
            None => serde_json::to_string_pretty(&crate::report::json::document(analysis, all)),
        };
        match doc {
            Ok(t) => t + "\n",
            Err(e) => return fail(err, &format!("cannot write the JSON report: {e}")),
        }
    } else {
        crate::report::terminal::safe_text(&crate::report::text::render(analysis, opts))
    };
    let outcome = analysis.outcome();
    if let Err(e) = out.write_all(text.as_bytes()) {
        // a reader that stopped early (`| head`) does not change the answer's status
        if e.kind() != std::io::ErrorKind::BrokenPipe {
            return fail(err, &format!("cannot write the report: {e}"));
        }
    }
    exit_status(outcome, session.tree(), err)
}

/// The contract's exit status for an outcome (one stderr line when it is 2): the same for
/// `resolve`, `grid` and every other command that reports the answer.
pub(crate) fn exit_status(outcome: Outcome, tree: &Tree, err: &mut dyn Write) -> i32 {
    match &outcome {
        Outcome::Unknown(why) => {
            let hint = tree
                .root_listing()
                .and_then(|l| l.find("checkpoint"))
                .filter(|e| e.is_dir() && tree.dirs.is_empty())
                .map(|_| {
                    format!(
                        "; did you mean {}/checkpoint?",
                        tree.root.trim_end_matches('/')
                    )
                })
                .unwrap_or_default();
            fail(err, &format!("{why}{hint}"))
        }
        Outcome::Fails => 1,
        Outcome::Resumes => 0,
    }
}
