"""The explorables' browser view in headless Chromium (tests/browser/check_view.js).

Every explorable of the book, built with its default settings, and a set of fixed-state figures
are drawn by cnnviz/static/explorable.js against a stand-in for the widget model: every control
is moved through every option and the drawn numbers must be the ones Python computed with the
core; every drawn state must fit (each number inside its cell, titles inside their panel and
typeset), carry the legend of what it draws, read at 11 CSS px or more in the article column of a
1280 px window (9 px on a 390 px phone, where the page never scrolls sideways), and keep cell text
at 4.5:1 contrast or more on its fill (muted text 3:1) in the light and the dark theme; hovering
works on every panel with linked cells, and the arrow keys move the followed cell.  The pages of
the built book are checked the same way in test_book_build.py.
"""
from __future__ import annotations

import importlib
import json
import pkgutil
import subprocess

import numpy as np
import pytest

import cnnviz
from browser_support import BROWSER_DIR, require_browser
from cnnviz.explorable import LEGEND, REGISTRY, StateFigure, call, cell_id, figure, link, matrices, panel, window

pytestmark = pytest.mark.browser

# numbers the book writes in cells, at their longest
AWKWARD = [[0.333, -1.3125, 2.1875], [-0.4375, 1e-05, float("nan")], [float("inf"), -float("inf"), -1234.5]]


def all_explorables():
    for mod in pkgutil.iter_modules(cnnviz.__path__):
        importlib.import_module(f"cnnviz.{mod.name}")
    return [cls() for name, cls in sorted(REGISTRY.items())
            if cls.__module__.startswith("cnnviz.") and not issubclass(cls, StateFigure)]  # the book's, not a test's


def every_class_state():
    """A state that uses every cell class, every window class, labels, a subtitle and operators."""
    x = np.arange(-12, 12, dtype=float).reshape(4, 6) / 4
    classes = np.array([["win", "tie", "sel", "hl", "pad", "dead"], ["dim", "zero", "win tie", "", "", ""],
                        ["", "", "", "", "", ""], ["", "", "", "", "", "dead"]], dtype=object)
    windows = [window("x", 0, 0, 2, 2, "c1"), window("x", 0, 1, 2, 2, "c2"), window("x", 1, 1, 2, 2, "c3"),
               window("x", 1, 2, 2, 2, "c4"), window("x", 2, 3, 2, 3, "dead"), window("x", 2, 0, 2, 2)]
    return {"panels": [panel("x", "X<sub>uv</sub> with every class", x, scale="div", classes=classes, windows=windows,
                             subtitle="a subtitle that runs long enough to wrap under the grid",
                             row_labels=["a", "b", "c", "d"], col_labels=list("uvwxyz")),
                       panel("m", "𝟙[X > 0]", (x > 0).astype(float), op="⊙", classes=np.where(x > 0, "", "zero")),
                       panel("y", "∂L/∂L1 = routed ⊙ ReLU′(L1)", np.where(x > 0, x, 0.0), scale="div", op="="),
                       panel("t", "seq", x * 3, new_row=True)],
            "links": {cell_id("y", 0, 0): link([cell_id("x", 0, 0), cell_id("m", 0, 0)], [window("x", 0, 0, 2, 2)],
                                                "y[0,0] reads x[0,0]")},
            "caption": "every <b>class</b>", "legend": {"dim": "outside every window"}}


def figures():
    conv = importlib.import_module("cnnviz.conv")
    return {
        "awkward numbers": figure(call(matrices, [AWKWARD, np.array(AWKWARD) * 1000, [[1 / 3] * 6]],
                                       ["G<sub>L1</sub> = ∂L/∂L1", "1000 ×", "v<sub>max</sub><sup>2</sup>"],
                                       scale=["div", "seq", "none"], ops=[None, "→", "="]),
                                  title="Numbers that must fit"),
        "followed cell": figure(conv.ConvInputCell(), values={"size": 6, "stride": 2, "padding": 1},
                                follow="dx:3:2", panels=["x", "w", "dy", "dx"]),
        "every class": figure(every_class_state(), follow=cell_id("y", 0, 0)),
        "wide vector": figure(call(matrices, [np.linspace(-2.1875, 1.3125, 25)], ["flat (1×25)"], scale="div")),
    }


def model_json(widget, name: str) -> dict:
    """The widget's model as the page holds it."""
    model = {k: getattr(widget, k) for k in ("kind", "title", "config", "controls", "actions", "values",
                                             "needs_kernel")}
    model["states"] = json.dumps(widget.page_states())  # one JSON text, as the page stores it
    model["name"] = name
    return model


def test_every_explorable_and_figure_view_draws_readable_states(tmp_path):
    require_browser()
    widgets = {w.kind: w for w in all_explorables()}
    assert widgets, "no explorable registered"
    widgets.update(figures())
    models = tmp_path / "models.json"
    models.write_text(json.dumps({"legend": LEGEND, "models": [model_json(w, n) for n, w in widgets.items()]}))
    report = tmp_path / "report.json"
    run = subprocess.run(["node", str(BROWSER_DIR / "check_view.js"), str(models), str(report)],
                         cwd=BROWSER_DIR, capture_output=True, text=True, timeout=1500)
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-4000:]
    rep = json.loads(report.read_text())
    assert set(rep) == set(widgets)
    for name, r in rep.items():
        assert r["minTextPx"]["desktop"] >= 11 and r["minTextPx"]["phone"] >= 9, (name, r["minTextPx"])
        assert min(r["minContrast"].values()) >= 4.5, (name, r["minContrast"])
        muted = [v for v in r["minMutedContrast"].values() if v is not None]
        assert not muted or min(muted) >= 3, (name, r["minMutedContrast"])
    linked = {n: {k.split(":")[0] for k in w.current().get("links", {})} for n, w in widgets.items()}
    for name, panels in linked.items():
        assert set(rep[name]["hovered"]) == panels, f"{name}: hovered {rep[name]['hovered']}, linked {panels}"
    assert rep["wide vector"]["scrollBoxes"] == 1   # wider than a phone: it scrolls in its own box
    assert rep["every class"]["minMutedContrast"]["dark"] >= 3
    medians = [r["median_ms"] for r in rep.values() if r["median_ms"] is not None]
    assert medians, "no control was timed"
