//! Roots in object storage: `s3://bucket/prefix` on AWS or any S3-compatible store (MinIO,
//! Huawei OBS — where ModelArts puts `REMOTE_SAVE_URL` checkpoints). A root is read through the
//! same [`Fs`] seam as a folder ([`JobFs`] routes `s3://` paths to their bucket), so the scan,
//! the resolvers, the checks and the watch are the ones every other root goes through: the
//! answer on a bucket is the answer on the same tree on disk. There are no change events: a
//! watch polls, each poll one listing of the root, and only new or changed objects are read.
//!
//! The client is `rust-s3` (its blocking API) rather than Arrow's `object_store`, the first
//! candidate, because `object_store` turns every listed key into its own `Path` type, which
//! cannot hold what a bucket can: a folder marker `rank_3/` (how consoles make an empty folder)
//! comes back as a file `rank_3`, and one key with an empty or `..` segment fails the whole
//! listing. It is also async, while the seam is synchronous (the scanner's and the verifier's
//! threads call it): `rust-s3` reads keys as they are and needs no runtime. Credentials come from
//! its chain: the environment, `AWS_PROFILE` and `~/.aws/credentials`, web identity, then the
//! instance metadata service.

pub mod listing;
pub mod reader;
pub mod store;

use crate::fsys::{Fs, RawEntry, ReadSeek};
use crate::model::{FileRead, Stat};
use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use store::{Client, S3Store};

/// A root in object storage, as given: `s3://bucket/prefix`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct S3Url {
    /// `s3://bucket/prefix` without a trailing slash (messages, headers and paths name it).
    pub label: String,
    pub bucket: String,
    /// The key prefix of the folder, without slashes at either end (`""`: the whole bucket).
    pub prefix: String,
}

/// Requests in flight when a job with a bucket reads many files (`meta.json` of every rank
/// folder, shards to check): each waits on the store's latency, not on a core. With 20 ms a
/// request, a first scan of 2,048 rank folders took 22.8 s one request per core (2 cores).
pub const OBJECT_READERS: usize = 32;

/// Why an `s3://` root is polled (the watch mode line names it).
pub const NO_EVENTS: &str = "object storage: no change events";

/// Whether `s` names an object-storage path (`s3://…`).
pub fn is_url(s: &str) -> bool {
    s.starts_with("s3://")
}

impl S3Url {
    /// `None` when `s` is not an `s3://` URL; an error saying what is wrong with one that is.
    pub fn parse(s: &str) -> Option<Result<S3Url, String>> {
        let rest = s.strip_prefix("s3://")?;
        let shown = crate::model::shown_name(s);
        let bad = |why: &str| {
            Some(Err(format!(
                "{shown}: {why}; give s3://bucket/path/to/checkpoint"
            )))
        };
        if s.chars().any(char::is_control) {
            return bad("a control character in the URL");
        }
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        let prefix = prefix.trim_end_matches('/');
        let bucket_ok = (1..=63).contains(&bucket.len())
            && bucket
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'));
        if !bucket_ok {
            return bad("not a bucket name (1 to 63 letters, digits, '.', '-', '_')");
        }
        if !prefix.is_empty()
            && prefix
                .split('/')
                .any(|p| p.is_empty() || p == "." || p == "..")
        {
            return bad("an empty, '.' or '..' part in the path");
        }
        let label = match prefix.is_empty() {
            true => format!("s3://{bucket}"),
            false => format!("s3://{bucket}/{prefix}"),
        };
        Some(Ok(S3Url {
            label,
            bucket: bucket.to_owned(),
            prefix: prefix.to_owned(),
        }))
    }
}

impl S3Url {
    /// Whether the URL names a new-format `iteration_N` folder.
    pub fn is_iteration(&self) -> bool {
        self.prefix
            .rsplit('/')
            .next()
            .is_some_and(|n| n.starts_with("iteration_"))
    }

    /// The folder holding this one (the bucket for a top-level prefix).
    pub fn parent(&self) -> S3Url {
        let prefix = self.prefix.rsplit_once('/').map_or("", |(p, _)| p);
        let label = match prefix.is_empty() {
            true => format!("s3://{}", self.bucket),
            false => format!("s3://{}/{prefix}", self.bucket),
        };
        S3Url {
            label,
            bucket: self.bucket.clone(),
            prefix: prefix.to_owned(),
        }
    }
}

/// Where and how buckets are reached.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct S3Settings {
    pub endpoint: Option<String>,
    pub region: String,
}

