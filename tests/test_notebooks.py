"""Every notebook in notebooks/ runs top to bottom in a fresh kernel.

The notebooks check their own claims with `assert` (mu and log sigma
computed by hand equal the model's, dz/dmu = 1 and dz/dsigma = epsilon, the
int8 LiteRT encoder agrees with Keras, generated digits are the requested
class), so running them is a test of those claims. Each runs in a temporary
working directory; what it writes stays there.

A notebook is committed either without outputs or with the outputs of one
run from top to bottom (the three learner notebooks are, so that they read
on GitHub). Neither the committed outputs nor a fresh run's may hold
TensorFlow's native log lines: `import tfvae` does not hide them (a library
must not hide its user's errors), so each notebook quiets TensorFlow itself
in its first cell.
"""

import pathlib
import re

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = pathlib.Path(__file__).resolve().parent.parent / "notebooks"
EXPECTED = ["conditional_digits.ipynb", "digits_to_edge.ipynb", "reading_the_latent.ipynb",
            "what_the_encoder_computes.ipynb", "why_the_vae_is_built_this_way.ipynb"]
# The learner notebooks: each answers its questions with printed and plotted outputs, so it is
# committed with the outputs of one run.
COMMITTED_WITH_OUTPUTS = ["reading_the_latent.ipynb", "what_the_encoder_computes.ipynb",
                          "why_the_vae_is_built_this_way.ipynb"]
# Figures each notebook must display as images (not as "<Figure size ...>" text).
MIN_IMAGES = {"conditional_digits.ipynb": 3, "digits_to_edge.ipynb": 3, "reading_the_latent.ipynb": 2,
              "what_the_encoder_computes.ipynb": 2, "why_the_vae_is_built_this_way.ipynb": 1}

# What TensorFlow's C++ runtime and absl write to stderr: glog-style lines
# ("I0000 00:00:1796119975.664150 6502 cudart_stub.cc:31] Could not find cuda
# drivers ..."), absl's preamble, the oneDNN notice; the TFLite converter's
# settings and LiteRT's delegate notice; TensorFlow's and absl's Python log
# lines ("INFO:tensorflow:Assets written to ..."). Any line naming oneDNN or CUDA counts too:
# no notebook has a reason to print either.
NATIVE_LOG = re.compile(
    r"^[IWEF]\d{4} \d\d:\d\d:\d\d\.\d+ +\d+ \S+:\d+\]"
    r"|absl::InitializeLog|cuda|CUDA|cuInit|cuDNN|cuBLAS|cuFFT"
    r"|oneDNN|TF_ENABLE_ONEDNN_OPTS|This TensorFlow binary is optimized"
    r"|^fully_quantize: |^INFO: Created TensorFlow Lite|^(INFO|WARNING|ERROR):(tensorflow|absl):",
    re.MULTILINE,
)


def _texts(notebook):
    """Every piece of text a reader sees in the outputs: streams, tracebacks and plain-text results."""
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            if output.output_type == "stream":
                yield output.text
            elif output.output_type == "error":
                yield "\n".join(output.traceback)
            else:
                yield output.get("data", {}).get("text/plain", "")


def _native_log_lines(notebook):
    return [line for text in _texts(notebook) for line in text.splitlines() if NATIVE_LOG.search(line)]


def test_the_pattern_finds_what_tensorflow_writes():
    # Lines as TensorFlow 2.21 wrote them into a notebook's first cell before the notebooks quieted it.
    written = (
        "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
        "I0000 00:00:1796119975.664150    6502 cudart_stub.cc:31] Could not find cuda drivers on your machine, "
        "GPU will not be used.\n"
        "E0000 00:00:1796119900.242072    5211 cuda_platform.cc:52] failed call to cuInit: INTERNAL\n"
        "WARNING:absl:Compiled the loaded model, but the compiled metrics have yet to be built.\n"
        "INFO:tensorflow:Assets written to: digits_to_edge/.saved_model.tmp-2c47a9fe/assets\n"
        "fully_quantize: 0, inference_type: 6, input_inference_type: FLOAT32, output_inference_type: FLOAT32\n"
        "INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\n"
        "oneDNN custom operations are on. You may see slightly different numerical results due to floating-point "
        "round-off errors from different computation orders. To turn them off, set the environment variable "
        "`TF_ENABLE_ONEDNN_OPTS=0`.\n"
        "Unable to register cuDNN factory: Attempting to register factory for plugin cuDNN when one has already "
        "been registered\n"
    )
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(outputs=[
        nbformat.v4.new_output("stream", name="stderr", text=written),
        nbformat.v4.new_output("stream", name="stdout", text="mu1 != mu2\nsigma = exp(log sigma)\n"),
    ])])
    assert len(_native_log_lines(notebook)) == 9


def test_the_notebooks_are_there_and_committed_cleanly():
    assert sorted(path.name for path in NOTEBOOKS.glob("*.ipynb")) == EXPECTED
    for name in EXPECTED:
        notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
        nbformat.validate(notebook)
        assert notebook.metadata.kernelspec.name == "python3"
        counts = [cell.execution_count for cell in notebook.cells if cell.cell_type == "code"]
        if name in COMMITTED_WITH_OUTPUTS:
            # One run from top to bottom in one kernel: no stale or re-run cells.
            assert counts == list(range(1, len(counts) + 1)), f"{name}: re-execute it top to bottom"
            assert not [output for cell in notebook.cells for output in cell.get("outputs", [])
                        if output.output_type == "error"], name
        else:
            assert counts == [None] * len(counts), f"{name}: clear the outputs"
            assert all(cell.outputs == [] for cell in notebook.cells if cell.cell_type == "code"), name
        assert _native_log_lines(notebook) == [], name


@pytest.mark.slow
@pytest.mark.parametrize("name", EXPECTED)
def test_notebook_runs_top_to_bottom(name, tmp_path):
    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
    # A generous startup_timeout: on a busy 2-core machine the kernel can take a while to come up.
    client = NotebookClient(notebook, timeout=300, startup_timeout=180, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}})
    client.execute()  # raises CellExecutionError, with the cell and traceback, if any cell fails

    outputs = [output for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs]
    assert not [output for output in outputs if output.output_type == "error"]
    images = [output for output in outputs if "image/png" in output.get("data", {})]
    assert len(images) >= MIN_IMAGES[name], name
    assert _native_log_lines(notebook) == [], name
    if name == "digits_to_edge.ipynb":
        assert (tmp_path / "digits_to_edge" / "vae_int8.tflite").stat().st_size > 0
        assert (tmp_path / "digits_to_edge" / "saved_model" / "saved_model.pb").exists()
