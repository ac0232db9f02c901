"""Benchmark pages are the renderer's output of their stored JSON (bench/render.py), never hand-edited."""

import importlib.util
import json
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("bench_render", ROOT / "bench" / "render.py")
render = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(render)

RESULTS = sorted((ROOT / "bench" / "results").glob("*.json"))


def test_bench_run_has_a_result():
    assert ROOT / "bench" / "results" / "run.json" in RESULTS


@pytest.mark.parametrize("path", RESULTS, ids=lambda path: path.stem)
def test_page_equals_the_rendering_of_its_json(path):
    result = json.loads(path.read_text())
    page = ROOT / render.page_path(path.stem)
    assert page.exists(), f"{path.name} has no page: run `python bench/render.py`"
    assert page.read_text() == render.render(result, path.stem), \
        f"{page.relative_to(ROOT)} differs from its JSON: run `python bench/render.py`, never edit the page"
    for section in result["sections"]:
        if section.get("image"):
            link = render.image_link(section["image"], render.page_path(path.stem))
            assert (page.parent / link).is_file(), f"{page.name} links to a missing image {link}"


def test_no_generated_page_without_json():
    assert render.differences(ROOT) == []


def _result(**sections):
    return {"title": "T", "command": "python bench/t.py", "date": "2026-01-01", "commit": "abc", "machine": "m",
            "versions": {"b": "2", "a": "1"}, "sections": [sections]}


def test_render_is_deterministic_and_formats_cells():
    table = {"columns": ["case", "x", "ratio"], "rows": [["a|b", 1.23456, "5.3x"], ["c", None, "2.0x (XLA)"],
                                                         ["d", 12345.6, ""]]}
    result = _result(heading="Speed", text="Some text.", table=table, image="docs/benchmarks/t.png")
    text = render.render(result, "t")
    assert text == render.render(json.loads(json.dumps(result)), "t")
    assert text.startswith(render.MARK)
    assert "Versions: a 1, b 2" in text
    assert ("| case | x | ratio |\n| --- | ---: | ---: |\n| a\\|b | 1.235 | 5.3x |\n| c |  | 2.0x (XLA) |\n"
            "| d | 12,346 |  |") in text
    assert "![Speed](t.png)" in text
    assert render.image_link("benchmarks.png", "docs/benchmarks.md") == "benchmarks.png"


def test_render_names_what_is_wrong():
    with pytest.raises(ValueError, match="lacks"):
        render.render({"title": "T"}, "t")
    with pytest.raises(ValueError, match="expected 2"):
        render.render(_result(heading="h", table={"columns": ["a", "b"], "rows": [[1]]}), "t")


def test_check_finds_an_edited_page(tmp_path):
    (tmp_path / "bench" / "results").mkdir(parents=True)
    (tmp_path / "bench" / "results" / "t.json").write_text(json.dumps(_result(heading="h", text="x")))
    assert render.differences(tmp_path) == ["docs/benchmarks/t.md: missing"]
    render.write_page("t", render.results(tmp_path)["t"], tmp_path)
    assert render.differences(tmp_path) == []
    page = tmp_path / "docs" / "benchmarks" / "t.md"
    page.write_text(page.read_text() + "edited\n")
    assert render.differences(tmp_path) == ["docs/benchmarks/t.md: differs from its JSON's rendering"]
    (tmp_path / "bench" / "results" / "t.json").unlink()
    assert render.differences(tmp_path) == ["docs/benchmarks/t.md: generated, but bench/results holds no JSON for it"]
