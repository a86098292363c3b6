"""Tests for cnnviz/tiny.py: the one tiny network of chapters 1, 4 and 5 (its values and
the claims the chapters make about them), the chained forward and backward passes
(checked against loops, PyTorch autograd and finite differences, not against the code
under test), the states of the chapters' figures and chapter 5's explorable, and the
network diagram."""

import re

import matplotlib.pyplot as plt
import numpy as np
import pytest

import mlp_cnn_core as core
from cnnviz import mplfig, tiny
from cnnviz import relu as ch04
from cnnviz.explorable import _clean, _finish, call, figure, rebuild
from conftest import conv_loops, first_max

# ---------------------------------------------------------------------------
# Independent references: loops over the cells
# ---------------------------------------------------------------------------


def network_loops(XX, W, b, WW, t, relu):
    """Every array and gradient of the tiny network, by loops and the chain rule written
    out."""
    L1 = conv_loops(XX, W, b)
    A1 = np.where(L1 > 0, L1, 0.0) if relu else L1.copy()
    win = [[first_max(A1, i, j) for j in range(2)] for i in range(2)]
    M = np.array([[A1[win[i][j]] for j in range(2)] for i in range(2)])
    flat = M.reshape(1, 4)
    L2 = float((flat @ WW)[0, 0])
    loss = 0.5 * (L2 - t) ** 2
    dL2 = L2 - t
    dWW = flat.T * dL2
    dM = (dL2 * WW).reshape(2, 2)
    dA1 = np.zeros((4, 4))
    for i in range(2):
        for j in range(2):
            dA1[win[i][j]] += dM[i, j]
    dL1 = dA1 * (L1 > 0) if relu else dA1
    dW = np.zeros((3, 3))
    dXX = np.zeros((6, 6))
    for i in range(4):
        for j in range(4):
            dW += dL1[i, j] * XX[i : i + 3, j : j + 3]
            dXX[i : i + 3, j : j + 3] += dL1[i, j] * W
    return {
        "L1": L1,
        "A1": A1,
        "L1Max": M,
        "L2": L2,
        "loss": loss,
        "winners": win,
        "dWW": dWW,
        "dL1Max": dM,
        "dA1": dA1,
        "dL1": dL1,
        "dW": dW,
        "db": dL1.sum(),
        "dXX": dXX,
    }


def windows_of(L1):
    """(4, 4) -> the four 2x2 windows as rows of 4 values, row-major window order."""
    return L1.reshape(2, 2, 2, 2).transpose(0, 2, 1, 3).reshape(4, 4)


# ---------------------------------------------------------------------------
# The values, and what chapters 1, 4 and 5 say about them
# ---------------------------------------------------------------------------


def test_values_shapes_and_exactness():
    assert tiny.XX.shape == (6, 6) and tiny.W.shape == (3, 3)
    assert tiny.WW.shape == (4, 1) and tiny.TARGET.shape == (1, 1) and tiny.BIAS == 0.0
    assert np.array_equal(tiny.XX, np.round(tiny.XX)) and np.abs(tiny.XX).max() <= 2
    assert np.array_equal(tiny.W, np.round(tiny.W)) and np.abs(tiny.W).max() <= 1
    assert np.array_equal(tiny.WW * 2, np.round(tiny.WW * 2))  # halves: exact in binary
    assert not np.array_equal(tiny.W, tiny.W[::-1, ::-1])  # a rotation is visible
    xx, w = tiny.draw_values(tiny.SEED)
    assert np.array_equal(xx, tiny.XX) and np.array_equal(w, tiny.W)
    rng = np.random.default_rng(tiny.SEED)  # the draw, spelled out
    assert np.array_equal(rng.integers(-2, 3, size=(6, 6)), tiny.XX)


def test_values_are_read_only_and_copies_are_writable():
    for a in (tiny.XX, tiny.W, tiny.WW, tiny.TARGET):
        with pytest.raises(ValueError):
            a[0, 0] = 99
    v = tiny.values()
    v["W"][0, 0] = 99
    v["b"][0] = 5
    assert tiny.W[0, 0] != 99 and tiny.BIAS == 0.0
    assert set(v) == {"XX", "W", "b", "WW", "target"} and v["b"].shape == (1,)


