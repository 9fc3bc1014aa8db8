//! MindFormers' new format (issue 13, in progress): the tracker (`mindformers-new-format.md`
//! §6.2) against the measured vectors of `../shared/tools/mindformers-new/vectors.json` (group
//! `tracker`: every vector whose situation gives the tracker's text or bytes — what MindFormers'
//! real code did with it); a new-format tree named for what it is; its shards verified.

use ckptscope::layout::mindformers_new::tracker::{iteration_dir, parse};
use serde_json::Value;
use std::path::Path;

/// The text inside a Python string literal in single quotes (`'…'`), escapes decoded.
fn py_literal(s: &str) -> Option<Vec<u8>> {
    let start = s.find('\'')? + 1;
    let mut out = String::new();
    let mut chars = s[start..].chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => return Some(out.into_bytes()),
            '\\' => match chars.next()? {
                'n' => out.push('\n'),
                'r' => out.push('\r'),
                't' => out.push('\t'),
                '\\' => out.push('\\'),
                '\'' => out.push('\''),
                'u' => {
                    let hex: String = chars.by_ref().take(4).collect();
                    out.push(char::from_u32(u32::from_str_radix(&hex, 16).ok()?)?);
                }
                'x' => {
                    let hex: String = chars.by_ref().take(2).collect();
                    out.push(char::from_u32(u32::from_str_radix(&hex, 16).ok()?)?);
                }
                _ => return None,
            },
            c => out.push(c),
        }
    }
    None
}

/// The tracker's bytes a vector's situation describes, when it does.
fn tracker_bytes(situation: &str) -> Option<Vec<u8>> {
    if let Some(rest) = situation.strip_prefix("tracker bytes ") {
        return rest
            .split_whitespace()
            .map_while(|h| u8::from_str_radix(h, 16).ok())
            .collect::<Vec<u8>>()
            .into();
    }
    situation.strip_prefix("tracker '")?;
    py_literal(situation)
}

#[test]
fn tracker_vectors_agree_with_mindformers() {
    let v = vectors();
    let tracker = "<out>/checkpoint/latest_checkpointed_iteration.txt";
    let mut checked = 0;
    for x in v["vectors"].as_array().unwrap() {
        if x["group"] != "tracker" {
            continue;
        }
        let (id, situation) = (x["id"].as_str().unwrap(), x["situation"].as_str().unwrap());
        // T16–T19 and T23 are about the tracker as a file (a folder, a symlink, absent …) or
        // its target, not its content: resolve_vectors_agree_with_mindformers covers them
        let Some(bytes) = tracker_bytes(situation) else {
            assert!(
                ["T16", "T17", "T18", "T19", "T23"].contains(&id),
                "{id}: no tracker content read from {situation:?}"
            );
            continue;
        };
        let r = &x["result"];
        let got = parse(tracker, &bytes);
        match (r["resolved_load_path"].as_str(), &r["error"]) {
            (Some(want), _) => {
                let n = got.unwrap_or_else(|e| panic!("{id} {situation}: {e:?}"));
                assert_eq!(
                    format!("<out>/checkpoint/{}", iteration_dir(&n)),
                    want,
                    "{id} {situation}"
                );
            }
            (None, err) => {
                let (class, message) = (
                    err["type"].as_str().unwrap(),
                    err["message"].as_str().unwrap(),
                );
                match got {
                    // the number parsed; the folder it names is missing (the resolver's check)
                    Ok(n) => {
                        assert_eq!(class, "FileNotFoundError", "{id} {situation}");
                        let dir = iteration_dir(&n);
                        assert!(
                            message.contains(&format!("'<out>/checkpoint/{dir}'")),
                            "{id}: {dir} vs {message}"
                        );
                    }
                    Err(e) => assert_eq!(
                        (e.class.as_str(), e.message.as_str()),
                        (class, message),
                        "{id} {situation}"
                    ),
                }
            }
        }
        checked += 1;
    }
    // T1–T15 and T20–T22 give the tracker's content
    assert_eq!(checked, 18, "the tracker vectors with their content");
}

fn newfmt_tree(name: &str) -> std::path::PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/fixtures/mindformers-new")
        .join(name)
        .join("checkpoint");
    assert!(
        p.is_dir(),
        "{}: the shared fixtures must be beside the repository",
        p.display()
    );
    p
}

/// `vectors.json`: what MindFormers' real code did in each measured situation (§11).
fn vectors() -> Value {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/tools/mindformers-new/vectors.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (the shared tools must be beside the repository)",
            path.display()
        )
    });
    serde_json::from_str(&text).unwrap()
}

