"""The `tfvae-export` command (also `python -m export`): thin over `export`.

    tfvae-export all RUN_DIR [--data digits] [--normal-data normal.csv] [--overwrite]
    tfvae-export saved-model MODEL.keras --out DIR [--data digits] [--normal-data normal.csv]
    tfvae-export tflite MODEL.keras --part vae --quantize int8 --data digits --out FILE

`all` writes `RUN_DIR/export/`: `saved_model/`, `vae.tflite` and
`vae_int8.tflite` (the five signatures encode, decode, reconstruct, score,
sample), and the single-signature `encoder.tflite`, `encoder_int8.tflite`,
`score.tflite`, `score_int8.tflite` and `decoder.tflite`; each takes raw
input, carries its metadata and score thresholds, and was checked against
Keras. It writes every artifact that passes its checks, lists those that
fail (exit status 1), and prints one table of sizes and parity, and the
thresholds. Each artifact is whole or absent and records the model it came
from (`weights_sha256` in its metadata; `RUN_DIR/export/manifest.json`
lists them): a rerun for the same model and options keeps what is there and
writes the rest; after training again, every file is replaced (or removed,
if the new model's fails), so no file of an older model stays beside the
new ones. Files in the folder that tfvae-export did not write are refused
without `--overwrite`.

`--data` is a dataset name (`digits`) or a `.npy/.npz/.csv` file of raw
features: its training split calibrates int8 models and its test split
measures parity (split as `tfvae train` did, with the run's seed from
`run.json`); `all` defaults to the run's own data. The score thresholds are
set on rows known to be normal: `--normal-data FILE` (every row of it), by
default the test split of the run's own data, which training held out of
the data the user trained on as normal, never `--data`'s test split, which
may hold anomalies. When more than 10% of those rows score above the 95th
percentile of the training rows' scores, a warning says they look
contaminated (`tfvae.anomaly`).

Progress and results go to stdout; an error is one line on stderr (see
`tfvae._cli`): exit status 2 for bad input, 1 for a failure (including a
full disk or an unwritable folder). TensorFlow's own log lines are hidden
unless `--verbose` is given.
"""

import argparse
import contextlib
import os
import pathlib
import sys
import time
import warnings

from export import _artifacts, _examples, _run_data
from tfvae import _atomic, _cli

PROG = "tfvae-export"
QUANTIZE_CHOICES = ("none", "float16", "dynamic", "int8")
#: The LiteRT artifacts of `all`, inside RUN_DIR/export/: (file name, part, quantize).
ALL_TFLITE = (
    ("vae.tflite", "vae", None), ("vae_int8.tflite", "vae", "int8"),
    ("encoder.tflite", "encoder", None), ("encoder_int8.tflite", "encoder", "int8"),
    ("score.tflite", "score", None), ("score_int8.tflite", "score", "int8"),
    ("decoder.tflite", "decoder", None),
)


def build_parser():
    """The argument parser of `tfvae-export`."""
    parser = _cli.Parser(prog=PROG, description="Export a trained tfvae model to SavedModel and LiteRT.")
    parser.add_argument("--verbose", action="store_true", help="show TensorFlow's logs and tracebacks")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    every = commands.add_parser("all", help="write the SavedModel and every LiteRT file into RUN_DIR/export")
    every.add_argument("run_dir", metavar="RUN_DIR")
    _add_common(every, data_help="default: the run's data from RUN_DIR/run.json")

    saved = commands.add_parser("saved-model", help="write a SavedModel directory with serving signatures")
    saved.add_argument("model", metavar="MODEL.keras")
    saved.add_argument("--out", required=True, metavar="DIR", help="the SavedModel directory to create")
    _add_common(saved, data_help="data for parity and thresholds (its test split); default: synthetic rows")

    lite = commands.add_parser("tflite", help="write one .tflite file (all signatures, or one part)")
    lite.add_argument("model", metavar="MODEL.keras")
    lite.add_argument("--out", required=True, metavar="FILE", help="the .tflite file to create")
    lite.add_argument("--part", choices=("vae", "encoder", "score", "decoder"), default="encoder",
                      help="vae: all five signatures; the others one each (default %(default)s)")
    lite.add_argument("--quantize", choices=QUANTIZE_CHOICES, default="none")
    lite.add_argument("--int8-io", action="store_true", help="int8 inputs and outputs (encoder/decoder, int8)")
    lite.add_argument("--per-channel", action="store_true", help="int8 weights per channel (default per tensor)")
    _add_common(lite, data_help="calibration (train split), parity and thresholds (test split); required for int8")
    return parser


