//! One bucket reached through its S3 API, and the roots listed in it: the [`crate::fsys::Fs`]
//! seam over object storage. A root is listed whole (paginated `ListObjectsV2`, 1,000 keys a
//! request) and every question about its folders is answered from that listing, so a scan
//! costs no request per folder; a watch's poll lists it again ([`Fs::refresh`]). Bytes are
//! read with ranged `GET`s only: the cheap check's header and records, a `meta.json`, the
//! whole object only when `--hash` asks for it. Nothing is ever written.

use super::listing::{parse_time, Obj, Objects, MAX_OBJECTS};
use super::reader::RangedReader;
use super::{S3Settings, S3Url};
use crate::fsys::{Fs, RawEntry, ReadSeek};
use crate::model::{FileKind, FileRead, OsErr, Stat};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

/// Requests made and bytes read, for the poll line and the benchmark.
#[derive(Default, Debug)]
pub struct Counters {
    pub list_requests: AtomicU64,
    pub get_requests: AtomicU64,
    pub head_requests: AtomicU64,
    pub bytes_read: AtomicU64,
}

/// A bucket's client: what every read of it goes through.
pub struct Client {
    pub bucket: Box<s3::Bucket>,
    pub counters: Counters,
    /// `s3://bucket` (messages, and [`Stat::dev`] of its objects).
    pub name: String,
}

/// What one listing of a root found and cost.
#[derive(Clone, Debug)]
pub struct Listed {
    pub objects: Arc<Objects>,
    pub requests: u64,
    pub at: Instant,
    /// Made for a poll (not the first scan's, which a watch's first poll reuses).
    pub polled: bool,
}

/// A root `s3://bucket/prefix` and its latest listing.
pub struct S3Store {
    pub url: S3Url,
    /// The URL as a path (`s3:/bucket/prefix` by component): what the scanner's paths start with.
    pub root: PathBuf,
    client: Arc<Client>,
    listed: RwLock<Option<Result<Listed, String>>>,
}

/// The most key text one listing holds (keys may be 1 KiB each: [`MAX_OBJECTS`] alone would
/// allow a gigabyte).
const MAX_KEY_BYTES: usize = 128 << 20;

/// The most pages one listing may take: [`MAX_OBJECTS`] at 100 keys a page (a store asked for
/// 1,000 a page that pages forever, or a few keys at a time, is not followed without end).
const MAX_PAGES: u64 = 1 + (MAX_OBJECTS as u64) / 100;

/// A listing just made is not made again by a poll this soon after it …
const FRESH: Duration = Duration::from_millis(100);
/// … and the first scan's listing is reused by a watch's first poll, which follows that scan
/// at once, if it is younger than this (a listing of 1,048,576 objects is 1,049 requests: a
/// watch does not make it twice as it starts).
const FIRST_SCAN: Duration = Duration::from_secs(60);

impl Client {
    /// The client for `bucket` as `settings` say (endpoint, region, credentials).
    pub fn connect(bucket: &str, settings: &S3Settings) -> Result<Client, String> {
        let creds = s3::creds::Credentials::default().map_err(|e| {
            format!(
                "no credentials for s3://{bucket} ({e}): set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE with ~/.aws/credentials, or run where an instance role gives them"
            )
        })?;
        Client::with_credentials(bucket, settings, creds)
    }

    /// [`Client::connect`] with the credentials given.
    pub fn with_credentials(
        bucket: &str,
        settings: &S3Settings,
        creds: s3::creds::Credentials,
    ) -> Result<Client, String> {
        let region = match &settings.endpoint {
            Some(e) => s3::Region::Custom {
                region: settings.region.clone(),
                endpoint: e.clone(),
            },
            None => settings.region.parse().map_err(|e| {
                format!(
                    "--s3-region {}: {e}; give the region, or --s3-endpoint for another store",
                    settings.region
                )
            })?,
        };
        let mut b = s3::Bucket::new(bucket, region, creds)
            .map_err(|e| format!("s3://{bucket}: {}", short(&e)))?;
        if settings.endpoint.is_some() || bucket.contains('.') {
            // MinIO-style servers and OBS answer path-style requests; AWS itself the default,
            // except for a name with dots (as a host name it fails AWS's TLS certificate)
            b = b.with_path_style();
        }
        b.set_request_timeout(Some(Duration::from_secs(30)));
        Ok(Client {
            bucket: b,
            counters: Counters::default(),
            name: format!("s3://{bucket}"),
        })
    }

