"""Every notebook in notebooks/ runs top to bottom in a fresh kernel.

The notebooks check their own claims with `assert` (mu computed by hand
equals the model's, gradients flow through the reparameterized sample, the
int8 LiteRT encoder agrees with Keras, generated digits are the requested
class), so running them is a test of those claims. Each runs in a temporary
working directory; what it writes stays there.
"""

import pathlib

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = pathlib.Path(__file__).resolve().parent.parent / "notebooks"
EXPECTED = ["conditional_digits.ipynb", "digits_to_edge.ipynb", "what_the_encoder_computes.ipynb"]


def test_the_notebooks_are_there_and_committed_without_outputs():
    assert sorted(path.name for path in NOTEBOOKS.glob("*.ipynb")) == EXPECTED
    for name in EXPECTED:
        notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
        nbformat.validate(notebook)
        assert notebook.metadata.kernelspec.name == "python3"
        for cell in notebook.cells:
            if cell.cell_type == "code":
                assert cell.outputs == [] and cell.execution_count is None, f"{name}: clear the outputs"


@pytest.mark.parametrize("name", EXPECTED)
def test_notebook_runs_top_to_bottom(name, tmp_path):
    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
    # A generous startup_timeout: on a busy 2-core machine the kernel can take a while to come up.
    client = NotebookClient(notebook, timeout=300, startup_timeout=180, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}})
    client.execute()  # raises CellExecutionError, with the cell and traceback, if any cell fails

    outputs = [output for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs]
    assert not [output for output in outputs if output.output_type == "error"]
    # Figures are displayed as images, not as "<Figure size ...>" text.
    images = [output for output in outputs if "image/png" in output.get("data", {})]
    assert len(images) >= 3, name
    if name == "digits_to_edge.ipynb":
        assert (tmp_path / "digits_to_edge" / "encoder_int8.tflite").stat().st_size > 0
        assert (tmp_path / "digits_to_edge" / "saved_model" / "saved_model.pb").exists()
