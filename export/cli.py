"""The `tfvae-export` command (also `python -m export`): thin over `export`.

    tfvae-export saved-model MODEL.keras --out DIR [--data digits]
    tfvae-export tflite MODEL.keras --part encoder --quantize int8 --data digits --out FILE
    tfvae-export all RUN_DIR

`all` writes `RUN_DIR/export/`: `saved_model/`, `encoder.tflite` (float32),
`encoder_int8.tflite` and `decoder.tflite` (float32), each with its
metadata, and prints one table of sizes and parity. `--data` is a dataset
name (`digits`) or a `.npy/.npz/.csv` file of raw features: its training
split calibrates int8 models, its test split measures parity (split as
`tfvae train` did, with the run's seed from `run.json`). `all` defaults to
the run's own data.

Progress and results go to stdout; an error is one line on stderr, with exit
status 1 (2 for usage errors). TensorFlow's own log lines are hidden unless
`--verbose` is given.
"""

import argparse
import contextlib
import os
import pathlib
import sys
import tempfile
import time

from export import _data, _datasets
from tfvae import _atomic

PROG = "tfvae-export"
QUANTIZE_CHOICES = ("none", "float16", "dynamic", "int8")
#: The artifacts of `all`, inside RUN_DIR/export/: (file name, part, quantize).
ALL_TFLITE = (("encoder.tflite", "encoder", None), ("encoder_int8.tflite", "encoder", "int8"),
              ("decoder.tflite", "decoder", None))