    /// Read `[start, start + len)` of `key` into memory, never more than `len` bytes whatever
    /// the server sends.
    pub fn range(&self, key: &str, start: u64, len: u64) -> io::Result<Vec<u8>> {
        if len == 0 {
            return Ok(Vec::new());
        }
        let mut w = Capped {
            buf: Vec::with_capacity(len.min(8 << 20) as usize),
            cap: len,
        };
        self.counters.get_requests.fetch_add(1, Ordering::Relaxed);
        let r = self
            .bucket
            .get_object_range_to_writer(key, start, Some(start + len - 1), &mut w);
        self.counters
            .bytes_read
            .fetch_add(w.buf.len() as u64, Ordering::Relaxed);
        match r {
            Ok(200 | 206) => Ok(w.buf),
            Ok(code) => Err(io::Error::other(format!(
                "{}/{key}: HTTP {code} to a ranged read",
                self.name
            ))),
            Err(e) => Err(io_error(&self.name, key, &e)),
        }
    }

    /// The object `key` by a `HEAD` request (a path outside every listed root).
    fn head(&self, key: &str) -> io::Result<Stat> {
        self.counters.head_requests.fetch_add(1, Ordering::Relaxed);
        let (h, _) = self
            .bucket
            .head_object(key)
            .map_err(|e| io_error(&self.name, key, &e))?;
        let size = h.content_length.unwrap_or(0).max(0) as u64;
        let mtime = h
            .last_modified
            .as_deref()
            .and_then(httpdate_ns)
            .unwrap_or(0);
        let mut o = Objects::new(&self.name);
        o.insert(
            "f",
            Obj {
                size,
                mtime_ns: mtime,
                etag: h.e_tag,
            },
        );
        o.stat("f")
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))
    }
}

/// An HTTP date (`Mon, 30 Nov 2026 18:30:29 GMT`) in nanoseconds.
fn httpdate_ns(t: &str) -> Option<i128> {
    let fmt = time::format_description::well_known::Rfc2822;
    let t = t.replace(" GMT", " +0000");
    Some(
        time::OffsetDateTime::parse(&t, &fmt)
            .ok()?
            .unix_timestamp_nanos(),
    )
}

/// A writer that takes at most `cap` bytes (a server that ignores the range cannot make a
/// check hold a whole shard in memory).
struct Capped {
    buf: Vec<u8>,
    cap: u64,
}