def test_chapter_4_runs_the_same_network():
    assert ch04.XX is tiny.XX and ch04.W is tiny.W and ch04.WW is tiny.WW
    assert (
        ch04.TARGET is tiny.TARGET and ch04.BIAS == tiny.BIAS and ch04.SEED == tiny.SEED
    )


def test_the_chapters_claims_about_the_pre_activation():
    """Chapters 1 and 4: one entry of L1 exactly 0, the maximum of its window (and not
    the window's first cell, so a tie of zeros routes elsewhere); one window entirely
    negative; two windows with a positive maximum; every maximum beats its runner-up by
    at least 1; ten negative entries."""
    L1 = conv_loops(tiny.XX, tiny.W, tiny.BIAS)
    np.testing.assert_array_equal(
        L1, [[-2, 1, -5, -5], [1, 3, -1, -4], [-4, -1, -2, 2], [0, -2, -3, 1]]
    )
    assert (L1 == 0).sum() == 1 and (L1 < 0).sum() == 10
    w = windows_of(L1)
    maxima = w.max(axis=1)
    np.testing.assert_array_equal(maxima, [3, -1, 0, 2])
    assert w[2, 0] != 0 and w[2, 2] == 0  # bottom-left: the 0 is (3, 0)
    assert np.all(w[1] < 0)  # top-right: all negative
    top2 = np.sort(w, axis=1)[:, -2:]
    assert np.all(top2[:, 1] - top2[:, 0] >= 1)  # no ties, margin >= 1


def test_hand_worked_numbers_of_the_chapters():
    pa, pb = tiny.forward(), tiny.forward(relu=True)
    np.testing.assert_array_equal(pa.L1Max, [[3, -1], [0, 2]])
    assert pa.L2[0, 0] == 2 and pa.loss == 0.5  # 3 + 1 + 0 - 2
    np.testing.assert_array_equal(pa.pool_cache.argmax.reshape(-1), [5, 6, 12, 11])
    np.testing.assert_array_equal(pb.L1Max, [[3, 0], [0, 2]])
    assert pb.L2[0, 0] == 1 and pb.loss == 2.0  # 3 - 2
    np.testing.assert_array_equal(
        pb.pool_cache.argmax.reshape(-1), [5, 2, 8, 11]
    )  # first zeros
    ga, gb = tiny.backward(pa), tiny.backward(pb)
    np.testing.assert_array_equal(ga["dL1Max"], [[-1, 1], [-0.5, 1]])  # -1 * WW
    np.testing.assert_array_equal(gb["dL1Max"], [[-2, 2], [-1, 2]])  # -2 * WW
    np.testing.assert_array_equal(ch04.UPSTREAM, [[-2, 2], [-1, 2]])
    np.testing.assert_array_equal(gb["dWW"].ravel(), [-6, 0, 0, -4])  # dead windows: 0


# ---------------------------------------------------------------------------
# Forward and backward against loops, PyTorch and finite differences
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("relu", [False, True])
@pytest.mark.parametrize("b", [0.0, -0.5, 2.0])
def test_forward_and_backward_match_loops(relu, b):
    p = tiny.forward(relu=relu, b=b)
    g = tiny.backward(p)
    ref = network_loops(tiny.XX, tiny.W, b, tiny.WW, tiny.TARGET[0, 0], relu)
    for name in ("L1", "A1", "L1Max"):
        np.testing.assert_array_equal(getattr(p, name), ref[name])
    assert p.L2[0, 0] == ref["L2"] and p.loss == ref["loss"]
    for name in ("dWW", "dL1Max", "dA1", "dL1", "dW", "dXX"):
        np.testing.assert_array_equal(g[name], ref[name], err_msg=name)
    assert g["db"].shape == (1,) and g["db"][0] == ref["db"]
    shapes = {
        "dL2": (1, 1),
        "dWW": (4, 1),
        "dflat": (1, 4),
        "dL1Max": (2, 2),
        "dA1": (4, 4),
        "dL1": (4, 4),
        "dW": (3, 3),
        "db": (1,),
        "dXX": (6, 6),
    }
    assert {k: v.shape for k, v in g.items()} == shapes


