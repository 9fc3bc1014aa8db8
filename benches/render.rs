//! Rendering benchmark (figures in the README): one full frame at 200×60 on a `TestBackend`,
//! for 8 ranks × 50 steps and for 8,192 ranks × 200 steps. The grid paints only visible cells,
//! so the two should cost about the same.
//!
//! Run: `cargo bench --bench render`.

#[path = "common/tree.rs"]
mod common;

use ckptscope::fsys::RealFs;
use ckptscope::ui::render::draw;
use ckptscope::ui::state::State;
use ckptscope::ui::theme::Theme;
use common::tree;
use ratatui::backend::TestBackend;
use ratatui::Terminal;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn frame_time(ranks: u64, steps: u64) -> (Duration, Duration) {
    let t0 = Instant::now();
    let env = ckptscope::Environment::with(&[], "/");
    let flags = ckptscope::JobFlags {
        world_size: Some(ranks),
        device_num_per_node: Some(ranks as i64),
        ..Default::default()
    };
    let ctx = ckptscope::JobContext::gather(&RealFs, &env, "/bench/checkpoint", &flags).unwrap();
    let session = ckptscope::Session::from_tree(Arc::new(RealFs), ctx, tree(ranks, steps))
        .without_disk_checks();
    let mut s = State::new(session, true);
    let derive = t0.elapsed();
    s.row = s.rows() / 2;
    s.col = steps as usize / 2;
    let theme = Theme {
        color: true,
        light: false,
        ascii: false,
    };
    let mut term = Terminal::new(TestBackend::new(200, 60)).unwrap();
    let mut v = Vec::new();
    for _ in 0..200 {
        let t = Instant::now();
        term.draw(|f| draw(f, &s, &theme)).unwrap();
        v.push(t.elapsed());
    }
    v.sort();
    (v[v.len() / 2], derive)
}

fn main() {
    let (small, ds) = frame_time(8, 50);
    let (big, db) = frame_time(8192, 200);
    println!("frame 200x60: 8 ranks x 50 steps {small:.2?}; 8,192 ranks x 200 steps {big:.2?}; ratio {:.2}", big.as_secs_f64() / small.as_secs_f64());
    println!("(model + resolvers + grid, once per change: {ds:.2?} and {db:.2?})");
}
