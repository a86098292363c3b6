"""Tests of chapter 02's widget (cnnviz.maxpool.MaxPoolExplorer) and figure helpers.

The expected values are computed here independently of the code under test: the pooled output,
each window's winner (the first maximum in row-major order, found by a plain loop with a strict
``>``), the number of windows each cell won and the routed gradient (a ``+=`` loop) by brute
force; the winners are also compared with ``mlp_cnn_core.maxpool2d_forward``'s cache.
"""
import itertools
import re

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402
from matplotlib.colors import to_hex  # noqa: E402

import mlp_cnn_core as core  # noqa: E402
from cnnviz.draw import HIGHLIGHT, WINDOW  # noqa: E402
from cnnviz.maxpool import (MaxPoolExplorer, coverage, matrix_text, parse_matrix,  # noqa: E402
                            random_input, routing_figure, window_cells)


def brute_force(x, k, s):
    """(y, winners, counts, cover) for a k x k window sliding with stride s over a 2-D x:
    winners[i][j] = (r, c), the first maximum in row-major order (strict >)."""
    H, W = x.shape
    Ho, Wo = (H - k) // s + 1, (W - k) // s + 1
    y = np.zeros((Ho, Wo))
    winners = {}
    counts = np.zeros((H, W), int)
    cover = np.zeros((H, W), int)
    for i in range(Ho):
        for j in range(Wo):
            best = None
            for r in range(i * s, i * s + k):
                for c in range(j * s, j * s + k):
                    cover[r, c] += 1
                    if best is None or x[r, c] > x[best]:
                        best = (r, c)
            y[i, j] = x[best]
            winners[(i, j)] = best
            counts[best] += 1
    return y, winners, counts, cover


def brute_dx(x, k, s, dout):
    _, winners, _, _ = brute_force(x, k, s)
    dx = np.zeros(x.shape)
    for (i, j), rc in winners.items():
        dx[rc] += dout[i, j]
    return dx


def fmt(v):
    v = float(v)
    return str(int(v)) if v.is_integer() else f"{v:.3g}"


def check_state(w):
    """The widget's state agrees with brute force and with the core's cache."""
    n, k, s = w.x.shape[0], w.window.value, w.stride.value
    if k > n:
        assert not w.valid
        assert "No output" in w.summary.value and "larger than the input" in w.summary.value
        assert w.row.disabled and w.col.disabled
        assert not np.any(w.dx)
        return
    assert w.valid
    y, winners, counts, cover = brute_force(w.x, k, s)
    Ho, Wo = y.shape
    assert w.y.shape == (Ho, Wo)
    np.testing.assert_array_equal(w.y, y)
    assert w.row.max == Ho - 1 and w.col.max == Wo - 1
    i, j = w.selected
    assert (i, j) == (w.row.value, w.col.value)
    assert 0 <= i < Ho and 0 <= j < Wo
    # the routed cell: brute force == widget == the core's cache (computed here, not by the widget)
    _, cache = core.maxpool2d_forward(w.x, k, s)
    from_cache = (int(cache.rows[i, j]), int(cache.cols[i, j]))
    assert w.winner == winners[(i, j)] == from_cache
    assert int(cache.argmax[i, j]) == from_cache[0] * n + from_cache[1]
    r, c = w.winner
    assert w.window_rc == (i * s, j * s)
    # the chosen cell's gradient alone reaches exactly one input cell
    expected_cell = np.zeros(w.x.shape)
    expected_cell[r, c] = w.g
    np.testing.assert_array_equal(w.dx_cell, expected_cell)
    assert w.g == w.dout[i, j]
    if w.upstream.value != "all-random":
        assert w.g == w.grad.value
    np.testing.assert_array_equal(w.dx, brute_dx(w.x, k, s, w.dout))
    np.testing.assert_array_equal(w.mask, counts)
    np.testing.assert_array_equal(w.uncovered, cover == 0)
    assert sorted(w.won) == sorted(ij for ij, rc in winners.items() if rc == (r, c))
    expected = f"output ({i}, {j}) = {fmt(y[i, j])}; its gradient {fmt(w.g)} goes to input ({r}, {c})"
    assert expected in w.summary.value
    assert f"output {Ho}×{Wo}" in w.summary.value
    if len(w.won) > 1:
        assert f"won {len(w.won)} windows" in w.summary.value
        assert f"= <b>{fmt(w.dx[r, c])}</b>" in w.summary.value
    window = window_cells(i, j, k, s, w.x.shape)
    assert sorted(w.ties) == sorted(rc for rc in window if rc != (r, c) and w.x[rc] == y[i, j])