def _torch_reference(relu, XX=tiny.XX, W=tiny.W, WW=tiny.WW, target=tiny.TARGET, b=0.0):
    """The network in PyTorch autograd (the tests that call it are marked ``torch``)."""
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    x = torch.tensor(np.array(XX)[None, None], dtype=torch.float64, requires_grad=True)
    w = torch.tensor(np.array(W)[None, None], dtype=torch.float64, requires_grad=True)
    bb = torch.tensor([float(b)], dtype=torch.float64, requires_grad=True)
    ww = torch.tensor(np.array(WW), dtype=torch.float64, requires_grad=True)
    L1 = F.conv2d(x, w, bb)
    A = torch.relu(L1) if relu else L1
    M = F.max_pool2d(A, 2, 2)
    flat = M.reshape(1, -1)
    L2 = flat @ ww
    loss = 0.5 * ((L2 - torch.tensor(np.array(target), dtype=torch.float64)) ** 2).sum()
    for t in (L1, A, M, flat, L2):
        t.retain_grad()
    loss.backward()
    return {
        "L1": L1,
        "A": A,
        "M": M,
        "flat": flat,
        "L2": L2,
        "loss": loss,
        "x": x,
        "w": w,
        "b": bb,
        "ww": ww,
    }


@pytest.mark.torch
@pytest.mark.parametrize("relu", [False, True])
def test_forward_and_backward_match_torch(relu):
    p = tiny.forward(relu=relu)
    g = tiny.backward(p)
    ref = _torch_reference(relu)
    np.testing.assert_allclose(p.L1, ref["L1"].detach().numpy()[0, 0], atol=1e-12)
    np.testing.assert_allclose(p.A1, ref["A"].detach().numpy()[0, 0], atol=1e-12)
    np.testing.assert_allclose(p.L1Max, ref["M"].detach().numpy()[0, 0], atol=1e-12)
    np.testing.assert_allclose(p.L2, ref["L2"].detach().numpy(), atol=1e-12)
    assert p.loss == pytest.approx(float(ref["loss"].detach()), abs=1e-12)
    np.testing.assert_allclose(g["dL2"], ref["L2"].grad.numpy(), atol=1e-12)
    np.testing.assert_allclose(g["dWW"], ref["ww"].grad.numpy(), atol=1e-12)
    np.testing.assert_allclose(g["dflat"], ref["flat"].grad.numpy(), atol=1e-12)
    np.testing.assert_allclose(g["dL1Max"], ref["M"].grad.numpy()[0, 0], atol=1e-12)
    np.testing.assert_allclose(g["dA1"], ref["A"].grad.numpy()[0, 0], atol=1e-12)
    np.testing.assert_allclose(g["dL1"], ref["L1"].grad.numpy()[0, 0], atol=1e-12)
    np.testing.assert_allclose(g["dW"], ref["w"].grad.numpy()[0, 0], atol=1e-12)
    np.testing.assert_allclose(g["db"], ref["b"].grad.numpy(), atol=1e-12)
    np.testing.assert_allclose(g["dXX"], ref["x"].grad.numpy()[0, 0], atol=1e-12)
    assert p.relu is relu and (p.relu_cache is not None) == relu


@pytest.mark.torch
def test_random_values_against_torch():
    rng = np.random.default_rng(3)
    for _ in range(5):
        XX, W, WW = (
            rng.standard_normal((6, 6)),
            rng.standard_normal((3, 3)),
            rng.standard_normal((4, 1)),
        )
        target, b = rng.standard_normal((1, 1)), float(rng.standard_normal())
        for relu in (False, True):
            g = tiny.backward(tiny.forward(XX, W, WW, target, relu=relu, b=b))
            ref = _torch_reference(relu, XX, W, WW, target, b)
            np.testing.assert_allclose(g["dW"], ref["w"].grad.numpy()[0, 0], atol=1e-12)
            np.testing.assert_allclose(g["db"], ref["b"].grad.numpy(), atol=1e-12)
            np.testing.assert_allclose(
                g["dXX"], ref["x"].grad.numpy()[0, 0], atol=1e-12
            )
            np.testing.assert_allclose(g["dWW"], ref["ww"].grad.numpy(), atol=1e-12)