impl io::Write for Capped {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        let room = self.cap.saturating_sub(self.buf.len() as u64) as usize;
        if room == 0 && !b.is_empty() {
            return Err(io::Error::other(
                "the server sent more than the range asked",
            ));
        }
        let n = b.len().min(room);
        self.buf.extend_from_slice(&b[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// An S3 error as an I/O error naming the object: a missing object is `NotFound`, a refusal
/// `PermissionDenied` (the scanner and the resolvers then say what MindFormers would).
fn io_error(bucket: &str, key: &str, e: &s3::error::S3Error) -> io::Error {
    // (as the errno a filesystem gives: MindFormers' FileNotFoundError / PermissionError,
    // and "absent" where absence is normal, as for a manifest)
    let why = format!("{bucket}/{key}: {}", short(e));
    match e {
        s3::error::S3Error::HttpFailWithBody(404, _) => io::Error::from_raw_os_error(2),
        s3::error::S3Error::HttpFailWithBody(401 | 403, _) => io::Error::from_raw_os_error(13),
        // a range past the end: the object is shorter than it was listed
        s3::error::S3Error::HttpFailWithBody(416, _) => {
            io::Error::new(io::ErrorKind::UnexpectedEof, why)
        }
        _ => io::Error::other(why),
    }
}

/// An S3 error in one line: the HTTP status and the store's error code, not its whole body.
pub fn short(e: &s3::error::S3Error) -> String {
    match e {
        s3::error::S3Error::HttpFailWithBody(code, body) => {
            let tag = |t: &str| {
                let open = format!("<{t}>");
                let from = body.find(&open)? + open.len();
                let to = body[from..].find('<')? + from;
                Some(body[from..to].to_owned())
            };
            let mut s = format!("HTTP {code}");
            for t in ["Code", "Message"] {
                if let Some(v) = tag(t) {
                    s.push_str(&format!(" {v}"));
                }
            }
            crate::model::shown_name(&s).chars().take(300).collect()
        }
        other => crate::model::shown_name(&other.to_string())
            .chars()
            .take(300)
            .collect(),
    }
}

impl S3Store {
    pub fn new(url: S3Url, client: Arc<Client>) -> S3Store {
        S3Store {
            root: PathBuf::from(&url.label),
            url,
            client,
            listed: RwLock::new(None),
        }
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The key `path` names, when it is under this root (`Some("")`: the root itself).
    pub fn rel_of(&self, path: &Path) -> Option<String> {
        let rest = path.strip_prefix(&self.root).ok()?;
        let mut parts = Vec::new();
        for c in rest.components() {
            match c {
                std::path::Component::Normal(s) => parts.push(s.to_str()?.to_owned()),
                std::path::Component::CurDir => {}
                _ => return None,
            }
        }
        Some(parts.join("/"))
    }

    fn key(&self, rel: &str) -> String {
        match (self.url.prefix.is_empty(), rel.is_empty()) {
            (true, _) => rel.to_owned(),
            (false, true) => self.url.prefix.clone(),
            (false, false) => format!("{}/{rel}", self.url.prefix),
        }
    }

    /// List the root whole, one page after another.
    fn list(&self) -> Result<Listed, String> {
        let prefix = match self.url.prefix.is_empty() {
            true => String::new(),
            false => format!("{}/", self.url.prefix),
        };
        let mut objects = Objects::new(&self.client.name);
        let mut token = None;
        let mut last: Option<String> = None;
        let mut key_bytes = 0usize;
        let mut requests = 0;
        loop {
            requests += 1;
            if requests > MAX_PAGES {
                return Err(format!(
                    "{}: listing failed (more than {MAX_PAGES} pages: the store answers a few keys a page)",
                    self.url.label
                ));
            }
            self.client
                .counters
                .list_requests
                .fetch_add(1, Ordering::Relaxed);
            let (page, _) = self
                .client
                .bucket
                .list_page(prefix.clone(), None, token.take(), None, Some(1000))
                .map_err(|e| self.refused(&e))?;
            for o in page.contents {
                let Some(rel) = o.key.strip_prefix(&prefix) else {
                    continue;
                };
                key_bytes += rel.len();
                let mtime_ns = parse_time(&o.last_modified).unwrap_or(0);
                objects.insert(
                    rel,
                    Obj {
                        size: o.size,
                        mtime_ns,
                        etag: o.e_tag,
                    },
                );
            }
            if objects.len() > MAX_OBJECTS || key_bytes > MAX_KEY_BYTES {
                return Err(format!(
                    "{}: more than {MAX_OBJECTS} objects (or {} MiB of names) under this prefix; give the checkpoint folder's own prefix",
                    self.url.label,
                    MAX_KEY_BYTES >> 20
                ));
            }
            token = self.next_page(page.is_truncated, page.next_continuation_token, &mut last)?;
            if token.is_none() {
                break;
            }
        }
        if objects.is_empty() && !objects.root_marker && !self.url.prefix.is_empty() {
            // no key under `prefix/`: the prefix may name one object (a file, not a folder)
            if let Ok(st) = self.client.head(&self.url.prefix) {
                objects.root_file = Some(Obj {
                    size: st.size,
                    mtime_ns: st.mtime_ns(),
                    etag: None,
                });
            }
        }
        Ok(Listed {
            objects: Arc::new(objects),
            requests,
            at: Instant::now(),
            polled: false,
        })
    }

    /// A listing request the store refused or could not be sent, with what to check.
    fn refused(&self, e: &s3::error::S3Error) -> String {
        format!(
            "{}: listing failed ({}); check the bucket, the endpoint (--s3-endpoint or AWS_ENDPOINT_URL), the region and the credentials (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or AWS_PROFILE)",
            self.url.label,
            short(e)
        )
    }

    /// The token of the page after this one (`None`: this was the last), refusing a store
    /// that cannot be followed to the end.
    fn next_page(
        &self,
        truncated: bool,
        next: Option<String>,
        last: &mut Option<String>,
    ) -> Result<Option<String>, String> {
        let fail = |why: &str| Err(format!("{}: listing failed ({why})", self.url.label));
        match next {
            // a store that hands back the token it was given would page forever
            Some(t) if truncated && last.as_ref() == Some(&t) => {
                fail("the store repeated its continuation token")
            }
            Some(t) if truncated => {
                *last = Some(t.clone());
                Ok(Some(t))
            }
            // (a store answering the old ListObjects gives no token: its pages cannot be
            // followed, and a listing cut at its first page would lose rank folders)
            None if truncated => fail(
                "the store says there is more but gives no continuation token: does it answer ListObjectsV2?",
            ),
            _ => Ok(None),
        }
    }

    /// The latest listing (made now if there is none yet).
    pub fn listed(&self) -> Result<Listed, String> {
        if let Some(l) = self
            .listed
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
        {
            return l.clone();
        }
        let mut guard = self.listed.write().unwrap_or_else(|p| p.into_inner());
        if guard.is_none() {
            *guard = Some(self.list());
        }
        guard.clone().unwrap_or_else(|| Err("not listed".into()))
    }

    fn objects(&self) -> io::Result<Arc<Objects>> {
        self.listed().map(|l| l.objects).map_err(io::Error::other)
    }

    /// List again (a watch's poll): what it cost, or why it failed — the last listing is then
    /// kept, so what is shown stays the last known state.
    pub fn relist(&self) -> Result<String, String> {
        let fresh = {
            let mut g = self.listed.write().unwrap_or_else(|p| p.into_inner());
            match g.as_mut() {
                Some(Ok(l)) if !l.polled && l.at.elapsed() < FIRST_SCAN => {
                    l.polled = true;
                    true
                }
                Some(Ok(l)) => l.at.elapsed() < FRESH,
                _ => false,
            }
        };
        if !fresh {
            match self.list() {
                Ok(mut l) => {
                    l.polled = true;
                    *self.listed.write().unwrap_or_else(|p| p.into_inner()) = Some(Ok(l));
                }
                Err(why) => {
                    let mut g = self.listed.write().unwrap_or_else(|p| p.into_inner());
                    if !matches!(g.as_ref(), Some(Ok(_))) {
                        *g = Some(Err(why.clone()));
                    }
                    return Err(format!("{why}; the last listing is shown"));
                }
            }
        }
        self.listed().map(|l| self.account(&l))
    }

    /// The poll line: what a full listing of this root costs.
    /// (In requests, not objects: the line is sent again only when it changes, and an
    /// object count would change — and fill the log — at every save.)
    pub fn account(&self, l: &Listed) -> String {
        let mut s = format!(
            "object storage, no change events: a poll is {} LIST request{} (1,000 keys each)",
            l.requests,
            if l.requests == 1 { "" } else { "s" },
        );
        if l.objects.skipped > 0 {
            s.push_str(&format!(
                "; {} keys left out (an empty, . or .. segment is not a path)",
                l.objects.skipped
            ));
        }
        s
    }

    pub fn stat(&self, path: &Path) -> io::Result<Stat> {
        let rel = self.rel_of(path).ok_or_else(not_found)?;
        self.objects()?.stat(&rel).ok_or_else(not_found)
    }

    pub fn read_dir(&self, path: &Path) -> io::Result<Vec<RawEntry>> {
        let rel = self.rel_of(path).ok_or_else(not_found)?;
        let objects = self.objects()?;
        match objects.children(&rel) {
            Some(c) => Ok(c
                .into_iter()
                .map(|(name, st)| RawEntry {
                    name: name.into(),
                    lstat: Ok(st),
                })
                .collect()),
            None if objects.stat(&rel).is_some() => Err(io::Error::from_raw_os_error(20)),
            None => Err(not_found()),
        }
    }

    pub fn read_small(&self, path: &Path, limit: u64) -> FileRead {
        let st = match self.stat(path) {
            Ok(s) => s,
            Err(e) => return FileRead::Error(OsErr::from_io(&e)),
        };
        if st.kind == FileKind::Dir {
            return FileRead::Error(OsErr::errno(21));
        }
        if st.size > limit {
            return FileRead::TooLarge(st.size);
        }
        let key = self.key(&self.rel_of(path).unwrap_or_default());
        match self.client.range(&key, 0, st.size) {
            Ok(b) => FileRead::Bytes(b),
            Err(e) => FileRead::Error(OsErr::from_io(&e)),
        }
    }

    pub fn open(&self, path: &Path) -> io::Result<(Box<dyn ReadSeek>, Stat)> {
        let st = self.stat(path)?;
        if st.kind != FileKind::File {
            return Err(io::Error::from_raw_os_error(21));
        }
        let key = self.key(&self.rel_of(path).unwrap_or_default());
        let r = RangedReader::new(self.client.clone(), key, st.size);
        Ok((Box::new(r), st))
    }
}

fn not_found() -> io::Error {
    io::Error::from_raw_os_error(2)
}

/// Reads of an `s3://` path outside every listed root (the output folder's resume record):
/// one `HEAD` or ranged `GET` each, no listing.
pub fn direct_stat(client: &Client, key: &str) -> io::Result<Stat> {
    client.head(key)
}

pub fn direct_read(client: &Client, key: &str, limit: u64) -> FileRead {
    match client.head(key) {
        Ok(st) if st.size > limit => FileRead::TooLarge(st.size),
        Ok(st) => match client.range(key, 0, st.size) {
            Ok(b) => FileRead::Bytes(b),
            Err(e) => FileRead::Error(OsErr::from_io(&e)),
        },
        Err(e) => FileRead::Error(OsErr::from_io(&e)),
    }
}

impl Fs for S3Store {
    fn stat(&self, path: &Path) -> io::Result<Stat> {
        S3Store::stat(self, path)
    }
    fn read_dir(&self, path: &Path) -> io::Result<Vec<RawEntry>> {
        S3Store::read_dir(self, path)
    }
    fn read_small(&self, path: &Path, limit: u64) -> FileRead {
        S3Store::read_small(self, path, limit)
    }
    fn open(&self, path: &Path) -> io::Result<(Box<dyn ReadSeek>, Stat)> {
        S3Store::open(self, path)
    }
    fn canonicalize(&self, path: &Path) -> io::Result<PathBuf> {
        self.stat(path).map(|_| path.to_path_buf())
    }
    fn mount_table(&self) -> Option<String> {
        None
    }
}