/// A fresh copy of `base` at `<tmp>/out/checkpoint` — the vectors' `<out>/checkpoint` —
/// with its temporary folder, `<out>` and the root.
fn fresh_copy(base: &Path) -> (tempfile::TempDir, std::path::PathBuf, std::path::PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let root = out.join("checkpoint");
    copy_tree(base, &root);
    (tmp, out, root)
}

/// A vector's oracle flags, `<out>` standing for `out` (a copy's output folder; "<out>" keeps
/// the placeholder).
fn flags_of(x: &Value, out: &str) -> Vec<String> {
    x["flags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap().replace("<out>", out))
        .collect()
}

/// The value after flag `name`.
fn flag<'a>(flags: &'a [String], name: &str) -> Option<&'a str> {
    let i = flags.iter().position(|f| f == name)?;
    Some(flags.get(i + 1).map_or("", String::as_str))
}

/// The oracle's resumed run unless a flag says otherwise: batch size 8 (unchanged), sink mode,
/// 1,000 batches per epoch, a full resume, no data-skip settings.
fn run_defaults() -> ckptscope::layout::mindformers_new::context::RunArgs {
    ckptscope::layout::mindformers_new::context::RunArgs {
        gbs_new: 8,
        sink_mode: true,
        dataset_size: 1000,
        no_load_optim: false,
        resume_training: true,
        ignore_data_skip: false,
        data_skip_steps: None,
    }
}

/// That a failure `(stage, type, message)` is the vector's error `e`.
fn expect_error(what: &str, got: (&str, &str, &str), e: &Value) {
    let want = (
        e["stage"].as_str().unwrap(),
        e["type"].as_str().unwrap(),
        e["message"].as_str().unwrap(),
    );
    assert_eq!(got, want, "{what}");
}

use crate::common::run_bin as run;

