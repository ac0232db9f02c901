"""The layering of docs/design.md, checked on the source.

- no import cycle among the modules of `tfvae/` and `export/` (every import
  statement, including those inside functions, read with `ast`);
- the core of `tfvae` never imports its apps (run folders, CLIs, resume),
  and `tfvae` never imports `export`;
- after importing every submodule, each module is a plain module: not
  callable, not of a swapped class, and not shadowed by a function of its
  name in its package;
- `tfvae._checks` loads without TensorFlow (artifact metadata and the LiteRT
  runner check input in processes that have none);
- no test asserts what cannot fail (`np.testing.assert_*(...) and ...`,
  `assert (condition, "message")`).
"""

import ast
import importlib
import pathlib
import re
import subprocess
import sys
import types

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
PACKAGES = ("tfvae", "export")

#: The applications built on the tfvae core: what `tfvae train` and the CLIs add.
APPS = frozenset({"tfvae.run", "tfvae.run_folder", "tfvae.resumable", "tfvae.cli", "tfvae._cli", "tfvae.__main__"})


def _module_files():
    """{module name: path} for every module of the packages (a package is its `__init__.py`)."""
    files = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            files[".".join(parts)] = path
    return files


MODULES = _module_files()


def _ours(name):
    """The module of ours that importing `name` loads, or None for a third-party name."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _imports(module, path):
    """[(line, imported module of ours)] for every import statement of `module`, at any depth."""
    tree = ast.parse(path.read_text(), str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, _ours(alias.name)) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # from . import x, from ..y import z
                parts = package.split(".")
                parent = ".".join(parts[: len(parts) - node.level + 1])
                base = f"{parent}.{base}" if base else parent
            for alias in node.names:
                # `from tfvae import _checks` imports the submodule; `from tfvae import VAE` the package.
                submodule = f"{base}.{alias.name}"
                found.append((node.lineno, submodule if submodule in MODULES else _ours(base)))
    return [(line, imported) for line, imported in found if imported and imported != module]


GRAPH = {module: _imports(module, path) for module, path in MODULES.items()}


def _where(module, imported):
    lines = [line for line, name in GRAPH[module] if name == imported]
    return f"{MODULES[module].relative_to(ROOT)}:{lines[0]}"


def test_no_module_is_over_450_lines():
    # One job per module (docs/design.md): a module past 450 lines holds more than one.
    long = {str(path.relative_to(ROOT)): count for path in MODULES.values()
            if (count := len(path.read_text().splitlines())) > 450}
    assert long == {}, long


def test_the_packages_are_found():
    assert {"tfvae", "tfvae.vae", "tfvae._checks", "export"} <= set(MODULES)
    assert any(imported == "tfvae._checks" for _, imported in GRAPH["tfvae.vae"])


def _cycle(graph):
    """One import cycle as a list of modules [a, b, ..., a], or None (depth-first search)."""
    state = {}  # module -> "open" while on the current path, "done" after
    path = []

    def visit(module):
        state[module] = "open"
        path.append(module)
        for _, imported in graph[module]:
            if state.get(imported) == "open":
                return path[path.index(imported):] + [imported]
            if imported not in state:
                cycle = visit(imported)
                if cycle:
                    return cycle
        path.pop()
        state[module] = "done"
        return None

    for module in sorted(graph):
        if module not in state:
            cycle = visit(module)
            if cycle:
                return cycle
    return None


def test_the_cycle_finder_finds_a_cycle():
    graph = {"a": [(1, "b")], "b": [(1, "c")], "c": [(1, "a")], "d": [(1, "a")]}
    assert _cycle(graph) == ["a", "b", "c", "a"]
    assert _cycle({"a": [(1, "b")], "b": [], "c": [(1, "a"), (2, "b")]}) is None


def test_no_import_cycle():
    cycle = _cycle(GRAPH)
    assert cycle is None, "import cycle: " + " -> ".join(
        f"{module} ({_where(module, imported)})" for module, imported in zip(cycle, cycle[1:])
    ) + f" -> {cycle[-1]}"


def test_the_core_never_imports_the_apps():
    core = sorted(module for module in MODULES if module.startswith("tfvae") and module not in APPS)
    wrong = [
        f"{module} imports the app {imported} ({_where(module, imported)})"
        for module in core for _, imported in GRAPH[module] if imported in APPS
    ]
    assert not wrong, wrong
    assert APPS <= set(MODULES), f"apps not found (renamed? update APPS): {sorted(APPS - set(MODULES))}"


def test_tfvae_never_imports_export():
    wrong = [
        f"{module} imports {imported} ({_where(module, imported)})"
        for module in MODULES if module.startswith("tfvae")
        for _, imported in GRAPH[module] if imported.split(".")[0] == "export"
    ]
    assert not wrong, wrong


def test_every_module_is_a_plain_module_and_its_name_means_one_thing():
    # `__main__` modules run their command when imported.
    for name in sorted(MODULES):
        if not name.endswith("__main__"):
            importlib.import_module(name)
    for name, module in sorted(sys.modules.items()):
        if name.split(".")[0] not in PACKAGES:
            continue
        assert type(module) is types.ModuleType, f"{name} is of class {type(module).__qualname__}"
        assert not callable(module), f"{name} is callable"
        package, _, attribute = name.rpartition(".")
        if package:
            value = getattr(sys.modules[package], attribute)
            assert value is module, f"{package}.{attribute} is {value!r}, not the module {name}"


#: Run in a fresh interpreter where TensorFlow, Keras and TFP cannot be imported.
WITHOUT_TENSORFLOW = """
import sys