def _numeric(relu, b):
    num = core.numerical_gradient
    return {
        "dW": num(lambda w: tiny.loss(W=w, relu=relu, b=b), tiny.W),
        "db": num(lambda bb: tiny.loss(relu=relu, b=bb), np.array([b])),
        "dWW": num(lambda w: tiny.loss(WW=w, relu=relu, b=b), tiny.WW),
        "dXX": num(lambda x: tiny.loss(XX=x, relu=relu, b=b), tiny.XX),
    }


@pytest.mark.parametrize("relu,b", [(False, 0.0), (True, -0.5)])
def test_backward_matches_finite_differences_off_the_kinks(relu, b):
    g = tiny.backward(tiny.forward(relu=relu, b=b))
    for name, num in _numeric(relu, b).items():
        np.testing.assert_allclose(g[name], num, atol=1e-7, err_msg=name)


def test_finite_differences_at_the_relu_corner_measure_half_the_unit():
    """Chapter 5: with the ReLU at b = 0, L1[3, 0] = 0 is a window's maximum; the
    central difference is the backward pass plus half of what that unit would pass if it
    were on."""
    g = tiny.backward(tiny.forward(relu=True))
    half = 0.5 * g["dL1Max"][1, 0]
    num = _numeric(True, 0.0)
    np.testing.assert_allclose(num["dW"] - g["dW"], half * tiny.XX[3:6, 0:3], atol=1e-5)
    np.testing.assert_allclose(num["db"] - g["db"], [half], atol=1e-5)
    expected = np.zeros((6, 6))
    expected[3:6, 0:3] = half * tiny.W
    np.testing.assert_allclose(num["dXX"] - g["dXX"], expected, atol=1e-5)
    np.testing.assert_allclose(num["dWW"], g["dWW"], atol=1e-7)
    assert np.abs(num["dW"] - g["dW"]).max() > 0.4  # the disagreement is real


def test_training_story_of_chapter_5():
    """Both examples train to the target in 100 steps of 0.002; in (b) the top-right
    window stays dead (its weight WW[1] never moves) and the unit at the corner wakes up
    at the first step."""
    for relu in (False, True):
        v = tiny.values()
        W, b, WW = v["W"], v["b"], v["WW"]
        L1s, first = [], tiny.forward(relu=relu).loss
        for _ in range(100):
            p = tiny.forward(tiny.XX, W, WW, tiny.TARGET, relu=relu, b=b)
            L1s.append(p.L1)
            g = tiny.backward(p)
            W -= 0.002 * g["dW"]
            b -= 0.002 * g["db"]
            WW -= 0.002 * g["dWW"]
        final = tiny.forward(tiny.XX, W, WW, tiny.TARGET, relu=relu, b=b)
        assert final.loss < 1e-8 * first
        if relu:
            L1s = np.array(L1s)
            assert L1s[0, 3, 0] == 0 and np.all(L1s[1:, 3, 0] > 0)
            assert np.all(L1s[:, 0:2, 2:4] < 0) and WW[1, 0] == tiny.WW[1, 0]


# ---------------------------------------------------------------------------
# The states of the chapters' figures
# ---------------------------------------------------------------------------


def panels(state):
    return {p["id"]: p for p in state["panels"]}


def values_of(p):
    return np.array([[float(t) for t in row] for row in p["text"]])