impl S3Settings {
    /// From `--s3-endpoint` (or `AWS_ENDPOINT_URL`) and `--s3-region` (or `AWS_REGION`,
    /// `AWS_DEFAULT_REGION`, else `us-east-1`).
    pub fn from_flags(flags: &crate::job::JobFlags) -> Result<S3Settings, String> {
        let endpoint = flags.s3_endpoint.clone().filter(|e| !e.is_empty());
        if let Some(e) = &endpoint {
            if !(e.starts_with("http://") || e.starts_with("https://")) {
                return Err(format!(
                    "--s3-endpoint {}: expected http://host[:port] or https://host",
                    crate::model::shown_name(e)
                ));
            }
        }
        let region = flags
            .s3_region
            .clone()
            .or_else(|| std::env::var("AWS_DEFAULT_REGION").ok())
            .filter(|r| !r.is_empty())
            .unwrap_or_else(|| "us-east-1".into());
        Ok(S3Settings { endpoint, region })
    }
}

/// A job's filesystem: this machine's, with the job's `s3://` roots and buckets beside it.
pub struct JobFs {
    local: Arc<dyn Fs>,
    roots: Vec<Arc<S3Store>>,
    buckets: BTreeMap<String, Arc<Client>>,
}

impl JobFs {
    /// `local`, with a store for each `s3://` URL among `roots` (connected, not listed yet).
    pub fn new(
        local: Arc<dyn Fs>,
        roots: &[S3Url],
        settings: &S3Settings,
    ) -> Result<JobFs, String> {
        JobFs::build(local, roots, |b| Client::connect(b, settings))
    }

    /// [`JobFs::new`] with each bucket's client made by `connect`.
    pub fn build(
        local: Arc<dyn Fs>,
        roots: &[S3Url],
        connect: impl Fn(&str) -> Result<Client, String>,
    ) -> Result<JobFs, String> {
        let mut buckets: BTreeMap<String, Arc<Client>> = BTreeMap::new();
        let mut stores = Vec::new();
        for u in roots {
            let client = match buckets.get(&u.bucket) {
                Some(c) => c.clone(),
                None => {
                    let c = Arc::new(connect(&u.bucket)?);
                    buckets.insert(u.bucket.clone(), c.clone());
                    c
                }
            };
            stores.push(Arc::new(S3Store::new(u.clone(), client)));
        }
        // the longest prefix first: a root inside another is its own
        stores.sort_by_key(|s| std::cmp::Reverse(s.root.components().count()));
        Ok(JobFs {
            local,
            roots: stores,
            buckets,
        })
    }

    /// The job's stores (roots in object storage).
    pub fn stores(&self) -> &[Arc<S3Store>] {
        &self.roots
    }

    fn store_of(&self, path: &Path) -> Option<&S3Store> {
        self.roots
            .iter()
            .find(|s| path.starts_with(&s.root))
            .map(|s| &**s)
    }

    /// An `s3://bucket/key` path outside every root, in a bucket of the job.
    fn direct(&self, path: &Path) -> Option<(&Client, String)> {
        let s = path.to_str()?;
        let u = S3Url::parse(s)?.ok()?;
        Some((self.buckets.get(&u.bucket)?, u.prefix))
    }

    /// What every store's requests came to (one line each).
    fn requests(&self) -> Vec<String> {
        use std::sync::atomic::Ordering::Relaxed;
        self.buckets
            .values()
            .map(|c| {
                let n = &c.counters;
                format!(
                    "{}: {} LIST, {} GET ({} bytes), {} HEAD requests",
                    c.name,
                    n.list_requests.load(Relaxed),
                    n.get_requests.load(Relaxed),
                    crate::verify::verdict::thousands(n.bytes_read.load(Relaxed)),
                    n.head_requests.load(Relaxed),
                )
            })
            .collect()
    }
}

/// Whether `path` is in object storage (every root's path is: `s3://bucket/…`).
fn in_store(path: &Path) -> bool {
    path.to_str().is_some_and(is_url)
}

/// An `s3://` path outside the job's roots: not listed (only the roots are), and not read at
/// all outside their buckets (nothing is reached that the command line did not name).
fn unknown_bucket(path: &Path) -> io::Error {
    io::Error::new(
        io::ErrorKind::NotFound,
        format!(
            "{}: outside the job's s3:// roots (only they are listed)",
            crate::model::name_of(path.as_os_str())
        ),
    )
}