class UsageError(Exception):
    """Bad command-line input, reported as one line with exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise UsageError(f"{message} (see {self.prog} --help)")


def build_parser():
    """The argument parser of `tfvae-export`."""
    parser = _Parser(prog=PROG, description="Export a trained tfvae model to SavedModel and LiteRT.")
    parser.add_argument("--verbose", action="store_true", help="show TensorFlow's logs and tracebacks")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    saved = commands.add_parser("saved-model", help="write a SavedModel directory with serving signatures")
    saved.add_argument("model", metavar="MODEL.keras")
    saved.add_argument("--out", required=True, metavar="DIR", help="the SavedModel directory to create")
    _add_common(saved, data_help="data for parity (its test split); default: synthetic rows")

    lite = commands.add_parser("tflite", help="write the encoder or decoder as a .tflite file")
    lite.add_argument("model", metavar="MODEL.keras")
    lite.add_argument("--out", required=True, metavar="FILE", help="the .tflite file to create")
    lite.add_argument("--part", choices=("encoder", "decoder"), default="encoder")
    lite.add_argument("--quantize", choices=QUANTIZE_CHOICES, default="none")
    lite.add_argument("--int8-io", action="store_true", help="int8 inputs and outputs (with --quantize int8)")
    _add_common(lite, data_help="calibration (train split) and parity (test split) data; required for int8")

    every = commands.add_parser("all", help="write SavedModel + encoder float32/int8 + decoder into RUN_DIR/export")
    every.add_argument("run_dir", metavar="RUN_DIR")
    _add_common(every, data_help="default: the run's data from RUN_DIR/run.json")
    return parser


def _add_common(parser, data_help):
    parser.add_argument("--data", help=f"a dataset name (digits) or a .npy/.npz/.csv of raw features; {data_help}")
    parser.add_argument("--overwrite", action="store_true", help="replace existing artifacts")
    parser.add_argument("--verbose", action="store_true", default=argparse.SUPPRESS,
                        help="show TensorFlow's logs and tracebacks")


def main(argv=None):
    """Runs the command; returns the exit status (0 ok, 1 export error, 2 usage error)."""
    terminal = _Terminal()
    args = None
    try:
        args = build_parser().parse_args(argv)
        plan = _plan(args)
        with _hide_native_logs(not args.verbose):
            return _run(args, plan, terminal)
    except SystemExit as exit_:  # --help
        return exit_.code or 0
    except UsageError as error:
        terminal.error(error)
        return 2
    except (ValueError, TypeError, OSError, RuntimeError) as error:
        if args is not None and args.verbose:
            raise
        terminal.error(error)
        return 1
    except Exception as error:  # noqa: BLE001 - one line, never a traceback, unless --verbose
        if args is not None and args.verbose:
            raise
        terminal.error(f"{type(error).__name__}: {error} (rerun with --verbose for the traceback)")
        return 1
    finally:
        terminal.close()


# ------------------------------------------------------------------ planning


def _plan(args):
    """Checks the arguments without TensorFlow; returns what to write."""
    if args.data is not None:
        _datasets.check_spec(args.data)
    if args.command == "all":
        run_dir = pathlib.Path(args.run_dir)
        model_path = run_dir / "model.keras"
        if not model_path.is_file():
            raise UsageError(f"no model.keras in {os.fspath(run_dir)!r}: pass the folder written by `tfvae train`")
        data = args.data or _datasets.run_options(model_path).get("data")
        if data is None:
            raise UsageError(f"cannot tell the data of {os.fspath(run_dir)!r} (no run.json): pass --data")
        try:
            _datasets.check_spec(data)
        except ValueError:
            raise UsageError(f"the run's data {data!r} (from run.json) is not available here: pass --data") from None
        out = run_dir / "export"
        targets = [out / "saved_model"] + [path for name, _, _ in ALL_TFLITE for path in _with_sidecar(out / name)]
        plan = {"model": model_path, "data": data, "out": out}
    else:
        model_path = pathlib.Path(args.model)
        if not model_path.is_file():
            raise UsageError(f"no such model file: {args.model!r} (expected a .keras file saved from a tfvae.VAE)")
        out = pathlib.Path(args.out)
        if args.command == "tflite":
            if out.suffix.lower() != ".tflite":
                raise UsageError(f"--out must end in .tflite, got {args.out!r}")
            if args.quantize == "int8" and args.data is None:
                raise UsageError("--quantize int8 needs --data (training examples to calibrate on), e.g. --data digits")
            if args.int8_io and args.quantize != "int8":
                raise UsageError("--int8-io needs --quantize int8")
            targets = _with_sidecar(out)
        else:
            targets = [out]
        plan = {"model": model_path, "data": args.data, "out": out}
    _atomic.check_targets(targets, args.overwrite)
    plan["seed"] = int(_datasets.run_options(plan["model"]).get("seed", 0))
    return plan


def _with_sidecar(path):
    return [path, pathlib.Path(os.fspath(path) + ".json")]


# ------------------------------------------------------------------- running


def _run(args, plan, terminal):
    import tfvae

    import export

    model = tfvae.load_model(plan["model"])  # names what is wrong with a missing or corrupt file
    train, test, source = (None, None, None)
    if plan["data"] is not None:
        train, test, source = _datasets.load(plan["data"], model, plan["seed"])
        for split in (train, test):
            _data.as_examples(model, split, "--data")  # a clear error before any work
    jobs = _jobs(args, plan, train, test)
    reports = []
    for number, (label, function, kwargs) in enumerate(jobs, 1):
        started = time.monotonic()
        terminal.progress(f"[{number}/{len(jobs)}] {label} -> {os.fspath(kwargs['path'])} ...")
        result = function(model, **kwargs, overwrite=args.overwrite)
        if source is not None:
            result.parity_data = f"{_rows(test)} rows of the {source} test split"
        terminal.progress(f" done ({time.monotonic() - started:.1f} s)\n")
        reports.append(result)
    if args.command == "all":
        terminal.print(export.format_table(reports))
        calibration = f"; int8 calibrated on {_rows(train)} rows of its train split" if train is not None else ""
        terminal.print(f"parity on {reports[0].parity_data}{calibration}. Artifacts in {os.fspath(plan['out'])}")
    else:
        terminal.print(str(reports[0]))
    return 0


def _jobs(args, plan, train, test):
    import export

    if args.command == "saved-model":
        return [("SavedModel", export.saved_model, {"path": plan["out"], "parity_data": test})]
    if args.command == "tflite":
        quantize = None if args.quantize == "none" else args.quantize
        options = {"path": plan["out"], "part": args.part, "quantize": quantize, "int8_io": args.int8_io,
                   "representative_data": train if quantize == "int8" else None, "parity_data": test}
        return [(f"{args.part} {quantize or 'float32'}", export.tflite, options)]
    jobs = [("SavedModel", export.saved_model, {"path": plan["out"] / "saved_model", "parity_data": test})]
    for name, part, quantize in ALL_TFLITE:
        options = {"path": plan["out"] / name, "part": part, "quantize": quantize, "parity_data": test,
                   "representative_data": train if quantize == "int8" else None}
        jobs.append((f"{part} {quantize or 'float32'}", export.tflite, options))
    return jobs


def _rows(data):
    return len(data[0]) if isinstance(data, tuple) else len(data)


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

    def error(self, error):
        if self._line_open:
            self.progress(" failed\n")
        message = " ".join(str(error).split()) or type(error).__name__
        print(f"{PROG}: error: {message}", file=self.err, flush=True)

    def close(self):
        for stream in self._owned:
            stream.close()


@contextlib.contextmanager
def _hide_native_logs(enabled):
    """Sends file descriptors 1 and 2 to a scratch file: TensorFlow's C++ logs and converter chatter."""
    if not enabled:
        yield
        return
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    saved = [os.dup(1), os.dup(2)]
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 1)
        os.dup2(sink.fileno(), 2)
        try:
            yield
        finally:
            for stream in (sys.stdout, sys.stderr):
                try:
                    stream.flush()
                except (OSError, ValueError):
                    pass
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for descriptor in saved:
                os.close(descriptor)


if __name__ == "__main__":
    sys.exit(main())
