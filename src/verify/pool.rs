//! Background verification: worker threads take jobs from a priority queue (the step
//! MindFormers picks first, then the safe candidate, then newest to oldest), skip or stop work
//! on files that changed since they were queued, remember results per file version, count
//! progress, and send each result back on a channel for the model to apply.

use super::verdict::{check_file, CheckOptions};
use crate::fsys::Fs;
pub use crate::model::FileId;
use crate::model::Stat;
use crate::model::{ShardCheck, Verdict, Verified};
use crossbeam_channel::{unbounded, Receiver, Sender};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;

/// A file to check; `(dir, name)` identifies it in the model.
#[derive(Clone, Debug)]
pub struct Job {
    pub dir: String,
    pub name: String,
    pub path: PathBuf,
    pub stat: Stat,
    pub deep: bool,
    pub expected_sha256: Option<String>,
    /// Lower runs first.
    pub priority: u32,
}

type Key = (String, String);
/// Results are cached per file version and depth; a manifest hash is compared afterwards, so
/// no unchanged file is ever hashed twice in a process.
type CacheKey = (FileId, bool);

struct Queued {
    priority: Reverse<u32>,
    seq: Reverse<u64>,
    gen: u64,
    job: Job,
}

impl PartialEq for Queued {
    fn eq(&self, o: &Self) -> bool {
        (self.priority, self.seq) == (o.priority, o.seq)
    }
}
impl Eq for Queued {}
impl PartialOrd for Queued {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Queued {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        (self.priority, self.seq).cmp(&(o.priority, o.seq))
    }
}

#[derive(Default)]
struct State {
    heap: BinaryHeap<Queued>,
    seq: u64,
    /// The newest generation per file and the flag that stops its older runs.
    latest: HashMap<Key, (u64, Arc<AtomicBool>)>,
    shutdown: bool,
}

/// The most results the cache keeps (oldest dropped first). A file is checked again only when
/// its version changed (then the cache cannot help) or when a check is asked for again while
/// its first result is on its way to the model (the screen asking for what it shows): the
/// recent results serve that. About 200 bytes each: under 2 MB (it was 65,536 — 14 MB of a
/// 16,384-rank watch's 200 MB — for hits that never came).
pub const CACHE_MAX: usize = 8_192;

/// Results by file version, at most [`CACHE_MAX`], oldest evicted first.
#[derive(Default)]
struct Cache {
    map: HashMap<CacheKey, ShardCheck>,
    order: std::collections::VecDeque<CacheKey>,
}

impl Cache {
    fn get(&self, k: &CacheKey) -> Option<ShardCheck> {
        self.map.get(k).cloned()
    }

    fn insert(&mut self, k: CacheKey, v: ShardCheck) {
        if self.map.insert(k, v).is_none() {
            self.order.push_back(k);
        }
        while self.map.len() > CACHE_MAX {
            match self.order.pop_front() {
                Some(old) => {
                    self.map.remove(&old);
                }
                None => break,
            }
        }
    }
}

struct Shared {
    state: Mutex<State>,
    wake: Condvar,
    cache: Mutex<Cache>,
    fs: Arc<dyn Fs>,
    submitted: AtomicUsize,
    finished: AtomicUsize,
}

/// The worker pool.
pub struct Pool {
    shared: Arc<Shared>,
    workers: Vec<JoinHandle<()>>,
    results: Receiver<Verified>,
}

