"""tfvae benchmarks: training speed on the workloads users bring, quality, inference.

    python bench/run.py --baseline PATH          # full run; PATH: the previous release's source tree
    python bench/run.py --baseline PATH --quick  # smoke run: same tables, numbers not meaningful

Writes the measurements to bench/results/run.json (machine, versions, commit and date inside), the chart
to docs/benchmarks/run.png, and renders docs/benchmarks.md through bench/render.py. The workloads are in
bench/cases.py, the measurements in bench/runner.py, the page's method and tables in bench/report.py.
With `--out` elsewhere, the JSON, chart and page go beside that file and the repository is left alone.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.metadata
import json
import os
import platform
import subprocess
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path[:0] = [HERE, ROOT]

import render  # noqa: E402
import report  # noqa: E402
import runner  # noqa: E402

RESULT = os.path.join(ROOT, "bench", "results", "run.json")
PACKAGES = ("tensorflow", "keras", "tensorflow-probability", "ai-edge-litert", "numpy")


def versions():
    """{package: version} of Python and the packages the benchmark runs on."""
    out = {"python": platform.python_version()}
    for package in PACKAGES:
        try:
            out[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            out[package] = "not installed"
    return out


def commit():
    """The short commit of this tree, marked when it has uncommitted changes."""
    def git(*args):
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True).stdout.strip()

    head = git("rev-parse", "--short", "HEAD") or "unknown"
    return f"{head} (with uncommitted changes)" if git("status", "--porcelain", "--untracked-files=no") else head


def result(measured, command, date, commit_id, quick=False):
    """The results-contract dict (bench/render.py) of one run's measurements."""
    title = "Benchmarks (a --quick smoke run: its numbers mean nothing)" if quick else "Benchmarks"
    return {"title": title, "command": command, "date": date, "commit": commit_id,
            "machine": measured["machine"], "versions": versions(), "sections": report.sections(measured)}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats/epochs (smoke run)")
    parser.add_argument("--baseline", required=True,
                        help="a source tree of the previous release, for (d) (e.g. made with `git worktree add`)")
    parser.add_argument("--out", default=RESULT, help="the result JSON (default: bench/results/run.json)")
    args = parser.parse_args(argv)
    if not os.path.isdir(os.path.join(args.baseline, "tfvae")):
        parser.error(f"--baseline {args.baseline} holds no tfvae package")
    command = "python bench/run.py --baseline PATH" + (" --quick" if args.quick else "")
    measured = runner.measure(args.quick, args.baseline)
    data = result(measured, command, datetime.date.today().isoformat(), commit(), args.quick)
    committed = os.path.abspath(args.out) == RESULT
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as handle:
        json.dump(data, handle, indent=1)
        handle.write("\n")
    stem = os.path.splitext(args.out)[0]
    chart = os.path.join(ROOT, report.CHART) if committed else stem + ".png"
    os.makedirs(os.path.dirname(chart), exist_ok=True)
    report.plot(measured, chart)
    if committed:
        page = render.write_page("run", data)
    else:
        page = stem + ".md"
        with open(page, "w") as handle:
            handle.write(render.render(data, "run"))
    print(f"wrote {args.out}, {chart} and {page}")


if __name__ == "__main__":
    main()