/// A new-format tree is read as the new format; read as the legacy one (`--layout legacy`, as
/// a YAML without a `checkpoint:` section would make MindFormers do) it is named for what it
/// is — not answered for as an empty legacy tree. Its shards verify by the new format's
/// rules: no resume context expected inside them (`common.json` holds it), damage still found.
#[test]
fn a_new_format_tree_is_named_and_its_shards_verify() {
    let root = newfmt_tree("tree-healthy-2rank");
    let (code, out, err) = run(&["resolve", root.to_str().unwrap(), "--json"]);
    assert_eq!(code, Some(0), "{out}{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["layout"], "mindformers-new", "{v}");
    let (code, out, err) = run(&[
        "resolve",
        root.to_str().unwrap(),
        "--json",
        "--layout",
        "legacy",
    ]);
    assert_eq!(code, Some(2), "{out}{err}");
    assert!(
        err.contains("holds MindFormers' new checkpoint format (3 iteration_* folder(s) and latest_checkpointed_iteration.txt)"),
        "{err}"
    );
    let v: Value = serde_json::from_str(&out).unwrap();
    assert!(
        v["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w["code"] == "new_format"),
        "{v}"
    );
    let it = root.join("iteration_00000010");
    let (code, out, _) = run(&["verify", it.to_str().unwrap(), "--all"]);
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(out.matches(" ok ").count(), 4, "{out}");
    assert!(
        !out.contains("incomplete") && out.contains("the resume context is in common.json"),
        "{out}"
    );
    let bad = newfmt_tree("tree-truncated-shard").join("iteration_00000010");
    let (code, out, _) = run(&["verify", bad.to_str().unwrap()]);
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("truncated") && out.contains("llama-model-0000001-0000002.safetensors"),
        "{out}"
    );
}

/// `common.json` of the vectors' base tree, with vector `id`'s edit (as the generator
/// `vectors_newfmt.py` makes it); `None` where the vector deletes it.
fn common_for(id: &str) -> Option<Vec<u8>> {
    let mut d = serde_json::json!({
        "epoch_num": 2, "step_num": 10, "global_step": 10, "loss_scale": 4096.0,
        "global_batch_size": 8, "consumed_samples": null, "ckpt_status": null
    });
    let raw = |s: &str| Some(s.as_bytes().to_vec());
    match id {
        "C1" | "C2" => return None,
        "C3" => return raw("{\"epoch_num\": 2,"),
        "C8" => return raw("[]"),
        "C9" => return raw("{}"),
        "C21" => return Some(vec![0xff]),
        "C4" => d["foo"] = 1.into(),
        "C5" => d["data_plan_state"] = serde_json::json!({"x": 1}),
        "C6" => d["global_batch_size"] = Value::Null,
        "C7" => d["step_num"] = Value::Null,
        "C10" => d["step_num"] = 10.9.into(),
        "C13" => {
            d["global_batch_size"] = 56.into();
            d["step_num"] = 45.into();
            d["epoch_num"] = 45.into();
        }
        "C20" => d["loss_scale"] = Value::Null,
        "C22" => {
            d["step_num"] = 100000003.into();
            d["epoch_num"] = 100000003.into();
        }
        "C23" => {
            d["step_num"] = 16777217.into();
            d["epoch_num"] = 16777217.into();
        }
        "C24" => d["step_num"] = "ten".into(),
        _ => {}
    }
    Some(serde_json::to_vec_pretty(&d).unwrap())
}

/// The context vectors (group `context`, C1–C24): step, epoch, data skip and loss scale — or
/// the exception — exactly as MindFormers' real code gave them.
#[test]
fn context_vectors_agree_with_mindformers() {
    use ckptscope::layout::mindformers_new::context::{resume, RunArgs};
    let v = vectors();
    let dir = "<out>/checkpoint/iteration_00000010";
    let mut checked = 0;
    for x in v["vectors"].as_array().unwrap() {
        let id = x["id"].as_str().unwrap();
        if x["group"] != "context" {
            continue;
        }
        let flags = flags_of(x, "<out>");
        let flag = |name: &str| flag(&flags, name);
        let resume_training = flag("--resume-training") != Some("false");
        let args = RunArgs {
            gbs_new: flag("--gbs").map_or(8, |g| g.parse().unwrap()),
            sink_mode: flag("--sink-mode") != Some("false"),
            dataset_size: flag("--dataset-size").map_or(1000, |g| g.parse().unwrap()),
            no_load_optim: flag("--no-load-optim") == Some("true") || !resume_training,
            resume_training,
            ignore_data_skip: flags.iter().any(|f| f == "--ignore-data-skip"),
            data_skip_steps: flag("--data-skip-steps").map(|g| g.parse().unwrap()),
        };
        let r = &x["result"];
        let common = common_for(id);
        let got = resume(dir, common.as_deref(), &args);
        match &r["error"] {
            Value::Null => {
                let g = got.unwrap_or_else(|e| panic!("{id}: {e:?}"));
                assert_eq!(
                    g.initial_step.to_string(),
                    r["initial_step"].to_string(),
                    "{id}"
                );
                assert_eq!(
                    g.initial_epoch.to_string(),
                    r["initial_epoch"].to_string(),
                    "{id}"
                );
                assert_eq!(
                    g.skip.map(|n| n.to_string()),
                    r["dataset_set_init_step"].as_i64().map(|n| n.to_string()),
                    "{id}"
                );
                let want_loss = r["loss_scale"].as_f64().filter(|_| !args.no_load_optim);
                assert_eq!(g.loss_scale, want_loss, "{id}");
            }
            e => {
                let g = got
                    .err()
                    .unwrap_or_else(|| panic!("{id}: no error, want {e}"));
                assert_eq!(e["stage"], "context", "{id}");
                assert_eq!(
                    (g.class.as_str(), g.message.as_str()),
                    (e["type"].as_str().unwrap(), e["message"].as_str().unwrap()),
                    "{id}"
                );
            }
        }
        checked += 1;
    }
    assert_eq!(checked, 24, "C1–C24");
}

/// Copy a new-format fixture tree (files 0400, folders 0750 as the writer leaves them).
fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_tree(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), &dest).unwrap();
        }
    }
}

