//! Safetensors header validation on arbitrary bytes.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut c = std::io::Cursor::new(data);
    if let Ok(h) = ckptscope::verify::safetensors::read_header(&mut c, data.len() as u64) {
        let _ = ckptscope::verify::safetensors::append_values(&mut c, &h, data.len() as u64);
        if let Some(mut crc) = ckptscope::verify::safetensors_crc::SafetensorsCrc::new(&h) {
            crc.update(0, data);
            let _ = crc.problem();
        }
    }
});
