//! The remote end of an `ssh://` root: `ckptscope watch DIR --wire` runs the ordinary watcher
//! of DIR and writes what it sees in the watch protocol ([`super::wire`]); requests come on
//! standard input, and its end (the connection dropped, the local side quit) stops the watch.

use super::wire::{self, Ask, Hello, Line};
use crate::watch::{WatchHandle, WatchMsg};
use crossbeam_channel::{select, unbounded};
use std::io::{BufRead, Write};

/// Why serving ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Served {
    /// The input ended or the reader went away: the local side is done.
    Done,
    /// The watcher failed, or the output could not be written: the message says why.
    Failed(String),
}

/// Serve `handle`'s watch of the folder `hello` names: requests from `input`, lines to `out`.
pub fn serve(
    handle: WatchHandle,
    hello: Hello,
    input: impl BufRead + Send + 'static,
    out: &mut dyn Write,
) -> Served {
    let (asks_tx, asks) = unbounded::<Result<Ask, String>>();
    // a reader thread: a blocked read of standard input cannot be interrupted, and it ends
    // with the process
    std::thread::spawn(move || {
        let mut input = input;
        loop {
            let line = match wire::read_line(&mut input) {
                Ok(Some(l)) => l,
                Ok(None) => break,
                Err(e) => {
                    let _ = asks_tx.send(Err(format!("cannot read a request: {e}")));
                    break;
                }
            };
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let ask = serde_json::from_slice::<Ask>(&line)
                .map_err(|e| format!("not a request of the watch protocol ({e})"));
            if asks_tx.send(ask).is_err() {
                break;
            }
        }
    });
    let r = follow(&handle, hello, &asks, out);
    handle.stop();
    r
}

fn follow(
    handle: &WatchHandle,
    hello: Hello,
    asks: &crossbeam_channel::Receiver<Result<Ask, String>>,
    out: &mut dyn Write,
) -> Served {
    if let Err(e) = write_lines(out, std::iter::once(Line::Hello(hello))) {
        return gone(e);
    }
    loop {
        select! {
            recv(handle.events) -> msg => {
                let Ok(msg) = msg else {
                    return Served::Failed("the watcher stopped without a word".into());
                };
                let failed = match &msg {
                    WatchMsg::Failed(e) => Some(e.to_string()),
                    _ => None,
                };
                if let Err(e) = write_msg(out, msg) {
                    return gone(e);
                }
                if let Some(why) = failed {
                    return Served::Failed(why);
                }
            }
            recv(asks) -> ask => match ask {
                Ok(Ok(Ask::Resync {})) => handle.resync(),
                Ok(Ok(Ask::Verify { files })) => handle.verify_now(files),
                Ok(Ok(Ask::Hash { files })) => handle.hash_now(files),
                Ok(Err(why)) => return Served::Failed(why),
                Err(_) => return Served::Done,
            },
        }
    }
}

fn gone(e: std::io::Error) -> Served {
    match e.kind() {
        std::io::ErrorKind::BrokenPipe => Served::Done,
        _ => Served::Failed(format!("cannot write the watch protocol: {e}")),
    }
}

fn write_lines(out: &mut dyn Write, lines: impl Iterator<Item = Line>) -> std::io::Result<()> {
    for l in lines {
        writeln!(out, "{}", wire::encode(&l))?;
    }
    out.flush()
}

/// A watcher's message as protocol lines, each written as it is made (a first scan of
/// 16,384 folders is never held twice).
pub fn write_msg(out: &mut dyn Write, msg: WatchMsg) -> std::io::Result<()> {
    match msg {
        WatchMsg::Started { tree, mode } => write_lines(out, wire::scan_lines(&tree, &mode)),
        WatchMsg::Deltas(ds) => write_lines(
            out,
            ds.iter()
                .filter_map(wire::wire_delta)
                .map(Line::Delta)
                .chain(std::iter::once(Line::Flush {})),
        ),
        WatchMsg::Mode { mode, reason } => {
            write_lines(out, std::iter::once(Line::Mode { mode, reason }))
        }
        WatchMsg::Rescan { reason } => write_lines(out, std::iter::once(Line::Rescan { reason })),
        WatchMsg::Failed(e) => {
            write_lines(out, std::iter::once(Line::Failed { why: e.to_string() }))
        }
    }
}
