"""The explorables' browser view in headless Chromium (tests/browser/check_view.js).

Every explorable of the book, built with its default settings, is drawn by
cnnviz/static/explorable.js against a stand-in for the widget model; every control is moved
through every option and the drawn numbers must be the ones Python computed with the core.
The pages of the built book are checked the same way in test_book_build.py.
"""
from __future__ import annotations

import importlib
import json
import pkgutil
import subprocess
from pathlib import Path

import cnnviz
from browser_support import require_browser
from cnnviz.explorable import REGISTRY

ROOT = Path(__file__).resolve().parents[1]
BROWSER = ROOT / "tests" / "browser"


def all_explorables():
    for mod in pkgutil.iter_modules(cnnviz.__path__):
        importlib.import_module(f"cnnviz.{mod.name}")
    return [REGISTRY[name]() for name in sorted(REGISTRY)]


def model_json(widget) -> dict:
    """The widget's model as the page holds it."""
    model = {k: getattr(widget, k) for k in ("kind", "title", "config", "controls", "actions", "values",
                                             "needs_kernel")}
    model["states"] = json.dumps(widget.page_states())  # one JSON text, as the page stores it
    return model


def test_every_explorable_view_draws_the_states_python_computed(tmp_path):
    require_browser()  # skip without Chromium and node, fail under CI
    widgets = all_explorables()
    assert widgets, "no explorable registered"
    models = tmp_path / "models.json"
    models.write_text(json.dumps([model_json(w) for w in widgets]))
    report = tmp_path / "report.json"
    run = subprocess.run(["node", str(BROWSER / "check_view.js"), str(models), str(report)],
                         cwd=BROWSER, capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-4000:]
    assert set(json.loads(report.read_text())) == {w.kind for w in widgets}