def set_controls(w, n, k, s, i=0, j=0):
    w.size.value = n
    w.window.value = k
    w.stride.value = s
    w.row.value = i
    w.col.value = j


# ---------------------------------------------------------------------------------------------
# Default state and hand-worked examples
# ---------------------------------------------------------------------------------------------

def test_default_state():
    w = MaxPoolExplorer(draw=False)
    assert (w.size.value, w.window.value, w.stride.value) == (5, 3, 2)
    check_state(w)
    # hand-worked from the default input (seed 12), printed in the chapter
    np.testing.assert_array_equal(w.x, [[2, 7, 9, 1, 1], [8, 1, 3, 2, 5], [8, 6, 6, 9, 8],
                                        [2, 3, 2, 5, 6], [9, 1, 6, 6, 8]])
    assert w.selected == (0, 1) and w.winner == (0, 2)
    assert w.ties == [(2, 3)]  # a tie with 9 further down, which loses (first in row-major order)
    assert sorted(w.won) == [(0, 0), (0, 1)]  # (0, 2) won two overlapping windows
    assert "output (0, 1) = 9; its gradient 1 goes to input (0, 2)" in w.summary.value
    assert "Tie" in w.summary.value and "won 2 windows" in w.summary.value


def test_stack_exchange_example():
    w = MaxPoolExplorer(draw=False)
    w.window.value, w.stride.value = 3, 1
    w.set_input(np.arange(1, 17).reshape(4, 4))
    assert w.size.value == 4 and not w.parse_error
    np.testing.assert_array_equal(w.y, [[11, 12], [15, 16]])
    np.testing.assert_array_equal(w.mask, [[0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 1, 1], [0, 0, 1, 1]])
    for (i, j), rc in {(0, 0): (2, 2), (0, 1): (2, 3), (1, 0): (3, 2), (1, 1): (3, 3)}.items():
        w.row.value, w.col.value = i, j
        assert w.winner == rc
        check_state(w)


def test_one_cell_wins_four_windows():
    x = np.array([[1, 2, 3, 4], [5, 6, 16, 8], [9, 10, 11, 12], [13, 14, 15, 7]], float)
    w = MaxPoolExplorer(draw=False)
    w.window.value, w.stride.value = 3, 1
    w.set_input(x)
    w.upstream.value = "random"
    w.row.value, w.col.value = 1, 1
    check_state(w)
    assert w.winner == (1, 2) and w.mask[1, 2] == 4 and w.mask.sum() == 4
    assert w.dx[1, 2] == w.dout.sum()
    assert "won 4 windows" in w.summary.value


def test_all_ties_go_to_the_first_cell_of_the_window():
    w = MaxPoolExplorer(draw=False)
    w.window.value, w.stride.value = 2, 2
    w.set_input(np.full((4, 4), 5.0))
    w.row.value, w.col.value = 1, 1
    check_state(w)
    assert w.winner == (2, 2)
    assert sorted(w.ties) == [(2, 3), (3, 2), (3, 3)]
    assert "Tie" in w.summary.value


def test_nan_wins_its_window():
    w = MaxPoolExplorer(draw=False)
    w.window.value, w.stride.value = 2, 2
    w.set_input([[1, 2, 0, 0], [np.nan, 3, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]])
    w.row.value, w.col.value = 0, 0
    assert w.winner == (1, 0) and np.isnan(w.y[0, 0])
    assert "output (0, 0) = NaN" in w.summary.value
    w.figure()
    plt.close("all")


# ---------------------------------------------------------------------------------------------
# Controls: text box, seed, button, clamping, upstream modes, invalid combinations
# ---------------------------------------------------------------------------------------------

