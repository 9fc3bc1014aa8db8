//! Roots on other machines. `ssh://[user@]host[:port]/path` is watched by ckptscope itself on
//! that host (`ckptscope watch PATH --wire`), started through the system's OpenSSH client so
//! that keys, agents, `~/.ssh/config`, jump hosts and known-hosts checks are the user's own;
//! what it sees comes back in the watch protocol ([`wire`]) and feeds the local model as a
//! local watcher's deltas would ([`crate::watch::remote`]). No checkpoint byte crosses the
//! network: shards are verified where they are.

pub mod serve;
pub mod wire;

use std::process::Command;

/// A root on another machine, as given: `ssh://[user@]host[:port]/path`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SshRoot {
    /// The URL as given (messages and headers name it).
    pub label: String,
    /// `[user@]host` as the ssh client takes it.
    pub dest: String,
    pub port: Option<u16>,
    /// The folder on that host: the path MindFormers is given there.
    pub path: String,
}

/// How remote roots are reached: the ssh client's words and the remote ckptscope.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SshSettings {
    /// The client and its own options (`--ssh-command 'ssh -F cfg'`), split as a shell would.
    pub command: Vec<String>,
    /// The program run on the remote host (`--remote-ckptscope`).
    pub remote_ckptscope: String,
}

impl Default for SshSettings {
    fn default() -> Self {
        SshSettings {
            command: vec!["ssh".into()],
            remote_ckptscope: "ckptscope".into(),
        }
    }
}

impl SshSettings {
    /// From the flags: `--ssh-command` split as a shell would (its words only: never run by a
    /// shell here), `--remote-ckptscope` as it is.
    pub fn from_flags(command: Option<&str>, remote: Option<&str>) -> Result<SshSettings, String> {
        let mut s = SshSettings::default();
        if let Some(c) = command {
            s.command = match shlex::split(c) {
                Some(words) if !words.is_empty() => words,
                _ => {
                    return Err(format!(
                        "--ssh-command {c:?}: not a command line (unbalanced quotes, or empty); give the client and its options, e.g. 'ssh -F ~/.ssh/job_config'"
                    ))
                }
            };
        }
        if let Some(r) = remote {
            if r.is_empty() || r.contains('\0') {
                return Err(format!(
                    "--remote-ckptscope {r:?}: give the path of ckptscope on the remote hosts"
                ));
            }
            s.remote_ckptscope = r.into();
        }
        Ok(s)
    }
}

impl SshRoot {
    /// `None` when `s` is not an `ssh://` URL (a local folder); else the root, or why the URL
    /// cannot be one.
    pub fn parse(s: &str) -> Option<Result<SshRoot, String>> {
        let rest = s.strip_prefix("ssh://")?;
        Some(Self::parse_rest(s, rest))
    }

