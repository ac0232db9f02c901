"""The C++ metadata reader (export/reader, issue 42 item 3): built with flatc and g++, it prints what Python reads.

Needs Debian's flatbuffers-compiler, libflatbuffers-dev and g++ (`.ci/run` installs them). Outside CI
the tests skip, saying what is missing; in CI a missing tool fails them.
"""

import json
import pathlib
import shutil
import subprocess

import pytest

from conftest import in_ci
from export import metadata

# Compiles C++ and starts processes: slow, run by CI.
pytestmark = pytest.mark.slow

READER = pathlib.Path(metadata.__file__).with_name("reader")
HEADER = pathlib.Path("/usr/include/flatbuffers/idl.h")


@pytest.fixture(scope="module")
def read_metadata(tmp_path_factory):
    missing = [tool for tool in ("flatc", "g++") if shutil.which(tool) is None]
    missing += [] if HEADER.is_file() else [f"{HEADER} (libflatbuffers-dev)"]
    if missing:
        message = (f"the C++ reader needs {', '.join(missing)}: apt-get install flatbuffers-compiler "
                   "libflatbuffers-dev g++ (.ci/run does)")
        if in_ci():
            pytest.fail(message)
        pytest.skip(message)
    out = tmp_path_factory.mktemp("reader")
    done = subprocess.run(["sh", str(READER / "build.sh"), str(out)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return out / "read_metadata"


def _lines(stdout):
    return dict(line.split(" ", 1) for line in stdout.splitlines())


def test_the_cpp_reader_prints_what_python_reads(read_metadata, tiny_export):
    _, _, folder = tiny_export
    for name in ("vae_int8.tflite", "encoder.tflite"):
        done = subprocess.run([str(read_metadata), str(folder / name)], capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        printed = _lines(done.stdout)
        info = metadata.read(folder / name)
        assert json.loads(printed["json"]) == info
        assert printed["format"] == info["format"] and int(printed["format_version"]) == info["format_version"]
        assert printed["file"] == name
        assert printed["signature_runner_required"] == json.dumps(info["signature_runner_required"])
        for key, value in info["model"]["preprocessing"].items():
            assert float(printed[f"preprocessing.{key}"]) == value, key
        thresholds = info["score_thresholds"]
        assert {key: float(value) for key, value in printed.items() if key.startswith("score_thresholds.0")} == {
            f"score_thresholds.{rate}": value for rate, value in thresholds["by_false_positive_rate"].items()}
        assert printed["score_thresholds.rule"] == thresholds["rule"]


def test_the_cpp_reader_says_what_is_wrong_with_a_file_that_is_not_a_model(read_metadata, tmp_path):
    path = tmp_path / "notes.tflite"
    path.write_text("not a model")
    done = subprocess.run([str(read_metadata), str(path)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert done.stdout == "" and "is not a TensorFlow Lite model" in done.stderr
