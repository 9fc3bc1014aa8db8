//! The Python-compatible JSON reader and the meta.json / name helpers on arbitrary bytes.
#![no_main]
use ckptscope::layout::mindformers::names::{check_ckpt_file_name, epoch_and_step, rank_id, Fmt};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = ckptscope::py::json::load(data);
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = check_ckpt_file_name(s, Fmt::Ckpt);
        let _ = epoch_and_step(s, Fmt::Safetensors);
        let _ = rank_id(s);
    }
});
