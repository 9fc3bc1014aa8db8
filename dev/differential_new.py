#!/usr/bin/env python3
"""Differential test for the NEW checkpoint format: random `iteration_*` trees, MindFormers' real
resume code (the oracle of ../shared/tools/mindformers-new/) vs `ckptscope resolve --json`.

Developer tool, not CI (it needs MindSpore and the MindFormers 2.1.0 source). Usage:
    cargo build --release
    python3 -m venv /tmp/msvenv && /tmp/msvenv/bin/pip install mindspore==2.10.0 "numpy<2" pyyaml
    MF_SRC=/path/to/unpacked/wheel/mindformers /tmp/msvenv/bin/python dev/differential_new.py \
        --trees 2000 [--seed 1] [--keep DIR]
(env CKPTSCOPE_BIN: the binary to test, e.g. a copy, so a rebuild meanwhile does not matter)

Each tree is a copy of one of the shared fixture trees with 0–4 random edits (the tracker's
text, deleted or emptied shards, control files deleted, cut or rewritten, folders deleted or
added, stray entries), resolved in a random job (resume or weights only, health mode,
`load_ckpt_format`, batch size, sink mode, dataset size, data skip). The oracle runs in this one
process (MindSpore is imported once). Compared per rank: the folder loaded, `initial_step`,
`initial_epoch` and the data skip — or the stage, exception type and first line of the message.
Two documented differences are accepted: the oracle stops before the weight loader reads shard
bytes, so where ckptscope predicts a rank's `Loaded nothing from …` on a damaged shard the
oracle loads; and ckptscope names the colliding ranks' files instead of the parameter in
`Duplicate parameter_name found: …` (it keeps no tensor lists).
Prints every disagreement (tree kept under --keep) and a summary line.
"""
import argparse
import contextlib
import io
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
SHARED = os.path.join(HERE, "..", "..", "shared")
sys.path.insert(0, os.path.join(SHARED, "tools", "mindformers-new"))
import newfmt_oracle  # noqa: E402

BIN = os.environ.get("CKPTSCOPE_BIN", os.path.join(HERE, "..", "target", "release", "ckptscope"))
FIXTURES = os.path.join(SHARED, "fixtures", "mindformers-new")
BASES = ["tree-healthy-2rank", "tree-healthy-4rank", "tree-single-rank", "tree-health", "tree-gbs-change",
         "tree-resumed-2rank", "tree-async-lag", "tree-killed-midsave", "tree-no-tracker"]
TRACKERS = ["10", " 8\n", "6\r\n", "0010", "+8", "1_0", "\u0661\u0660", "abc", "", "-1", "99", "10.0",
            "1e1", "\ufeff10", "8 8", "\t6\t"]


def folders(root):
    return sorted(d for d in os.listdir(root) if d.startswith("iteration_") and os.path.isdir(os.path.join(root, d)))


