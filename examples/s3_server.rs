//! A local S3-compatible server over a folder, to try `s3://` roots without a cloud account:
//! each sub-folder of DIR is a bucket, each file an object (the tests' `s3s-fs` server).
//!
//! ```text
//! cargo run --example s3_server -- DIR [PORT]
//! # then, in another shell, with the lines it prints:
//! AWS_ACCESS_KEY_ID=… AWS_SECRET_ACCESS_KEY=… AWS_ENDPOINT_URL=http://127.0.0.1:PORT \
//!     ckptscope s3://BUCKET/path/to/checkpoint
//! ```

#[path = "../tests/it/common/s3server.rs"]
#[allow(dead_code)]
mod s3server;

fn main() {
    let mut args = std::env::args().skip(1);
    let Some(dir) = args.next() else {
        eprintln!(
            "usage: cargo run --example s3_server -- DIR [PORT]  (sub-folders of DIR are buckets)"
        );
        std::process::exit(2);
    };
    let port: u16 = match args.next().map(|p| p.parse()) {
        None => 0,
        Some(Ok(p)) => p,
        Some(Err(e)) => {
            eprintln!("PORT: {e}");
            std::process::exit(2);
        }
    };
    let fs = match s3s_fs::FileSystem::new(&dir) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("{dir}: {e:?}");
            std::process::exit(2);
        }
    };
    let (endpoint, _rt) = s3server::serve_on(fs, port);
    println!("export AWS_ACCESS_KEY_ID={}", s3server::ACCESS_KEY);
    println!("export AWS_SECRET_ACCESS_KEY={}", s3server::SECRET_KEY);
    println!("export AWS_ENDPOINT_URL={endpoint}");
    println!("# serving {dir} until interrupted");
    loop {
        std::thread::park();
    }
}