    fn parse_rest(label: &str, rest: &str) -> Result<SshRoot, String> {
        let bad = |why: &str| {
            Err(format!(
                "{label}: {why}; write ssh://[user@]host[:port]/absolute/path"
            ))
        };
        let Some(slash) = rest.find('/') else {
            return bad("no folder after the host");
        };
        let (authority, path) = rest.split_at(slash);
        if path == "/" {
            return bad("no folder after the host");
        }
        let (user, hostport) = match authority.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, authority),
        };
        let (host, port) = match hostport.strip_prefix('[') {
            Some(v6) => match v6.split_once(']') {
                Some((h, "")) => (h, None),
                Some((h, p)) => match p.strip_prefix(':') {
                    Some(p) => (h, Some(p)),
                    None => return bad("text after the bracketed address"),
                },
                None => return bad("an address opened with [ is not closed"),
            },
            None => match hostport.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (hostport, None),
            },
        };
        let port = match port {
            None => None,
            Some(p) => match p.parse::<u16>() {
                Ok(n) if n > 0 => Some(n),
                _ => return bad(&format!("port {p:?} is not a number from 1 to 65535")),
            },
        };
        // a host or user starting with '-' would be read as an option by the client
        let word_ok = |w: &str| {
            !w.is_empty()
                && !w.starts_with('-')
                && !w.chars().any(|c| c.is_control() || c.is_whitespace())
        };
        if !word_ok(host) {
            return bad(
                "the host is empty, starts with '-', or holds spaces or control characters",
            );
        }
        if let Some(u) = user {
            if !word_ok(u) {
                return bad(
                    "the user is empty, starts with '-', or holds spaces or control characters",
                );
            }
        }
        if path.chars().any(char::is_control) {
            return bad("the path holds control characters");
        }
        Ok(SshRoot {
            label: label.to_owned(),
            dest: match user {
                Some(u) => format!("{u}@{host}"),
                None => host.to_owned(),
            },
            port,
            path: path.to_owned(),
        })
    }

    /// The client command that runs `ckptscope ARGS…` on the host: the remote command is one
    /// argument whose every word is quoted for the remote shell (OpenSSH hands the remote
    /// command to the user's shell there).
    pub fn command(&self, ssh: &SshSettings, args: &[String]) -> Command {
        let (client, own) = ssh
            .command
            .split_first()
            .map_or(("ssh", &[][..]), |(c, o)| (c.as_str(), o));
        let mut c = Command::new(client);
        c.args(own);
        // the user's own options come first and win (ssh keeps the first value it is given);
        // these keep a prompt from taking the terminal, give up on a host that does not answer
        // within 15 s (a connection holds one of the few turns to start), and notice a dead
        // link within 30 s
        c.args([
            "-o",
            "BatchMode=yes",
            "-o",
            "ConnectTimeout=15",
            "-o",
            "ServerAliveInterval=10",
            "-o",
            "ServerAliveCountMax=3",
            "-T",
        ]);
        if let Some(p) = self.port {
            c.args(["-p", &p.to_string()]);
        }
        c.arg("--").arg(&self.dest);
        let words = std::iter::once(ssh.remote_ckptscope.as_str())
            .chain(args.iter().map(String::as_str))
            .map(|w| {
                // (NUL is refused before: the flags and the URL are checked)
                shlex::try_quote(w).map_or_else(|_| "''".into(), |q| q.into_owned())
            })
            .collect::<Vec<_>>();
        c.arg(words.join(" "));
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(s: &str) -> SshRoot {
        SshRoot::parse(s).unwrap().unwrap()
    }

    #[test]
    fn urls_parse_into_destination_port_and_path() {
        let r = ok("ssh://alice@node1:2222/out/checkpoint");
        assert_eq!(
            (r.dest.as_str(), r.port, r.path.as_str()),
            ("alice@node1", Some(2222), "/out/checkpoint")
        );
        let r = ok("ssh://node2/data/ck pt");
        assert_eq!(
            (r.dest.as_str(), r.port, r.path.as_str()),
            ("node2", None, "/data/ck pt")
        );
        let r = ok("ssh://[::1]:22/x");
        assert_eq!((r.dest.as_str(), r.port), ("::1", Some(22)));
        assert!(SshRoot::parse("/local/folder").is_none());
    }

    #[test]
    fn bad_urls_say_why_and_how_to_write_them() {
        for (url, why) in [
            ("ssh://node1", "no folder"),
            ("ssh://node1/", "no folder"),
            ("ssh://-oProxyCommand=x/p", "starts with '-'"),
            ("ssh://node1:99999/p", "port"),
            ("ssh://node1:/p", "port"),
            ("ssh://[::1/p", "not closed"),
            ("ssh://no de/p", "spaces"),
            ("ssh://node1/a\u{1b}[2J", "control"),
        ] {
            let e = SshRoot::parse(url).unwrap().unwrap_err();
            assert!(
                e.contains(why) && e.contains("ssh://[user@]host"),
                "{url}: {e}"
            );
        }
    }

    #[test]
    fn the_remote_command_is_one_argument_quoted_for_the_remote_shell() {
        let r = ok("ssh://node1:2200/out/it's; rm -rf ~");
        let ssh = SshSettings::from_flags(Some("ssh -F 'my cfg'"), Some("/opt/ckptscope")).unwrap();
        let c = r.command(
            &ssh,
            &["watch".into(), "--wire".into(), "--".into(), r.path.clone()],
        );
        let args: Vec<String> = c
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert_eq!(c.get_program(), "ssh");
        assert_eq!(&args[..2], ["-F", "my cfg"]);
        assert!(args.windows(2).any(|w| w == ["-p", "2200"]));
        let remote = args.last().unwrap();
        assert_eq!(args[args.len() - 2], "node1");
        assert_eq!(args[args.len() - 3], "--");
        // the remote shell splits it back into exactly these words
        assert_eq!(
            shlex::split(remote).unwrap(),
            [
                "/opt/ckptscope",
                "watch",
                "--wire",
                "--",
                "/out/it's; rm -rf ~"
            ]
        );
        assert!(SshSettings::from_flags(Some("ssh 'unclosed"), None).is_err());
        assert!(SshSettings::from_flags(Some("  "), None).is_err());
    }
}
