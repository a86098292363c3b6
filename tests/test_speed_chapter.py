"""Tests of chapter 10's helpers (cnnviz.speed): the timer, the time format, the window
planes and the two figures.  Expected values are computed here independently (plain
loops over the windows), never with the code under test; no timing is asserted, only
what a measurement returns."""

import itertools
import json
import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

import mlp_cnn_core as core  # noqa: E402
from cnnviz.draw import HIGHLIGHT  # noqa: E402
from cnnviz.speed import (  # noqa: E402
    best_time,
    format_seconds,
    timing_figure,
    window_planes,
    window_planes_figure,
)


def test_best_time_calls_the_function_and_returns_seconds_per_call():
    calls = []
    t = best_time(lambda: calls.append(1), repeat=3, min_time=0.001)
    assert t > 0 and np.isfinite(t)
    # one warm-up, then rounds of `number` calls each: at least repeat + 1 calls in all
    assert len(calls) >= 4
    single = []
    best_time(lambda: single.append(1), repeat=1, min_time=0)
    assert len(single) == 1, (
        "min_time=0, repeat=1: the slow loops must run exactly once"
    )
    with pytest.raises(ValueError, match="repeat"):
        best_time(lambda: None, repeat=0)


@pytest.mark.parametrize(
    "t, text",
    [
        (1.5, "1.50 s"),
        (12.0, "12.0 s"),
        (0.00123, "1.23 ms"),
        (0.123, "123 ms"),
        (12e-6, "12.0 µs"),
        (999e-6, "999 µs"),
        (3e-9, "3.00 ns"),
        (0.0, "0.00 ns"),
        (None, "—"),
    ],
)
def test_format_seconds(t, text):
    assert format_seconds(t) == text


@pytest.mark.parametrize("bad", [-1.0, float("nan"), float("inf")])
def test_format_seconds_rejects_non_times(bad):
    with pytest.raises(ValueError, match="seconds"):
        format_seconds(bad)


@pytest.mark.parametrize(
    "H, W, k, s", [(5, 5, 3, 2), (6, 7, 2, 2), (7, 6, 3, 1), (8, 8, 2, 3), (4, 4, 4, 1)]
)
def test_window_planes_hold_each_windows_cell_at_each_offset(H, W, k, s):
    x = (
        np.random.default_rng(H * 100 + W * 10 + k + s)
        .integers(-5, 6, size=(H, W))
        .astype(float)
    )
    planes = window_planes(x, k, s)
    Ho, Wo = (H - k) // s + 1, (W - k) // s + 1
    assert planes.shape == (k, k, Ho, Wo)
    for r0, c0, i, j in itertools.product(range(k), range(k), range(Ho), range(Wo)):
        assert planes[r0, c0, i, j] == x[i * s + r0, j * s + c0]
    np.testing.assert_array_equal(
        planes.max(axis=(0, 1)), core.maxpool2d_forward(x, k, s)[0]
    )


def test_window_planes_rejects_a_batch():
    with pytest.raises(ValueError, match="2-D"):
        window_planes(np.zeros((1, 4, 4)), 2, 2)


def _texts(ax):
    return [t.get_text() for t in ax.texts]


def test_window_planes_figure_shows_the_map_every_plane_and_the_output():
    x = np.random.default_rng(3).integers(0, 10, size=(5, 5)).astype(float)
    k, s, (r0, c0) = 3, 2, (1, 2)
    fig = window_planes_figure(x, k, s, offset=(r0, c0))
    ax_x, *plane_axes, ax_y = fig.axes
    assert len(plane_axes) == k * k
    assert _texts(ax_x) == [f"{int(v)}" for v in x.ravel()]
    for n, ax in enumerate(plane_axes):
        a, b = divmod(n, k)
        expected = [x[i * s + a, j * s + b] for i in range(2) for j in range(2)]
        assert ax.get_title() == f"offset ({a}, {b})"
        assert _texts(ax) == [f"{int(v)}" for v in expected]
        chosen = (a, b) == (r0, c0)
        assert (ax.title.get_color() == HIGHLIGHT) == chosen
        assert len(ax.patches) == (
            4 if chosen else 0
        )  # the chosen plane's 2x2 cells are outlined
    y = [
        max(x[i * s + a, j * s + b] for a in range(k) for b in range(k))
        for i in range(2)
        for j in range(2)
    ]
    assert _texts(ax_y) == [f"{int(v)}" for v in y]
    # on the map: 4 windows outlined, and the 4 cells plane (1, 2) reads
    outlined = {
        (round(p.get_x() + 0.5), round(p.get_y() + 0.5))
        for p in ax_x.patches
        if p.get_edgecolor()[:3] == matplotlib.colors.to_rgb(HIGHLIGHT)
    }
    assert outlined == {(c0 + j * s, r0 + i * s) for i in range(2) for j in range(2)}
    assert len(ax_x.patches) == 4 + 4
    plt.close(fig)
    with pytest.raises(ValueError, match="offset"):
        window_planes_figure(x, k, s, offset=(3, 0))