def test_conv_state():
    s = tiny.conv_state(tiny.XX, tiny.W, 1, 1)
    P = panels(s)
    np.testing.assert_array_equal(values_of(P["L1"]), conv_loops(tiny.XX, tiny.W))
    np.testing.assert_array_equal(values_of(P["XX"]), tiny.XX)
    assert P["W"]["op"] == "⋆" and P["L1"]["op"] == "=" and s["focus"] == "L1:1:1"
    for i, j in np.ndindex(4, 4):
        lk = s["links"][f"L1:{i}:{j}"]
        assert lk["windows"] == [["XX", i, j, 3, 3, ""]]
        products = re.findall(r"\((-?[\d.]+)\)\((-?[\d.]+)\)", lk["text"])
        assert (
            sum(float(a) * float(c) for a, c in products)
            == conv_loops(tiny.XX, tiny.W)[i, j]
        )
        assert lk["text"].endswith(f"= {conv_loops(tiny.XX, tiny.W)[i, j]:g}.")


@pytest.mark.parametrize("relu", [False, True])
def test_pool_state_marks_the_first_maxima_and_the_ties(relu):
    A = tiny.forward(relu=relu).A1
    s = tiny.pool_state(A, "A1" if relu else "L1")
    P = panels(s)
    cls = np.array(P["A"]["classes"])
    winners = {first_max(A, i, j) for i in range(2) for j in range(2)}
    assert {tuple(rc) for rc in np.argwhere(cls == "win")} == winners
    ties = {
        (r, c)
        for i in range(2)
        for j in range(2)
        for r in range(2 * i, 2 * i + 2)
        for c in range(2 * j, 2 * j + 2)
        if A[r, c] == A[2 * i : 2 * i + 2, 2 * j : 2 * j + 2].max()
    }
    assert {tuple(rc) for rc in np.argwhere(cls == "tie")} == ties - winners
    assert bool(ties - winners) == relu  # the windows of zeros tie
    np.testing.assert_array_equal(
        values_of(P["M"]), [[A[first_max(A, i, j)] for j in range(2)] for i in range(2)]
    )
    assert len(P["A"]["windows"]) == 4 and P["M"]["op"] == "→"
    assert P["A"]["title"] == ("A1 (4×4)" if relu else "L1 (4×4)")


def test_flatten_state():
    M = tiny.forward().L1Max
    s = tiny.flatten_state(M)
    P = panels(s)
    np.testing.assert_array_equal(
        values_of(P["flat"])[0], [M[0, 0], M[0, 1], M[1, 0], M[1, 1]]
    )
    assert P["flat"]["colLabels"] == ["(0,0)", "(0,1)", "(1,0)", "(1,1)"]
    assert s["links"]["flat:0:2"]["cells"] == ["M:1:0", "flat:0:2"]


@pytest.mark.parametrize("relu", [False, True])
def test_route_state(relu):
    p = tiny.forward(relu=relu)
    ref = network_loops(tiny.XX, tiny.W, 0.0, tiny.WW, 3.0, relu)
    s = tiny.route_state(p.A1, ref["dL1Max"], p.L1 if relu else None)
    P = panels(s)
    np.testing.assert_array_equal(
        values_of(P["exp"]), np.kron(ref["dL1Max"], np.ones((2, 2)))
    )
    mask = np.zeros((4, 4))
    for row in ref["winners"]:
        for rc in row:
            mask[rc] = 1
    np.testing.assert_array_equal(values_of(P["mask"]), mask)
    np.testing.assert_array_equal(values_of(P["dA"]), ref["dA1"])
    assert P["dA"]["title"] == ("∂L/∂A1" if relu else "∂L/∂L1")
    if relu:
        np.testing.assert_array_equal(values_of(P["relu"]), ref["L1"] > 0)
        np.testing.assert_array_equal(values_of(P["dL1"]), ref["dL1"])
        assert P["dA2"].get("newRow") and "tied zeros" in s["caption"]
    else:
        assert (
            set(P) == {"dM", "exp", "mask", "dA"}
            and "no window has a tie" in s["caption"]
        )


