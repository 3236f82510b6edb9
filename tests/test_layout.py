"""The layout shows the architecture: the lab at the bottom, one concern a module above it.

Imports run one way (``utils`` <- ``segmentation_GMM`` <- ``gmmseg.*``), with
no cycle; the command line loads nothing heavy before it has parsed its flags;
no test or benchmark leans on scikit-learn's private API; README stays short.
"""

import ast
import glob
import os
import re
import subprocess
import sys

import pytest
from conftest import ROOT, SCRIPT

HEAVY = ("scipy", "sklearn", "skimage", "matplotlib", "imageio_ffmpeg")
MAX_LINES = 630  # "about 500": the lab file, with its docstrings, is the longest


def project_modules():
    """{module name: path} for the lab's two files and the package's modules."""
    modules = {"segmentation_GMM": os.path.join(ROOT, "segmentation_GMM.py"),
               "utils": os.path.join(ROOT, "utils.py")}
    for path in glob.glob(os.path.join(ROOT, "gmmseg", "*.py")):
        name = os.path.splitext(os.path.basename(path))[0]
        modules["gmmseg" if name == "__init__" else f"gmmseg.{name}"] = path
    return modules


def _is_main_guard(node):
    return (isinstance(node, ast.If) and isinstance(node.test, ast.Compare)
            and isinstance(node.test.left, ast.Name) and node.test.left.id == "__name__")


def imports(path, names, skip_main_guard=True):
    """The project modules a file imports, anywhere in it (function bodies too).

    With ``skip_main_guard``, what the ``if __name__ == "__main__":`` block
    imports is left out: it runs only as a script.
    """
    with open(path, encoding="utf-8") as f:
        tree = ast.parse(f.read())
    skipped = set()
    if skip_main_guard:
        for node in tree.body:
            if _is_main_guard(node):
                skipped |= {id(inner) for inner in ast.walk(node)}
    found = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            candidates = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            candidates = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        else:
            continue
        found |= {name for name in candidates if name in names}
    return found


def import_graph():
    modules = project_modules()
    return {name: imports(path, modules) - {name} for name, path in modules.items()}


def test_utils_is_a_leaf_and_the_lab_imports_only_utils():
    graph = import_graph()
    assert graph["utils"] == set()
    assert graph["segmentation_GMM"] == {"utils"}
    # The script's entry is the one place the lab reaches the command line.
    lab = project_modules()["segmentation_GMM"]
    assert imports(lab, {"gmmseg.cli"}, skip_main_guard=False) == {"gmmseg.cli"}


def test_imports_have_no_cycle():
    graph = import_graph()
    graph["gmmseg"] = set()  # the package's lazy names are attributes, not imports
    state = {}

    def visit(name, path):
        state[name] = "open"
        for other in graph.get(name, ()):
            assert state.get(other) != "open", f"import cycle: {' -> '.join(path + [other])}"
            if other not in state:
                visit(other, path + [other])
        state[name] = "done"

    for name in graph:
        if name not in state:
            visit(name, [name])


def test_only_the_command_line_imports_the_command_line():
    graph = import_graph()
    users = {name for name, imported in graph.items() if "gmmseg.cli" in imported}
    assert users <= {"gmmseg.__main__"}


def test_no_module_is_too_long():
    lengths = {}
    for name, path in project_modules().items():
        with open(path, encoding="utf-8") as f:
            lengths[name] = len(f.readlines())
    assert max(lengths.values()) <= MAX_LINES, lengths


def test_every_package_module_lists_its_public_names():
    for name, path in project_modules().items():
        if name.startswith("gmmseg.") and name != "gmmseg.__main__":
            with open(path, encoding="utf-8") as f:
                assert "__all__ = [" in f.read(), name


def loaded_after(code):
    """The heavy top-level packages loaded by running ``code`` in a fresh Python."""
    done = subprocess.run([sys.executable, "-X", "importtime", "-c", code], cwd=ROOT,
                          capture_output=True, text=True, check=True, timeout=60)
    loaded = {line.split("|")[-1].strip().split(".")[0]
              for line in done.stderr.splitlines() if line.startswith("import time:")}
    return loaded & set(HEAVY)


def test_importing_the_lab_and_the_package_loads_nothing_heavy():
    assert loaded_after("import segmentation_GMM, utils, gmmseg, gmmseg.pipeline") == set()


@pytest.mark.parametrize("command", [[SCRIPT], ["-m", "gmmseg"]], ids=["script", "module"])
def test_help_loads_nothing_heavy(command):
    done = subprocess.run([sys.executable, "-X", "importtime", *command, "--help"], cwd=ROOT,
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0 and "--image" in done.stdout
    loaded = {line.split("|")[-1].strip().split(".")[0]
              for line in done.stderr.splitlines() if line.startswith("import time:")}
    assert loaded & set(HEAVY) == set()


PRIVATE = re.compile(r"sklearn(\.\w+)*\._\w+"
                     r"|\._(e_step|m_step|estimate_\w+|compute_precision\w*)\(")


def test_no_private_scikit_learn_api_in_tests_or_benchmarks():
    this = os.path.abspath(__file__)
    offenders = []
    for path in glob.glob(os.path.join(ROOT, "tests", "*.py")) + glob.glob(
            os.path.join(ROOT, "bench", "*.py")):
        if os.path.abspath(path) == this:
            continue
        with open(path, encoding="utf-8") as f:
            offenders += [f"{os.path.basename(path)}:{number}: {line.strip()}"
                          for number, line in enumerate(f, 1) if PRIVATE.search(line)]
    assert not offenders, offenders


def test_readme_is_short_and_links_its_docs():
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        text = f.read()
    assert len(text.splitlines()) <= 200
    pages = set(re.findall(r"\]\((docs/[\w.-]+\.md)", text))
    assert pages, "README links no docs/ page"
    for page in pages:
        assert os.path.isfile(os.path.join(ROOT, page)), page


def test_every_requirement_has_a_tested_lower_and_upper_bound():
    for name in ("requirements.txt", "requirements-dask.txt"):
        with open(os.path.join(ROOT, name), encoding="utf-8") as f:
            lines = [line.split("#")[0].strip() for line in f]
        specs = [line for line in lines if line and not line.startswith("-r")]
        assert specs, name
        for spec in specs:
            assert re.search(r">=\s*[\d.]+", spec) and re.search(r"<\s*[\d.]+", spec), spec
