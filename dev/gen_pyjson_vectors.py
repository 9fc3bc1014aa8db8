#!/usr/bin/env python3
"""Generate tests/data/pyjson_vectors.json: random JSON-ish texts and what CPython's json.loads
made of them (type name and truthiness, or exception class and message). The Rust test
tests/pyjson_vectors.rs checks ckptscope's reader against it. Run with the Python MindFormers
uses (3.11): python3 dev/gen_pyjson_vectors.py > tests/data/pyjson_vectors.json"""
import json
import random
import sys

rng = random.Random(7)
atoms = ['{', '}', '[', ']', '"', ':', ',', ' ', '\n', '\r\n', '\t', '0', '1', '-', '.', 'e', 'E', '+', '20',
         'true', 'false', 'null', 'NaN', 'Infinity', '-Infinity', '"last_epoch"', '"x"', '\\', '\\u00e9', '\\ud83d',
         '\\ude00', '\\n', '\\x', 'é', '\ufeff', '\x01', '12345678901234567890123456789012345678901234567890', '01']
valid = [json.dumps({"last_epoch": 20, "last_step": 2, "last_ckpt_file": "a_rank_0-20_2.ckpt"}), "[]", "{}", "0", "0.0",
         '""', "[1, [2, {\"a\": []}]]", '{"a": 1, "a": 2}', " NaN ", "-0", "1e400", '"\\ud83d\\ude00"', '"\\ud83d"']
out = []
texts = valid + [''.join(rng.choice(atoms) for _ in range(rng.randint(0, 12))) for _ in range(3000)]
for t in texts:
    try:
        v = json.loads(t)
        out.append({"text": t, "ok": type(v).__name__, "truthy": bool(v)})
    except Exception as e:  # noqa: BLE001
        out.append({"text": t, "error": type(e).__name__, "message": str(e)})
json.dump(out, sys.stdout, ensure_ascii=True, indent=0)
