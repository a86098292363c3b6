"""Tests of chapter 04's widget (cnnviz.relu.ReluExplorer) and figure helpers.

The expected values are computed here independently of the code under test: the convolution,
the ReLU, the max pool (first maximum in row-major order, found with a strict ``>``) and both
backward orders are plain loops over the cells; the chapter's example is also checked against
hand-worked numbers.
"""
import itertools

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.colors import to_hex  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402

from cnnviz import relu as ch04  # noqa: E402
from cnnviz.draw import WINDOW  # noqa: E402

# hand-worked: conv(XX, W) of the chapter's seed 3717 (see the chapter's printed L1)
L1_EXAMPLE = np.array([[-2, 1, -5, -5],
                       [1, 3, -1, -4],
                       [-4, -1, -2, 2],
                       [0, -2, -3, 1]], float)
G_EXAMPLE = np.array([[-2, 1], [-1, 2]], float)


def fmt(v):
    v = float(v)
    return str(int(v)) if v.is_integer() else f"{v:.3g}"


# ---------------------------------------------------------------------------------------------
# Independent brute force
# ---------------------------------------------------------------------------------------------

def conv_loops(x, w, b):
    H, Wd = x.shape
    k = w.shape[0]
    out = np.zeros((H - k + 1, Wd - k + 1))
    for i in range(out.shape[0]):
        for j in range(out.shape[1]):
            total = b
            for r in range(k):
                for c in range(k):
                    total += x[i + r, j + c] * w[r, c]
            out[i, j] = total
    return out


def first_max(a, i, j, k=2):
    best = (i * k, j * k)
    for r in range(i * k, i * k + k):
        for c in range(j * k, j * k + k):
            if a[r, c] > a[best]:
                best = (r, c)
    return best


def brute(L1, G):
    """Everything both orders compute, by loops: dict of arrays."""
    H, Wd = L1.shape
    Ho, Wo = H // 2, Wd // 2
    A1 = np.where(L1 > 0, L1, 0.0)
    mask = (L1 > 0).astype(float)
    P = np.zeros((Ho, Wo))
    M = np.zeros((Ho, Wo))
    routed_rp = np.zeros((H, Wd))     # relu -> pool: route G through the pool of A1
    dL1 = np.zeros((H, Wd))           # the same in both orders
    win_A = np.zeros((H, Wd), bool)
    win_L = np.zeros((H, Wd), bool)
    for i in range(Ho):
        for j in range(Wo):
            ra = first_max(A1, i, j)
            rl = first_max(L1, i, j)
            P[i, j] = A1[ra]
            M[i, j] = L1[rl]
            win_A[ra] = win_L[rl] = True
            routed_rp[ra] += G[i, j]
            if L1[rl] > 0:
                dL1[rl] += G[i, j]
    return {"A1": A1, "mask": mask, "P": P, "M": M, "routed_rp": routed_rp, "dL1": dL1,
            "win_A": win_A, "win_L": win_L, "dM": G * (M > 0)}


def check_state(w):
    XX, Wk = ch04.example_values(w.seed.value)
    b, s = float(w.bias.value), float(w.scale.value)
    L1 = conv_loops(s * XX, Wk, b)
    np.testing.assert_array_equal(w.XX, XX)
    np.testing.assert_array_equal(w.L1, L1)
    np.testing.assert_array_equal(w.G, G_EXAMPLE)
    e = brute(L1, w.G)
    np.testing.assert_array_equal(w.relu_mask, e["mask"])
    np.testing.assert_array_equal(w.dL1, e["dL1"])
    np.testing.assert_array_equal(w.result.P, e["P"])
    np.testing.assert_array_equal(w.other.dL1, e["dL1"])
    assert w.orders_agree
    if w.order.value == "relu-pool":
        np.testing.assert_array_equal(w.result.mask, e["mask"])
        np.testing.assert_array_equal(w.routed, e["routed_rp"])
        np.testing.assert_array_equal(w.result.winners, e["win_A"])
        np.testing.assert_array_equal(w.result.A1, e["A1"])
    else:
        np.testing.assert_array_equal(w.result.mask, e["M"] > 0)
        np.testing.assert_array_equal(w.result.dM, e["dM"])
        np.testing.assert_array_equal(w.routed, e["dL1"])
        np.testing.assert_array_equal(w.result.winners, e["win_L"])
        np.testing.assert_array_equal(w.result.A1, e["M"])
    alive = int((L1 > 0).sum())
    n_open = int((e["M"] > 0).sum())
    assert w.alive == alive and w.zeros == int((L1 == 0).sum()) and w.n_open == n_open
    np.testing.assert_array_equal(w.window_max, e["M"])
    # a window passes gradient iff its maximum is > 0 (every upstream entry is non-zero)
    for i, j in itertools.product(range(2), range(2)):
        assert bool(np.any(w.dL1[2 * i:2 * i + 2, 2 * j:2 * j + 2])) == (e["M"][i, j] > 0)
    text = w.summary.value
    assert f"Alive units (L1 &gt; 0): {alive} of 16" in text
    assert f"windows passing gradient: {n_open} of 4" in text
    assert "gives the same output and gradient" in text
    assert f"dL/dL1 has {int(np.count_nonzero(e['dL1']))} non-zero entr" in text
    if alive == 0:
        assert "every gradient is 0" in text
    if alive == 16:
        assert "mask is all ones" in text


