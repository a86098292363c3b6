"""Tests of chapter 07's widget (cnnviz.conv.ConvGradExplorer) and figure helpers.

The expected values are computed here independently of the code under test: the influenced
outputs and weight indices by brute force (a loop over every output and every kernel position),
dX by mlp_cnn_core.conv2d_backward on a kernel and an upstream gradient built in the test.
"""
import itertools

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

import mlp_cnn_core as core  # noqa: E402
from cnnviz.conv import (ConvGradExplorer, conv_matrix, full_correlation_figure,  # noqa: E402
                         prepared_gradient, upstream_values)


def brute_force(n, k, s, p, u, v):
    """{(i, j): (r, c)} for every output (i, j) that reads input (u, v) through weight w[r, c]."""
    Ho = (n + 2 * p - k) // s + 1
    found = {}
    for i in range(Ho):
        for j in range(Ho):
            for r in range(k):
                for c in range(k):
                    if i * s + r - p == u and j * s + c - p == v:
                        assert (i, j) not in found  # one weight per output
                        found[(i, j)] = (r, c)
    return found


def core_dx(n, k, s, p, dy):
    w = np.arange(1, k * k + 1, dtype=float).reshape(1, 1, k, k)
    _, cache = core.conv2d_forward(np.zeros((1, 1, n, n)), w, None, s, p)
    return core.conv2d_backward(dy[None, None], cache)[0][0, 0]


def set_controls(w, n, k, s, p, u, v, upstream="ones"):
    w.size.value = n
    w.kernel.value = k
    w.stride.value = s
    w.padding.value = p
    w.row.value = u
    w.col.value = v
    w.upstream.value = upstream


def check_state(w, n, k, s, p, u, v):
    if k > n + 2 * p:
        assert not w.valid
        assert "larger than the padded input" in w.summary.value
        assert w.pairs == []
        return
    assert w.valid
    expected = brute_force(n, k, s, p, u, v)
    Ho = (n + 2 * p - k) // s + 1
    assert w.out_size == Ho and w.mask.shape == (Ho, Ho)
    got = {ij: rs for ij, rs in w.pairs}
    assert got == expected
    assert set(zip(*map(list, np.nonzero(w.mask)))) == set(expected)
    for (i, j), (r, c) in expected.items():
        assert tuple(w.weight_index[i, j]) == (r, c)
    assert np.all(w.weight_index[~w.mask] == -1)
    dx = core_dx(n, k, s, p, w.dy)
    np.testing.assert_allclose(w.dx, dx, atol=1e-12)
    assert w.dx_cell == pytest.approx(dx[u, v], abs=1e-12)
    kern = np.arange(1, k * k + 1, dtype=float).reshape(k, k)
    assert w.dx_cell_sum == pytest.approx(sum(w.dy[i, j] * kern[r, c] for (i, j), (r, c) in expected.items()))
    if expected:
        for (i, j), (r, c) in expected.items():
            assert f"Y[{i},{j}] via w[{r},{c}]" in w.summary.value
        assert f"influenced <b>{len(expected)}</b>" in w.summary.value
    else:
        assert "no output" in w.summary.value


def test_default_state_is_the_rotated_kernel():
    w = ConvGradExplorer(draw=False)
    assert (w.size.value, w.kernel.value, w.stride.value, w.padding.value, w.row.value, w.col.value) == (5, 3, 1, 0, 2, 2)
    # hand-worked: output (i, j) uses w[2 - i, 2 - j]: the index grid rotated by 180 degrees
    for i in range(3):
        for j in range(3):
            assert tuple(w.weight_index[i, j]) == (2 - i, 2 - j)
    assert w.mask.all()
    assert w.dx_cell == 45.0 == sum(range(1, 10))  # all-ones upstream: every weight once
    assert "rotated by 180°" in w.summary.value
    check_state(w, 5, 3, 1, 0, 2, 2)


def test_strided_padded_hand_example():
    w = ConvGradExplorer(size=6, kernel=3, stride=2, padding=1, row=3, col=2, draw=False)
    # padded row 4 is read by output rows 1 (kernel row 2) and 2 (kernel row 0);
    # padded col 3 by output col 1 (kernel col 1) only
    assert dict(w.pairs) == {(1, 1): (2, 1), (2, 1): (0, 1)}
    assert w.dx_cell == 8 + 2  # w[2,1] = 8, w[0,1] = 2, upstream ones


def test_unreached_cell_gets_zero():
    # H = 6, k = 3, stride 2, no padding: windows cover rows 0..4, row 5 is never read
    w = ConvGradExplorer(size=6, kernel=3, stride=2, padding=0, row=5, col=1, draw=False)
    assert w.pairs == [] and w.dx_cell == 0.0
    assert "no output" in w.summary.value
    assert np.all(w.dx[5] == 0) and np.all(w.dx[:, 5] == 0)


def test_random_upstream_matches_core():
    w = ConvGradExplorer(size=7, kernel=3, stride=2, padding=1, row=3, col=4, upstream="random", draw=False)
    assert not np.all(w.dy == 1)
    np.testing.assert_array_equal(w.dy, upstream_values((4, 4), "random"))
    check_state(w, 7, 3, 2, 1, 3, 4)


