//! Reports a person can read at 16,384 ranks: per-rank results run-length grouped by their
//! pattern (`ranks 0–16383: llama_rank_R-250_2.ckpt`, exceptions on their own lines), warnings
//! grouped by code with a count, rank ranges and the first few paths. JSON carries the same
//! groups, so scripts need not parse sentences.

use crate::resolve::warnings::Warning;
use serde::Serialize;

/// How many example paths a group shows unless everything is asked for.
pub const EXAMPLES: usize = 5;

/// Sorted, merged ranges `(first, last)` of a set of ranks.
pub fn ranges(ranks: impl IntoIterator<Item = u64>) -> Vec<(u64, u64)> {
    let mut v: Vec<u64> = ranks.into_iter().collect();
    v.sort_unstable();
    v.dedup();
    let mut out: Vec<(u64, u64)> = Vec::new();
    for r in v {
        match out.last_mut() {
            Some((_, hi)) if *hi + 1 == r => *hi = r,
            _ => out.push((r, r)),
        }
    }
    out
}

/// `0–4095, 4097, 4099–16383`.
pub fn ranges_text(r: &[(u64, u64)]) -> String {
    r.iter()
        .map(|(a, b)| {
            if a == b {
                a.to_string()
            } else {
                format!("{a}–{b}")
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Parse `3,900-910` into ranges (for `--ranks`).
pub fn parse_ranks(s: &str) -> Option<Vec<(u64, u64)>> {
    let mut out = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (a, b) = match part.split_once(['-', '–']) {
            Some((a, b)) => (a.trim().parse().ok()?, b.trim().parse().ok()?),
            None => {
                let r = part.parse().ok()?;
                (r, r)
            }
        };
        if a > b {
            return None;
        }
        out.push((a, b));
    }
    (!out.is_empty()).then_some(out)
}

pub fn in_ranges(r: &[(u64, u64)], rank: u64) -> bool {
    r.iter().any(|(a, b)| (*a..=*b).contains(&rank))
}

/// One code's warnings.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct WarningGroup {
    pub code: &'static str,
    pub count: usize,
    /// The first warning's message, as an example.
    pub message: String,
    /// The ranks concerned, as `[first, last]` ranges.
    pub ranks: Vec<(u64, u64)>,
    /// The entries concerned (rank order), the first few unless all were asked for.
    pub paths: Vec<String>,
    /// How many paths were left out.
    pub paths_omitted: usize,
}

/// Group by code (in order of first appearance), entries in numeric rank order.
pub fn group_warnings(ws: &[Warning], all: bool) -> Vec<WarningGroup> {
    let mut order: Vec<&'static str> = Vec::new();
    for w in ws {
        if !order.contains(&w.code) {
            order.push(w.code);
        }
    }
    order
        .into_iter()
        .map(|code| {
            let mut of: Vec<&Warning> = ws.iter().filter(|w| w.code == code).collect();
            of.sort_by(|a, b| {
                (a.rank.is_none(), a.rank, &a.path).cmp(&(b.rank.is_none(), b.rank, &b.path))
            });
            let paths: Vec<String> = of.iter().filter_map(|w| w.path.clone()).collect();
            let keep = if all {
                paths.len()
            } else {
                EXAMPLES.min(paths.len())
            };
            WarningGroup {
                code,
                count: of.len(),
                message: of[0].message.clone(),
                ranks: ranges(of.iter().filter_map(|w| w.rank)),
                paths_omitted: paths.len() - keep,
                paths: paths.into_iter().take(keep).collect(),
            }
        })
        .collect()
}

/// Runs of consecutive ranks whose text, with the rank's own number written `R`, is the same:
/// `(ranks, pattern)`.
pub fn rank_runs<S: AsRef<str>>(texts: impl IntoIterator<Item = S>) -> Vec<((u64, u64), String)> {
    let mut out: Vec<((u64, u64), String)> = Vec::new();
    for (r, t) in texts.into_iter().enumerate() {
        let r = r as u64;
        let pattern = generalise(t.as_ref(), r);
        match out.last_mut() {
            Some(((_, hi), p)) if *p == pattern && *hi + 1 == r => *hi = r,
            _ => out.push(((r, r), pattern)),
        }
    }
    out
}

/// `text` with `rank_<r>` written `rank_R` (names and paths carry each rank's own number).
fn generalise(text: &str, r: u64) -> String {
    let needle = format!("rank_{r}");
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find(&needle) {
        let after = &rest[i + needle.len()..];
        out.push_str(&rest[..i]);
        if after.starts_with(|c: char| c.is_ascii_digit()) {
            out.push_str(&needle); // rank_12 when r is 1: not this rank's number
        } else {
            out.push_str("rank_R");
        }
        rest = after;
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_merge_and_print() {
        let r = ranges([5, 1, 2, 3, 9, 10, 3]);
        assert_eq!(r, vec![(1, 3), (5, 5), (9, 10)]);
        assert_eq!(ranges_text(&r), "1–3, 5, 9–10");
        assert_eq!(parse_ranks("3,900-910"), Some(vec![(3, 3), (900, 910)]));
        assert_eq!(parse_ranks("9-3"), None);
        assert_eq!(parse_ranks("x"), None);
    }

    #[test]
    fn runs_generalise_the_rank_number() {
        let texts: Vec<String> = (0..12)
            .map(|r| {
                if r == 7 {
                    "error: rank_7 missing".into()
                } else {
                    format!("llama_rank_{r}-20_2.ckpt")
                }
            })
            .collect();
        let runs = rank_runs(&texts);
        assert_eq!(runs.len(), 3);
        assert_eq!(runs[0], ((0, 6), "llama_rank_R-20_2.ckpt".into()));
        assert_eq!(runs[1], ((7, 7), "error: rank_R missing".into()));
        assert_eq!(runs[2], ((8, 11), "llama_rank_R-20_2.ckpt".into()));
        assert_eq!(generalise("rank_12/rank_1", 1), "rank_12/rank_R");
    }
}