impl Pool {
    /// Start `workers` threads (0: one per core) that read through `fs`.
    pub fn new(workers: usize, fs: Arc<dyn Fs>) -> Self {
        let n = if workers == 0 {
            crate::fsys::readers(&*fs)
        } else {
            workers
        };
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            wake: Condvar::new(),
            cache: Mutex::new(Cache::default()),
            fs,
            submitted: AtomicUsize::new(0),
            finished: AtomicUsize::new(0),
        });
        let (tx, rx) = unbounded();
        let workers = (0..n)
            .map(|_| {
                let (shared, tx) = (shared.clone(), tx.clone());
                std::thread::spawn(move || worker(&shared, &tx))
            })
            .collect();
        Pool {
            shared,
            workers,
            results: rx,
        }
    }

    /// Queue a check; a queued or running check of the same `(dir, name)` is superseded.
    pub fn submit(&self, job: Job) {
        let mut st = lock(&self.shared.state);
        let key = (job.dir.clone(), job.name.to_string());
        if let Some((_, flag)) = st.latest.get(&key) {
            flag.store(true, Ordering::Relaxed);
        }
        // One counter for order and generation: a generation is never reused, even after the
        // file's entry was dropped (done or cancelled) and the file submitted again.
        st.seq += 1;
        let (seq, gen) = (st.seq, st.seq);
        st.latest
            .insert(key, (gen, Arc::new(AtomicBool::new(false))));
        st.heap.push(Queued {
            priority: Reverse(job.priority),
            seq: Reverse(seq),
            gen,
            job,
        });
        self.shared.submitted.fetch_add(1, Ordering::Relaxed);
        self.shared.wake.notify_one();
    }

    /// Drop any queued or running check of `(dir, name)` (the file vanished).
    pub fn cancel(&self, dir: &str, name: &str) {
        let mut st = lock(&self.shared.state);
        if let Some((_, flag)) = st.latest.remove(&(dir.to_owned(), name.to_owned())) {
            flag.store(true, Ordering::Relaxed);
        }
    }

    /// Files with a check queued or running (bounded by what is pending, not by history).
    pub fn tracked(&self) -> usize {
        lock(&self.shared.state).latest.len()
    }

    /// `(finished or skipped, submitted)`.
    pub fn progress(&self) -> (usize, usize) {
        (
            self.shared.finished.load(Ordering::Relaxed),
            self.shared.submitted.load(Ordering::Relaxed),
        )
    }

    /// Results as they finish.
    pub fn results(&self) -> &Receiver<Verified> {
        &self.results
    }
}

impl Drop for Pool {
    /// Workers stop at their next job; one blocked in a read (a hung network mount) is not
    /// waited for — it exits when the read returns, and its result goes nowhere.
    fn drop(&mut self) {
        lock(&self.shared.state).shutdown = true;
        for job in lock(&self.shared.state).latest.values() {
            job.1.store(true, Ordering::Relaxed);
        }
        self.shared.wake.notify_all();
        self.workers.clear();
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The job to run next with its cancel flag, or `None` at shutdown; superseded jobs are skipped.
fn next(shared: &Shared) -> Option<(Job, u64, Arc<AtomicBool>)> {
    let mut st = lock(&shared.state);
    loop {
        if st.shutdown {
            return None;
        }
        match st.heap.pop() {
            None => st = shared.wake.wait(st).unwrap_or_else(|p| p.into_inner()),
            Some(q) => {
                let key = (q.job.dir.clone(), q.job.name.to_string());
                match st.latest.get(&key) {
                    Some((g, flag)) if *g == q.gen => return Some((q.job, q.gen, flag.clone())),
                    _ => {
                        shared.finished.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }
    }
}

fn worker(shared: &Shared, tx: &Sender<Verified>) {
    while let Some((job, gen, flag)) = next(shared) {
        let id = FileId::from(&job.stat);
        let deep = job.deep || job.expected_sha256.is_some();
        let ck: CacheKey = (id, deep);
        let cached = lock(&shared.cache).get(&ck);
        let fresh = cached.is_none();
        let mut check = cached.unwrap_or_else(|| {
            let opts = CheckOptions {
                deep,
                expected_sha256: None,
                cancel: Some(flag.clone()),
            };
            check_file(&*shared.fs, &job.path, &job.stat, &opts)
        });
        shared.finished.fetch_add(1, Ordering::Relaxed);
        let current = {
            let mut st = lock(&shared.state);
            let key = (job.dir.clone(), job.name.to_string());
            let current = st.latest.get(&key).is_some_and(|(g, _)| *g == gen);
            if current {
                st.latest.remove(&key); // done: nothing newer is queued
            }
            current
        };
        if !current || flag.load(Ordering::Relaxed) {
            continue;
        }
        if fresh {
            lock(&shared.cache).insert(ck, check.clone());
        }
        compare_manifest(&mut check, job.expected_sha256.as_deref());
        let _ = tx.send(Verified {
            dir: job.dir,
            file: job.name,
            id,
            check,
        });
    }
}

/// Turn an `ok` deep check into `hash_mismatch` when a manifest expects another SHA-256.
pub(crate) fn compare_manifest(check: &mut ShardCheck, expected: Option<&str>) {
    let (Some(want), Some(got)) = (expected, check.sha256.as_deref().map(String::as_str)) else {
        return;
    };
    if check.verdict == Verdict::Ok && !want.eq_ignore_ascii_case(got) {
        check.verdict = Verdict::HashMismatch;
        check.detail = format!("SHA-256 {got} differs from the manifest's {want}").into();
    }
}
