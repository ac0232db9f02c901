"""This tree's training speed against a baseline tree's, both measured in one run: the no-regression check.

    python bench/regression.py --baseline PATH          # PATH: another tfvae source tree (e.g. a git worktree)
    python bench/regression.py --baseline PATH --quick  # a smoke run: same tables, numbers not meaningful

For each throughput case of bench/run.py, (a) the digits MLP, (b) the Keras example's ConvNet and (c) the
784-512-512-32 MLP, `runner.case_throughput` runs in a fresh process importing tfvae from this tree, then
from PATH (the order alternating between cases and repeats). Each process measures tfvae's default `compile()`
beside the Keras example's pattern, interleaved, so each tree's ratio default / Keras example comes from
one process, and the page compares the two trees' ratios. Writes bench/results/regression.json and renders
docs/benchmarks/regression.md.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path[:0] = [HERE]

import render  # noqa: E402
import runner  # noqa: E402

CASES = {"digits": "(a) digits MLP 64-128-128-8, batch 64", "conv": "(b) Keras example ConvNet, batch 128",
         "heavy": "(c) MLP 784-512-512-32, batch 128"}
#: The bar: this tree's ratio at least this share of the baseline's.
BAR = 0.9


def case_in_tree(tree, key, quick):
    """`runner.case_throughput(key, quick)` in a child process whose `tfvae` is the one in `tree`."""
    row = runner.in_fresh_process(runner.case_throughput, key, quick, tree=tree)
    return row["default"]["epoch"] / row["reference"]["epoch"]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--baseline", required=True, help="the tfvae source tree to compare with")
    parser.add_argument("--quick", action="store_true", help="a smoke run")
    parser.add_argument("--repeats", type=int, default=2, help="processes per tree and case")
    parser.add_argument("--cases", default=",".join(CASES), help="comma-separated subset of " + ", ".join(CASES))
    parser.add_argument("--out", default=os.path.join(HERE, "results", "regression.json"))
    args = parser.parse_args(argv)
    unknown = set(args.cases.split(",")) - set(CASES)
    if unknown:
        parser.error(f"--cases: unknown {sorted(unknown)}; expected some of {', '.join(CASES)}")
    trees = {"this": ROOT, "baseline": os.path.abspath(args.baseline)}
    rows, ratios = [], {}
    for index, key in enumerate(args.cases.split(",")):
        measured = {"this": [], "baseline": []}
        for repeat in range(1 if args.quick else args.repeats):
            order = list(trees) if (index + repeat) % 2 == 0 else list(trees)[::-1]
            for name in order:
                measured[name].append(case_in_tree(trees[name], key, args.quick))
                print(f"{key} repeat {repeat} {name}: default / Keras example {measured[name][-1]:.2f}x", flush=True)
        this, baseline = (float(np.median(measured[name])) for name in ("this", "baseline"))
        ratios[key] = this / baseline
        rows.append([CASES[key], f"{this:.2f}x", f"{baseline:.2f}x", f"{this / baseline:.2f}",
                     "yes" if this / baseline >= BAR else "NO"])
    text = (f"tfvae's default `compile()` against the Keras VAE example's pattern, steady epochs, samples/s "
            f"over samples/s, with tfvae imported from this tree and from the baseline tree, each in fresh "
            f"processes ({'1' if args.quick else args.repeats} per tree and case; medians). The bar: this tree's "
            f"ratio at least {BAR:.0%} of the baseline's. `tfvae train` end to end against another tree is (d) "
            "of `python bench/run.py --baseline PATH`.")
    result = {
        **render.header("Training speed against a baseline tree",
                        "python bench/regression.py --baseline PATH" + (" --quick" if args.quick else "")),
        "sections": [{"heading": "Method and result", "text": text,
                      "table": {"columns": ["case", "this tree", "baseline tree", "this / baseline", "holds"],
                                "rows": rows}}],
    }
    render.write_result(result, args.out)
    print(json.dumps(ratios))


if __name__ == "__main__":
    main()
