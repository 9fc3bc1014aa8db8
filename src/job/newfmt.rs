//! The part of the job context only MindFormers' new checkpoint format reads
//! (`mindformers-new-format.md` §1, §7): the config stage's YAML values as Python values,
//! `load_ckpt_format`, health mode and where it looks. Gathered with the rest of the context,
//! once, in [`super::JobContext::gather`].

use super::flags::{FormatArg, JobFlags, LayoutArg};
use crate::layout::mindformers_new::config::Yaml;
use crate::py::json::PyValue;
use crate::resolve::yaml::NewFormatYaml;

/// The new format's view of the job.
#[derive(Clone, Debug, PartialEq)]
pub struct NewJob {
    /// What the config stage reads (flags over `--config` over MindFormers' defaults).
    pub yaml: Yaml,
    /// A `--config` with a truthy `checkpoint:` section or `use_legacy_format: False` was given:
    /// the YAML itself selects the new format.
    pub selected_by_config: bool,
    /// `--config` was given (its choice of format is then the job's, not a guess).
    pub has_config: bool,
    /// `--layout`.
    pub layout: Option<LayoutArg>,
    /// The top-level `load_ckpt_format`.
    pub load_ckpt_format: String,
    /// Neither `--format` nor `--config` said: `safetensors` (the value that works) is assumed.
    pub format_assumed: bool,
    /// Health mode (§7.1): `--health-monitor`, the YAML's `use_checkpoint_health_monitor` or
    /// its `embedding_local_norm_threshold`.
    pub health: bool,
    /// Where health mode looks: `<output_dir>/checkpoint`, as MindFormers prints it.
    pub health_dir: String,
    /// The working folder relative paths are taken from (MindFormers runs there).
    pub cwd: std::path::PathBuf,
}

impl NewJob {
    /// The path resumed from (`checkpoint.load_path`, `load_checkpoint`) set to `p`: one
    /// `iteration_*` folder given on the command line, inside the root that is scanned.
    pub fn set_load_path(&mut self, p: &str) {
        if let Some(PyValue::Dict(items)) = &mut self.yaml.checkpoint {
            items.retain(|(k, _)| k != "load_path");
            items.push(("load_path".into(), PyValue::Str(p.to_owned())));
        }
        self.yaml.load_checkpoint = PyValue::Str(p.to_owned());
    }

    /// How many iteration folders a launch keeps and which setting says so: the section's
    /// `save_max`, else the callback's `keep_checkpoint_max`, else MindFormers' 5 (§1.2) — as
    /// the config stage fills it.
    pub fn save_max(&self) -> (i64, &'static str) {
        use crate::layout::mindformers_new::config::{as_count, save_max_default};
        let section = match &self.yaml.checkpoint {
            Some(PyValue::Dict(items)) => items
                .iter()
                .find(|(k, v)| k == "save_max" && *v != PyValue::None)
                .and_then(|(_, v)| as_count(v)),
            _ => None,
        };
        let from_callback =
            matches!(&self.yaml.keep_checkpoint_max, Some(PyValue::Int(i)) if i.to_i64().is_some());
        match (section, from_callback) {
            (Some(n), _) => (n, "checkpoint.save_max"),
            (None, true) => (save_max_default(&self.yaml), "keep_checkpoint_max"),
            (None, false) => (5, "MindFormers' default save_max"),
        }
    }

    /// The path resumed from, as given.
    pub fn load_path(&self) -> String {
        match &self.yaml.load_checkpoint {
            PyValue::Str(s) => s.clone(),
            other => other.py_str(),
        }
    }

    /// `checkpoint.no_load_optim` set to `v` (a simulation's toggle).
    pub fn set_no_load_optim(&mut self, v: bool) {
        if let Some(PyValue::Dict(items)) = &mut self.yaml.checkpoint {
            items.retain(|(k, _)| k != "no_load_optim");
            items.push(("no_load_optim".into(), PyValue::Bool(v)));
        }
    }

    /// The new format's context for checkpoint root `root` (the positional argument: it is
    /// `load_checkpoint`, and wins over the section's `load_path` as it does over the YAML's
    /// `load_checkpoint`).
    pub fn gather(
        flags: &JobFlags,
        yaml: Option<&NewFormatYaml>,
        root: &str,
        output_dir: &str,
        legacy_health: bool,
        cwd: &std::path::Path,
    ) -> NewJob {
        let nf = yaml.cloned().unwrap_or_default();
        let resume_training = match &flags.resume_training {
            Some(v) => match v.as_str() {
                "true" | "True" => PyValue::Bool(true),
                "false" | "False" => PyValue::Bool(false),
                name => PyValue::Str(name.to_owned()),
            },
            None => nf.resume_training.clone().unwrap_or(PyValue::Bool(true)),
        };
        let mut section = match &nf.checkpoint {
            Some(PyValue::Dict(items)) => items.clone(),
            _ => Vec::new(),
        };
        // the positional root is the path resumed from: as the section's `load_path` (which
        // MindFormers otherwise fills from `load_checkpoint`: the same value)
        section.retain(|(k, _)| k != "load_path");
        section.push(("load_path".into(), PyValue::Str(root.to_owned())));
        if flags.no_load_optim {
            section.retain(|(k, _)| k != "no_load_optim");
            section.push(("no_load_optim".into(), PyValue::Bool(true)));
        }
        let selected_by_config = nf.checkpoint.as_ref().is_some_and(PyValue::truthy)
            || nf.use_legacy_format.as_ref().is_some_and(|v| !v.truthy());
        // without a YAML that selects it, the tree is read as the new format: as if the YAML
        // had a `checkpoint:` section (with the flags' keys, if any)
        let checkpoint = match (&nf.checkpoint, selected_by_config) {
            (Some(c), true) if !matches!(c, PyValue::Dict(_)) => Some(c.clone()),
            _ => Some(PyValue::Dict(section)),
        };
        let (load_ckpt_format, format_assumed) = match (flags.format, &nf.load_ckpt_format) {
            (Some(FormatArg::Ckpt), _) => ("ckpt".to_owned(), false),
            (Some(FormatArg::Safetensors), _) => ("safetensors".to_owned(), false),
            (None, Some(f)) => (f.clone(), false),
            // MindFormers' own default is `ckpt`, but only with a YAML is that the job's value
            (None, None) if yaml.is_some() => ("ckpt".to_owned(), false),
            (None, None) => ("safetensors".to_owned(), true),
        };
        NewJob {
            yaml: Yaml {
                resume_training,
                load_checkpoint: PyValue::Str(root.to_owned()),
                use_legacy_format: match selected_by_config {
                    true => nf.use_legacy_format.clone(),
                    false => None,
                },
                checkpoint,
                keep_checkpoint_max: nf.keep_checkpoint_max.clone(),
            },
            selected_by_config,
            has_config: yaml.is_some(),
            layout: flags.layout,
            load_ckpt_format,
            format_assumed,
            health: flags.health_monitor || legacy_health || nf.health_threshold,
            health_dir: crate::py::text::join(output_dir, "checkpoint"),
            cwd: cwd.to_path_buf(),
        }
    }
}
