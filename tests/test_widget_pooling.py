"""Tests of chapter 09's widget (cnnviz.pooling.PoolingCompare) and its figure helper.

The expected gradients are computed here independently of the code under test, straight from
the definitions with plain loops over the windows: max pooling sends each window's dL/dY to
its (unique) largest real cell; mean pooling sends dL/dY / k² to every real cell of the
window (padded cells count in the divisor and keep their share: count_include_pad=True).
PyTorch, when installed, is a second oracle.
"""
import itertools
import re

import matplotlib

matplotlib.use("Agg")
import matplotlib.colors as mcolors  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from cnnviz.draw import HIGHLIGHT  # noqa: E402
from cnnviz.pooling import (PoolingCompare, compare_figure, input_values, pooling_state,  # noqa: E402
                            upstream_values)


def windows(n, k, s, p):
    """{(i, j): [real cells (r, c) of window (i, j)]} for a square n x n input."""
    Ho = (n + 2 * p - k) // s + 1
    return {(i, j): [(r, c) for r in range(i * s - p, i * s - p + k) for c in range(j * s - p, j * s - p + k)
                     if 0 <= r < n and 0 <= c < n]
            for i in range(Ho) for j in range(Ho)}


def reference(x, dy, k, s, p):
    """(dx_max, dx_mean, out_max, out_mean) from the definitions."""
    n = x.shape[0]
    dx_max, dx_mean = np.zeros_like(x), np.zeros_like(x)
    Ho = (n + 2 * p - k) // s + 1
    out_max, out_mean = np.zeros((Ho, Ho)), np.zeros((Ho, Ho))
    for (i, j), cells in windows(n, k, s, p).items():
        r, c = max(cells, key=lambda rc: x[rc])
        dx_max[r, c] += dy[i, j]
        out_max[i, j] = x[r, c]
        out_mean[i, j] = sum(x[rc] for rc in cells) / (k * k)
        for rc in cells:
            dx_mean[rc] += dy[i, j] / (k * k)
    return dx_max, dx_mean, out_max, out_mean


def set_controls(w, kinds="both", k=2, s=2, p=0, n=6, seed=0, upstream="ones"):
    w.kinds.value = kinds
    w.window.value = k
    w.padding.value = p
    w.stride.value = s
    w.size.value = n
    w.seed.value = seed
    w.upstream.value = upstream


def check_state(w, kinds, k, s, p, n, seed, upstream):
    st = w.state
    assert st is not None and w.message == ""
    assert (st.window, st.stride, st.padding) == (k, s, p)
    x = input_values(n, seed)
    np.testing.assert_array_equal(st.x, x)
    assert sorted(st.x.ravel()) == list(range(1, n * n + 1))  # distinct values: no ties
    Ho = (n + 2 * p - k) // s + 1
    assert st.dy.shape == (Ho, Ho)
    if upstream == "ones":
        assert np.all(st.dy == 1)
    else:
        assert set(np.unique(st.dy)) <= {1.0, 2.0, 3.0, 4.0}
    dx_max, dx_mean, out_max, out_mean = reference(x, st.dy, k, s, p)
    np.testing.assert_allclose(st.out_max, out_max, atol=1e-12)
    np.testing.assert_allclose(st.out_mean, out_mean, atol=1e-12)
    np.testing.assert_allclose(st.dx_max, dx_max, atol=1e-12)
    np.testing.assert_allclose(st.dx_mean, dx_mean, atol=1e-12)
    # the summary numbers
    nz_max, nz_mean = np.count_nonzero(dx_max), np.count_nonzero(dx_mean)
    assert st.frac_max == pytest.approx(nz_max / (n * n))
    assert st.frac_mean == pytest.approx(nz_mean / (n * n))
    assert st.mass_max == pytest.approx(st.dy.sum())            # max pooling keeps the mass
    real = sum(len(c) for c in windows(n, k, s, p).values())
    assert st.mass_mean == pytest.approx(sum(st.dy[ij] * len(c) / (k * k)
                                             for ij, c in windows(n, k, s, p).items()))
    if p == 0:
        assert st.mass_mean == pytest.approx(st.dy.sum())
        assert real == Ho * Ho * k * k
    covered = {rc for c in windows(n, k, s, p).values() for rc in c}
    assert nz_mean == len(covered)                                # mean: every covered cell
    assert nz_max <= min(Ho * Ho, nz_mean)                       # max: at most one per window
    text = w.summary.value
    assert f"output {Ho}×{Ho}" in text
    if "max" in w.shown:
        assert f"<b>max pool</b>: {nz_max} of {n * n} input cells ({100 * nz_max / (n * n):.1f} %)" in text
    else:
        assert "max pool" not in text
    if "mean" in w.shown:
        assert f"<b>mean pool</b>: {nz_mean} of {n * n} input cells ({100 * nz_mean / (n * n):.1f} %)" in text
    else:
        assert "mean pool" not in text
    assert ("windows overlap" in text) == (s < k)
    assert ("no window" in text) == (s > k)
    assert ("count_include_pad" in text) == (p > 0 and "mean" in w.shown)


