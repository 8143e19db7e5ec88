"""The spread of every efficacy measurement in the test suite over kernel sets and seeds.

Record the suite's runs under each kernel set and seed (the fixtures `backdoored_run` / `defended_run` append
every run they return when BDB_TEST_RECORD names a directory; BDB_TEST_SEED shifts their seeds):

    BDB_TEST_RECORD=rec/avx512-s0 ./dev.sh test --isa avx512
    BDB_TEST_RECORD=rec/avx2-s0 ./dev.sh test --isa avx2
    BDB_TEST_SEED=1 BDB_TEST_RECORD=rec/avx512-s1 ./dev.sh test --isa avx512 plugins
    BDB_TEST_SEED=2 BDB_TEST_RECORD=rec/avx2-s2 ./dev.sh test --isa avx2 plugins

then tabulate them, one row per (test, method, settings) and one column per recording:

    python benchmarks/thresholds.py rec/*            # markdown on stdout
    python benchmarks/thresholds.py rec/* --json spread.json --metrics cacc asr auroc

A row's `range` is min-max over the recordings; `ISA gap` is the largest difference between two recordings of
the same seed under different kernel sets (the share of the spread that the CPU alone causes).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def load(dirs: list[str]) -> tuple[list[str], dict[tuple, dict[str, dict]]]:
    """(recording labels, {(test, kind, name, settings): {label: {"seed": s, "isa": i, metric: value}}})."""
    labels: list[str] = []
    rows: dict[tuple, dict[str, dict]] = {}
    names = [Path(d).name for d in dirs]
    for d in dirs:
        # a recording's label is its folder's name, with its parent's where two folders share a name
        # (rec/avx512-s0 and rec27a/avx512-s0 are different recordings, not one column)
        label = Path(d).name if names.count(Path(d).name) == 1 else f"{Path(d).parent.name}/{Path(d).name}"
        labels.append(label)
        for f in sorted(Path(d).glob("*.jsonl")):
            for line in f.read_text().splitlines():
                r = json.loads(line)
                path, _, test = r["test"].partition("::")
                where = path.split("/")[1] if path.startswith("plugins/") else path.rsplit("/", 1)[-1]
                key = (f"{where}::{test}", r["kind"], r["name"], json.dumps(r["settings"], sort_keys=True))
                m = dict(r["metrics"])
                rows.setdefault(key, {})[label] = {"seed": r["seed"], "isa": r["isa"], **m}
    return labels, rows


def spread(cells: dict[str, dict], metric: str) -> dict:
    vals = {lab: c[metric] for lab, c in cells.items() if isinstance(c.get(metric), (int, float))}
    if not vals:
        return {}
    gap = 0.0
    for a, ca in cells.items():
        for b, cb in cells.items():
            if a < b and ca["seed"] == cb["seed"] and ca["isa"] != cb["isa"] and a in vals and b in vals:
                gap = max(gap, abs(vals[a] - vals[b]))
    return {"values": vals, "min": min(vals.values()), "max": max(vals.values()), "isa_gap": gap}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("dirs", nargs="+", help="recording directories (BDB_TEST_RECORD), one per kernel set and seed")
    ap.add_argument("--metrics", nargs="+", default=["cacc", "asr", "ra", "auroc", "tpr", "fpr"])
    ap.add_argument("--json", help="also write the table as JSON here")
    ap.add_argument("--only-spread", type=float, default=0.0, help="rows whose range exceeds this only")
    args = ap.parse_args()
    labels, rows = load(args.dirs)
    out = []
    print("| test | run | metric | " + " | ".join(labels) + " | range | ISA gap |")
    print("|---" * (len(labels) + 5) + "|")
    for key in sorted(rows):
        test, kind, name, settings = key
        for metric in args.metrics:
            s = spread(rows[key], metric)
            if not s or s["max"] - s["min"] < args.only_spread:
                continue
            out.append({"test": test, "kind": kind, "name": name, "settings": json.loads(settings), "metric": metric,
                        **s})
            run = name + ("" if settings == "{}" else " " + settings)
            cells = " | ".join(f"{s['values'][lab]:.3f}" if lab in s["values"] else "-" for lab in labels)
            print(f"| {test} | {run} | {metric} | {cells} | {s['min']:.3f}-{s['max']:.3f} | {s['isa_gap']:.3f} |")
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
