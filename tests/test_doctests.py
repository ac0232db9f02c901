"""Every example in tfvae's and export's docstrings runs and prints what it says.

Each example is self-contained: it imports what it uses and builds (and, where it needs one,
trains for an epoch or two) the tiny model, run folder or export it talks about, so a reader can
paste it. Each docstring's examples run as in a reader's fresh session: in an empty folder, with
no name defined but those they import. None is skipped, and every `>>>` line of the source runs
(decorated functions' included).
"""
import doctest
import importlib
import inspect
import pathlib
import pkgutil
import re

import pytest

import export
import tfvae

FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


def _modules():
    names = []
    for package in (tfvae, export):
        names.append(package.__name__)
        for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
            if not info.name.endswith("__main__"):  # importing it runs the CLI
                names.append(info.name)
    return sorted(names)


def _examples(module_name):
    module = importlib.import_module(module_name)
    finder = doctest.DocTestFinder(exclude_empty=True)
    tests = {test.name: test for test in finder.find(module, module_name)}
    # DocTestFinder misses a decorated function (`contextlib.contextmanager`) or places it at a line of the
    # decorator's module: the wrapper's code is the decorator's. Its docstring is this module's all the same.
    for name, value in vars(module).items():
        original = inspect.unwrap(value) if inspect.isfunction(value) else value
        if original is not value and getattr(original, "__globals__", None) is vars(module):
            tests.update({test.name: test for test in finder.find(original, f"{module_name}.{name}", module=module)})
    return [test for test in tests.values() if test.examples
            and getattr(test, "lineno", None) is not None and _defined_here(test, module)]


def _defined_here(test, module):
    # DocTestFinder follows names a module imports from elsewhere only when they report this module.
    return test.filename == getattr(module, "__file__", None)


MODULES = [name for name in _modules() if _examples(name)]


def test_the_packages_have_examples_to_run():
    assert len(MODULES) >= 20, MODULES


@pytest.mark.parametrize("module_name", MODULES)
def test_docstring_examples_run(module_name, tmp_path, monkeypatch):
    runner = doctest.DocTestRunner(optionflags=FLAGS)
    for index, test in enumerate(_examples(module_name)):
        # What a reader's fresh session holds: an empty folder, and no name but those the example imports.
        folder = tmp_path / str(index)
        folder.mkdir()
        monkeypatch.chdir(folder)
        test.globs = {"__name__": "__main__"}
        runner.run(test)
    result = runner.summarize(verbose=False)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples in {module_name} failed (output above)"


def test_no_example_is_skipped():
    skipped = [f"{test.name} (line {test.lineno + example.lineno + 1})" for name in MODULES
               for test in _examples(name) for example in test.examples if example.options.get(doctest.SKIP)]
    assert skipped == [], "examples marked +SKIP (rewrite them to run): " + ", ".join(skipped)


def test_every_example_in_the_source_runs():
    missed = {}
    for module_name in _modules():
        source = pathlib.Path(importlib.import_module(module_name).__file__).read_text()
        written = len(re.findall(r"^\s*>>> ", source, re.MULTILINE))
        found = sum(len(test.examples) for test in _examples(module_name))
        if found != written:
            missed[module_name] = f"{written} example lines in the source, {found} found to run"
    assert missed == {}, missed
