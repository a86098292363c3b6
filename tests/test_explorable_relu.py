"""Tests of chapter 4's explorable (cnnviz.relu.ReluRouting, relu_state), its figures
and the ReLU curve.

The expected values are computed here independently of the code under test: the
convolution, the ReLU, the max pool (first maximum in row-major order, found with a
strict ``>``) and both backward orders are plain loops over the cells; the chapter's
example (the tiny network of chapters 1 and 5) is also checked against hand-worked
numbers.  Every state of the control grid is checked (a full sweep).
"""

import itertools
import json

import matplotlib.pyplot as plt
import numpy as np
import pytest

from cnnviz import mplfig
from cnnviz import relu as ch04
from cnnviz.explorable import call, figure, rebuild
from conftest import conv_loops, first_max

# hand-worked: conv(XX, W) of the tiny network (seed 3717; see chapter 1's printed L1)
L1_EXAMPLE = np.array(
    [[-2, 1, -5, -5], [1, 3, -1, -4], [-4, -1, -2, 2], [0, -2, -3, 1]], float
)
# dL/dL1Max: L2 = 3*1 + 0*(-1) + 0*0.5 + 2*(-1) = 1, dL/dL2 = 1 - 3 = -2, times WW
G_EXAMPLE = np.array([[-2, 2], [-1, 2]], float)


def fmt(v):
    v = float(v) + 0.0
    return str(int(v)) if v.is_integer() else f"{v:.3g}"


# --------------------------------------------------------------------------------------
# Independent brute force
# --------------------------------------------------------------------------------------


def brute(L1, G):
    """Everything both orders compute, by loops: dict of arrays."""
    H, Wd = L1.shape
    Ho, Wo = H // 2, Wd // 2
    A1 = np.where(L1 > 0, L1, 0.0)
    mask = (L1 > 0).astype(float)
    P = np.zeros((Ho, Wo))
    M = np.zeros((Ho, Wo))
    routed_rp = np.zeros((H, Wd))  # relu -> pool: route G through the pool of A1
    dL1 = np.zeros((H, Wd))  # the same in both orders
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
    return {
        "A1": A1,
        "mask": mask,
        "P": P,
        "M": M,
        "routed_rp": routed_rp,
        "dL1": dL1,
        "win_A": win_A,
        "win_L": win_L,
        "dM": G * (M > 0),
    }


def texts(M):
    return [[fmt(v) for v in row] for row in np.asarray(M)]


def panels_of(state):
    return {p["id"]: p for p in state["panels"]}


