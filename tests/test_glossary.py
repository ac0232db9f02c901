"""docs/glossary.md: every link to one of its entries lands on an entry, and the words are linked.

The README, the docs and the notebooks link a term at its first use to
`docs/glossary.md#entry`; a renamed heading would leave those links
pointing nowhere on GitHub, which no file-level link check notices.
"""

import pathlib
import re

import nbformat
import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
GLOSSARY = ROOT / "docs" / "glossary.md"
LEARNER_NOTEBOOKS = ["what_the_encoder_computes.ipynb", "why_the_vae_is_built_this_way.ipynb",
                     "reading_the_latent.ipynb"]


def _anchor(heading):
    """GitHub's anchor for a Markdown heading: lower case, punctuation dropped, spaces as hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def _anchors():
    return {_anchor(line[3:]) for line in GLOSSARY.read_text().splitlines() if line.startswith("## ")}


def _documents():
    """(name, Markdown text) of the README, each docs page and each learner notebook's Markdown cells."""
    yield "README.md", (ROOT / "README.md").read_text()
    for path in sorted((ROOT / "docs").glob("*.md")):
        yield f"docs/{path.name}", path.read_text()
    for name in LEARNER_NOTEBOOKS:
        notebook = nbformat.read(ROOT / "notebooks" / name, as_version=4)
        yield name, "\n".join(cell.source for cell in notebook.cells if cell.cell_type == "markdown")


def test_anchor_follows_github():
    assert _anchor("KL divergence") == "kl-divergence"
    assert _anchor("TensorFlow's start-up lines") == "tensorflows-start-up-lines"
    assert _anchor("SavedModel, LiteRT, int8") == "savedmodel-litert-int8"


@pytest.mark.parametrize("name,text", list(_documents()), ids=[name for name, _ in _documents()])
def test_links_into_the_glossary_land_on_an_entry(name, text):
    anchors = _anchors()
    links = re.findall(r"\]\((?:\.\./docs/|docs/|)glossary\.md#([^)\s]+)\)", text)
    assert [link for link in links if link not in anchors] == [], name


@pytest.mark.parametrize("term", ["elbo", "nll", "bits-per-dimension", "active-units", "posterior", "prior",
                                  "reparameterization-trick", "kl-divergence", "xla", "beta", "free-bits",
                                  "kl-warm-up", "iwae", "nats", "anomaly-score", "tensorflows-start-up-lines"])
def test_the_readme_links_each_term_it_uses(term):
    assert term in _anchors()
    assert f"(docs/glossary.md#{term})" in (ROOT / "README.md").read_text()


@pytest.mark.parametrize("name", LEARNER_NOTEBOOKS)
def test_each_learner_notebook_links_the_glossary(name):
    text = dict(_documents())[name]
    assert "../docs/glossary.md#" in text