impl Fs for JobFs {
    fn stat(&self, path: &Path) -> io::Result<Stat> {
        if let Some(s) = self.store_of(path) {
            return s.stat(path);
        }
        if let Some((c, key)) = self.direct(path) {
            return store::direct_stat(c, &key);
        }
        match in_store(path) {
            true => Err(unknown_bucket(path)),
            false => self.local.stat(path),
        }
    }
    fn lstat(&self, path: &Path) -> io::Result<Stat> {
        match in_store(path) {
            true => self.stat(path),
            false => self.local.lstat(path),
        }
    }
    fn read_dir(&self, path: &Path) -> io::Result<Vec<RawEntry>> {
        match self.store_of(path) {
            Some(s) => s.read_dir(path),
            None if in_store(path) => Err(unknown_bucket(path)),
            None => self.local.read_dir(path),
        }
    }
    fn read_small(&self, path: &Path, limit: u64) -> FileRead {
        if let Some(s) = self.store_of(path) {
            return s.read_small(path, limit);
        }
        if let Some((c, key)) = self.direct(path) {
            return store::direct_read(c, &key, limit);
        }
        match in_store(path) {
            true => FileRead::Error(crate::model::OsErr::from_io(&unknown_bucket(path))),
            false => self.local.read_small(path, limit),
        }
    }
    fn read_regular(&self, path: &Path, limit: u64) -> FileRead {
        match in_store(path) {
            true => self.read_small(path, limit),
            false => self.local.read_regular(path, limit),
        }
    }
    fn open(&self, path: &Path) -> io::Result<(Box<dyn ReadSeek>, Stat)> {
        match self.store_of(path) {
            Some(s) => s.open(path),
            None if in_store(path) => Err(unknown_bucket(path)),
            None => self.local.open(path),
        }
    }
    fn canonicalize(&self, path: &Path) -> io::Result<PathBuf> {
        match in_store(path) {
            true => self.stat(path).map(|_| path.to_path_buf()),
            false => self.local.canonicalize(path),
        }
    }
    fn mount_table(&self) -> Option<String> {
        self.local.mount_table()
    }
    fn costs(&self) -> Vec<String> {
        self.requests()
    }
    fn concurrency(&self) -> Option<usize> {
        (!self.roots.is_empty()).then_some(OBJECT_READERS)
    }
    fn refresh(&self, root: &Path) -> Option<Result<String, String>> {
        self.store_of(root).map(|s| s.relist())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse_and_bad_ones_say_why() {
        let u = S3Url::parse("s3://ckpts/run1/checkpoint/")
            .unwrap()
            .unwrap();
        assert_eq!(
            (u.label.as_str(), u.bucket.as_str(), u.prefix.as_str()),
            ("s3://ckpts/run1/checkpoint", "ckpts", "run1/checkpoint")
        );
        assert_eq!(S3Url::parse("s3://b").unwrap().unwrap().prefix, "");
        assert!(S3Url::parse("/data/run1").is_none());
        for bad in [
            "s3://",
            "s3://b/a//c",
            "s3://b/a/../c",
            "s3://bu cket/x",
            "s3://b/\x1b[2J",
        ] {
            let e = S3Url::parse(bad).unwrap().unwrap_err();
            assert!(e.contains("give s3://bucket/"), "{e}");
            assert!(!e.contains('\x1b'), "{e:?}");
        }
    }

    #[test]
    fn paths_route_to_their_root_and_keys_are_joined_with_slashes() {
        let settings = S3Settings {
            endpoint: Some("http://127.0.0.1:9".into()),
            region: "us-east-1".into(),
        };
        let urls = [
            S3Url::parse("s3://b/run").unwrap().unwrap(),
            S3Url::parse("s3://b/run/checkpoint").unwrap().unwrap(),
        ];
        let creds = || s3::creds::Credentials::new(Some("ak"), Some("sk"), None, None, None);
        let fs = JobFs::build(Arc::new(crate::fsys::RealFs), &urls, |b| {
            Client::with_credentials(b, &settings, creds().unwrap())
        })
        .unwrap();
        let p = Path::new("s3://b/run/checkpoint")
            .join("rank_0")
            .join("meta.json");
        let s = fs.store_of(&p).unwrap();
        assert_eq!(s.url.label, "s3://b/run/checkpoint");
        assert_eq!(s.rel_of(&p).as_deref(), Some("rank_0/meta.json"));
        assert_eq!(
            fs.store_of(Path::new("/tmp")).map(|s| s.url.label.clone()),
            None
        );
        let (c, key) = fs.direct(Path::new("s3://b/other/x.txt")).unwrap();
        assert_eq!((c.name.as_str(), key.as_str()), ("s3://b", "other/x.txt"));
        assert!(fs.direct(Path::new("s3://elsewhere/x")).is_none());
    }
}
