"""The README's code runs, its commands parse, its links resolve.

Every ```python block of README.md is executed in a temporary working
directory, in order, on the settings written there except for the ones in
`TINY` (150 training epochs become 2, 1000 importance samples 10), so that
the test is quick; `--run-slow` runs them exactly as written. Every
`tfvae` / `tfvae-export` command in a ```bash block must parse with the
command's own argument parser, and the slow test runs the quick start's
commands on tiny settings.
"""

import pathlib
import re
import shlex

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DOCS = sorted((ROOT / "docs").glob("*.md"))

# README text -> what the quick test runs instead. Each must occur in the README.
TINY = {
    "model.fit(x_train, epochs=150,": "model.fit(x_train, epochs=2,",
    "tfvae.evaluate(model, x_test)": "tfvae.evaluate(model, x_test, num_samples=10)",
}


def _blocks(path, language):
    return re.findall(rf"^```{language}\n(.*?)^```", path.read_text(), flags=re.MULTILINE | re.DOTALL)


def _commands(text):
    """Shell commands of a bash block: one per line and per `&&`, comments dropped."""
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        for command in filter(None, (part.strip() for part in line.split("&&"))):
            yield shlex.split(command)


def test_set_up_commands_are_in_the_first_30_lines_and_are_what_ci_runs():
    head = "\n".join(README.read_text().splitlines()[:30])
    setup = re.search(r"```bash\n(.*?)```", head, flags=re.DOTALL)
    assert setup, "no ```bash block in the README's first 30 lines"
    commands = [" ".join(command) for command in _commands(setup.group(1))]
    assert commands == ['pip install -e .[test]', "pytest"]
    ci = (ROOT / ".ci" / "run").read_text().strip().splitlines()[-1]
    assert ci == 'pip install -e ".[test]" && pytest'


def test_readme_is_short():
    assert len(README.read_text().splitlines()) <= 200


@pytest.mark.parametrize("path", [README] + DOCS, ids=lambda path: path.name)
def test_relative_links_resolve(path):
    text = path.read_text()
    links = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text)
    local = [link for link in links if not re.match(r"[a-z]+:", link)]
    assert local or path != README
    missing = [link for link in local if not (path.parent / link).exists()]
    assert missing == [], f"{path.name} links to missing files"


def _tfvae_parser(program):
    if program == "tfvae":
        from tfvae.cli import build_parser
    else:
        from export.cli import build_parser
    return build_parser()


def _readme_commands():
    return [command for block in _blocks(README, "bash") for command in _commands(block)
            if command[0] in ("tfvae", "tfvae-export")]


def test_readme_commands_parse():
    commands = _readme_commands()
    assert {command[0] for command in commands} == {"tfvae", "tfvae-export"}
    for command in commands:
        _tfvae_parser(command[0]).parse_args(command[1:])  # exits with status 2 on an unknown option


def _run_python_blocks(tiny):
    source = "\n".join(_blocks(README, "python"))
    if tiny:
        for written, quick in TINY.items():
            assert written in source, f"the README no longer says {written!r}: update TINY"
            source = source.replace(written, quick)
    exec(compile(source, str(README), "exec"), {"__name__": "readme"})


def test_readme_python_runs_on_tiny_settings(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _run_python_blocks(tiny=True)
    assert (tmp_path / "digits.keras").stat().st_size > 0


@pytest.mark.slow
def test_readme_python_runs_as_written(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _run_python_blocks(tiny=False)
    assert (tmp_path / "digits.keras").stat().st_size > 0


@pytest.mark.slow
def test_readme_quick_start_commands_run(tmp_path, monkeypatch):
    """`tfvae train`, `tfvae evaluate`, `tfvae-export all` in one folder, 1 epoch and k = 10."""
    monkeypatch.chdir(tmp_path)
    quick_start = next(block for block in _blocks(README, "bash") if block.startswith("tfvae train "))
    for command in _commands(quick_start):
        if command[:2] == ["tfvae", "train"]:
            command += ["--epochs", "1"]
        if command[:2] == ["tfvae", "evaluate"]:
            command += ["--num-samples", "10"]
        if command[0] == "tfvae":
            from tfvae.cli import main
        else:
            from export.cli import main
        assert main(command[1:]) in (0, None), command
    assert (tmp_path / "runs" / "digits" / "evaluation.json").exists()
    assert (tmp_path / "runs" / "digits" / "export" / "saved_model" / "saved_model.pb").exists()