def check_state(state, L1, order):
    """The drawn state agrees with the brute force, cell by cell; every link is well
    formed."""
    e = brute(L1, G_EXAMPLE)
    P = panels_of(state)
    assert P["L1"]["text"] == texts(L1)
    assert P["dL1Max"]["text"] == texts(G_EXAMPLE)
    assert P["dL1"]["text"] == texts(e["dL1"])
    if order == "relu-pool":
        assert list(P) == ["L1", "mask", "dL1Max", "routed", "dL1"]
        assert P["mask"]["text"] == texts(e["mask"])
        assert P["routed"]["text"] == texts(e["routed_rp"])
        assert np.array_equal(np.array(P["routed"]["classes"]) == "win", e["win_A"])
    else:
        assert list(P) == ["L1", "M", "mask", "dL1Max", "dM", "dL1"]
        assert P["M"]["text"] == texts(e["M"])
        assert P["mask"]["text"] == texts(e["M"] > 0)
        assert P["dM"]["text"] == texts(e["dM"])
        l1_win = np.array(
            [["win" in c.split() for c in row] for row in P["L1"]["classes"]]
        )
        assert np.array_equal(l1_win, e["win_L"])  # the pool of L1 picks the winners
    # in both orders, what reaches L1 is marked
    assert np.array_equal(np.array(P["dL1"]["classes"]) == "win", e["dL1"] != 0)
    # dead windows: outlined as such, exactly those whose maximum is <= 0
    dead = {(w[1] // 2, w[2] // 2) for w in P["L1"]["windows"] if w[5] == "dead"}
    assert dead == {(i, j) for i in range(2) for j in range(2) if e["M"][i, j] <= 0}
    # links: every key and every target is a drawn cell; the text quotes the numbers
    cells = {
        f"{p['id']}:{r}:{c}"
        for p in state["panels"]
        for r in range(p["rows"])
        for c in range(p["cols"])
    }
    assert set(state["links"]) <= cells and state["focus"] in state["links"]
    for key, lk in state["links"].items():
        assert set(lk["cells"]) <= cells, key
        assert all(w[0] == "L1" and w[3] == w[4] == 2 for w in lk["windows"])
    for r, c in itertools.product(range(4), range(4)):
        text = state["links"][f"L1:{r}:{c}"]["text"]
        assert text.startswith(f"L1<sub>{r}{c}</sub> = {fmt(L1[r, c])}")
        assert (
            text.endswith(f" = {fmt(e['dL1'][r, c])}.")
            and f"∂L/∂L1<sub>{r}{c}</sub> = " in text
        )
        assert ("ReLU′(0) = 0" in text) == (L1[r, c] == 0 and order == "relu-pool")
    for i, j in itertools.product(range(2), range(2)):
        text = state["links"][f"dL1Max:{i}:{j}"]["text"]
        if order == "relu-pool":
            assert text.startswith("Dead window") == (e["M"][i, j] <= 0)
        else:
            assert f"M<sub>{i}{j}</sub> = {fmt(e['M'][i, j])}" in text
            assert f"= {fmt(e['dM'][i, j])}" in text
    # the caption counts what the brute force counts
    alive, n_open = int((L1 > 0).sum()), int((e["M"] > 0).sum())
    cap = state["caption"]
    assert (
        f"{alive} of 16 units on" in cap
        and f"{n_open} of 4 windows pass gradient" in cap
    )
    assert ("exactly 0" in cap) == bool((L1 == 0).any())
    assert "The other order gives the same output and ∂L/∂L1." in cap


# --------------------------------------------------------------------------------------
# The chapter's example, by hand
# --------------------------------------------------------------------------------------


def test_example_values_and_upstream():
    np.testing.assert_array_equal(conv_loops(ch04.XX, ch04.W, 0.0), L1_EXAMPLE)
    np.testing.assert_array_equal(ch04.preactivation(ch04.XX, ch04.W), L1_EXAMPLE)
    np.testing.assert_array_equal(
        ch04.UPSTREAM, -2 * np.array([1, -1, 0.5, -1]).reshape(2, 2)
    )
    np.testing.assert_array_equal(ch04.UPSTREAM, G_EXAMPLE)
    np.testing.assert_array_equal(
        ch04.preactivation(ch04.XX, ch04.W, 1.0, -0.5),
        conv_loops(-0.5 * ch04.XX, ch04.W, 1.0),
    )
    assert not ch04.XX.flags.writeable and not ch04.W.flags.writeable


@pytest.fixture(scope="module")
def explorable():
    return ch04.ReluRouting()


def test_default_state_hand_worked(explorable):
    w = explorable
    assert w.values == {
        "bias": 0.0,
        "contrast": 1.0,
        "order": "relu-pool",
    } and w.config == {"seed": 3717}
    s = w.current()
    check_state(s, L1_EXAMPLE, "relu-pool")
    P = panels_of(s)
    assert P["dL1"]["text"] == [
        ["0"] * 4,
        ["0", "-2", "0", "0"],
        ["0", "0", "0", "2"],
        ["0"] * 4,
    ]
    # relu -> pool: a dead window sends its gradient to its first zero: (0, 2), (2, 0)
    assert P["routed"]["text"][0][2] == "2" and P["routed"]["text"][2][0] == "-1"
    assert s["caption"] == (
        "b = 0, γ = 1: <b>5 of 16 units on</b>, <b>2 of 4 windows pass gradient</b>; "
        "dead windows (maximum ≤ 0): (0,1), (1,0); 1 unit exactly 0 (ReLU′(0) = 0). "
        "The other order gives the same output and ∂L/∂L1."
    )
    assert s["links"]["dL1Max:0:1"]["text"] == (
        "Dead window: its maximum is -1 ≤ 0, so after the ReLU it holds four tied "
        "zeros. The pool routes ∂L/∂L1Max<sub>01</sub> = 2 to the first, (0,2), where "
        "L1 = -5 and ReLU′ = 0: the gradient dies."
    )
    assert s["links"]["dL1Max:0:0"]["cells"] == [
        "L1:1:1",
        "dL1:1:1",
        "dL1Max:0:0",
        "mask:1:1",
        "routed:1:1",
    ]
    assert "ReLU′(0) = 0" in s["links"]["L1:3:0"]["text"]  # the unit at the corner
    titles = [(p["title"], p.get("subtitle")) for p in s["panels"]]
    assert titles[-1] == ("∂L/∂L1", "routed ⊙ ReLU′(L1)") and titles[0] == (
        "L1 (4×4)",
        "pre-activation",
    )


def test_order_same_gradient_different_path(explorable):
    rp = panels_of(explorable.set(order="relu-pool"))
    pr = panels_of(explorable.set(order="pool-relu"))
    explorable.set(order="relu-pool")
    assert rp["dL1"]["text"] == pr["dL1"]["text"]
    assert pr["dM"]["text"] == [
        ["-2", "0"],
        ["0", "2"],
    ]  # killed before routing in pool -> relu


def test_every_state_of_the_grid(explorable):
    """Full sweep: bias x contrast x order (210 states), each against brute force."""
    XX, Wk = ch04.XX, ch04.W
    assert len(explorable.states) == len(ch04.BIASES) * len(ch04.CONTRASTS) * 2
    for b, g, order in itertools.product(
        ch04.BIASES, ch04.CONTRASTS, ["relu-pool", "pool-relu"]
    ):
        state = explorable.states[f"{fmt(b)}|{fmt(g)}|{order}"]
        check_state(state, conv_loops(g * XX, Wk, b), order)


@pytest.mark.parametrize("order", ["relu-pool", "pool-relu"])
def test_extremes(explorable, order):
    dead = explorable.set(bias=-6.0, order=order)
    assert "0 of 16 units on" in dead["caption"] and "0 of 4 windows" in dead["caption"]
    assert panels_of(dead)["dL1"]["text"] == [["0"] * 4] * 4
    alive = explorable.set(bias=6.0, order=order)
    assert (
        "16 of 16 units on" in alive["caption"] and "4 of 4 windows" in alive["caption"]
    )
    flat = explorable.set(
        bias=0.0, contrast=0.0, order=order
    )  # every pre-activation is 0
    assert (
        "16 units exactly 0" in flat["caption"] and "0 of 4 windows" in flat["caption"]
    )
    explorable.set(bias=0.0, contrast=1.0, order="relu-pool")


def test_new_values_action_and_rebuild():
    w = ch04.ReluRouting()
    before = w.current()
    w.run_action("new")
    assert w.config == {"seed": 3718}
    rng = np.random.default_rng(3718)  # the next seed, drawn as the chapter says
    XX = rng.integers(-2, 3, size=(6, 6)).astype(float)
    Wk = rng.integers(-1, 2, size=(3, 3)).astype(float)
    check_state(w.current(), conv_loops(XX, Wk, 0.0), "relu-pool")
    assert w.current() != before
    assert rebuild("ReluRouting", w.config).states == w.states
    with pytest.raises(ValueError, match="no action 'nope'"):
        w.run_action("nope")


def test_repr_payload_and_json():
    w = ch04.ReluRouting()
    assert repr(w) == repr(ch04.ReluRouting(seed=5)) and "0x" not in repr(w)
    json.dumps({"states": w.states, "controls": w.controls}, allow_nan=False)
    assert (
        w.payload_size() <= 150_000
    )  # the chapter's only explorable: <= ~250 KB per page
    labels = [c["labels"] for c in w.controls if c["name"] == "order"][0]
    assert labels == ["ReLU → pool", "pool → ReLU"]  # short: no cut button labels
    names = {c["name"]: c["label"] for c in w.controls}
    assert names == {
        "bias": "bias b",
        "contrast": "image contrast γ",
        "order": "order",
    }  # s: stride only


def test_relu_pool_pass_rejects_unknown_order():
    with pytest.raises(ValueError, match="order must be"):
        ch04.relu_pool_pass(L1_EXAMPLE, G_EXAMPLE, "sideways")


@pytest.mark.parametrize("bias", [0.0, -6.0])
def test_the_chapters_figures_are_states_of_the_explorable(explorable, bias):
    """The chapter draws relu_state with cnnviz.figure: the same state as the
    explorable's, and recomputable from its recipe."""
    L1 = ch04.preactivation(ch04.XX, ch04.W, bias)
    label = f"b = {fmt(bias).replace('-', '−')}: " if bias else ""
    f = figure(call(ch04.relu_state, L1, ch04.UPSTREAM, label=label))
    state = explorable.set(bias=bias)
    explorable.set(bias=0.0)
    assert f.current()["panels"] == state["panels"]
    assert rebuild("StateFigure", f.config).current() == f.current()


def test_curve_figure():
    fig = ch04.relu_curve_figure()
    assert (
        len(fig.axes) == 2 and fig.get_size_inches()[0] * 96 <= mplfig.COLUMN_PX + 0.5
    )
    assert [ax.get_title() for ax in fig.axes] == [
        "ReLU(x) = max(x, 0)",
        "ReLU′(x) = 1[x > 0]",
    ]
    html = mplfig.figure_html(fig)["text/html"]
    plt.close(fig)
    assert "<svg" in html and "central difference" in html
