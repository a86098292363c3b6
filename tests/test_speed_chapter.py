"""Tests of chapter 10's helpers (cnnviz.speed): the timers, the time format, the
window planes, the two figures drawn by the view and the timing chart.  Expected values
are computed here independently (plain loops over the windows and cells), never with the
code under test; no timing is asserted, only what a measurement returns."""

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
from cnnviz.speed import (  # noqa: E402
    best_time,
    compare_times,
    format_seconds,
    phase_split_state,
    timing_figure,
    window_planes,
    window_planes_state,
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


def test_compare_times_interleaves_the_rounds_and_keeps_each_best():
    order = []
    t = compare_times(
        {"a": lambda: order.append("a"), "b": lambda: order.append("b")},
        repeat=3,
        min_time=0,
    )
    # one warm-up call each (it also sets one call per round), then a, b, a, b, a, b
    assert order == ["a", "b"] + ["a", "b"] * 3
    assert set(t) == {"a", "b"} and all(v > 0 and np.isfinite(v) for v in t.values())
    with pytest.raises(ValueError, match="repeat"):
        compare_times({"a": lambda: None}, repeat=0)
    with pytest.raises(ValueError, match="at least one"):
        compare_times({})


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
    for a, b, i, j in itertools.product(range(k), range(k), range(Ho), range(Wo)):
        assert planes[a, b, i, j] == x[i * s + a, j * s + b]
    np.testing.assert_array_equal(
        planes.max(axis=(0, 1)), core.maxpool2d_forward(x, k, s)[0]
    )


def test_window_planes_rejects_a_batch():
    with pytest.raises(ValueError, match="2-D"):
        window_planes(np.zeros((1, 4, 4)), 2, 2)


def _panel(state, pid):
    return next(p for p in state["panels"] if p["id"] == pid)


def _numbers(panel):
    return [[float(v) if v else None for v in row] for row in panel["text"]]


def test_window_planes_state_shows_the_map_every_plane_and_their_maximum():
    x = np.random.default_rng(3).integers(0, 10, size=(5, 5)).astype(float)
    k, s, (a0, b0) = 3, 2, (1, 2)
    st = window_planes_state(x, k, s, offset=(a0, b0))
    ids = [p["id"] for p in st["panels"]]
    assert ids == ["x", "y"] + [f"p{a}{b}" for a in range(k) for b in range(k)]
    assert _numbers(_panel(st, "x")) == x.tolist()
    for a, b in itertools.product(range(k), range(k)):
        plane = _panel(st, f"p{a}{b}")
        expected = [[x[i * s + a, j * s + b] for j in range(2)] for i in range(2)]
        assert _numbers(plane) == expected
        chosen = (a, b) == (a0, b0)
        assert all((c == "hl") == chosen for row in plane["classes"] for c in row)
    y = [
        [
            max(x[i * s + a, j * s + b] for a in range(k) for b in range(k))
            for j in range(2)
        ]
        for i in range(2)
    ]
    assert _numbers(_panel(st, "y")) == y
    # the map: the four windows outlined, the cells at the chosen offset marked
    boxes = _panel(st, "x")["windows"]
    assert sorted(tuple(w[1:5]) for w in boxes) == [
        (i * s, j * s, k, k) for i in range(2) for j in range(2)
    ]
    marked = {
        (r, c)
        for r, row in enumerate(_panel(st, "x")["classes"])
        for c, v in enumerate(row)
        if v == "hl"
    }
    assert marked == {(a0 + i * s, b0 + j * s) for i in range(2) for j in range(2)}
    # a plane cell links to its input cell, its output cell and its window
    link = st["links"]["p12:1:0"]
    assert set(link["cells"]) == {"x:3:2", "y:1:0"}
    assert [w[1:5] for w in link["windows"]] == [[2, 0, 3, 3]]
    with pytest.raises(ValueError, match="offset"):
        window_planes_state(x, k, s, offset=(3, 0))


@pytest.mark.parametrize(
    "H, W, k, s, p, chosen",
    [
        (7, 7, 3, 2, 1, [(0, 0), (2, 1)]),
        (8, 6, 3, 3, 1, [(1, 1)]),
        (6, 7, 2, 2, 0, [(2, 2)]),
    ],
)
def test_phase_split_state_puts_each_windows_cells_in_a_block_of_every_phase(
    H, W, k, s, p, chosen
):
    x = np.arange(1.0, H * W + 1).reshape(
        H, W
    )  # every value different: cells traceable
    st = phase_split_state(x, k, s, p, chosen)
    xp = np.zeros((H + 2 * p, W + 2 * p))
    xp[p : p + H, p : p + W] = x
    assert _numbers(_panel(st, "xp")) == xp.tolist()
    Hq, Wq = -(-(H + 2 * p) // s), -(-(W + 2 * p) // s)
    for a, b in itertools.product(range(s), range(s)):
        phase = _panel(st, f"q{a}{b}")
        assert (phase["rows"], phase["cols"]) == (Hq, Wq)
        grid = _numbers(phase)
        for u, v in itertools.product(
            range(Hq), range(Wq)
        ):  # padded cell (s u + a, s v + b)
            r, c = s * u + a, s * v + b
            inside = r < xp.shape[0] and c < xp.shape[1]
            assert grid[u][v] == (xp[r, c] if inside else None)
        # each chosen window: the phase's cells that hold it form one outlined block
        boxes = {w[5]: w[1:5] for w in phase["windows"]}
        for n, (i, j) in enumerate(chosen):
            held = {
                (r // s, c // s)
                for r in range(i * s, i * s + k)
                for c in range(j * s, j * s + k)
                if r % s == a and c % s == b
            }
            if not held:
                assert f"c{n + 1}" not in boxes
                continue
            r0, c0, h, w = boxes[f"c{n + 1}"]
            assert held == {(r0 + dr, c0 + dc) for dr in range(h) for dc in range(w)}
            assert (r0, c0) == (i, j)
    with pytest.raises(ValueError, match="not one of"):
        phase_split_state(x, k, s, p, [(99, 0)])


def test_timing_figure_draws_one_bar_per_measured_time_on_a_log_axis():
    cases = ["a", "b"]
    times = {"loops": [0.3, 0.5], "numpy": [1e-3, 2e-3], "PyTorch": [None, 5e-4]}
    fig = timing_figure(cases, times, title="t")
    ax = fig.axes[0]
    assert ax.get_xscale() == "log"
    assert fig.get_figwidth() * 96 == pytest.approx(720)  # drawn for the column
    ends = sorted(
        p.get_x() + p.get_width() for p in ax.patches if np.isfinite(p.get_width())
    )
    assert ends == pytest.approx(sorted([0.3, 0.5, 1e-3, 2e-3, 5e-4]))
    # every bar starts inside the axis (a log axis has no 0 to start from)
    assert all(p.get_x() >= ax.get_xlim()[0] * 0.999 for p in ax.patches)
    labels = sorted(t.get_text() for t in ax.texts)
    assert labels == sorted(["300 ms", "500 ms", "1.00 ms", "2.00 ms", "500 µs"])
    assert [t.get_text() for t in fig.legends[0].get_texts()] == list(times)
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
        if re.search(r"\b(best_time|time_once|compare_times)\(", src):
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