def _add_common(parser, data_help):
    parser.add_argument("--data", help=f"a dataset name (digits) or a .npy/.npz/.csv of raw features; {data_help}")
    parser.add_argument("--normal-data", metavar="FILE",
                        help="a .npy/.npz/.csv of raw rows known to be normal, unused by training, for the score "
                             "thresholds (default: the test split of the run's own data, held out of training)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace existing artifacts (all: write every one again, even what this model wrote)")
    parser.add_argument("--verbose", action="store_true", default=argparse.SUPPRESS,
                        help="show TensorFlow's logs and tracebacks")


def main(argv=None):
    """Runs the command; returns the exit status (0 ok, 1 export failure, 2 bad input, 130 Ctrl-C).

    Args:
        argv: the arguments after `tfvae-export`. None (the command) reads
            `sys.argv[1:]` and takes the process to be the command's own,
            as the `tfvae` command does (`tfvae._cli.command_start_up`).
            With a list, as when called from Python, the imports are made
            as they are.
    """
    terminal = _Terminal()
    args = None
    try:
        args = build_parser().parse_args(argv)
        plan = _plan(args)
        with _cli.command_start_up(argv is None), \
                contextlib.nullcontext() if args.verbose else _cli.quiet_tensorflow():
            _import_what_run_uses()
        if args.verbose:
            return _run(args, plan, terminal)
        with _cli.native_output_hidden():
            return _run(args, plan, terminal)
    except BaseException as error:  # noqa: BLE001 - one line, never a traceback, unless --verbose
        if args is not None and args.verbose and not isinstance(error, (SystemExit, KeyboardInterrupt)):
            raise
        terminal.end_progress()
        return _cli.exit_status(PROG, error, stream=terminal.err)
    finally:
        terminal.close()


# ------------------------------------------------------------------ planning


def _plan(args):
    """Checks the arguments without TensorFlow; returns what to write."""
    from tfvae import run_folder

    if args.data is not None:
        _run_data.check_spec(args.data)
    if args.normal_data is not None:
        _run_data.check_file(args.normal_data, "--normal-data")
    if args.command == "all":
        run_dir = pathlib.Path(args.run_dir)
        model_path = run_dir / run_folder.MODEL
        if not model_path.is_file():
            raise _cli.UsageError(f"no model.keras in {os.fspath(run_dir)!r}: pass the folder written by `tfvae train`")
        data = args.data or _options(run_dir).get("data")
        if data is None:
            raise _cli.UsageError(f"cannot tell the data of {os.fspath(run_dir)!r} (no run.json): pass --data")
        try:
            _run_data.check_spec(data)
        except ValueError:
            raise _cli.UsageError(f"the run's data {data!r} (from run.json) is not available here: pass --data") \
                from None
        out = run_dir / run_folder.EXPORT
        targets = [out / "saved_model"] + [out / name for name, _, _ in ALL_TFLITE]
        if not args.overwrite:  # what tfvae-export wrote is replaced or kept by `_artifacts`
            _atomic.check_targets([target for target in targets if not _artifacts.ours(target)], False)
        plan = {"model": model_path, "data": data, "out": out, "run_data": _options(run_dir).get("data")}
    else:
        model_path = pathlib.Path(args.model)
        if not model_path.is_file():
            raise _cli.UsageError(f"no such model file: {args.model!r} (expected a .keras file saved from a tfvae.VAE)")
        out = pathlib.Path(args.out)
        if args.command == "tflite":
            if out.suffix.lower() != ".tflite":
                raise _cli.UsageError(f"--out must end in .tflite, got {args.out!r}")
            if args.quantize == "int8" and args.data is None:
                raise _cli.UsageError("--quantize int8 needs --data (training examples to calibrate on), "
                                      "e.g. --data digits")
            if args.int8_io and args.quantize != "int8":
                raise _cli.UsageError("--int8-io needs --quantize int8")
            if args.per_channel and args.quantize != "int8":
                raise _cli.UsageError("--per-channel needs --quantize int8")
        _atomic.check_targets([out], args.overwrite)
        plan = {"model": model_path, "data": args.data, "out": out,
                "run_data": _options(model_path.parent).get("data")}
    plan["seed"] = int(_options(plan["model"].parent).get("seed", 0))
    return plan


