#!/usr/bin/env python3
"""Differential test: random checkpoint trees, MindFormers' real resolver vs `ckptscope resolve`.

Developer tool (needs the MindFormers 2.1.0 source, see mf_oracle.py). Usage:
    cargo build --release
    python3 dev/differential.py --mf-src /path/to/unpacked/wheel/mindformers --trees 2000 [--seed 1]
Prints every disagreement (tree kept under --keep DIR) and a summary line.
"""
import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(__file__))
import mf_oracle  # noqa: E402

BIN = os.path.join(os.path.dirname(__file__), "..", "target", "release", "ckptscope")


def meta_text(rng, r, prefix, epoch, step, fmt):
    kind = rng.choices(["ok", "missing", "corrupt", "empty", "null", "list", "str_epoch", "float", "bool",
                        "other_prefix", "no_rank", "dir", "subdir", "bom", "nan", "dup", "big", "neg"],
                       weights=[60, 8, 3, 2, 2, 1, 2, 2, 1, 2, 1, 1, 1, 1, 1, 1, 1, 1])[0]
    f = f"{prefix}-{epoch}_{step}.{fmt}"
    base = {"last_epoch": epoch, "last_step": step, "last_ckpt_file": f}
    if kind == "ok":
        return json.dumps(base) if rng.random() > 0.03 else json.dumps({**base, "last_ckpt_file": f + "\n"})
    if kind == "missing":
        return None
    if kind == "corrupt":
        return json.dumps(base)[:-3]
    if kind == "empty":
        return ""
    if kind == "null":
        return "null"
    if kind == "list":
        return "[1, 2]"
    if kind == "str_epoch":
        return json.dumps({**base, "last_epoch": str(epoch)})
    if kind == "float":
        return json.dumps({**base, "last_epoch": float(epoch)})
    if kind == "bool":
        return json.dumps({**base, "last_epoch": True})
    if kind == "other_prefix":
        return json.dumps({**base, "last_ckpt_file": f"other_rank_{r}-{epoch}_{step}.{fmt}"})
    if kind == "no_rank":
        return json.dumps({**base, "last_ckpt_file": f"foo-{epoch}_{step}.{fmt}"})
    if kind == "dir":
        return "<DIR>"
    if kind == "subdir":
        return json.dumps({**base, "last_ckpt_file": "sub/" + f})
    if kind == "bom":
        return "\ufeff" + json.dumps(base)
    if kind == "nan":
        return json.dumps(base)[:-1] + ', "x": NaN}'
    if kind == "dup":
        return json.dumps(base)[:-1] + f', "last_epoch": {max(epoch - 5, 0)}}}'
    if kind == "big":
        return json.dumps({**base, "last_epoch": 10 ** 25})
    return json.dumps({**base, "last_epoch": -1})