def test_text_box_parsing_and_bad_text_keeps_the_input():
    w = MaxPoolExplorer(draw=False)
    before = w.x.copy()
    for bad in ["1 2 3\n4 5", "a b\nc d", "", "1 2\n3 4\n5 6", "1 2 3 4 5 6 7 8 9"]:
        w.cells.value = bad
        assert w.parse_error, bad
        assert "Could not read the input box" in w.summary.value
        np.testing.assert_array_equal(w.x, before)
    typed = np.arange(36, dtype=float).reshape(6, 6) % 7
    w.cells.value = "\n".join(", ".join(str(int(v)) for v in row) for row in typed)
    assert not w.parse_error and w.size.value == 6
    np.testing.assert_array_equal(w.x, typed)
    check_state(w)
    np.testing.assert_array_equal(parse_matrix("1 2; 3 4"), [[1, 2], [3, 4]])
    np.testing.assert_array_equal(parse_matrix(matrix_text(typed)), typed)


def test_seed_and_button_give_new_reproducible_values():
    w = MaxPoolExplorer(draw=False)
    x0, s0 = w.x.copy(), w.seed.value
    w.new_values.click()
    assert w.seed.value == s0 + 1
    assert not np.array_equal(w.x, x0)
    np.testing.assert_array_equal(w.x, random_input(w.size.value, s0 + 1))
    assert w.x.dtype == float and np.all(w.x == np.round(w.x)) and w.x.min() >= 0 and w.x.max() <= 9
    np.testing.assert_array_equal(parse_matrix(w.cells.value), w.x)
    w.seed.value = s0
    np.testing.assert_array_equal(w.x, x0)
    check_state(w)


def test_selection_is_clamped_to_the_output():
    w = MaxPoolExplorer(draw=False)
    set_controls(w, 8, 1, 1, 7, 7)
    assert w.selected == (7, 7)
    w.window.value = 4  # output 5x5
    assert w.row.max == 4 and w.selected == (4, 4)
    w.stride.value = 4  # output 2x2
    assert w.row.max == 1 and w.col.max == 1 and w.selected == (1, 1)
    check_state(w)


def test_upstream_modes():
    w = MaxPoolExplorer(draw=False)
    w.upstream.value = "zeros"
    w.grad.value = 2.5
    assert np.count_nonzero(w.dout) == 1
    np.testing.assert_array_equal(w.dx, w.dx_cell)
    assert "its gradient 2.5 goes to input" in w.summary.value
    check_state(w)
    w.upstream.value = "all-random"
    assert w.grad.disabled and w.g == w.dout[w.selected]
    check_state(w)
    w.upstream.value = "random"
    assert not w.grad.disabled and w.g == 2.5
    check_state(w)


def test_invalid_window_larger_than_input_does_not_raise():
    w = MaxPoolExplorer()
    set_controls(w, 2, 3, 1)
    assert not w.valid
    check_state(w)
    fig = w.figure()
    assert any("No output" in t.get_text() for t in fig.axes[0].texts)
    plt.close("all")
    w.window.value = 2  # back to a valid combination
    check_state(w)


# ---------------------------------------------------------------------------------------------
# Figure content
# ---------------------------------------------------------------------------------------------

def edge_rects(ax, color):
    return [p for p in ax.patches if isinstance(p, Rectangle)
            and to_hex(p.get_edgecolor()) == to_hex(color) and not p.get_fill()]


def test_figure_highlights_the_window_and_its_winner():
    w = MaxPoolExplorer(draw=False)
    fig = w.figure()
    ax_x, ax_y, ax_d = fig.axes[0], fig.axes[1], fig.axes[2]
    (r, c), (i, j), k = w.winner, w.selected, w.window.value
    red = edge_rects(ax_x, HIGHLIGHT)
    assert len(red) == 1 and red[0].get_xy() == (c - 0.5, r - 0.5)
    blue = edge_rects(ax_x, WINDOW)
    assert len(blue) == 1 and blue[0].get_xy() == (j * 2 - 0.5, i * 2 - 0.5) and blue[0].get_width() == k
    cells = [t.get_text() for t in ax_x.texts]
    assert cells == [fmt(v) for v in w.x.ravel()]
    assert len(edge_rects(ax_y, HIGHLIGHT)) == 1 and len(edge_rects(ax_d, HIGHLIGHT)) == 1
    assert f"goes to input ({r}, {c})" in fig._suptitle.get_text()
    dx_texts = [t.get_text() for t in fig.axes[5].texts]
    assert dx_texts == [fmt(v) for v in w.dx.ravel()]
    plt.close(fig)