def test_default_state_is_the_textbook_case():
    w = PoolingCompare(draw=False)
    assert (w.window.value, w.stride.value, w.padding.value, w.size.value) == (2, 2, 0, 6)
    st = w.state
    assert np.count_nonzero(st.dx_max) == 9 and np.count_nonzero(st.dx_mean) == 36
    np.testing.assert_allclose(st.dx_mean, np.full((6, 6), 0.25))
    assert "9 of 36 input cells (25.0 %)" in w.summary.value
    assert "36 of 36 input cells (100.0 %)" in w.summary.value
    check_state(w, "both", 2, 2, 0, 6, 0, "ones")


def test_hand_worked_padded_example():
    # 4x4 input, window 3, stride 1, padding 1, dY = ones: corner cells lie in 4 windows,
    # edge cells in 6, inner cells in 9; each window gives 1/9 -> 4/9, 6/9, 9/9.
    w = PoolingCompare(window=3, stride=1, padding=1, size=4, draw=False)
    expected = np.array([[4, 6, 6, 4], [6, 9, 9, 6], [6, 9, 9, 6], [4, 6, 6, 4]]) / 9
    np.testing.assert_allclose(w.state.dx_mean, expected)
    assert w.state.mass_mean == pytest.approx(expected.sum()) and expected.sum() == pytest.approx(100 / 9)
    assert w.state.mass_dy == 16 and w.state.mass_max == 16
    assert "count_include_pad" in w.summary.value


def test_padding_slider_follows_the_window():
    w = PoolingCompare(window=4, padding=2, draw=False)
    assert w.padding.max == 2 and w.padding.value == 2
    w.window.value = 3
    assert w.padding.max == 1 and w.padding.value == 1
    w.window.value = 1
    assert w.padding.max == 0 and w.padding.value == 0
    assert w.state.padding == 0
    w.window.value = 4
    assert w.padding.max == 2 and w.padding.value == 0
    w.padding.value = 5  # beyond the range: the slider clamps it
    assert w.padding.value == 2 and w.state.padding == 2


def test_window_one_is_the_identity():
    w = PoolingCompare(window=1, stride=1, size=5, upstream="random", seed=3, draw=False)
    np.testing.assert_array_equal(w.state.dx_max, w.state.dy)
    np.testing.assert_array_equal(w.state.dx_mean, w.state.dy)


def test_upstream_random_is_seeded_and_positive():
    a = upstream_values((3, 3), "random", seed=4)
    b = upstream_values((3, 3), "random", seed=4)
    np.testing.assert_array_equal(a, b)
    assert a.min() >= 1 and a.max() <= 4
    with pytest.raises(ValueError):
        upstream_values((3, 3), "zeros")


def test_against_torch():
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    for n, k, s, p, up in [(6, 2, 2, 0, "ones"), (7, 3, 2, 1, "random"), (8, 4, 3, 2, "random"),
                           (5, 3, 1, 1, "random"), (4, 2, 3, 1, "ones")]:
        st = pooling_state(input_values(n, 1), k, s, p, upstream=up, seed=1)
        for kind, dx in (("max", st.dx_max), ("mean", st.dx_mean)):
            t = torch.tensor(st.x[None, None], requires_grad=True, dtype=torch.float64)
            out = (F.max_pool2d(t, k, s, p) if kind == "max"
                   else F.avg_pool2d(t, k, s, p, count_include_pad=True))
            out.backward(torch.tensor(st.dy[None, None]))
            np.testing.assert_allclose(dx, t.grad.numpy()[0, 0], atol=1e-12, err_msg=f"{kind} {n, k, s, p}")