def test_kernel_larger_than_padded_input_does_not_raise():
    w = ConvGradExplorer(size=3, kernel=4, padding=0, row=1, col=1)
    assert not w.valid
    assert "larger than the padded input" in w.summary.value
    fig = w.figure()
    assert any("No output" in t.get_text() for t in fig.axes[0].texts)
    plt.close(fig)
    w.padding.value = 1  # now 4 <= 3 + 2
    assert w.valid
    check_state(w, 3, 4, 1, 1, 1, 1)


def test_row_col_follow_the_input_size():
    w = ConvGradExplorer(size=8, row=7, col=6, draw=False)
    w.size.value = 4
    assert (w.row.max, w.col.max) == (3, 3)
    assert (w.row.value, w.col.value) == (3, 3)
    check_state(w, 4, 3, 1, 0, 3, 3)
    w.size.value = 8
    assert w.row.max == 7 and w.row.value == 3


def test_figure_labels_the_influenced_outputs():
    w = ConvGradExplorer(size=6, kernel=3, stride=2, padding=1, row=3, col=2)
    fig = w.figure()
    assert len(fig.axes) == 4
    out_ax = fig.axes[2]
    labels = sorted(t.get_text() for t in out_ax.texts if t.get_text().startswith("$w_"))
    assert labels == sorted(f"$w_{{{r}{c}}}$" for _, (r, c) in w.pairs) == ["$w_{01}$", "$w_{21}$"]
    # one red outline per influenced output
    assert sum(1 for p in out_ax.patches if p.get_linewidth() == 2.5) == len(w.pairs)
    assert f"dX[3,2] = {int(w.dx_cell)}" in fig.axes[3].get_title()
    fig.canvas.draw()
    plt.close(fig)


def test_every_combination_state():
    """Every control value (every input cell, both upstream kinds): no error, state right."""
    w = ConvGradExplorer(draw=False)
    for n, k, s, p, up in itertools.product(range(3, 9), range(1, 5), range(1, 4), range(0, 3),
                                            ["ones", "random"]):
        for u in range(n):
            for v in range(n):
                set_controls(w, n, k, s, p, u, v, up)
                check_state(w, n, k, s, p, u, v)


def test_every_geometry_draws():
    """Every (kernel, stride, padding), the input size at its extremes and middle, draws without
    error (the state of every combination is checked above, without drawing, for speed)."""
    w = ConvGradExplorer(draw=False)
    for n, k, s, p in itertools.product([3, 5, 8], range(1, 5), range(1, 4), range(0, 3)):
        for u, v in [(0, 0), (n // 2, n - 1)] if (n, k) in {(3, 1), (8, 4)} else [(n // 2, n // 2)]:
            set_controls(w, n, k, s, p, u, v)
            fig = w.figure()
            plt.close(fig)
    # the widget's own update path (drawing into its Output) also works
    w.draw = True
    set_controls(w, 8, 4, 3, 2, 7, 0, "random")
    assert w.valid


def test_prepared_gradient_and_full_correlation_figure():
    rng = np.random.default_rng(3)
    for n, k, s, p in [(6, 3, 2, 1), (6, 3, 2, 0), (5, 2, 1, 0), (7, 3, 3, 2)]:
        Ho = (n + 2 * p - k) // s + 1
        dy = rng.integers(-2, 3, (Ho, Ho)).astype(float)
        g, kind = prepared_gradient(dy, k, n, s, p)
        assert g.shape == (n + 2 * p + k - 1,) * 2
        np.testing.assert_array_equal(g[kind == 0], dy.ravel())
        assert np.all(g[kind != 0] == 0)
        kern = rng.standard_normal((k, k))
        # a plain stride-1 correlation of g with the flipped kernel, cropped, is dX
        full = np.array([[np.sum(g[a:a + k, b:b + k] * kern[::-1, ::-1]) for b in range(n + 2 * p)]
                         for a in range(n + 2 * p)])
        _, cache = core.conv2d_forward(np.zeros((1, 1, n, n)), kern[None, None], None, s, p)
        np.testing.assert_allclose(full[p:p + n, p:p + n], core.conv2d_backward(dy[None, None], cache)[0][0, 0],
                                   atol=1e-12)
        fig = full_correlation_figure(dy, kern, n, s, p, cells=[(0, 0), (n - 1, n - 1)])
        assert len(fig.axes) == 3
        plt.close(fig)


def test_conv_matrix_transpose_is_the_backward_pass():
    rng = np.random.default_rng(4)
    kern = rng.standard_normal((2, 3))
    A = conv_matrix(4, 5, kern, 1, 1)
    x = rng.standard_normal((4, 5))
    y, cache = core.conv2d_forward(x[None, None], kern[None, None], None, 1, 1)
    np.testing.assert_allclose(A @ x.ravel(), y.ravel(), atol=1e-12)
    dy = rng.standard_normal(y.shape)
    np.testing.assert_allclose(A.T @ dy.ravel(), core.conv2d_backward(dy, cache)[0].ravel(), atol=1e-12)