def test_routing_figure_two_channels_and_overlap():
    x = np.arange(1, 17, dtype=float).reshape(4, 4)
    fig = routing_figure(x, 3, 1, np.ones((2, 2)))
    assert len(fig.axes) == 5
    assert len(edge_rects(fig.axes[0], HIGHLIGHT)) == 4  # winners 11, 12, 15, 16
    plt.close(fig)
    x2 = np.stack([x, x[::-1, ::-1]])
    fig = routing_figure(x2, 2, 2, np.ones((2, 2, 2)), channel_names=["channel 1", "channel 2"])
    assert len(fig.axes) == 10
    _, cache = core.maxpool2d_forward(x2, 2, 2)
    for ch in range(2):
        texts = [t.get_text() for t in fig.axes[5 * ch + 2].texts]
        assert texts == [fmt(v) for v in core.maxpool2d_mask(cache)[ch].ravel()]
    plt.close(fig)


def test_coverage_counts_windows():
    for n, k, s in itertools.product(range(2, 8), range(1, 5), range(1, 5)):
        if k > n:
            continue
        _, _, _, cover = brute_force(np.zeros((n, n)), k, s)
        np.testing.assert_array_equal(coverage((n, n), k, s), cover)


# ---------------------------------------------------------------------------------------------
# Every combination of the controls
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("n", range(2, 9))
def test_sweep_every_combination_never_raises(n):
    """Every input size x window x stride x selected output cell (and every upstream mode on
    the extreme cells): the state matches brute force and the core; figures are drawn for the
    first and last selected cell of every geometry."""
    w = MaxPoolExplorer(draw=False, size=n)
    for k, s in itertools.product(range(1, 5), range(1, 5)):
        w.window.value = k
        w.stride.value = s
        if k > n:
            check_state(w)
            plt.close(w.figure())
            continue
        Ho = (n - k) // s + 1
        cells = list(itertools.product(range(Ho), range(Ho)))
        for i, j in cells:
            w.row.value, w.col.value = i, j
            check_state(w)
        for mode in ("zeros", "all-random", "random"):
            for i, j in (cells[0], cells[-1]):
                w.upstream.value = mode
                w.row.value, w.col.value = i, j
                check_state(w)
        if n in (2, 8):  # drawing is slow: one figure per geometry at the extreme sizes
            plt.close(w.figure())
    # the widget's controls cover the whole range
    assert (w.size.min, w.size.max, w.window.min, w.window.max, w.stride.min, w.stride.max) == (2, 8, 1, 4, 1, 4)


def test_drawing_widget_updates_its_output():
    w = MaxPoolExplorer(draw=True)
    drawn = []
    original = w.figure

    def counting_figure(*args, **kwargs):
        fig = original(*args, **kwargs)
        drawn.append(fig)
        return fig

    w.figure = counting_figure
    w.window.value = 2
    assert drawn == []  # nothing is drawn before the widget is displayed
    box = w.widget
    assert w.out in box.children and w.summary in box.children
    assert len(drawn) == 1
    w.window.value = 3
    w.stride.value = 1
    assert len(drawn) == 3  # one redraw per change
    assert all(not plt.fignum_exists(f.number) for f in drawn)  # closed after display
    assert re.search(r"goes to input \(\d, \d\)", w.summary.value)
    plt.close("all")


@pytest.mark.parametrize("text", ["nan nan\nnan nan", "inf -inf\n1 2", "-inf -inf\n-inf -inf",
                                  "1.25 -3.5 2\n0 0 0\n7 7 7", "1e300 -1e300\n0 0"])
def test_odd_typed_inputs_never_raise(text):
    w = MaxPoolExplorer(draw=False)
    for k in (1, 2, 3):
        w.window.value = k
        w.cells.value = text
        assert not w.parse_error
        assert w.valid == (k <= w.x.shape[0])
        if w.valid:
            assert "goes to input" in w.summary.value
            _, cache = core.maxpool2d_forward(w.x, k, w.stride.value)
            assert w.winner == (int(cache.rows[w.selected]), int(cache.cols[w.selected]))
        plt.close(w.figure())
