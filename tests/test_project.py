"""Project consistency: the table of contents, the notebooks, the README, CI and Binder
agree."""

import ast
import json
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "book").glob("*.ipynb"))


def toc_files():
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [toc["root"]]
    for part in toc.get("parts", []):
        files += [c["file"] for c in part["chapters"]]
    return files


def test_every_notebook_is_in_the_toc_and_every_toc_entry_exists():
    files = toc_files()
    assert {f"book/{nb.stem}" for nb in NOTEBOOKS} <= set(files)
    for f in files:
        assert (ROOT / f).with_suffix(".ipynb").exists() or (ROOT / f).with_suffix(
            ".md"
        ).exists(), f


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_committed_executed_in_order_without_errors(path):
    nb = json.loads(path.read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert code, "a chapter without code"
    counts = [c["execution_count"] for c in code if c["source"]]
    assert all(isinstance(n, int) for n in counts), (
        "every code cell must be executed (stored outputs)"
    )
    assert counts == sorted(counts) and counts[0] == 1, (
        "cells must be executed top to bottom in one run"
    )
    for c in code:
        for o in c.get("outputs", []):
            assert o["output_type"] != "error", f"stored error in {path.name}"
            text = "".join(o.get("text", "")) + "".join(
                o.get("data", {}).get("text/plain", "")
            )
            assert not re.search(r" at 0x[0-9a-f]{6,}", text), (
                f"memory address in an output of {path.name}: {text[:200]}"
            )
    h1 = [
        line
        for c in nb["cells"]
        if c["cell_type"] == "markdown"
        for line in "".join(c["source"]).splitlines()
        if line.startswith("# ")
    ]
    assert len(h1) == 1, f"{path.name} must have exactly one H1 title, found {h1}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_explorable_cells_say_what_they_are_before_they_run(path):
    """Where a widget cannot be drawn (a notebook opened before it runs), its text says
    what it is and how to use it -- never ``VBox(children=...`` -- and nbval compares
    that text."""
    nb = json.loads(path.read_text())
    for c in nb["cells"]:
        if c["cell_type"] != "code":
            continue
        for o in c.get("outputs", []):
            data = o.get("data", {})
            if "application/vnd.jupyter.widget-view+json" in data:
                text = "".join(data.get("text/plain", ""))
                assert "run this cell" in text and "children=" not in text, (
                    f"{path.name}: {text[:120]}"
                )
                assert "nbval-ignore-output" not in c["metadata"].get("tags", []), (
                    f"{path.name}: an explorable's text is deterministic, "
                    "nbval should compare it"
                )
    models = (
        nb["metadata"]
        .get("widgets", {})
        .get("application/vnd.jupyter.widget-state+json", {})
    )
    kinds = {m["model_name"] for m in models.get("state", {}).values()}
    assert not kinds & {"OutputModel", "VBoxModel", "HBoxModel"}, (
        f"{path.name} still stores an ipywidgets figure widget: {sorted(kinds)}"
    )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebooks_start_with_the_setup_cell_and_use_no_private_names(path):
    nb = json.loads(path.read_text())
    first = nb["cells"][0]
    assert first["cell_type"] == "code" and "remove-cell" in first["metadata"].get(
        "tags", []
    )
    assert "CNN_BOOK_SOURCE" in "".join(first["source"])
    for c in nb["cells"][1:]:
        if c["cell_type"] == "code":
            src = "".join(c["source"])
            private = re.findall(r"\b(?:core|train|cnnviz|ch\d+|\w+)\.(_[a-z]\w*)", src)
            assert not private, (
                f"{path.name} reaches into private names {private}: {src[:120]}"
            )


def test_readme_commands_match_ci():
    readme = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```bash\n(.*?)```", readme, re.S)
    assert blocks, "the README must open with a bash block"
    commands = [
        line.split("#")[0].strip() for line in blocks[0].splitlines() if line.strip()
    ]
    assert len(commands) == 2, commands
    build, test = commands
    assert "jupyter-book build" in build and "-W" in build and "-n" in build
    ci = (ROOT / ".ci" / "run").read_text()
    assert build.split("&&")[-1].strip() in ci, (
        "CI must build the book as the README does"
    )
    assert test in ci, "CI must run the README's test command"
    runner = (ROOT / "tests" / "run.sh").read_text()
    assert (
        "requirements-test.txt" in runner and "pytest" in runner and "--nbval" in runner
    )


def test_requirements_are_pinned_and_binder_ready():
    reqs = [
        line.strip()
        for line in (ROOT / "requirements.txt").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    for r in reqs:
        assert r == "-e ." or "==" in r, f"unpinned requirement {r!r}"
    names = {r.split("==")[0].lower() for r in reqs}
    assert {
        "numpy",
        "matplotlib",
        "ipywidgets",
        "jupyter-book",
        "nbval",
        "scikit-learn",
    } <= names
    assert "torch" not in names, (
        "PyTorch is a test oracle only, never a dependency of the book"
    )
    assert "-e ." in reqs, "Binder must install the book's own modules"
    test_reqs = (ROOT / "requirements-test.txt").read_text()
    assert "torch==2.13.0" in test_reqs
    cfg = yaml.safe_load((ROOT / "_config.yml").read_text())
    assert cfg["repository"]["path_to_book"] == ""
    assert cfg["launch_buttons"]["notebook_interface"] == "jupyterlab"
    assert cfg["launch_buttons"]["binderhub_url"]
    assert (ROOT / "runtime.txt").read_text().strip().startswith("python-3.11")


def project_imports(path):
    """The modules of this project that a file imports (``mlp_cnn_*``, ``cnnviz``)."""
    tree = ast.parse(path.read_text())
    names = {
        a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names
    }
    names |= {
        n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module
    }
    names = {n.split(".")[0] for n in names}
    return {n for n in names if n.startswith("mlp_cnn_") or n == "cnnviz"}


def test_core_never_imports_plotting_or_torch():
    src = (ROOT / "mlp_cnn_core.py").read_text()
    imports = re.findall(r"^\s*(?:import|from)\s+(\w+)", src, re.M)
    assert set(imports) <= {
        "__future__",
        "math",
        "numbers",
        "dataclasses",
        "typing",
        "itertools",
        "numpy",
    }, imports
    assert "lru_cache" not in src, "remembering results is the fast module's business"


def test_the_import_graph():
    """core <- fast <- train; core <- cnnviz <- chapters; the checkers beside."""
    assert project_imports(ROOT / "mlp_cnn_core.py") == set()
    assert project_imports(ROOT / "mlp_cnn_fast.py") == {"mlp_cnn_core"}
    assert project_imports(ROOT / "mlp_cnn_train.py") <= {
        "mlp_cnn_core",
        "mlp_cnn_fast",
    }
    assert project_imports(ROOT / "mlp_cnn_exercises.py") <= {"mlp_cnn_core"}
    for path in (ROOT / "cnnviz").glob("*.py"):
        assert "mlp_cnn_fast" not in project_imports(path), (
            f"{path.name}: the book's figures compute with the teaching core"
        )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_saved_explorables_carry_the_current_browser_view(path):
    """A page draws its explorables with the view saved in the notebook: re-run the
    notebook (scripts/run_notebooks.py) after editing cnnviz/static/.
    """
    nb = json.loads(path.read_text())
    models = (
        nb["metadata"]
        .get("widgets", {})
        .get("application/vnd.jupyter.widget-state+json", {})
    )
    static = ROOT / "cnnviz" / "static"
    for m in models.get("state", {}).values():
        st = m["state"]
        if m["model_name"] == "AnyModel":  # every explorable and figure holds the small loader ...
            assert st["_esm"] == (static / "loader.js").read_text(), f"{path.name}: stale loader.js"
        if "esm" in st and "css" in st:  # ... which imports the view from the notebook's one ViewSource
            assert st["esm"] == (static / "explorable.js").read_text(), f"{path.name}: stale explorable.js"
            assert st["css"] == (static / "explorable.css").read_text(), f"{path.name}: stale explorable.css"