def test_rotation_state():
    dL1 = network_loops(tiny.XX, tiny.W, 0.0, tiny.WW, 3.0, False)["dL1"]
    s = tiny.rotation_state(dL1, tiny.W)
    P = panels(s)
    ref = network_loops(tiny.XX, tiny.W, 0.0, tiny.WW, 3.0, False)["dXX"]
    np.testing.assert_array_equal(values_of(P["dXX"]), ref)
    np.testing.assert_array_equal(values_of(P["K"]), tiny.W[::-1, ::-1])
    pad = np.array(P["P"]["classes"]) == "pad"
    assert pad.sum() == 64 - 16 and not pad[2:6, 2:6].any()
    assert s["links"]["dXX:2:4"]["text"].endswith("(1)(-1) + (1)(-1) = -2.")


def test_figures_are_recomputable_states():
    ga = tiny.backward(tiny.forward())
    f = figure(call(tiny.rotation_state, ga["dL1"], tiny.W), follow="dXX:2:4")
    again = rebuild("StateFigure", f.config)
    assert again.current() == f.current() and set(f.current()["links"]) == {"dXX:2:4"}


# ---------------------------------------------------------------------------
# Chapter 5's explorable
# ---------------------------------------------------------------------------


def _fmt(v):
    v = float(v) + 0.0
    return str(int(v)) if v.is_integer() else f"{v:g}"


def _check_state(state, xx, relu, pixel):
    """Every drawn number against the loops; maxima and ties by hand; the chosen pixel
    is the followed one and the only followable cell of XX and ∂L/∂XX."""
    ref = network_loops(xx, tiny.W, 0.0, tiny.WW, 3.0, relu)
    P = panels(state)
    assert P["XX"]["text"] == [[_fmt(v) for v in row] for row in xx]
    assert P["XX"]["classes"][pixel[0]][pixel[1]] == "sel"
    assert sum(c == "sel" for row in P["XX"]["classes"] for c in row) == 1
    np.testing.assert_array_equal(values_of(P["A"]), ref["A1"])
    np.testing.assert_array_equal(values_of(P["G"]), ref["dL1"])
    np.testing.assert_array_equal(values_of(P["dXX"]), ref["dXX"])
    winners = {first_max(ref["A1"], i, j) for i in range(2) for j in range(2)}
    cls = np.array(P["A"]["classes"])
    assert {tuple(rc) for rc in np.argwhere(cls == "win")} == winners
    u, v = pixel
    assert state["focus"] == f"dXX:{u}:{v}"
    followable = {k for k in state["links"] if k.split(":")[0] in ("XX", "dXX")}
    assert followable == {f"XX:{u}:{v}", f"dXX:{u}:{v}"}
    text = state["links"][f"dXX:{u}:{v}"]["text"]
    readers = [
        (i, j) for i in range(4) for j in range(4) if i <= u < i + 3 and j <= v < j + 3
    ]
    n = len(readers)
    assert text.startswith(
        f"XX<sub>{u}{v}</sub> = {_fmt(xx[u, v])} is read by {n} "
        f"cell{'s' * (n != 1)} of L1"
    )
    assert text.endswith(f"= {_fmt(ref['dXX'][u, v])}.")
    carry = [ij for ij in readers if ref["dL1"][ij] != 0]
    assert len(state["links"][f"dXX:{u}:{v}"]["windows"]) == len(carry)
    assert state["caption"].startswith(
        f"L2 = {_fmt(ref['L2'])}, L = {_fmt(ref['loss'])}; "
    )


@pytest.fixture(scope="module")
def explorable():
    return tiny.TinyNetworkRoute()


@pytest.mark.torch
def test_explorer_default_state_is_the_chapters_network(explorable):
    assert explorable.values == {"row": 1, "col": 1, "value": "as drawn", "relu": False}
    s = explorable.current()
    _check_state(s, np.array(tiny.XX), False, (1, 1))
    assert (
        s["caption"] == "L2 = 2, L = 0.5; maxima of L1 at (1,1), (1,2), (3,0), (2,3)."
    )


