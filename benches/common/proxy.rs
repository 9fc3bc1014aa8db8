//! A TCP proxy counting the bytes each way: what a benchmark's client really sent and received
//! (`s3_poll`: HTTP to the S3 server; `ssh_scale`: the encrypted ssh connections).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

/// Bytes that crossed the proxy: (to the server, from the server).
#[derive(Default)]
pub struct Wire {
    pub up: AtomicU64,
    pub down: AtomicU64,
}

/// A TCP proxy to `to` counting every byte each way; returns its address (`127.0.0.1:PORT`).
pub fn proxy(to: String, wire: Arc<Wire>) -> String {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = l.local_addr().expect("addr");
    std::thread::spawn(move || {
        for c in l.incoming().map_while(Result::ok) {
            let Ok(s) = TcpStream::connect(&to) else {
                continue;
            };
            let pipe = |mut a: TcpStream, mut b: TcpStream, n: Arc<Wire>, up: bool| {
                std::thread::spawn(move || {
                    let mut buf = [0u8; 64 * 1024];
                    while let Ok(k) = a.read(&mut buf) {
                        if k == 0 || b.write_all(&buf[..k]).is_err() {
                            break;
                        }
                        let c = if up { &n.up } else { &n.down };
                        c.fetch_add(k as u64, Relaxed);
                    }
                    let _ = b.shutdown(std::net::Shutdown::Both);
                })
            };
            pipe(
                c.try_clone().expect("clone"),
                s.try_clone().expect("clone"),
                wire.clone(),
                true,
            );
            pipe(s, c, wire.clone(), false);
        }
    });
    addr.to_string()
}