# ---------------------------------------------------------------------------------------------
# The chapter's example, by hand
# ---------------------------------------------------------------------------------------------

def test_example_values_and_upstream():
    np.testing.assert_array_equal(conv_loops(ch04.XX, ch04.W, 0.0), L1_EXAMPLE)
    np.testing.assert_array_equal(ch04.preactivation(ch04.XX, ch04.W), L1_EXAMPLE)
    # P = relu(maxpool) = [[3, 0], [0, 2]], L2 = 3*1 + 2*(-1) = 1, dL/dL2 = 1 - 3 = -2, G = -2 * WW
    np.testing.assert_array_equal(ch04.UPSTREAM, -2 * np.array([1, -0.5, 0.5, -1]).reshape(2, 2))
    np.testing.assert_array_equal(ch04.UPSTREAM, G_EXAMPLE)
    assert not ch04.XX.flags.writeable and not ch04.W.flags.writeable


def test_default_state_hand_worked():
    w = ch04.ReluExplorer(draw=False)
    assert (w.bias.value, w.scale.value, w.seed.value, w.order.value) == (0.0, 1.0, 3717, "relu-pool")
    check_state(w)
    np.testing.assert_array_equal(w.L1, L1_EXAMPLE)
    assert w.alive == 5 and w.zeros == 1 and w.n_open == 2
    expected = np.zeros((4, 4))
    expected[1, 1], expected[2, 3] = -2, 2
    np.testing.assert_array_equal(w.dL1, expected)
    # relu -> pool: the dead windows' gradients go to the first of their tied zeros, (0, 2) and (2, 0)
    routed = expected.copy()
    routed[0, 2], routed[2, 0] = 1, -1
    np.testing.assert_array_equal(w.routed, routed)
    text = w.summary.value
    assert "(0, 1) max -1" in text and "(1, 0) max 0" in text
    assert "1 unit is exactly 0" in text


def test_order_toggle_same_gradient_different_path():
    w = ch04.ReluExplorer(draw=False)
    rp = w.routed.copy()
    w.order.value = "pool-relu"
    check_state(w)
    assert not np.array_equal(w.routed, rp)
    np.testing.assert_array_equal(w.routed, w.dL1)
    np.testing.assert_array_equal(w.result.mask, [[1, 0], [0, 1]])
    assert "(ReLU → pool)" in w.summary.value


# ---------------------------------------------------------------------------------------------
# Extremes of the bias, the scale and the seed
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("order", ["relu-pool", "pool-relu"])
def test_very_negative_bias_kills_every_gradient(order):
    w = ch04.ReluExplorer(bias=ch04.ReluExplorer.BIAS_RANGE[0], order=order, draw=False)
    assert w.bias.value == -6.0
    check_state(w)
    assert w.L1.max() < 0 and w.alive == 0 and w.n_open == 0
    assert not w.dL1.any() and not w.relu_mask.any()
    assert "every gradient is 0" in w.summary.value


@pytest.mark.parametrize("order", ["relu-pool", "pool-relu"])
def test_very_positive_bias_mask_all_ones(order):
    w = ch04.ReluExplorer(bias=ch04.ReluExplorer.BIAS_RANGE[1], order=order, draw=False)
    check_state(w)
    assert w.L1.min() > 0
    np.testing.assert_array_equal(w.relu_mask, np.ones((4, 4)))
    assert w.alive == 16 and w.n_open == 4
    # the mask lets the routed gradient through unchanged: every window sends its G
    assert sorted(w.dL1[w.dL1 != 0]) == sorted(G_EXAMPLE.ravel())
    assert "mask is all ones" in w.summary.value


def test_integer_bias_makes_exact_zeros():
    w = ch04.ReluExplorer(draw=False)
    w.bias.value = -1.0  # the three 1s of L1 become exact zeros: off (ReLU'(0) = 0)
    check_state(w)
    assert w.zeros == 3 and "3 units are exactly 0" in w.summary.value
    assert w.alive == 2 and w.n_open == 2


def test_scale_zero_makes_every_preactivation_equal_to_the_bias():
    w = ch04.ReluExplorer(draw=False)
    w.scale.value = 0.0
    check_state(w)
    assert w.zeros == 16 and w.alive == 0 and not w.dL1.any()
    w.bias.value = 1.0  # sixteen tied ones: each window's gradient goes to its first cell
    check_state(w)
    expected = np.zeros((4, 4))
    expected[::2, ::2] = G_EXAMPLE
    np.testing.assert_array_equal(w.dL1, expected)
    w.order.value = "pool-relu"
    check_state(w)
    np.testing.assert_array_equal(w.dL1, expected)


def test_negative_scale_flips_alive_and_dead():
    w = ch04.ReluExplorer(draw=False)
    w.scale.value = -1.0
    check_state(w)
    np.testing.assert_array_equal(w.L1, -L1_EXAMPLE)
    assert w.alive == int((L1_EXAMPLE < 0).sum()) == 10