class Absent:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("tensorflow", "keras", "tensorflow_probability"):
            raise ImportError(f"{name} is not installed here")

sys.meta_path.insert(0, Absent())
import tfvae._checks as checks
print(checks.class_ids("labels", [0, 1], 2), checks.float_array("x", [[1.0]], (1,)).dtype)
"""


@pytest.mark.slow
def test_checks_load_without_tensorflow():
    done = subprocess.run([sys.executable, "-c", WITHOUT_TENSORFLOW], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["[0", "1]", "float32"], done.stdout



def _assertions_that_cannot_fail(source, filename):
    """[(line, why)] for asserts that are true whatever the code does.

    `np.testing.assert_*(...) and ...` never evaluates the right side
    (assert_* returns None), and `assert (condition, "message")` asserts a
    non-empty tuple.
    """
    found = []
    for node in ast.walk(ast.parse(source, filename)):
        if isinstance(node, ast.BoolOp):
            for value in node.values[:-1]:
                if isinstance(value, ast.Call) and getattr(value.func, "attr", "").startswith("assert_"):
                    found.append((value.lineno, f"{value.func.attr}(...) in `and`/`or`: what follows never runs"))
        elif isinstance(node, ast.Assert) and isinstance(node.test, ast.Tuple) and node.test.elts:
            found.append((node.lineno, "assert on a tuple is always true"))
    return sorted(found)


def test_the_finder_of_assertions_that_cannot_fail_finds_them():
    source = (
        "np.testing.assert_allclose(a, 0) and np.testing.assert_allclose(b, 1)\n"
        "assert (x == 1, 'message')\n"
        "np.testing.assert_allclose(a, 0)\nassert x == 1, 'message'\n"
    )
    assert [line for line, _ in _assertions_that_cannot_fail(source, "example.py")] == [1, 2]


def test_no_test_asserts_what_cannot_fail():
    found = [
        f"{path.name}:{line}: {why}"
        for path in sorted((ROOT / "tests").glob("*.py"))
        for line, why in _assertions_that_cannot_fail(path.read_text(), str(path))
    ]
    assert not found, found


# ------------------------------------------------------- private names of Keras, TensorFlow and TFP

#: Private modules: importing one, or reaching it as an attribute chain, is a private use.
PRIVATE_MODULES = ("keras.src", "tensorflow.python", "tensorflow_probability.python", "tf_keras.src")


def _own_underscore_names():
    """Underscore names tfvae and export define: functions, classes, module names and `self._x` attributes."""
    names = {path.stem for path in MODULES.values()}
    for path in MODULES.values():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                names.add(node.name)
            elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                names.add(node.id)
            elif isinstance(node, ast.alias):
                names.add(node.asname or node.name.split(".")[-1])
            elif (isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store)
                  and isinstance(node.value, ast.Name) and node.value.id in ("self", "cls")):
                names.add(node.attr)
    return {name for name in names if name.startswith("_")}


def _private_uses(source, filename, own):
    """[(line, name)]: private names of other packages that `source` uses (attributes, strings, imports)."""
    found = []
    for node in ast.walk(ast.parse(source, filename)):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            modules = [alias.name for alias in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            found += [(node.lineno, module) for module in modules if module.startswith(PRIVATE_MODULES)]
        elif isinstance(node, ast.Attribute):
            chain = re.sub(r"^tf\.", "tensorflow.", re.sub(r"^tfp\.", "tensorflow_probability.", ast.unparse(node)))
            if chain.endswith(PRIVATE_MODULES):
                found.append((node.lineno, chain))
            elif node.attr.startswith("_") and node.attr not in own and not node.attr.endswith("__"):
                found.append((node.lineno, node.attr))
            elif node.attr == "__internal__":
                found.append((node.lineno, node.attr))
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            if re.fullmatch(r"_[a-z]\w*", node.value) and node.value not in own:
                found.append((node.lineno, node.value))
            elif re.fullmatch(r"(keras\.src|tensorflow\.python|tensorflow_probability\.python)(\.\w+)*", node.value):
                found.append((node.lineno, node.value))
    return found


def _allowed_private_names():
    """{(file, name)} from the "Private names" table of docs/design.md."""
    text = (ROOT / "docs" / "design.md").read_text()
    section = text.split("## Private names", 1)[1].split("\n## ", 1)[0]
    allowed = set()
    for row in section.splitlines():
        cells = [cell.strip() for cell in row.strip().strip("|").split("|")]
        if len(cells) >= 4 and cells[0].startswith("`"):
            allowed.add((cells[1].strip("`"), cells[0].strip("`")))
    return allowed


def test_the_finder_of_private_names_finds_them():
    source = (
        "import keras\nfrom tensorflow.python.framework import config\n"
        "model._initial_epoch = 3\ngetattr(x, '_in_multi_worker_mode')\nkwargs.get('_use_cached_eval_dataset')\n"
        "self._own = 1\nmodel._own\nk = keras.src.utils\nobject.__init__(self)\n"
    )
    found = _private_uses(source, "example.py", own={"_own"})
    assert [line for line, _ in found] == [2, 3, 4, 5, 8]


def test_no_private_name_of_keras_tensorflow_or_tfp_outside_the_allow_list():
    # docs/design.md, "Private names": each allowed use is guarded by a version check and tested.
    own = _own_underscore_names()
    allowed = _allowed_private_names()
    used = {
        (str(path.relative_to(ROOT)), name): line
        for path in MODULES.values()
        for line, name in _private_uses(path.read_text(), str(path), own)
    }
    assert not {use: line for use, line in used.items() if use not in allowed}, "not in docs/design.md's allow-list"
    assert not allowed - set(used), "listed in docs/design.md but no longer used: remove the row"


def test_no_class_of_ours_overrides_a_private_name_of_its_keras_or_tensorflow_base():
    # The text check above takes `self._x` in tfvae's classes as tfvae's own: it is, unless a Keras or
    # TensorFlow base class already has `_x` (overriding or writing their private state).
    import inspect as _inspect

    clashes = []
    for module_name in MODULES:
        if module_name.endswith("__main__"):
            continue
        module = importlib.import_module(module_name)
        for cls in vars(module).values():
            if not (_inspect.isclass(cls) and cls.__module__ == module_name):
                continue
            if any(base.__module__.startswith("tensorflow_probability") and base.__name__ == "Distribution"
                   for base in cls.__mro__):
                continue  # TFP's subclass protocol is underscore-named by design (`_log_prob`, ...): docs/design.md
            theirs = [base for base in cls.__mro__[1:] if base.__module__.split(".")[0] in
                      ("keras", "tensorflow", "tensorflow_probability", "tf_keras")]
            clashes += [f"{module_name}.{cls.__name__}.{name}" for name in vars(cls)
                        if name.startswith("_") and not name.endswith("__")
                        and any(hasattr(base, name) for base in theirs)]
    assert not clashes, clashes