def edit(rng, root):
    """One random edit; returns its description."""
    its = folders(root)
    kind = rng.choice(["tracker", "tracker", "no_tracker", "del_shard", "empty_shard", "cut_shard", "del_meta",
                       "cut_meta", "del_common", "common_field", "del_folder", "empty_folder", "stray"])
    if kind == "tracker":
        t = rng.choice(TRACKERS + [str(int(d[10:])) for d in its])
        with open(os.path.join(root, "latest_checkpointed_iteration.txt"), "w", encoding="utf-8", newline="") as f:
            f.write(t)
        return f"tracker {t!r}"
    if kind == "no_tracker":
        with contextlib.suppress(FileNotFoundError):
            os.remove(os.path.join(root, "latest_checkpointed_iteration.txt"))
        return "no tracker"
    if not its:
        return "nothing"
    d = os.path.join(root, rng.choice(its))
    files = sorted(os.listdir(d))
    shards = [f for f in files if f.endswith(".safetensors")]
    if kind in ("del_shard", "empty_shard", "cut_shard") and shards:
        f = os.path.join(d, rng.choice(shards))
        if kind == "del_shard":
            os.remove(f)
        else:
            size = os.path.getsize(f)
            with open(f, "r+b") as h:
                h.truncate(0 if kind == "empty_shard" else size // 2)
        return f"{kind} {os.path.relpath(f, root)}"
    if kind in ("del_meta", "cut_meta") and "metadata.json" in files:
        f = os.path.join(d, "metadata.json")
        if kind == "del_meta":
            os.remove(f)
        else:
            with open(f, "r+b") as h:
                h.truncate(os.path.getsize(f) // 2)
        return f"{kind} {os.path.relpath(f, root)}"
    if kind in ("del_common", "common_field") and "common.json" in files:
        f = os.path.join(d, "common.json")
        if kind == "del_common":
            os.remove(f)
            return f"del_common {os.path.relpath(f, root)}"
        with open(f, encoding="utf-8") as h:
            c = json.load(h)
        key = rng.choice(["global_batch_size", "step_num", "epoch_num", "ckpt_status", "loss_scale"])
        c[key] = rng.choice([None, 0, 3, 16, 10.9, "8", True])
        with open(f, "w", encoding="utf-8") as h:
            json.dump(c, h)
        return f"common {os.path.relpath(f, root)} {key}={c[key]!r}"
    if kind == "del_folder":
        shutil.rmtree(d)
        return f"del_folder {os.path.basename(d)}"
    if kind == "empty_folder":
        n = rng.choice([2, 12, 20])
        os.makedirs(os.path.join(root, f"iteration_{n:08d}"), exist_ok=True)
        return f"empty_folder {n}"
    if kind == "stray":
        name = rng.choice(["iteration_abc", "iteration_00000099.tmp", "notes.txt"])
        with open(os.path.join(root, name), "w", encoding="utf-8") as h:
            h.write("x")
        return f"stray {name}"
    return "nothing"


def job(rng):
    """A random job: (oracle argv tail, ckptscope flags)."""
    o, c = [], []
    mode = rng.choice(["resume"] * 5 + ["weights", "health", "ckpt"])
    if mode == "weights":
        o += ["--no-load-optim", "true"]
        c += ["--no-load-optim"]
    if mode == "health":
        o += ["--health"]
        c += ["--health-monitor"]
    if mode == "ckpt":
        o += ["--load-ckpt-format", "ckpt"]
        c += ["--format", "ckpt"]
    gbs = rng.choice([8, 8, 16, 4, 3, 56, 40])
    o += ["--gbs", str(gbs)]
    c += ["--global-batch-size", str(gbs)]
    sink = rng.random() < 0.7
    o += ["--sink-mode", "true" if sink else "false"]
    ds = rng.choice([1000, 3, 7])
    o += ["--dataset-size", str(ds)]
    c += ["--sink-size", "1" if sink else "0", "--dataset-size", str(ds)]
    if rng.random() < 0.15:
        o += ["--ignore-data-skip"]
        c += ["--ignore-data-skip"]
    if rng.random() < 0.15:
        n = rng.choice([0, 5])
        o += ["--data-skip-steps", str(n)]
        c += ["--data-skip-steps", str(n)]
    return o, c


def first_line(m):
    return (m or "").split("\n", 1)[0]


def compare(oracle, ours):
    """Disagreements between the oracle's per-rank records and ckptscope's document."""
    bad = []
    mine = ours["mindformers"]["per_rank"]
    if len(mine) != len(oracle["per_rank"]):
        return [f"ranks: oracle {len(oracle['per_rank'])}, ckptscope {len(mine)}"]
    for o, m in zip(oracle["per_rank"], mine):
        r = o["rank"]
        oe, me = o.get("error"), m.get("error")
        if oe:
            want = (oe["stage"], oe["type"], first_line(oe["message"]))
            got = (me or {}).get("stage"), (me or {}).get("type"), (me or {}).get("message")
            if got[:2] == want[:2] and want[2].startswith("Duplicate parameter_name found: ") \
                    and (got[2] or "").startswith("Duplicate parameter_name found: "):
                continue
            if got != want:
                bad.append(f"rank {r}: oracle {want}, ckptscope {got if me else m}")
            continue
        if me:
            loaded = o.get("load_path_after_context")
            if me["stage"] == "weights" and me["message"].startswith("Loaded nothing from ") and loaded:
                continue  # the oracle stops before the loader reads the damaged shard
            bad.append(f"rank {r}: oracle loads {loaded}, ckptscope {me}")
            continue
        want = (o.get("load_path_after_context") or None, o.get("initial_step"), o.get("initial_epoch"))
        got = (m.get("load_path"), m.get("initial_step"), m.get("initial_epoch"))
        if want != got:
            bad.append(f"rank {r}: oracle {want}, ckptscope {got}")
        skip = o.get("dataset_set_init_step")
        if skip != ours["data_skip"]["skip_batches"]:
            bad.append(f"rank {r}: data skip oracle {skip}, ckptscope {ours['data_skip']['skip_batches']}")
    return bad


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--trees", type=int, default=2000)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--keep", default=None, help="copy disagreeing trees here")
    a = p.parse_args()
    rng = random.Random(a.seed)
    agree = disagree = 0
    work = tempfile.mkdtemp(prefix="ckptscope-diffnew-")
    for i in range(a.trees):
        base = rng.choice(BASES)
        out = os.path.join(work, f"t{i}")
        shutil.copytree(os.path.join(FIXTURES, base), out)
        for dp, dns, fns in os.walk(out):
            for n in dns + fns:
                os.chmod(os.path.join(dp, n), 0o755 if n in dns else 0o644)
        root = os.path.join(out, "checkpoint")
        edits = [edit(rng, root) for _ in range(rng.choice([0, 1, 1, 2, 2, 3, 4]))]
        world = newfmt_oracle.guess_world(root)
        o_args, c_args = job(rng)
        with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
            oracle = newfmt_oracle.run([root, "--world", str(world)] + o_args)
        res = subprocess.run([BIN, "resolve", root, "--json", "--world-size", str(world)] + c_args,
                             capture_output=True, text=True, check=False)
        try:
            ours = json.loads(res.stdout)
            bad = compare(oracle, ours)
        except (json.JSONDecodeError, KeyError) as e:
            bad = [f"ckptscope output unreadable ({e}): {res.stdout[:300]} {res.stderr[:300]}"]
        if bad:
            disagree += 1
            print(f"DISAGREE t{i} base={base} edits={edits} job={o_args}")
            for b in bad[:4]:
                print("   ", b)
            if a.keep:
                shutil.copytree(out, os.path.join(a.keep, f"t{i}"), dirs_exist_ok=True)
        else:
            agree += 1
        shutil.rmtree(out)
    shutil.rmtree(work, ignore_errors=True)
    print(f"new-format differential: {agree} of {agree + disagree} trees agree (seed {a.seed})")
    sys.exit(1 if disagree else 0)


if __name__ == "__main__":
    main()
