#!/usr/bin/env python3
"""Run MindFormers 2.1.0's real resolver (tools/resume_ckpt.py, unchanged) on a tree.

Developer tool, not part of the test suite: it needs the MindFormers 2.1.0 source
(`pip download mindformers==2.1.0 --no-deps` and unzip; pass the folder holding `mindformers/`
as --mf-src). MindSpore, psutil and numpy are replaced by stubs: the resolver only needs
`get_rank()` to fail (so RANK_ID is used) and an empty mount table.

Prints JSON: {"per_rank": [...], "record": "..."|null} in the resolve contract's shapes.
"""
import argparse
import ast
import importlib
import json
import logging
import os
import sys
import types


def _mod(name, **attrs):
    m = types.ModuleType(name)
    m.__path__ = []
    m.__dict__.update(attrs)
    sys.modules[name] = m
    return m


def _raise_runtime(*_a, **_k):
    raise RuntimeError("communication not initialised")


class _Any:
    """Attribute sink for the stubbed packages."""
    def __getattr__(self, name):
        return _Any()

    def __call__(self, *a, **k):
        return _Any()


def load(mf_src):
    ms = _mod("mindspore", Tensor=_Any(), context=_Any(), load_checkpoint=_Any(), __version__="2.10.0")
    _mod("mindspore.communication", get_group_size=_raise_runtime, get_rank=_raise_runtime, get_local_rank=_raise_runtime)
    ms.communication = sys.modules["mindspore.communication"]
    _mod("mindspore._checkparam", args_type_check=lambda **k: (lambda f: f))
    _mod("mindspore.mint")
    _mod("mindspore.mint.distributed", barrier=lambda *a, **k: None)
    sys.modules["mindspore.mint"].distributed = sys.modules["mindspore.mint.distributed"]
    _mod("numpy")
    _mod("psutil", disk_partitions=lambda all=True: [])
    _mod("mindformers").__path__ = [mf_src]
    _mod("mindformers.tools").__path__ = [mf_src + "/tools"]
    _mod("mindformers.utils").__path__ = [mf_src + "/utils"]
    lg = logging.getLogger("mf-oracle")
    lg.addHandler(logging.NullHandler())
    lg.propagate = False
    _mod("mindformers.tools.logger", logger=lg)
    tu = importlib.import_module("mindformers.tools.utils")
    _mod("mindformers.utils.parallel_utils", barrier_world=lambda *a, **k: None)
    importlib.import_module("mindformers.utils.file_utils")
    tr = _mod("mindformers.trainer.utils")
    _mod("mindformers.trainer").utils = tr
    ns = tr.__dict__
    ns.update(os=os, logger=lg)
    for path, names in [(mf_src + "/utils/load_checkpoint_utils.py", {"get_last_checkpoint"}),
                        (mf_src + "/trainer/utils.py", {"is_hyper_param_existed_in_sf_dir"})]:
        tree = ast.parse(open(path, encoding="utf-8").read())
        for node in tree.body:
            if isinstance(node, ast.FunctionDef) and node.name in names:
                exec(compile(ast.Module([node], []), path, "exec"), ns)  # noqa: S102
    return importlib.import_module("mindformers.tools.resume_ckpt"), tu


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--mf-src", required=True)
    p.add_argument("--dir", required=True)
    p.add_argument("--world", type=int, required=True)
    p.add_argument("--fmt", default="ckpt")
    p.add_argument("--health", action="store_true")
    p.add_argument("--health-dir", default="./output")
    p.add_argument("--output-root", required=True, help="LOCAL_DEFAULT_PATH (resume_record goes there)")
    p.add_argument("--resume", default="true")
    a = p.parse_args()
    os.environ["RANK_SIZE"] = str(a.world)
    os.environ["LOCAL_DEFAULT_PATH"] = a.output_root
    os.environ.setdefault("DEVICE_NUM_PER_NODE", "8")
    rc, _ = load(a.mf_src)
    resume = True if a.resume == "true" else a.resume
    out = []
    for r in range(a.world):
        os.environ["RANK_ID"] = str(r)
        try:
            v = rc.get_resume_checkpoint(a.dir, resume, True, a.fmt, a.health, a.health_dir)
            out.append({"rank": r, "resume_training": v})
        except BaseException as e:  # noqa: BLE001
            out.append({"rank": r, "error": {"type": type(e).__name__, "message": str(e).split("\n")[0]}})
    t = os.path.join(os.path.realpath(a.output_root), "resume_record", "latest_checkpointed_iteration.txt")
    record = open(t, encoding="utf-8", newline="").read() if os.path.exists(t) and not isinstance(resume, str) else None
    print(json.dumps({"per_rank": out, "record": record}))


if __name__ == "__main__":
    main()
