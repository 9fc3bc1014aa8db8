//! The `.ckpt` walker on arbitrary bytes: no panic, no allocation proportional to a declared
//! length, and the same result twice.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let a = ckptscope::verify::ckpt::walk_detailed(std::io::Cursor::new(data), data.len() as u64);
    let b = ckptscope::verify::ckpt::walk_detailed(std::io::Cursor::new(data), data.len() as u64);
    assert_eq!(a, b);
});
