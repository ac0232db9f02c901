"""export.describe: the export folder's FILES.md / files.json match the files, and docs/phone.md is generated.

The checks here read the files independently of `export.describe` (the flatbuffer through the schema
`ai_edge_litert` ships, the interpreter's details), so a table that drifted from its files fails.
"""

import json
import pathlib

import numpy as np
import pytest
from ai_edge_litert import schema_py_generated as schema
from ai_edge_litert.interpreter import Interpreter

from conftest import TINY_EXPORT_FILES
from export import _files_md, _litert, _phone_page, describe, metadata

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _min_runtime_version(content):
    model = schema.Model.GetRootAs(bytearray(content), 0)
    for index in range(model.MetadataLength()):
        entry = model.Metadata(index)
        if entry.Name() == b"min_runtime_version":
            return bytes(model.Buffers(entry.Buffer()).DataAsNumpy()).split(b"\0")[0].decode()
    return None


def test_the_exporter_leaves_a_table_of_its_files_that_matches_them(tiny_export):
    _, _, folder = tiny_export
    table = json.loads((folder / describe.FILES_JSON).read_text())
    assert (folder / describe.FILES_MD).read_text() == _files_md.render(table)
    assert [row["file"] for row in table["files"]] == sorted(name for name, _, _ in TINY_EXPORT_FILES)
    for row in table["files"]:
        content = (folder / row["file"]).read_bytes()
        info = metadata.read(folder / row["file"])
        interpreter = Interpreter(model_content=content)
        assert row["size_bytes"] == len(content)
        assert row["ops"] == _litert.ops(content)
        assert row["min_runtime_version"] == _min_runtime_version(content)
        assert row["signatures"] == sorted(interpreter.get_signature_list())
        assert row["signature_runner_required"] == (len(row["signatures"]) > 1)
        for side, details in (("inputs", interpreter.get_input_details()),
                              ("outputs", interpreter.get_output_details())):
            assert [(t["position"], t["tensor_index"], t["name"], t["dtype"], t["shape"]) for t in row[side]] == [
                (k, d["index"], d["name"], np.dtype(d["dtype"]).name, list(d["shape_signature"]))
                for k, d in enumerate(details)]
            assert all(t["resizable_dims"] == [0] for t in row[side])  # the batch, and only it
        assert row["score_thresholds"] == info["score_thresholds"]["by_false_positive_rate"]
        if "x" in [name for spec in info["signatures"].values() for name in spec["inputs"]]:
            assert row["raw_input"]["range"] == [0.0, 16.0] and row["raw_input"]["binarized_above_raw"] == 8.0
        else:
            assert row["raw_input"] is None


def test_the_table_states_micro_support_from_its_kernels_input_types(tiny_export):
    _, _, folder = tiny_export
    rows = {row["file"]: row for row in describe.table(folder)["files"]}
    # Every file's ops run on types Micro's kernels accept: the int8 files keep the score's density terms
    # (EXP, LOG) in float32, which is what makes them Micro-compatible ...
    for name, row in rows.items():
        assert row["tflm"] == {**row["tflm"], "supported": True, "refused": [], "unchecked": []}, name
    # ... an int8 EXP would be refused: TFLM's EXP kernel accepts float32 only (tflite-micro exp.cc).
    refused = describe.tflm_support([("EXP", ["int8"])])
    assert refused["supported"] is False and refused["refused"][0].startswith("EXP on int8")
    for row in rows.values():
        assert isinstance(row["gpu_delegate"]["compatible"], bool)


def test_micro_support_is_unchecked_not_guessed_for_an_op_outside_the_kernel_table():
    assert describe.tflm_support([("FULLY_CONNECTED", ["float32"]), ("UNKNOWN_OP", ["float32"])])["supported"] is None
    refused = describe.tflm_support([("LOG", ["int8"]), ("UNKNOWN_OP", ["float32"])])
    assert refused["supported"] is False and refused["refused"] == [
        "LOG on int8 (its kernel, elementwise.cc, accepts float32)"]
    assert describe.tflm_support([("REDUCE_ANY", ["bool"])])["refused"] == ["REDUCE_ANY (Micro has no kernel for it)"]


def test_probes_score_what_a_phone_may_send_by_mistake(tiny_export):
    _, _, folder = tiny_export
    rows = {row["file"]: row for row in describe.table(folder)["files"]}
    assert rows["encoder.tflite"]["probes"] is None
    runner = Interpreter(model_path=str(folder / "score.tflite")).get_signature_runner("score")
    threshold = metadata.read(folder / "score.tflite")["score_thresholds"]["by_false_positive_rate"]["0.01"]
    blank, full = np.zeros((1, 64), np.float32), np.full((1, 64), 16.0, np.float32)
    probes = {probe["input"]: probe for probe in rows["score.tflite"]["probes"]}
    for words, row in (("every feature at the raw minimum (a blank image)", blank),
                       ("every feature at the raw maximum (a full image)", full)):
        score = float(runner(x=row)["score"][0])
        assert probes[words]["score"] == pytest.approx(score, rel=1e-6)
        assert probes[words]["flagged"] == (score > threshold)


def test_docs_phone_md_is_the_renderers_output_of_the_committed_example():
    table = json.loads((ROOT / "docs" / "phone_files.json").read_text())
    assert (ROOT / "docs" / "phone.md").read_text() == _phone_page.phone_doc(table)


def test_the_command_that_regenerates_docs_phone_md_writes_it(tmp_path, capsys):
    # `python -m export.describe docs/phone_files.json docs/phone.md`, as the page's first lines say
    assert describe.main([str(ROOT / "docs" / "phone_files.json"), str(tmp_path / "phone.md")]) == 0
    assert (tmp_path / "phone.md").read_text() == (ROOT / "docs" / "phone.md").read_text()
    assert describe.main([]) == 2 and "usage: python -m export.describe" in capsys.readouterr().err


def test_the_committed_example_has_the_columns_the_generator_writes_today(tiny_export):
    _, _, folder = tiny_export
    table = json.loads((ROOT / "docs" / "phone_files.json").read_text())
    today = describe.table(folder)
    assert table["table_version"] == today["table_version"]
    assert [sorted(row) for row in table["files"]] == [sorted(row) for row in today["files"]]
    assert [row["file"] for row in table["files"]] == [row["file"] for row in today["files"]]


def test_the_wrong_shapes_of_docs_phone_md_fail_as_it_says(tiny_export):
    _, _, folder = tiny_export
    for shape in ((1, 63), (8, 8)):
        plain = Interpreter(model_path=str(folder / "score_int8.tflite"))
        plain.allocate_tensors()
        with pytest.raises(ValueError, match="Cannot set tensor: Dimension mismatch"):
            plain.set_tensor(plain.get_input_details()[0]["index"], np.zeros(shape, np.float32))
        runner = Interpreter(model_path=str(folder / "score_int8.tflite")).get_signature_runner("score")
        with pytest.raises(RuntimeError, match="XNNPack delegate failed to reshape"):
            runner(x=np.zeros(shape, np.float32))
    plain = Interpreter(model_path=str(folder / "score_int8.tflite"))
    plain.allocate_tensors()
    with pytest.raises(ValueError, match="Got value of type FLOAT64 but expected type FLOAT32"):
        plain.set_tensor(plain.get_input_details()[0]["index"], np.zeros((1, 64)))