def red_patches(ax):
    red = mcolors.to_rgba(HIGHLIGHT)
    return sum(1 for patch in ax.patches if mcolors.to_rgba(patch.get_edgecolor()) == red)


@pytest.mark.parametrize("kinds", ["both", "max", "mean"])
def test_figure_content(kinds):
    w = PoolingCompare(kinds=kinds, window=3, stride=2, padding=1, size=7, upstream="random", seed=5)
    fig = w.figure()
    axes = fig.axes
    n_dx = 2 if kinds == "both" else 1
    assert len(axes) == 2 + n_dx
    assert axes[0].get_title().startswith("input x (7×7)")
    assert axes[1].get_title().startswith("dL/dY (4×4)")
    st = w.state
    panels = {"max": st.dx_max, "mean": st.dx_mean}
    for ax, kind in zip(axes[2:], ("max", "mean") if kinds == "both" else (kinds,)):
        dx = panels[kind]
        assert ax.get_title().startswith(f"{kind} pool dX: {np.count_nonzero(dx)}/49 cells")
        assert red_patches(ax) == np.count_nonzero(dx)
    # winners outlined in the input only when max pooling is shown
    assert red_patches(axes[0]) == (np.count_nonzero(st.wins) if "max" in w.shown else 0)
    # the padded ring: (7 + 2)^2 - 7^2 grey cells labelled "pad"
    assert sum(t.get_text() == "pad" for t in axes[0].texts) == 9 * 9 - 49
    assert "Σ dY = " in fig._suptitle.get_text()
    plt.close(fig)


def test_update_draws_into_the_output_widget():
    w = PoolingCompare()
    w.window.value = 3  # triggers a redraw; must not raise and must leave no figure open
    assert plt.get_fignums() == []
    assert w.figure() is not None
    plt.close("all")


def test_compare_figure_on_a_hand_built_state():
    x = np.array([[1., 2.], [4., 3.]])
    st = pooling_state(x, 2, 2, 0, dy=np.array([[8.]]))
    np.testing.assert_array_equal(st.dx_max, [[0, 0], [8, 0]])
    np.testing.assert_array_equal(st.dx_mean, [[2, 2], [2, 2]])
    fig = compare_figure(st, title="tiny")
    assert fig._suptitle.get_text() == "tiny"
    assert red_patches(fig.axes[2]) == 1 and red_patches(fig.axes[3]) == 4
    plt.close(fig)


def test_every_combination_of_the_controls():
    """Every pooling choice, window, stride, legal padding, size and upstream kind (seeds at
    the ends of their range): the state matches the reference, nothing raises."""
    w = PoolingCompare(draw=False)
    count = 0
    for kinds, k, s, n, up, seed in itertools.product(["both", "max", "mean"], range(1, 5), range(1, 4),
                                                      range(4, 9), ["ones", "random"], [0, 20]):
        for p in range(0, k // 2 + 1):
            set_controls(w, kinds, k, s, p, n, seed, up)
            assert w.padding.max == k // 2
            check_state(w, kinds, k, s, p, n, seed, up)
            count += 1
    assert count == 3 * 8 * 3 * 5 * 2 * 2


def test_figures_at_the_extremes():
    """A drawn figure for the extreme and middle values of every slider, cycling through the
    pooling choices (the controls are set without redrawing, then ``figure()`` draws once)."""
    w = PoolingCompare(draw=False)
    kinds = itertools.cycle(["both", "max", "mean"])
    seen = set()
    for k, s, n in itertools.product([1, 2, 4], [1, 3], [4, 8]):
        for p in sorted({0, k // 2}):
            kind = next(kinds)
            seen.add(kind)
            set_controls(w, kind, k, s, p, n, 20, "random")
            fig = w.figure()
            assert len(fig.axes) == 2 + len(w.shown)
            titles = [ax.get_title() for ax in fig.axes]
            assert all(re.search(r"\d+/\d+ cells", t) for t in titles[2:])
            plt.close(fig)
    assert seen == {"both", "max", "mean"}
    assert plt.get_fignums() == []
