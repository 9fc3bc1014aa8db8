//! `ckptscope grid DIR`: the step × rank grid as plain text (for bug reports and terminals
//! without the TUI).

use super::{fail, FormatArg};
use crate::layout::mindformers::names::Fmt;
use std::io::Write;
use std::path::Path;

#[derive(clap::Args, Debug)]
pub struct GridArgs {
    /// The checkpoint folder (holding rank_0/ … rank_N/).
    pub dir: String,
    /// load_ckpt_format.
    #[arg(long, value_enum)]
    pub format: Option<FormatArg>,
    /// The job's world size (default: the number of rank_* entries).
    #[arg(long, value_name = "N")]
    pub world_size: Option<u64>,
}

pub fn grid_cmd(a: &GridArgs, out: &mut dyn Write, err: &mut dyn Write) -> i32 {
    if !Path::new(&a.dir).is_dir() {
        return fail(
            err,
            &format!(
                "{}: not a folder; pass the checkpoint folder that holds rank_0/ …",
                a.dir
            ),
        );
    }
    let fmt = match a.format {
        Some(FormatArg::Safetensors) => Fmt::Safetensors,
        _ => Fmt::Ckpt,
    };
    let text = crate::grid::text_for(Path::new(&a.dir), fmt, a.world_size);
    if out.write_all(text.as_bytes()).is_err() {
        return 2;
    }
    0
}