def make_tree(rng, root):
    ranks = rng.randint(1, 4)
    fmt = rng.choice(["ckpt"] * 4 + ["safetensors"])
    stem = rng.choice(["llama", "llama3_1_8b", "CKP"])
    sink = rng.choice([1, 2, 2, 3])
    runs = rng.choice([1, 1, 1, 2, 3])
    t = 1_700_000_000.0
    for r in range(ranks):
        d = os.path.join(root, f"rank_{r}")
        os.makedirs(d, exist_ok=True)
        last = None
        for k in range(runs):
            prefix = f"{stem}_rank_{r}" + (f"_{k}" if k else "")
            epochs = sorted(rng.sample(range(1, 40), rng.randint(0, 4)))
            for e in epochs:
                if rng.random() < 0.12:
                    continue  # a missing shard
                ext = fmt if rng.random() > 0.05 else ("ckpt" if fmt == "safetensors" else "safetensors")
                name = f"{prefix}-{e}_{sink}.{ext}"
                p = os.path.join(d, name)
                open(p, "wb").write(b"x")
                t += rng.choice([1.0, 1.0, 1.0, 0.0, 1e-7])
                os.utime(p, (t, t))
                last = (prefix, e, sink)
            if rng.random() < 0.05:
                open(os.path.join(d, f"{prefix}-{rng.randint(1, 40)}_{sink}_breakpoint.ckpt"), "wb").write(b"x")
            if rng.random() < 0.05:
                open(os.path.join(d, f"{prefix}-{rng.randint(1, 40)}_{sink}.tmp"), "wb").write(b"x")
        if last and rng.random() < 0.1:
            p = os.path.join(d, f"{last[0]}-0{last[1]}_{last[2]}.{fmt}")
            open(p, "wb").write(b"x")
        if last and rng.random() < 0.05:  # Arabic-Indic digits: Python's \d accepts them
            p = os.path.join(d, f"{last[0]}-\u0662\u0665_{last[2]}.{fmt}")
            open(p, "wb").write(b"x")
            os.utime(p, (t + 5, t + 5))
        if last and rng.random() < 0.04:  # a broken symlink among the candidates
            os.symlink("/nonexistent/target", os.path.join(d, f"{last[0]}-{last[1] + 1}_{last[2]}.{fmt}"))
        if last and rng.random() < 0.03:  # a symlinked shard
            os.symlink(os.path.join(d, f"{last[0]}-{last[1]}_{last[2]}.{fmt}"), os.path.join(d, f"{last[0]}-{last[1] + 2}_{last[2]}.{fmt}"))
        if last:
            m = meta_text(rng, r, *last, fmt)
            if rng.random() < 0.15:  # async lag or a rank behind
                m = meta_text(rng, r, last[0], max(last[1] - 5, 1), last[2], fmt)
            if m == "<DIR>":
                os.makedirs(os.path.join(d, "meta.json"))
            elif m is not None:
                open(os.path.join(d, "meta.json"), "w", encoding="utf-8").write(m)
    if rng.random() < 0.04:
        open(os.path.join(root, "rank_notes.txt"), "w").write("x")
    if rng.random() < 0.04:
        shutil.rmtree(os.path.join(root, f"rank_{rng.randrange(ranks)}"))
    if rng.random() < 0.03:
        os.makedirs(os.path.join(root, "rank_0_old"), exist_ok=True)
    world = len([x for x in os.listdir(root) if x.startswith("rank_")])
    if rng.random() < 0.05:
        world = rng.randint(1, 6)
    health = rng.random() < 0.1
    return fmt, max(world, 1), health


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mf-src", required=True)
    ap.add_argument("--trees", type=int, default=500)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--keep", default=None)
    a = ap.parse_args()
    rc, _ = mf_oracle.load(a.mf_src)
    rng = random.Random(a.seed)
    bad = 0
    for i in range(a.trees):
        work = tempfile.mkdtemp(prefix="ckdiff-")
        root = os.path.join(work, "checkpoint")
        os.makedirs(root)
        fmt, world, health = make_tree(rng, root)
        out_root = os.path.join(work, "oracle-output")
        os.makedirs(out_root)
        if health:
            entries = [{"is_health": rng.choice([0, 1, 0.0, False, "0"]), "ckpt_name": "x"} for _ in range(rng.randint(0, 3))]
            open(os.path.join(work, "health_ckpts.json"), "w").write(json.dumps(entries))
        mode = rng.choice(["meta"] * 8 + ["timestamp", "name", "multinode"])
        resume = True
        extra = []
        if mode == "name":
            resume = rng.choice(["llama_rank_0-15_2", "llama-3_2", "CKP_rank_1_1-20_2.ckpt", "x_rank_01-4_4.safetensors"])
            extra = ["--resume-training", resume]
        elif mode == "timestamp":
            extra = ["--by-last-timestamp"]
        elif mode == "multinode":
            world = rng.randint(9, 12)
            if rng.random() < 0.5:
                os.environ["SHARED_PATHS"] = rng.choice([root, work, work + "x", "", "," + root])
        os.environ.update(RANK_SIZE=str(world), LOCAL_DEFAULT_PATH=out_root, DEVICE_NUM_PER_NODE="8")
        want = []
        for r in range(world):
            os.environ["RANK_ID"] = str(r)
            try:
                v = rc.get_resume_checkpoint(root, resume, mode != "timestamp", fmt, health, work)
                want.append({"rank": r, "resume_training": v})
            except BaseException as e:  # noqa: BLE001
                want.append({"rank": r, "error": {"type": type(e).__name__, "message": str(e).split("\n")[0]}})
        if not os.listdir(root) and resume is True:  # the trainer's A1 turns an empty folder into a fresh start
            want = [{"rank": r, "resume_training": False} for r in range(world)]
        t = os.path.join(out_root, "resume_record", "latest_checkpointed_iteration.txt")
        want_record = open(t, encoding="utf-8", newline="").read() if os.path.exists(t) and os.listdir(root) else None
        if isinstance(resume, str):
            want_record = None
        shutil.rmtree(out_root)
        cmd = [BIN, "resolve", root, "--json", "--world-size", str(world), "--format", fmt, "--output-dir", work] + extra
        if health:
            cmd.append("--health-monitor")
        env = {k: v for k, v in os.environ.items() if k not in ("RANK_SIZE", "RANK_ID", "LOCAL_DEFAULT_PATH")}
        got = json.loads(subprocess.run(cmd, capture_output=True, text=True, env=env).stdout)
        g = got["mindformers"]
        if g["per_rank"] != want or g["record"] != want_record:
            bad += 1
            print(f"tree {i}: MISMATCH (fmt {fmt}, world {world}, health {health})")
            print("  mindformers:", json.dumps(want)[:600], repr(want_record)[:300])
            print("  ckptscope:  ", json.dumps(g["per_rank"])[:600], repr(g["record"])[:300])
            if a.keep:
                dst = os.path.join(a.keep, f"tree-{i}")
                shutil.copytree(work, dst, symlinks=True)
                print("  kept in", dst)
        shutil.rmtree(work)
        os.environ.pop("SHARED_PATHS", None)
    print(f"{a.trees - bad} agreed, {bad} disagreed")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
