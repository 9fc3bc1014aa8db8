//! The process environment as the job context reads it: a snapshot taken once (variables and
//! the working directory), so that tests can give any environment without touching the real
//! one, and so that nothing else in the program reads environment variables.

use std::collections::BTreeMap;
use std::path::PathBuf;

/// The variables MindFormers (and ckptscope) consult, and the working directory.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Environment {
    vars: BTreeMap<String, String>,
    /// Variables that are set but not valid UTF-8 (their presence still counts for markers).
    non_utf8: Vec<String>,
    pub cwd: PathBuf,
}

/// The variables read from the process (everything else is ignored).
pub const VARIABLES: [&str; 13] = [
    "RANK_SIZE",
    "DEVICE_NUM_PER_NODE",
    "SHARED_PATHS",
    "MA_LOG_DIR",
    "MA_JOB_DIR",
    "MA_LOCAL_LOG_PATH",
    "BATCH_GROUP_NAME",
    "REMOTE_SAVE_URL",
    "MS_ENABLE_TFT",
    "NO_COLOR",
    // the locale, for the TUI's choice of ASCII or Unicode symbols
    "LC_ALL",
    "LC_CTYPE",
    "LANG",
];

impl Environment {
    /// Snapshot the real process environment.
    pub fn from_process() -> Self {
        let mut env = Environment {
            cwd: std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/")),
            ..Default::default()
        };
        for k in VARIABLES {
            match std::env::var_os(k) {
                None => {}
                Some(v) => match v.into_string() {
                    Ok(s) => {
                        env.vars.insert(k.to_owned(), s);
                    }
                    Err(_) => env.non_utf8.push(k.to_owned()),
                },
            }
        }
        env
    }

    /// A made-up environment: `vars` and a working directory (tests, the demo).
    pub fn with(vars: &[(&str, &str)], cwd: impl Into<PathBuf>) -> Self {
        Environment {
            vars: vars
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            non_utf8: Vec::new(),
            cwd: cwd.into(),
        }
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.vars.get(key).map(String::as_str)
    }

    /// Set at all (even empty or not UTF-8): what `os.environ.get(k) is not None` sees.
    pub fn is_set(&self, key: &str) -> bool {
        self.vars.contains_key(key) || self.non_utf8.iter().any(|k| k == key)
    }

    /// Set, not valid UTF-8: ckptscope cannot use the value and says so.
    pub fn is_non_utf8(&self, key: &str) -> bool {
        self.non_utf8.iter().any(|k| k == key)
    }
}