def test_explorer_relu_reports_the_ties_of_zeros(explorable):
    s = explorable.set(relu=True)
    explorable.set(relu=False)
    assert "maxima of A1 at (1,1), (0,2), (2,0), (2,3)" in s["caption"]
    assert (
        "Tied windows (0,1), (1,0): the first maximum (row by row) gets the gradient."
        in s["caption"]
    )


def test_explorer_grammar_one_cell():
    s = tiny.tiny_state(pixel=(0, 0))
    assert "is read by 1 cell of L1" in s["links"]["dXX:0:0"]["text"]


def test_explorer_every_state(explorable):
    """Full sweep: 36 pixels x the values x with/without ReLU, each against loops."""
    assert len(explorable.states) == 36 * len(tiny.PIXEL_VALUES) * 2
    for r, c in np.ndindex(6, 6):
        for value in tiny.PIXEL_VALUES:
            for relu in (False, True):
                xx = np.array(tiny.XX)
                if value != "as drawn":
                    xx[r, c] = value
                key = f"{r}|{c}|{value}|{'true' if relu else 'false'}"
                _check_state(explorable.states[key], xx, relu, (r, c))


@pytest.mark.torch
def test_explorer_states_against_torch(explorable):
    for key in ("1|1|as drawn|false", "4|1|-1|true", "5|5|2|true"):
        r, c, value, relu = key.split("|")
        xx = np.array(tiny.XX)
        if value != "as drawn":
            xx[int(r), int(c)] = float(value)
        ref = _torch_reference(relu == "true", XX=xx)
        P = panels(explorable.states[key])
        np.testing.assert_allclose(
            values_of(P["dXX"]), ref["x"].grad.numpy()[0, 0], atol=1e-12
        )
        np.testing.assert_allclose(
            values_of(P["G"]), ref["L1"].grad.numpy()[0, 0], atol=1e-12
        )


def test_explorer_repr_payload_rebuild(explorable):
    assert repr(explorable) == repr(tiny.TinyNetworkRoute()) and "0x" not in repr(
        explorable
    )
    assert explorable.payload_size() <= 150_000
    assert rebuild("TinyNetworkRoute", explorable.config).states == explorable.states
    with pytest.raises(ValueError, match="has no action"):
        explorable.run_action("new")
    labels = [c["labels"] for c in explorable.controls if c["name"] == "value"][0]
    assert labels == ["as drawn", "−2", "−1", "0", "1", "2"]


def test_states_keep_to_the_books_notation(explorable):
    """No G_X, no dL/d in what a reader sees: the gradient is ∂L/∂X."""
    states = [
        explorable.current(),
        explorable.states["2|3|2|true"],
        tiny.route_state(
            tiny.forward(relu=True).A1, [[1, 2], [3, 4]], tiny.forward(relu=True).L1
        ),
    ]
    for s in states:
        text = str(_finish(_clean(s)))
        assert "G_" not in text and "dL/d" not in text and "∂L/∂" in text


# ---------------------------------------------------------------------------
# The network diagram
# ---------------------------------------------------------------------------


def _texts(fig):
    return [t.get_text() for ax in fig.axes for t in ax.texts]


@pytest.mark.parametrize("relu", [False, True])
@pytest.mark.parametrize("backward", [False, True])
def test_network_figure(relu, backward):
    from matplotlib.patches import Rectangle

    fig = tiny.network_figure(relu=relu, backward=backward)
    texts = _texts(fig)
    for name in ("XX", "L1", "L1Max", "flat", "L2"):
        assert name in texts
    assert ("A1" in texts) == relu
    assert ("∂L/∂XX" in texts) == backward
    assert ("∂L/∂W, ∂L/∂b" in texts) == backward and ("∂L/∂WW" in texts) == backward
    n_cells = sum(isinstance(p, Rectangle) for p in fig.axes[0].patches)
    assert n_cells == 36 + 16 + (16 if relu else 0) + 4 + 4 + 1
    assert fig.get_size_inches()[0] * 96 <= mplfig.COLUMN_PX + 0.5
    html = mplfig.figure_html(fig)["text/html"]  # refuses a figure too wide
    plt.close(fig)
    assert "<svg" in html
