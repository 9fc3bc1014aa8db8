//! The new format's tracker (issue 13, `mindformers-new-format.md` §6.2) against the measured
//! vectors of `../shared/tools/mindformers-new/vectors.json` (group `tracker`): every vector
//! whose situation gives the tracker's text or bytes — what MindFormers' real code did with it.

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
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/tools/mindformers-new/vectors.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (the shared tools must be beside the repository)",
            path.display()
        )
    });
    let v: Value = serde_json::from_str(&text).unwrap();
    let tracker = "<out>/checkpoint/latest_checkpointed_iteration.txt";
    let mut checked = 0;
    for x in v["vectors"].as_array().unwrap() {
        if x["group"] != "tracker" {
            continue;
        }
        let (id, situation) = (x["id"].as_str().unwrap(), x["situation"].as_str().unwrap());
        let Some(bytes) = tracker_bytes(situation) else {
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