def _options(run_dir):
    """The run's `run.json`, or {} for a model saved outside a run folder."""
    from tfvae import run_folder

    try:
        return run_folder.read_options(run_dir)
    except ValueError:
        return {}


# ------------------------------------------------------------------- running


def _import_what_run_uses():
    """The modules `_run`'s jobs load (TensorFlow, Keras, TFP, the converters), imported at start-up."""
    import tfvae.saving  # noqa: F401

    from export import _saved_model, _tflite, report  # noqa: F401


def _run(args, plan, terminal):
    import tfvae

    import export
    from export import report

    model = tfvae.load_model(plan["model"])  # names what is wrong with a missing or corrupt file
    train, test, source = (None, None, None)
    if plan["data"] is not None:
        train, test, source = _run_data.load(plan["data"], model, plan["seed"])
        for split in (train, test):
            _examples.as_examples(model, split, "--data")  # a clear error before any work
        x_test, labels = test if isinstance(test, tuple) else (test, None)
        test = {"x": x_test, "labels": labels, "name": f"the {source} test split"}
    normal = _normal_rows(args, plan, model, terminal)
    jobs = _jobs(args, plan, train, test, normal)
    if args.command != "all":
        label, function, kwargs = jobs[0]
        started = time.monotonic()
        terminal.progress(f"[1/1] {label} -> {os.fspath(kwargs['path'])} ...")
        result = function(model, **kwargs, overwrite=args.overwrite)
        terminal.progress(f" done ({time.monotonic() - started:.1f} s)\n")
        terminal.print(str(result))
        return _cli.OK
    settings = [_fingerprint(plan["data"]), _fingerprint(args.normal_data), plan["seed"]]
    folder = _artifacts.Folder(plan["out"], model, settings, overwrite=args.overwrite)
    reports, failures = [], []
    for number, (label, function, kwargs) in enumerate(jobs, 1):
        path = kwargs["path"]
        prefix = f"[{number}/{len(jobs)}] {label} -> {os.fspath(path)} ..."
        if folder.keeps(path):
            terminal.progress(f"{prefix} kept (written for this model before)\n")
            continue
        started = time.monotonic()
        terminal.progress(prefix)
        try:
            result = function(model, **kwargs, overwrite=True)
        except (RuntimeError, ValueError) as error:  # this artifact fails its checks; the others may pass
            folder.failed(path, error)
            terminal.progress(f" FAILED: {_cli.one_line(error)}\n")
            failures.append((label, path, error))
            continue
        folder.written(path)
        terminal.progress(f" done ({time.monotonic() - started:.1f} s)\n")
        reports.append(result)
    folder.save()
    if reports:
        terminal.print(export.format_table(reports))
        calibration = f"; int8 calibrated on {_rows(train)} rows of its train split" if train is not None else ""
        terminal.print(f"parity on {reports[0].parity_data}{calibration}. Artifacts in {os.fspath(plan['out'])}")
    with_thresholds = sorted((r for r in reports if r.thresholds), key=lambda r: (r.part, r.quantize) != ("vae", "int8"))
    if with_thresholds:
        name = os.path.basename(with_thresholds[0].path)
        terminal.print(report.format_thresholds(with_thresholds[0].thresholds) + f" ({name}; every file stores its own)")
    if failures:
        for label, path, error in failures:
            terminal.print(f"not written: {os.path.basename(path)} ({label}): {_cli.one_line(error)}")
        raise RuntimeError(f"{len(failures)} of {len(jobs)} artifacts failed their checks and were not written: "
                           f"{', '.join(os.path.basename(path) for _, path, _ in failures)} (listed above); "
                           "the others are in " + os.fspath(plan["out"]))
    return _cli.OK