/// `json.dumps(v)` with Python's default separators (`, ` and `: `) and `ensure_ascii`.
fn py_dumps(v: &ckptscope::py::json::PyValue) -> String {
    use ckptscope::py::json::PyValue as P;
    match v {
        P::None => "null".into(),
        P::Bool(b) => b.to_string(),
        P::Int(i) => i.to_string(),
        P::Float(f) => format!("{f:?}"),
        P::Str(s) => {
            let mut out = String::from("\"");
            for c in s.chars() {
                match c {
                    '"' => out.push_str("\\\""),
                    '\\' => out.push_str("\\\\"),
                    c if (c as u32) < 0x20 || (c as u32) > 0x7e => {
                        let mut buf = [0u16; 2];
                        for u in c.encode_utf16(&mut buf) {
                            out.push_str(&format!("\\u{u:04x}"));
                        }
                    }
                    c => out.push(c),
                }
            }
            out.push('"');
            out
        }
        P::List(l) => format!(
            "[{}]",
            l.iter().map(py_dumps).collect::<Vec<_>>().join(", ")
        ),
        P::Dict(d) => format!(
            "{{{}}}",
            d.iter()
                .map(|(k, v)| format!("{}: {}", py_dumps(&P::Str(k.clone())), py_dumps(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// The `verify` vectors (V1–V17): `verify_ckpt_valid` on the base tree's `iteration_00000010`
/// as each vector changes it, against what MindFormers' real code raised or accepted.
#[test]
fn verify_vectors_agree_with_mindformers() {
    use ckptscope::layout::mindformers_new::valid::{verify_ckpt_valid, Folder};
    use ckptscope::py::json::PyValue;
    let v = vectors();
    let base = newfmt_tree("tree-healthy-2rank");
    let mut checked = 0;
    for x in v["vectors"].as_array().unwrap() {
        if x["group"] != "verify" {
            continue;
        }
        let id = x["id"].as_str().unwrap();
        let tmp = tempfile::tempdir().unwrap();
        copy_tree(&base, tmp.path());
        let d = tmp.path().join("iteration_00000010");
        let model1 = d.join("llama-model-0000001-0000002.safetensors");
        let meta = d.join("metadata.json");
        let parsed = || ckptscope::py::json::load(&std::fs::read(&meta).unwrap()).unwrap();
        let set_meta = |text: &[u8]| std::fs::write(&meta, text).unwrap();
        let shards = || -> Vec<std::path::PathBuf> {
            std::fs::read_dir(&d)
                .unwrap()
                .map(|e| e.unwrap().path())
                .filter(|p| p.extension().is_some_and(|e| e == "safetensors"))
                .collect()
        };
        match id {
            "V1" | "V2" => {
                std::fs::remove_file(d.join("llama-opt-0000001-0000002.safetensors")).unwrap()
            }
            "V3" | "V4" => std::fs::remove_file(&model1).unwrap(),
            "V5" => {
                std::fs::remove_file(d.join("llama-opt-0000000-0000002.safetensors")).unwrap();
                std::fs::remove_file(&model1).unwrap();
            }
            "V6" => std::fs::remove_file(&meta).unwrap(),
            "V7" | "V8" => {
                for p in shards() {
                    let name = p.file_name().unwrap().to_str().unwrap().to_owned();
                    let to = match id {
                        "V7" => name.replace(".safetensors", ".tmp"),
                        _ => format!(".{name}"),
                    };
                    std::fs::rename(&p, d.join(to)).unwrap();
                }
                std::fs::remove_file(&meta).unwrap();
            }
            "V9" => {
                let text = py_dumps(&parsed());
                set_meta(&text.as_bytes()[..100]);
            }
            "V10" => set_meta(b"{}"),
            "V11" => set_meta(b"[]"),
            "V12" | "V13" => {
                let PyValue::Dict(mut items) = parsed() else {
                    panic!()
                };
                for (k, val) in items.iter_mut() {
                    if k != "storage_data" {
                        continue;
                    }
                    match id {
                        "V12" => *val = PyValue::Dict(vec![]),
                        _ => {
                            let PyValue::Dict(sd) = val else { panic!() };
                            sd[0].1 = PyValue::List(vec![PyValue::Dict(vec![(
                                "storage_rank".into(),
                                PyValue::Int(ckptscope::py::int::PyInt::from_i64(0)),
                            )])]);
                        }
                    }
                }
                set_meta(py_dumps(&PyValue::Dict(items)).as_bytes());
            }
            "V14" => {
                std::fs::remove_file(&meta).unwrap();
                std::fs::create_dir(&meta).unwrap();
            }
            "V15" => set_meta(b"\xff{}"),
            "V16" => std::fs::OpenOptions::new()
                .write(true)
                .open(&model1)
                .unwrap()
                .set_len(100)
                .unwrap(),
            "V17" => {
                std::fs::remove_file(&model1).unwrap();
                std::fs::create_dir(&model1).unwrap();
            }
            other => panic!("{other}: a verify vector this test does not know"),
        }
        let node = ckptscope::scan::scan_dir(&ckptscope::fsys::RealFs, &d);
        let read = <ckptscope::fsys::RealFs as ckptscope::fsys::Fs>::read_small(
            &ckptscope::fsys::RealFs,
            &meta,
            1 << 20,
        );
        let entries = node.listing.entries();
        let folder = Folder {
            path: "<out>/checkpoint/iteration_00000010",
            entries,
            metadata: Some(&read),
        };
        let require_optimizer = !x["flags"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f == "--no-load-optim");
        let got = verify_ckpt_valid(&folder, require_optimizer);
        let r = &x["result"];
        match &r["error"] {
            // verification passes; what fails later (loading the weights) is another stage's
            e if e.is_null() || e["stage"] != "resolve" => {
                assert!(got.is_ok(), "{id}: {got:?}")
            }
            e => {
                let g = got
                    .err()
                    .unwrap_or_else(|| panic!("{id}: passed, want {e}"));
                assert_eq!(
                    (g.class.as_str(), g.message.as_str()),
                    (e["type"].as_str().unwrap(), e["message"].as_str().unwrap()),
                    "{id}"
                );
            }
        }
        checked += 1;
    }
    assert_eq!(checked, 17, "V1–V17");
}

/// The tracker vectors (T1–T23) and the `load_checkpoint` vectors that reach the resolve
/// stage: `get_checkpoint_path` on mutated copies of `tree-healthy-2rank`, against the folder
/// MindFormers' real code resolved or the exception it raised.
#[test]
fn resolve_vectors_agree_with_mindformers() {
    use ckptscope::layout::mindformers_new::resolve::{get_checkpoint_path, At};
    let v = vectors();
    let base = newfmt_tree("tree-healthy-2rank");
    let mut checked = Vec::new();
    for x in v["vectors"].as_array().unwrap() {
        let id = x["id"].as_str().unwrap();
        let group = x["group"].as_str().unwrap();
        if group != "tracker" && group != "load_checkpoint" {
            continue;
        }
        let r = &x["result"];
        let stage = r["error"]["stage"].as_str();
        // the config stage (validate_checkpoint_config) is not built yet
        if stage.is_some_and(|s| s != "resolve") || ["L6", "L7", "L8"].contains(&id) {
            continue;
        }
        let (_tmp, out, root) = fresh_copy(&base);
        let t = root.join("latest_checkpointed_iteration.txt");
        let write_tracker = |b: &[u8]| std::fs::write(&t, b).unwrap();
        if let Some(bytes) = tracker_bytes(x["situation"].as_str().unwrap()) {
            write_tracker(&bytes);
        }
        match id {
            "T16" => {
                std::fs::remove_file(&t).unwrap();
                std::fs::create_dir(&t).unwrap();
            }
            "T17" => {
                std::fs::remove_file(&t).unwrap();
                std::os::unix::fs::symlink(root.join("nowhere"), &t).unwrap();
            }
            "T18" => std::fs::remove_file(&t).unwrap(),
            "T19" => {
                std::fs::remove_dir_all(root.join("iteration_00000010")).unwrap();
                std::fs::write(root.join("iteration_00000010"), "x").unwrap();
            }
            "T22" => std::fs::rename(
                root.join("iteration_00000010"),
                root.join("iteration_123456789"),
            )
            .unwrap(),
            "T23" => {
                std::fs::remove_dir_all(root.join("iteration_00000010")).unwrap();
                copy_tree(
                    &root.join("iteration_00000008"),
                    &root.join("iteration_00000010"),
                );
            }
            "L11" => std::fs::write(
                root.join("model.safetensors.index.json"),
                r#"{"weight_map": {"a": "x.safetensors"}}"#,
            )
            .unwrap(),
            _ => {}
        }
        let flags = flags_of(x, "<out>");
        let flag = |name: &str| flag(&flags, name);
        let shown = flag("--load-checkpoint").unwrap_or("<out>/checkpoint");
        let real = shown.replacen("<out>", out.to_str().unwrap(), 1);
        let at = At {
            shown: shown.to_owned(),
            real: real.into(),
        };
        let require_optimizer = flag("--resume-training") != Some("false");
        let got = get_checkpoint_path(&ckptscope::fsys::RealFs, &at, require_optimizer);
        match (r["resolved_load_path"].as_str(), stage) {
            (Some(want), _) => {
                let g = got.unwrap_or_else(|e| panic!("{id}: {e:?}"));
                assert_eq!(g.map(|a| a.shown).as_deref(), Some(want), "{id}");
            }
            (None, Some(_)) => {
                let e = &r["error"];
                let g = got
                    .err()
                    .unwrap_or_else(|| panic!("{id}: resolved, want {e}"));
                assert_eq!(
                    (g.class.as_str(), g.message.as_str()),
                    (e["type"].as_str().unwrap(), e["message"].as_str().unwrap()),
                    "{id}"
                );
            }
            (None, None) => panic!("{id}: a vector with neither a folder nor an error"),
        }
        checked.push(id.to_owned());
    }
    assert_eq!(
        checked.len(),
        29,
        "T1–T23 and L1, L3, L5, L9, L10, L11: {checked:?}"
    );
}

/// Every shared new-format tree in the oracle's four modes (`default`, `no_load_optim`,
/// `health`, `load_ckpt_format_ckpt`): the folder, step,
/// epoch and data skip — or the stage, type and message — that MindFormers' real code gave,
/// from `MANIFEST.json`. Errors of the weights stage (not built yet) must pass the stages
/// before it.
#[test]
fn fixture_trees_agree_with_mindformers_in_four_modes() {
    use ckptscope::layout::mindformers_new::answer::{resume, Mode};
    use ckptscope::layout::mindformers_new::context::RunArgs;
    use ckptscope::layout::mindformers_new::resolve::At;
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures/mindformers-new");
    let m: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("MANIFEST.json")).unwrap()).unwrap();
    let mut checked = 0;
    for (name, tree) in m["trees"].as_object().unwrap() {
        let base = dir.join(name);
        assert!(base.is_dir(), "{}", base.display());
        for (mode_name, o) in tree["oracle"].as_object().unwrap() {
            let out = &o["outcome"];
            let no_load_optim = mode_name == "no_load_optim";
            let mode = Mode {
                run: RunArgs {
                    gbs_new: out["new_global_batch_size"].as_i64().unwrap_or(8),
                    no_load_optim,
                    resume_training: !no_load_optim,
                    ..run_defaults()
                },
                load_ckpt_format: match mode_name.as_str() {
                    "load_ckpt_format_ckpt" => "ckpt".into(),
                    _ => "safetensors".into(),
                },
                health: (mode_name == "health").then(|| At {
                    shown: "<tree>/checkpoint".into(),
                    real: base.join("checkpoint"),
                }),
            };
            let at = At {
                shown: "<tree>/checkpoint".into(),
                real: base.join("checkpoint"),
            };
            let got = resume(&ckptscope::fsys::RealFs, &at, &mode);
            let what = format!("{name} / {mode_name}");
            match &out["error"] {
                Value::Null => {
                    let g = got.unwrap_or_else(|f| panic!("{what}: {f:?}"));
                    assert_eq!(
                        g.resolved.map(|a| a.shown).as_deref(),
                        out["resolved_load_path"].as_str(),
                        "{what}"
                    );
                    assert_eq!(
                        g.load_path.map(|a| a.shown).as_deref(),
                        out["load_path_after_context"].as_str(),
                        "{what}"
                    );
                    let c = &g.context;
                    assert_eq!(
                        c.initial_step.to_string(),
                        out["initial_step"].to_string(),
                        "{what}"
                    );
                    assert_eq!(
                        c.initial_epoch.to_string(),
                        out["initial_epoch"].to_string(),
                        "{what}"
                    );
                    assert_eq!(
                        c.skip.as_ref().map(|n| n.to_string()),
                        out["dataset_set_init_step"].as_i64().map(|n| n.to_string()),
                        "{what}"
                    );
                }
                e if e["stage"] == "weights" => {
                    assert!(
                        got.is_ok(),
                        "{what}: the stages before the weights pass: {got:?}"
                    )
                }
                e => {
                    let f = got
                        .err()
                        .unwrap_or_else(|| panic!("{what}: resumed, want {e}"));
                    expect_error(&what, (f.stage, &f.error.class, &f.error.message), e);
                }
            }
            checked += 1;
        }
    }
    assert_eq!(checked, 17 * 4, "17 trees × 4 modes");
}

/// The health-mode vectors (H1–H17): the folder health mode picks — or its error — on mutated
/// copies of `tree-healthy-2rank`, as MindFormers' real code did.
#[test]
fn health_vectors_agree_with_mindformers() {
    use ckptscope::layout::mindformers_new::answer::{resume, Mode};
    use ckptscope::layout::mindformers_new::context::RunArgs;
    use ckptscope::layout::mindformers_new::resolve::At;
    let v = vectors();
    let base = newfmt_tree("tree-healthy-2rank");
    let mut checked = 0;
    for x in v["vectors"].as_array().unwrap() {
        if x["group"] != "health" {
            continue;
        }
        let id = x["id"].as_str().unwrap();
        let (_tmp, out, root) = fresh_copy(&base);
        let common = |it: u32| root.join(format!("iteration_{it:08}")).join("common.json");
        let set_status = |pairs: &[(u32, Value)]| {
            for (it, val) in pairs {
                let p = common(*it);
                let mut d: Value = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
                match val {
                    Value::String(s) if s == "<absent>" => {
                        d.as_object_mut().unwrap().remove("ckpt_status");
                    }
                    v => d["ckpt_status"] = v.clone(),
                }
                std::fs::write(&p, serde_json::to_vec_pretty(&d).unwrap()).unwrap();
            }
        };
        let opt1 = |it: u32| {
            root.join(format!(
                "iteration_{it:08}/llama-opt-0000001-0000002.safetensors"
            ))
        };
        use serde_json::json;
        match id {
            "H1" => set_status(&[(6, json!(0)), (8, json!(0)), (10, json!(1))]),
            "H2" => {}
            "H3" => set_status(&[(10, json!(false))]),
            "H4" => set_status(&[(10, json!(0.0))]),
            "H5" => set_status(&[(10, json!("0")), (8, json!(0))]),
            "H6" => {
                set_status(&[(10, json!(0))]);
                std::fs::remove_file(opt1(10)).unwrap();
            }
            "H17" => {
                set_status(&[(10, json!(1)), (8, json!(0))]);
                std::fs::remove_file(opt1(8)).unwrap();
            }
            "H7" | "H15" => set_status(&[(10, json!(1)), (8, json!(0))]),
            "H8" => set_status(&[(6, json!(0)), (8, json!(0)), (10, json!(0))]),
            "H9" | "H10" => {
                set_status(&[(8, json!(0))]);
                std::fs::write(common(10), if id == "H9" { "{" } else { "[]" }).unwrap();
            }
            "H11" | "H12" => {
                set_status(&[(10, json!(0))]);
                let name = if id == "H11" {
                    "iteration_abc"
                } else {
                    "iteration_00000099_old"
                };
                std::fs::create_dir(root.join(name)).unwrap();
            }
            "H13" => {
                set_status(&[(8, json!(0))]);
                std::fs::remove_dir_all(root.join("iteration_00000010")).unwrap();
            }
            "H14" => set_status(&[(10, json!(0))]),
            "H16" => set_status(&[(10, json!("<absent>")), (8, json!(0))]),
            other => panic!("{other}: a health vector this test does not know"),
        }
        let flags = flags_of(x, "<out>");
        let flag = |name: &str| flag(&flags, name);
        let real = |shown: &str| {
            std::path::PathBuf::from(shown.replacen("<out>", out.to_str().unwrap(), 1))
        };
        let load = flag("--load-checkpoint").unwrap_or("<out>/checkpoint");
        let health_on = flags.iter().any(|f| f == "--health")
            || flag("--use-checkpoint-health-monitor") == Some("true");
        let output_dir = flag("--output-dir").unwrap_or("<out>");
        let no_load_optim = flag("--no-load-optim") == Some("true");
        let mode = Mode {
            run: RunArgs {
                no_load_optim,
                ..run_defaults()
            },
            load_ckpt_format: "safetensors".into(),
            health: health_on.then(|| At {
                shown: format!("{output_dir}/checkpoint"),
                real: real(&format!("{output_dir}/checkpoint")),
            }),
        };
        let at = At {
            shown: load.into(),
            real: real(load),
        };
        let got = resume(&ckptscope::fsys::RealFs, &at, &mode);
        let r = &x["result"];
        match &r["error"] {
            e if e.is_null() || e["stage"] == "weights" => {
                let g = got.unwrap_or_else(|f| panic!("{id}: {f:?}"));
                if e.is_null() {
                    assert_eq!(
                        g.load_path.map(|a| a.shown).as_deref(),
                        r["load_path_after_context"].as_str(),
                        "{id}"
                    );
                }
            }
            e => {
                let f = got
                    .err()
                    .unwrap_or_else(|| panic!("{id}: resumed, want {e}"));
                expect_error(id, (f.stage, &f.error.class, &f.error.message), e);
            }
        }
        checked += 1;
    }
    assert_eq!(checked, 17, "H1–H17");
}

/// The `load_checkpoint` and `flags` vectors (L1–L11, R1–R15) through the whole chain as the
/// oracle runs it — config stage, then resolve and context — on real copies of
/// `tree-healthy-2rank`: the folder, step and data skip, or the stage, type and message.
#[test]
fn config_vectors_agree_with_mindformers() {
    use ckptscope::layout::mindformers_new::answer::{resume, Mode};
    use ckptscope::layout::mindformers_new::config::{config, Config, Yaml};
    use ckptscope::layout::mindformers_new::context::RunArgs;
    use ckptscope::layout::mindformers_new::resolve::At;
    use ckptscope::py::json::PyValue;
    let v = vectors();
    let base = newfmt_tree("tree-healthy-2rank");
    let mut checked = 0;
    for x in v["vectors"].as_array().unwrap() {
        let group = x["group"].as_str().unwrap();
        if group != "load_checkpoint" && group != "flags" {
            continue;
        }
        let id = x["id"].as_str().unwrap();
        let (tmp, out, root) = fresh_copy(&base);
        match id {
            "L6" => {
                for e in std::fs::read_dir(&root).unwrap() {
                    let p = e.unwrap().path();
                    if p.is_dir() {
                        std::fs::remove_dir_all(p).unwrap();
                    } else {
                        std::fs::remove_file(p).unwrap();
                    }
                }
            }
            "L8" | "L11" => std::fs::write(
                root.join("model.safetensors.index.json"),
                r#"{"weight_map": {"a": "x.safetensors"}}"#,
            )
            .unwrap(),
            _ => {}
        }
        let o = out.to_str().unwrap();
        let shown = |s: &str| s.replace(o, "<out>");
        let flags = flags_of(x, o);
        let flag = |name: &str| flag(&flags, name).map(str::to_owned);
        let scalar = |s: &str| match s.to_lowercase().as_str() {
            "true" => PyValue::Bool(true),
            "false" => PyValue::Bool(false),
            "none" | "null" => PyValue::None,
            _ => PyValue::Str(s.to_owned()),
        };
        let mut section = match flags.iter().any(|f| f == "--no-checkpoint-section") {
            true => None,
            false => Some(
                ckptscope::py::json::loads(
                    &flag("--checkpoint-section").unwrap_or_else(|| r#"{"save_max": 3}"#.into()),
                )
                .unwrap(),
            ),
        };
        if let (Some(PyValue::Dict(items)), Some(n)) = (&mut section, flag("--no-load-optim")) {
            items.push(("no_load_optim".into(), scalar(&n)));
        }
        let y = Yaml {
            resume_training: scalar(&flag("--resume-training").unwrap_or("true".into())),
            load_checkpoint: PyValue::Str(
                flag("--load-checkpoint").unwrap_or(root.to_str().unwrap().into()),
            ),
            use_legacy_format: flag("--use-legacy-format").map(|v| scalar(&v)),
            checkpoint: section,
            keep_checkpoint_max: None,
        };
        let r = &x["result"];
        let e = &r["error"];
        let cfg = config(&ckptscope::fsys::RealFs, tmp.path(), &y);
        let what = format!("{id} {}", x["situation"]);
        let (load_path, no_load_optim, resume_training) = match cfg {
            Err(g) => {
                assert_eq!(e["stage"], "config", "{what}: {g:?}");
                assert_eq!(
                    (g.class.as_str(), shown(&g.message).as_str()),
                    (e["type"].as_str().unwrap(), e["message"].as_str().unwrap()),
                    "{what}"
                );
                checked += 1;
                continue;
            }
            Ok(Config::Legacy) => {
                assert_eq!(r["legacy_format"], true, "{what}");
                checked += 1;
                continue;
            }
            Ok(Config::New {
                load_path,
                no_load_optim,
                resume_training,
            }) => (load_path, no_load_optim, resume_training),
        };
        assert_ne!(e["stage"], "config", "{what}: the config stage passed");
        let mode = Mode {
            run: RunArgs {
                gbs_new: flag("--gbs").map_or(8, |g| g.parse().unwrap()),
                no_load_optim,
                resume_training,
                ..run_defaults()
            },
            load_ckpt_format: flag("--load-ckpt-format").unwrap_or("safetensors".into()),
            health: None,
        };
        let at = At {
            shown: load_path.clone(),
            real: load_path.into(),
        };
        let got = resume(&ckptscope::fsys::RealFs, &at, &mode);
        match e {
            Value::Null => {
                let g = got.unwrap_or_else(|f| panic!("{what}: {f:?}"));
                assert_eq!(
                    g.load_path.map(|a| shown(&a.shown)),
                    r["load_path_after_context"]
                        .as_str()
                        .filter(|s| !s.is_empty())
                        .map(str::to_owned),
                    "{what}"
                );
                assert_eq!(
                    g.context.initial_step.to_string(),
                    r["initial_step"].to_string(),
                    "{what}"
                );
                assert_eq!(
                    g.context.skip.map(|n| n.to_string()),
                    r["dataset_set_init_step"].as_i64().map(|n| n.to_string()),
                    "{what}"
                );
            }
            e => {
                let f = got
                    .err()
                    .unwrap_or_else(|| panic!("{what}: resumed, want {e}"));
                expect_error(
                    &what,
                    (f.stage, &f.error.class, &shown(&f.error.message)),
                    e,
                );
            }
        }
        checked += 1;
    }
    assert_eq!(checked, 11 + 15, "L1–L11, R1–R15");
}