def test_seed_and_button():
    w = ch04.ReluExplorer(draw=False)
    w.new_values.click()
    assert w.seed.value == 3718
    XX, Wk = ch04.example_values(3718)
    np.testing.assert_array_equal(w.XX, XX)
    np.testing.assert_array_equal(w.W, Wk)
    check_state(w)
    w.seed.value = w.seed.max
    w.new_values.click()
    assert w.seed.value == 0
    check_state(w)


# ---------------------------------------------------------------------------------------------
# Every setting of the controls
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("seed", [0, 1, 3717, 424242])
def test_sweep_every_control_value_never_raises(seed):
    """Every bias step x every scale step x both orders (state checked against brute force);
    figures drawn at the extremes and the middle of both sliders."""
    w = ch04.ReluExplorer(seed=seed, draw=False)
    b_lo, b_hi = ch04.ReluExplorer.BIAS_RANGE
    s_lo, s_hi = ch04.ReluExplorer.SCALE_RANGE
    assert (w.bias.min, w.bias.max, w.scale.min, w.scale.max) == (b_lo, b_hi, s_lo, s_hi)
    biases = np.arange(b_lo, b_hi + 1e-9, w.bias.step)
    scales = np.arange(s_lo, s_hi + 1e-9, w.scale.step)
    assert len(biases) == 25 and len(scales) == 13
    for order in ("relu-pool", "pool-relu"):
        w.order.value = order
        for b, s in itertools.product(biases, scales):
            w.bias.value = float(b)
            w.scale.value = float(s)
            check_state(w)
        if seed in (0, 3717):
            for b, s in itertools.product((b_lo, 0.0, b_hi), (s_lo, 0.0, s_hi)):
                w.bias.value, w.scale.value = float(b), float(s)
                plt.close(w.figure())


# ---------------------------------------------------------------------------------------------
# Figure content
# ---------------------------------------------------------------------------------------------

def window_rects(ax):
    return [p for p in ax.patches if isinstance(p, Rectangle) and not p.get_fill()
            and abs(p.get_width() - 2) < 0.2]


@pytest.mark.parametrize("order", ["relu-pool", "pool-relu"])
def test_figure_shows_the_state(order):
    w = ch04.ReluExplorer(order=order, draw=False)
    fig = w.figure()
    assert len(fig.axes) == 5
    assert [t.get_text() for t in fig.axes[0].texts] == [fmt(v) for v in L1_EXAMPLE.ravel()]
    assert [t.get_text() for t in fig.axes[4].texts] == [fmt(v) for v in w.dL1.ravel()]
    assert [t.get_text() for t in fig.axes[1].texts] == [fmt(v) for v in w.result.mask.ravel()]
    rects = window_rects(fig.axes[0])
    open_rects = [r for r in rects if to_hex(r.get_edgecolor()) == to_hex(WINDOW)]
    assert len(rects) == 4 and len(open_rects) == 2
    assert "5 of 16 units alive, 2 of 4 windows pass gradient" in fig._suptitle.get_text()
    plt.close(fig)


def test_dead_figure():
    w = ch04.ReluExplorer(bias=-6.0, draw=False)
    fig = w.figure()
    assert "0 of 16 units alive, 0 of 4 windows pass gradient" in fig._suptitle.get_text()
    assert all(to_hex(r.get_edgecolor()) != to_hex(WINDOW) for r in window_rects(fig.axes[0]))
    assert set(t.get_text() for t in fig.axes[4].texts) == {"0"}
    plt.close(fig)


def test_green_box_and_curve_figures():
    fig = ch04.green_box_figure(L1_EXAMPLE, G_EXAMPLE, suptitle="x")
    assert len(fig.axes) == 5
    e = brute(L1_EXAMPLE, G_EXAMPLE)
    assert [t.get_text() for t in fig.axes[1].texts] == [fmt(v) for v in e["mask"].ravel()]
    assert [t.get_text() for t in fig.axes[3].texts] == [fmt(v) for v in e["routed_rp"].ravel()]
    assert [t.get_text() for t in fig.axes[4].texts] == [fmt(v) for v in e["dL1"].ravel()]
    plt.close(fig)
    fig = ch04.relu_curve_figure()
    assert len(fig.axes) == 2
    plt.close(fig)


def test_relu_pool_pass_rejects_unknown_order():
    with pytest.raises(ValueError, match="order"):
        ch04.relu_pool_pass(L1_EXAMPLE, G_EXAMPLE, "relu-relu")


def test_drawing_widget_updates_its_output():
    w = ch04.ReluExplorer(draw=True)
    drawn = []
    original = w.figure

    def counting_figure(*args, **kwargs):
        fig = original(*args, **kwargs)
        drawn.append(fig)
        return fig

    w.figure = counting_figure
    w.bias.value = -2.0
    w.order.value = "pool-relu"
    assert len(drawn) == 2
    assert all(not plt.fignum_exists(f.number) for f in drawn)
    check_state(w)
    plt.close("all")