def _normal_rows(args, plan, model, terminal):
    """The rows the thresholds are set on (raw, named), checked against the training rows; None without any."""
    from export import _thresholds
    from tfvae import anomaly

    own = plan["run_data"] if plan["run_data"] is not None and _run_data.available(plan["run_data"]) else None
    training = held_out = None
    if own is not None:  # the data the model was trained on as normal, split as training split it
        training, held_out, own_name = _run_data.load(own, model, plan["seed"])
    if args.normal_data is not None:
        normal, name = _run_data.load_rows(args.normal_data, model, "--normal-data"), os.path.basename(args.normal_data)
    elif held_out is not None:
        normal, name = held_out, f"the {own_name} test split"
    else:
        return None
    x, labels = normal if isinstance(normal, tuple) else (normal, None)
    normal = {"x": x, "labels": labels, "name": name}
    if training is not None:
        scores = [_thresholds.keras_scores(model, _examples.subsample(_examples.as_examples(model, rows, what),
                                                                      _examples.PARITY_ROWS))
                  for rows, what in ((normal, "--normal-data"), (training, "the training rows"))]
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            anomaly.check_normal_rows(*scores, name=name)
        for warning in caught:
            terminal.print(f"warning: {warning.message}")
    return normal


def _jobs(args, plan, train, test, normal):
    import export

    if args.command == "saved-model":
        return [("SavedModel", export.saved_model,
                 {"path": plan["out"], "parity_data": test, "normal_data": normal})]
    if args.command == "tflite":
        quantize = None if args.quantize == "none" else args.quantize
        options = {"path": plan["out"], "part": args.part, "quantize": quantize, "int8_io": args.int8_io,
                   "per_channel": args.per_channel, "representative_data": train if quantize == "int8" else None,
                   "parity_data": test, "normal_data": normal}
        return [(f"{args.part} {quantize or 'float32'}", export.tflite, options)]
    jobs = [("SavedModel", export.saved_model,
             {"path": plan["out"] / "saved_model", "parity_data": test, "normal_data": normal})]
    for name, part, quantize in ALL_TFLITE:
        options = {"path": plan["out"] / name, "part": part, "quantize": quantize, "parity_data": test,
                   "normal_data": normal, "representative_data": train if quantize == "int8" else None}
        jobs.append((f"{part} {quantize or 'float32'}", export.tflite, options))
    return jobs


def _fingerprint(spec):
    """A data spec as it changes the artifacts: a file's path, size and modification time; a name as is."""
    if spec is None or not os.path.isfile(spec):
        return spec
    status = os.stat(spec)
    return [os.path.abspath(spec), status.st_size, status.st_mtime_ns]


def _rows(data):
    return len(data[0]) if isinstance(data, tuple) else len(data["x"]) if isinstance(data, dict) else len(data)


# -------------------------------------------------------------------- output


class _Terminal:
    """The user's stdout and stderr, kept aside while native logs are hidden."""

    def __init__(self):
        self._owned = []
        self._line_open = False
        self.out = self._keep(sys.stdout, 1)
        self.err = self._keep(sys.stderr, 2)

    def _keep(self, stream, descriptor):
        try:
            if stream.fileno() == descriptor:
                stream.flush()
                copy = open(os.dup(descriptor), "w", buffering=1, encoding="utf-8", closefd=True)
                self._owned.append(copy)
                return copy
        except (AttributeError, OSError, ValueError):  # pytest's capture, StringIO
            pass
        return stream

    def print(self, text):
        print(text, file=self.out, flush=True)

    def progress(self, text):
        """Progress goes to stdout, so that stderr holds nothing but an error."""
        self._line_open = not text.endswith("\n")
        print(text, end="", file=self.out, flush=True)

    def end_progress(self):
        """Closes an open progress line before an error is reported."""
        if self._line_open:
            self.progress(" failed\n")

    def close(self):
        for stream in self._owned:
            stream.close()


if __name__ == "__main__":
    sys.exit(main())