def test_timing_figure_draws_one_bar_per_measured_time_on_a_log_axis():
    cases = ["a", "b"]
    times = {"loops": [0.3, 0.5], "numpy": [1e-3, 2e-3], "PyTorch": [None, 5e-4]}
    fig = timing_figure(cases, times, title="t")
    ax = fig.axes[0]
    assert ax.get_xscale() == "log"
    widths = sorted(p.get_width() for p in ax.patches if np.isfinite(p.get_width()))
    assert widths == sorted([0.3, 0.5, 1e-3, 2e-3, 5e-4])
    labels = sorted(t.get_text() for t in ax.texts)
    assert labels == sorted(["300 ms", "500 ms", "1.00 ms", "2.00 ms", "500 µs"])
    assert [t.get_text() for t in ax.get_legend().get_texts()] == list(times)
    plt.close(fig)
    with pytest.raises(ValueError, match="cases"):
        timing_figure(cases, {"loops": [1.0]})


# --- the chapter notebook -------------------------------------------------------------
CHAPTER = Path(__file__).resolve().parents[1] / "book" / "10_make_it_fast.ipynb"


def _cells():
    return json.loads(CHAPTER.read_text())["cells"]


def test_timing_cells_are_excluded_from_output_comparison_and_nothing_asserts_a_time():
    timed = 0
    for c in _cells():
        src = "".join(c["source"])
        if c["cell_type"] != "code":
            continue
        if "best_time(" in src or "time_once(" in src:
            if "def time_once" in src:
                continue
            timed += 1
            assert "nbval-ignore-output" in c["metadata"].get("tags", []), src[:120]
        assert not re.search(r"assert[^\n]*\bt_\w+\s*[<>]", src), (
            "a timing must never be asserted"
        )
    assert timed >= 5


def test_pytorch_is_optional():
    code = "\n".join("".join(c["source"]) for c in _cells() if c["cell_type"] == "code")
    imports = re.findall(r"^(\s*)import torch\b", code, re.M)
    assert imports and all(indent for indent in imports), (
        "torch is imported only inside try/except"
    )
    assert "except ImportError:\n    torch = None" in code


def test_solutions_are_folded_in_jupyterlab_too():
    inside, hidden, shown = False, 0, []
    for c in _cells():
        src = "".join(c["source"])
        if src.startswith("```{solution-start}"):
            inside = True
        if src.startswith("```{solution-end}"):
            inside = False
        if inside:
            if c["metadata"].get("jupyter", {}).get("source_hidden"):
                hidden += 1
            elif c["cell_type"] == "code":
                shown.append(src)
    assert hidden >= 8
    assert shown == [
        "solution_result = check_maxpool_backward(maxpool_backward_solution)\n"
        "assert solution_result is not None"
    ], shown


def test_the_exercise_starts_as_a_stub_that_the_checker_reports_kindly():
    cells = _cells()
    stub = next(
        i
        for i, c in enumerate(cells)
        if "def maxpool_backward_fast" in "".join(c["source"])
    )
    assert "raise NotImplementedError" in "".join(cells[stub]["source"])
    out = "".join("".join(o.get("text", "")) for o in cells[stub + 1]["outputs"])
    assert "check_maxpool_backward(maxpool_backward_fast)" in "".join(
        cells[stub + 1]["source"]
    )
    assert out.startswith("not implemented yet")
