//! A real S3-compatible server on 127.0.0.1 for the `s3://` tests: `s3s-fs` (crates.io, the
//! `s3s` project's file-backed server) run in this process, speaking the S3 REST API over HTTP
//! with SigV4 authentication. Chosen over moto's server mode (PyPI) because it needs nothing
//! but cargo — `cargo test` on a fresh machine runs these tests — and because it keeps each
//! object as a file, so a test can give objects the modification times the fixture trees were
//! written with (S3 sets `LastModified` at upload, and "newest checkpoint" depends on it).

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

pub const ACCESS_KEY: &str = "ckptscope-test";
pub const SECRET_KEY: &str = "ckptscope-test-secret";

pub struct S3Server {
    /// `http://127.0.0.1:PORT`
    pub endpoint: String,
    /// Where the server keeps buckets (`<data>/<bucket>/<key>`).
    pub data: tempfile::TempDir,
    _rt: tokio::runtime::Runtime,
}

impl S3Server {
    /// Start a server holding the empty `buckets`.
    pub fn start(buckets: &[&str]) -> S3Server {
        let data = tempfile::tempdir().expect("tempdir");
        for b in buckets {
            std::fs::create_dir_all(data.path().join(b)).expect("bucket folder");
        }
        let (endpoint, rt) = serve(s3s_fs::FileSystem::new(data.path()).expect("s3s-fs"));
        S3Server {
            endpoint,
            data,
            _rt: rt,
        }
    }

    /// A client of `bucket` on this server (to upload and change objects as a job would).
    pub fn bucket(&self, bucket: &str) -> Box<s3::Bucket> {
        let region = s3::Region::Custom {
            region: "us-east-1".into(),
            endpoint: self.endpoint.clone(),
        };
        let creds =
            s3::creds::Credentials::new(Some(ACCESS_KEY), Some(SECRET_KEY), None, None, None)
                .expect("credentials");
        s3::Bucket::new(bucket, region, creds)
            .expect("bucket")
            .with_path_style()
    }

    /// The file the server keeps object `key` of `bucket` in.
    pub fn object_file(&self, bucket: &str, key: &str) -> PathBuf {
        self.data.path().join(bucket).join(key)
    }

    /// Upload every file under `local` to `bucket` at `prefix/<relative path>` (`prefix` empty:
    /// at the bucket's top) through the S3
    /// API, then give each object its file's modification time (cut to the millisecond S3
    /// reports, the local file's too, so that both copies of the tree show the same times).
    pub fn upload_tree(&self, bucket: &str, prefix: &str, local: &Path) -> usize {
        let b = self.bucket(bucket);
        let mut n = 0;
        for f in files(local) {
            let rel = f
                .strip_prefix(local)
                .expect("inside")
                .to_string_lossy()
                .into_owned();
            let key = match prefix.is_empty() {
                true => rel.clone(),
                false => format!("{prefix}/{rel}"),
            };
            let bytes = std::fs::read(&f).expect("read");
            let r = b.put_object(&key, &bytes).expect("put");
            assert_eq!(r.status_code(), 200, "{key}");
            let when = to_ms(
                std::fs::metadata(&f)
                    .expect("stat")
                    .modified()
                    .expect("mtime"),
            );
            set_mtime(&f, when);
            set_mtime(&self.object_file(bucket, &key), when);
            n += 1;
        }
        n
    }

    /// Environment of a ckptscope run against this server.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ACCESS_KEY_ID", ACCESS_KEY.into()),
            ("AWS_SECRET_ACCESS_KEY", SECRET_KEY.into()),
            ("AWS_ENDPOINT_URL", self.endpoint.clone()),
            ("AWS_REGION", "us-east-1".into()),
        ]
    }
}

/// Serve `backend` over HTTP on 127.0.0.1 (SigV4 with the test keys): its endpoint, and the
/// runtime that serves it (dropping it stops the server).
pub fn serve<T: s3s::S3>(backend: T) -> (String, tokio::runtime::Runtime) {
    serve_on(backend, 0)
}

/// [`serve`] on `port` (0: any free one).
pub fn serve_on<T: s3s::S3>(backend: T, port: u16) -> (String, tokio::runtime::Runtime) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let mut b = s3s::service::S3ServiceBuilder::new(backend);
    b.set_auth(s3s::auth::SimpleAuth::from_single(ACCESS_KEY, SECRET_KEY));
    let service = b.build();
    let listener = std::net::TcpListener::bind(("127.0.0.1", port)).expect("bind 127.0.0.1");
    listener.set_nonblocking(true).expect("nonblocking");
    let addr = listener.local_addr().expect("address");
    rt.spawn(async move {
        let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
        loop {
            let Ok((socket, _)) = listener.accept().await else {
                continue;
            };
            let svc = service.clone();
            tokio::spawn(async move {
                let _ = hyper_util::server::conn::auto::Builder::new(
                    hyper_util::rt::TokioExecutor::new(),
                )
                .serve_connection(hyper_util::rt::TokioIo::new(socket), svc)
                .await;
            });
        }
    });
    (format!("http://{addr}"), rt)
}

fn to_ms(t: SystemTime) -> SystemTime {
    let d = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .expect("after 1970");
    SystemTime::UNIX_EPOCH + Duration::from_millis(d.as_millis() as u64)
}

pub fn set_mtime(p: &Path, when: SystemTime) {
    std::fs::File::options()
        .write(true)
        .open(p)
        .and_then(|f| f.set_modified(when))
        .unwrap_or_else(|e| panic!("{}: set mtime: {e}", p.display()));
}

/// Every file under `dir`, in a stable order.
pub fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut names: Vec<_> = std::fs::read_dir(dir)
        .expect("readdir")
        .map(|e| e.expect("entry").path())
        .collect();
    names.sort();
    for p in names {
        if p.is_dir() {
            out.extend(files(&p));
        } else {
            out.push(p);
        }
    }
    out
}
