//! A throwaway OpenSSH server on 127.0.0.1 (its own host key and one authorised client key),
//! for the `ssh://` end-to-end test (`tests/it/sshd.rs`) and the ssh scale benchmark
//! (`benches/ssh_scale.rs`).

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The sshd binary, or why OpenSSH (`sshd`, `ssh`, `ssh-keygen`) cannot be used here.
pub fn sshd_path() -> Result<PathBuf, String> {
    let sshd = ["/usr/sbin/sshd", "/usr/local/sbin/sshd"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file());
    let client = ["ssh", "ssh-keygen"].iter().all(|c| {
        Command::new(c)
            .arg("-V")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok()
    });
    match (sshd, client) {
        (Some(p), true) => Ok(p),
        _ => Err("OpenSSH (/usr/sbin/sshd, ssh, ssh-keygen) is not installed: `apt-get install openssh-server openssh-client` (.ci/run does)".into()),
    }
}

/// A throwaway sshd: killed (and reaped) on drop, so a failing test leaves none running.
pub struct Sshd {
    child: Child,
    pub port: u16,
    pub user: String,
    /// The client's private key (its public half is the only authorised key).
    key: PathBuf,
    /// sshd's own error output (`-e`): shown when something fails.
    log: PathBuf,
    /// Holds the keys, the config and the log; removed after the server is gone.
    _dir: tempfile::TempDir,
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Run `cmd`, panicking with its error output if it fails (setup steps, not what is tested).
pub fn must(cmd: &mut Command) -> String {
    let o = cmd
        .output()
        .unwrap_or_else(|e| panic!("{cmd:?}: cannot run ({e})"));
    assert!(
        o.status.success(),
        "{cmd:?}: {}\n{}",
        o.status,
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).trim().to_owned()
}

/// A port nobody listens on now (the OS picks it; sshd binds it a moment later).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port on 127.0.0.1")
        .port()
}

impl Sshd {
    /// Start sshd on a free port of 127.0.0.1 for the current user, with fresh keys, and wait
    /// until a real login works (so a later failure is ckptscope's, not the setup's).
    pub fn start(bin: &Path) -> Sshd {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        for k in ["hostkey", "client"] {
            must(
                Command::new("ssh-keygen")
                    .current_dir(d)
                    .args(["-q", "-t", "ed25519", "-N", "", "-f", k]),
            );
        }
        std::fs::copy(d.join("client.pub"), d.join("authorized_keys")).unwrap();
        let port = free_port();
        let cfg = d.join("sshd_config");
        // (sshd's defaults otherwise, MaxStartups 10:30:100 included: this one server stands
        // for a jump host every root of a job goes through, and ckptscope must not start more
        // connections at once than it accepts)
        std::fs::write(
            &cfg,
            format!(
                "ListenAddress 127.0.0.1\nPort {port}\nHostKey {}\nAuthorizedKeysFile {}\n\
                 StrictModes no\nUsePAM no\nPasswordAuthentication no\n\
                 KbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\n\
                 PidFile {}\nLogLevel ERROR\n",
                d.join("hostkey").display(),
                d.join("authorized_keys").display(),
                d.join("sshd.pid").display(),
            ),
        )
        .unwrap();
        // the privilege-separation directory sshd insists on (when run as root)
        let _ = std::fs::create_dir_all("/run/sshd");
        let log = d.join("sshd.log");
        let child = Command::new(bin)
            .args(["-D", "-e", "-f"])
            .arg(&cfg)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
        let mut s = Sshd {
            child,
            port,
            user: must(Command::new("id").arg("-un")),
            key: d.join("client"),
            log,
            _dir: dir,
        };
        s.wait_listening();
        let mut login = Command::new("ssh");
        login
            .args(s.client_words())
            .args(["-o", "BatchMode=yes", "-p", &port.to_string()])
            .arg(format!("{}@127.0.0.1", s.user))
            .arg("true");
        let o = login.output().unwrap();
        assert!(
            o.status.success(),
            "{login:?}: {}\n{}\nsshd: {}",
            o.status,
            String::from_utf8_lossy(&o.stderr),
            s.log_text()
        );
        s
    }

    /// Poll until the port accepts connections (sshd dying first is said with its log).
    fn wait_listening(&mut self) {
        let until = Instant::now() + Duration::from_secs(10);
        let addr = ([127, 0, 0, 1], self.port).into();
        loop {
            if let Ok(Some(st)) = self.child.try_wait() {
                panic!("sshd exited ({st}): {}", self.log_text());
            }
            if let Ok(c) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) {
                // say hello back before closing: a probe that just hangs up is logged by sshd
                // as an error, which would then show in every failure's message
                let _ = c.set_read_timeout(Some(Duration::from_secs(2)));
                let mut banner = String::new();
                let _ = BufReader::new(&c).read_line(&mut banner);
                let _ = (&c).write_all(b"SSH-2.0-probe\r\n");
                assert!(
                    banner.starts_with("SSH-"),
                    "port {} answers, but not as an ssh server: {banner:?}",
                    self.port
                );
                return;
            }
            assert!(
                Instant::now() < until,
                "sshd is not listening on port {} after 10 s: {}",
                self.port,
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The client and its options: this key only, no user config or agent, no known-hosts
    /// (the host key is new every run).
    pub fn client_words(&self) -> Vec<String> {
        let key = self.key.to_str().unwrap();
        assert!(!key.contains(char::is_whitespace), "{key}");
        [
            "-F",
            "/dev/null",
            "-i",
            key,
            "-o",
            "IdentitiesOnly=yes",
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "LogLevel=ERROR",
        ]
        .map(String::from)
        .to_vec()
    }

    /// What ckptscope is given as `--ssh-command`.
    pub fn ssh_command(&self) -> String {
        format!("ssh {}", self.client_words().join(" "))
    }

    /// `ssh://USER@127.0.0.1:PORT`: what an ssh:// root adds before the path.
    pub fn prefix(&self) -> String {
        format!("ssh://{}@127.0.0.1:{}", self.user, self.port)
    }

    pub fn url(&self, root: &Path) -> String {
        format!("{}{}", self.prefix(), root.display())
    }

    /// The flags that make ckptscope reach this server and run this build there.
    pub fn flags(&self) -> Vec<String> {
        vec![
            "--ssh-command".into(),
            self.ssh_command(),
            "--remote-ckptscope".into(),
            env!("CARGO_BIN_EXE_ckptscope").into(),
        ]
    }
}
