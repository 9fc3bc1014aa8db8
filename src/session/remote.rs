//! One-shot commands on a job with roots on other hosts (`ssh://`): the tree comes from the
//! hosts' watchers (their first scans, merged as a live view merges them) and every shard
//! check is asked of the host that holds the shard — the same model and the same analysis as
//! for local roots, so `resolve`, `grid` and `verify` give the answers `watch` and the TUI give.

use super::{DiskChecks, Session};
use crate::fsys::Fs;
use crate::job::JobContext;
use crate::verify::tree::TreeOptions;
use crate::watch::{spawn_many, WatchConfig, WatchHandle, WatchMsg};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long the hosts may go without sending anything while checks are outstanding.
const QUIET_LIMIT: Duration = Duration::from_secs(120);

impl Session {
    /// The session a one-shot command works on: the roots scanned here, or — for a job with
    /// a root on another host — as the hosts see them, with the checks the answer needs (and,
    /// with `every`, every shard's check: cheap, or whole files) done there and awaited.
    pub fn open_job(fs: Arc<dyn Fs>, ctx: JobContext, every: Every) -> Result<Session, String> {
        if !ctx.has_remote() {
            return Ok(Session::open(fs, ctx));
        }
        let mut cfg =
            WatchConfig::for_job(&ctx, fs.clone(), None, false).map_err(|e| e.to_string())?;
        // (the hosts check what is asked, not everything in the background)
        cfg.verify = false;
        let cfgs = cfg.for_roots(&ctx).map_err(|e| e.to_string())?;
        let handle = spawn_many(cfgs, ctx.node_block());
        let label = ctx.roots_label();
        let tree = match handle.events.recv() {
            Ok(WatchMsg::Started { tree, .. }) => tree,
            Ok(WatchMsg::Failed(e)) => return Err(e.to_string()),
            _ => {
                return Err(format!(
                    "{label}: the roots' watchers stopped before their first scans"
                ))
            }
        };
        let mut s = Session::from_tree(fs, ctx, *tree)
            .with_disk_checks(DiskChecks::Deferred)
            .without_events();
        let r = s.settle(&handle, every);
        handle.stop();
        r.map(|()| s.with_disk_checks(DiskChecks::Never))
    }

    /// Ask the hosts for the checks `every` names (at once), then for every check the answer
    /// needs, until none is outstanding.
    fn settle(&mut self, handle: &WatchHandle, every: Every) -> Result<(), String> {
        let mut heard = Instant::now();
        // (again after a mode change — a reconnection among them — forgot what was asked)
        let mut ask_all = true;
        loop {
            if std::mem::take(&mut ask_all) {
                let all = self.take_pending_checks(every);
                match every {
                    _ if all.is_empty() => {}
                    Every::Hashed => handle.hash_now(all),
                    _ => handle.verify_now(all),
                }
            }
            self.analysis();
            let ask = self.take_wanted();
            if !ask.is_empty() {
                handle.verify_now(ask);
            }
            let waiting = self.outstanding();
            if waiting == 0 {
                return Ok(());
            }
            let left = QUIET_LIMIT.saturating_sub(heard.elapsed());
            match handle.events.recv_timeout(left) {
                Ok(WatchMsg::Failed(e)) => return Err(e.to_string()),
                Ok(m) => {
                    heard = Instant::now();
                    for m in std::iter::once(m).chain(handle.events.try_iter()) {
                        ask_all |= matches!(m, WatchMsg::Mode { .. });
                        self.absorb(m).map_err(|e| e.to_string())?;
                    }
                }
                Err(_) => {
                    return Err(format!(
                        "{}: {waiting} shard checks asked of the hosts got no answer within {} s; check the connections (a host under load may need longer) and run again",
                        self.ctx().roots_label(),
                        QUIET_LIMIT.as_secs()
                    ))
                }
            }
        }
    }

    /// The shards `every` asks for that are not asked yet, each noted as asked: without a
    /// verdict for their current version (`Checked`), or without a whole-file one (`Hashed`:
    /// a cheap verdict does not hash; a shard the cheap pass found damaged is not hashed).
    fn take_pending_checks(&mut self, every: Every) -> Vec<(String, String)> {
        if every == Every::Needed {
            return Vec::new();
        }
        let opts = TreeOptions {
            deep: every == Every::Hashed,
            step: None,
            now: std::time::SystemTime::now(),
            workers: 0,
        };
        let p = self.plan_all(&opts, &Default::default());
        let tree = self.tree();
        let todo: Vec<(String, String)> = p
            .pending()
            .into_iter()
            .filter(|(d, f)| {
                tree.raw_verdict(d, f)
                    .is_none_or(|c| c.verdict == crate::model::Verdict::Ok && !c.deep)
            })
            .collect();
        // (every shard is asked anyway: at once, not save by save)
        self.request(todo)
    }
}

/// Which shards a one-shot command over remote roots has checked before it answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Every {
    /// Those the answer needs (`resolve`).
    Needed,
    /// Every shard, cheaply (`grid`, `verify`).
    Checked,
    /// Every shard whole: CRC trailers, SHA-256 against the hosts' `SHA256SUMS` (`verify --hash`).
    Hashed,
}
