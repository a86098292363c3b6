"""Tests for cnnviz/tiny.py: the shared values of chapters 01 and 05, the chained
forward and backward passes (checked against PyTorch autograd and finite differences,
not against the code under test), and the figure helpers.
"""

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib import pyplot as plt  # noqa: E402
from matplotlib.patches import Circle, Rectangle  # noqa: E402

import mlp_cnn_core as core  # noqa: E402
from cnnviz import tiny  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


# ---------------------------------------------------------------------------
# The values
# ---------------------------------------------------------------------------


def test_values_shapes_and_exactness():
    assert tiny.XX.shape == (6, 6) and tiny.W.shape == (3, 3)
    assert tiny.WW.shape == (4, 1) and tiny.TARGET.shape == (1, 1)
    assert np.array_equal(tiny.XX, np.round(tiny.XX)) and np.abs(tiny.XX).max() <= 2
    assert np.array_equal(tiny.W, np.round(tiny.W)) and np.abs(tiny.W).max() <= 1
    assert np.array_equal(
        tiny.WW * 4, np.round(tiny.WW * 4)
    )  # quarters: exact in binary
    assert not np.array_equal(tiny.W, tiny.W[::-1, ::-1])  # a rotation is visible


def test_values_are_read_only_and_copies_are_writable():
    for a in (tiny.XX, tiny.W, tiny.WW, tiny.TARGET):
        with pytest.raises(ValueError):
            a[0, 0] = 99
    v = tiny.values()
    v["W"][0, 0] = 99
    assert tiny.W[0, 0] != 99
    assert set(v) == {"XX", "W", "WW", "target"}


def _l1_by_hand():
    L1 = np.zeros((4, 4))
    for i in range(4):
        for j in range(4):
            L1[i, j] = np.sum(tiny.XX[i : i + 3, j : j + 3] * tiny.W)
    return L1


def test_the_chapters_claims_about_the_values():
    """No zero in L1, distinct maxima (margin >= 1), one all-negative window (bottom-
    left)."""
    L1 = _l1_by_hand()
    assert np.all(L1 != 0) and np.abs(L1).min() >= 1
    windows = L1.reshape(2, 2, 2, 2).transpose(0, 2, 1, 3).reshape(4, 4)
    top2 = np.sort(windows, axis=1)[:, -2:]
    assert np.all(top2[:, 1] - top2[:, 0] >= 1)  # no ties, margin >= 1
    assert np.all(windows[2] < 0) and np.all(windows[[0, 1, 3]].max(axis=1) > 0)


# ---------------------------------------------------------------------------
# Forward and backward against PyTorch
# ---------------------------------------------------------------------------


def _torch_reference(relu, XX=tiny.XX, W=tiny.W, WW=tiny.WW, target=tiny.TARGET):
    """The network in PyTorch autograd (the tests that call it are marked ``torch`` and
    skip where it is absent).
    """
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    x = torch.tensor(np.array(XX)[None, None], dtype=torch.float64, requires_grad=True)
    w = torch.tensor(np.array(W)[None, None], dtype=torch.float64, requires_grad=True)
    ww = torch.tensor(np.array(WW), dtype=torch.float64, requires_grad=True)
    L1 = F.conv2d(x, w)
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
        "ww": ww,
    }


@pytest.mark.torch
@pytest.mark.parametrize("relu", [False, True])
def test_forward_matches_torch(relu):
    p = tiny.forward(relu=relu)
    ref = _torch_reference(relu)
    np.testing.assert_allclose(p.L1, ref["L1"].detach().numpy()[0, 0], atol=1e-12)
    np.testing.assert_allclose(p.L1, _l1_by_hand(), atol=1e-12)
    np.testing.assert_allclose(p.A, ref["A"].detach().numpy()[0, 0], atol=1e-12)
    np.testing.assert_allclose(p.L1Max, ref["M"].detach().numpy()[0, 0], atol=1e-12)
    np.testing.assert_allclose(p.flat, ref["flat"].detach().numpy(), atol=1e-12)
    np.testing.assert_allclose(p.L2, ref["L2"].detach().numpy(), atol=1e-12)
    assert p.loss == pytest.approx(float(ref["loss"].detach()), abs=1e-12)
    assert p.relu is relu and (p.relu_cache is not None) == relu


def test_forward_hand_worked_numbers():
    p = tiny.forward()
    np.testing.assert_array_equal(p.L1Max, [[6, 3], [-1, 5]])
    assert p.L2[0, 0] == 2.75 and p.loss == 1.53125
    np.testing.assert_array_equal(p.pool_cache.argmax.reshape(-1), [5, 2, 12, 15])
    pb = tiny.forward(relu=True)
    np.testing.assert_array_equal(pb.L1Max, [[6, 3], [0, 5]])
    assert pb.L2[0, 0] == 3.5 and pb.loss == 3.125
    assert pb.pool_cache.argmax.reshape(-1)[2] == 8  # the first tied zero wins


@pytest.mark.torch
@pytest.mark.parametrize("relu", [False, True])
def test_backward_matches_torch(relu):
    g = tiny.backward(tiny.forward(relu=relu))
    ref = _torch_reference(relu)
    np.testing.assert_allclose(g["dL2"], ref["L2"].grad.numpy(), atol=1e-12)
    np.testing.assert_allclose(g["dWW"], ref["ww"].grad.numpy(), atol=1e-12)
    np.testing.assert_allclose(g["dflat"], ref["flat"].grad.numpy(), atol=1e-12)
    np.testing.assert_allclose(g["dL1Max"], ref["M"].grad.numpy()[0, 0], atol=1e-12)
    np.testing.assert_allclose(g["dA"], ref["A"].grad.numpy()[0, 0], atol=1e-12)
    np.testing.assert_allclose(g["dL1"], ref["L1"].grad.numpy()[0, 0], atol=1e-12)
    np.testing.assert_allclose(g["dW"], ref["w"].grad.numpy()[0, 0], atol=1e-12)
    np.testing.assert_allclose(g["dXX"], ref["x"].grad.numpy()[0, 0], atol=1e-12)
    shapes = {
        "dL2": (1, 1),
        "dWW": (4, 1),
        "dflat": (1, 4),
        "dL1Max": (2, 2),
        "dA": (4, 4),
        "dL1": (4, 4),
        "dW": (3, 3),
        "dXX": (6, 6),
    }
    assert {k: v.shape for k, v in g.items()} == shapes


@pytest.mark.parametrize("relu", [False, True])
def test_backward_matches_finite_differences(relu):
    g = tiny.backward(tiny.forward(relu=relu))
    np.testing.assert_allclose(
        g["dW"],
        core.numerical_gradient(lambda w: tiny.loss(W=w, relu=relu), tiny.W),
        atol=1e-7,
    )
    np.testing.assert_allclose(
        g["dWW"],
        core.numerical_gradient(lambda w: tiny.loss(WW=w, relu=relu), tiny.WW),
        atol=1e-7,
    )
    np.testing.assert_allclose(
        g["dXX"],
        core.numerical_gradient(lambda x: tiny.loss(XX=x, relu=relu), tiny.XX),
        atol=1e-7,
    )


@pytest.mark.torch
def test_forward_other_values_and_random_against_torch():
    rng = np.random.default_rng(3)
    for _ in range(5):
        XX, W, WW = (
            rng.standard_normal((6, 6)),
            rng.standard_normal((3, 3)),
            rng.standard_normal((4, 1)),
        )
        target = rng.standard_normal((1, 1))
        for relu in (False, True):
            g = tiny.backward(tiny.forward(XX, W, WW, target, relu=relu))
            ref = _torch_reference(relu, XX, W, WW, target)
            np.testing.assert_allclose(g["dW"], ref["w"].grad.numpy()[0, 0], atol=1e-12)
            np.testing.assert_allclose(
                g["dXX"], ref["x"].grad.numpy()[0, 0], atol=1e-12
            )
            np.testing.assert_allclose(g["dWW"], ref["ww"].grad.numpy(), atol=1e-12)


def test_gradient_descent_lowers_the_loss():
    v = tiny.values()
    W, WW = v["W"], v["WW"]
    first = tiny.forward(W=W, WW=WW).loss
    for _ in range(100):
        g = tiny.backward(tiny.forward(W=W, WW=WW))
        W -= 0.002 * g["dW"]
        WW -= 0.002 * g["dWW"]
    assert tiny.forward(W=W, WW=WW).loss < 1e-8 * first


# ---------------------------------------------------------------------------
# Figures
# ---------------------------------------------------------------------------


def _texts(fig):
    return [t.get_text() for ax in fig.axes for t in ax.texts] + [
        t.get_text() for t in fig.texts
    ]


def test_circle_cells():
    fig, ax = plt.subplots()
    patches = tiny.circle_cells(ax, [0, 2], [1, 3])
    assert len(patches) == 2 and all(isinstance(p, Circle) for p in patches)
    assert [p.center for p in patches] == [(1, 0), (3, 2)]


@pytest.mark.parametrize("relu", [False, True])
@pytest.mark.parametrize("backward", [False, True])
def test_network_figure(relu, backward):
    fig = tiny.network_figure(relu=relu, backward=backward)
    texts = _texts(fig)
    for name in ("XX", "L1", "L1Max", "flat", "L2"):
        assert name in texts
    assert ("ReLU(L1)" in texts) == relu
    assert any("dL/dXX" in t for t in texts) == backward
    assert ("dL/dW (3×3)" in texts) == backward and (
        "dL/dWW (4×1)" in texts
    ) == backward
    n_cells = sum(isinstance(p, Rectangle) for p in fig.axes[0].patches)
    assert n_cells == 36 + 16 + (16 if relu else 0) + 4 + 4 + 1


def test_conv_window_figure_title_has_the_value():
    p = tiny.forward()
    for i, j in [(0, 0), (1, 2), (3, 3)]:
        fig = tiny.conv_window_figure(p.XX, p.W, p.L1, i, j)
        title = fig._suptitle.get_text()
        assert title.startswith(f"L1[{i},{j}]") and title.endswith(
            f"= {_l1_by_hand()[i, j]:g}"
        )
        plt.close(fig)


@pytest.mark.parametrize("relu", [False, True])
def test_pool_figure_circles_the_maxima(relu):
    p = tiny.forward(relu=relu)
    fig = tiny.pool_figure(p.A, p.pool_cache, p.L1Max)
    circles = [c for c in fig.axes[0].patches if isinstance(c, Circle)]
    centers = sorted((int(c.center[1]), int(c.center[0])) for c in circles)
    # the maxima found independently: first maximum of each window in row-major order
    expected = []
    for i in range(2):
        for j in range(2):
            win = p.A[2 * i : 2 * i + 2, 2 * j : 2 * j + 2]
            r, c = np.unravel_index(np.argmax(win), win.shape)
            expected.append((2 * i + int(r), 2 * j + int(c)))
    assert centers == sorted(expected)
    assert sum(isinstance(c, Circle) for c in fig.axes[1].patches) == 4


def test_flatten_figure_tags_row_major():
    p = tiny.forward()
    fig = tiny.flatten_figure(p.L1Max)
    flat_ax = fig.axes[1]
    values = [t.get_text() for t in flat_ax.texts if not t.get_text().startswith("#")]
    assert values == ["6", "3", "-1", "5"]
    assert [t.get_text() for t in flat_ax.texts if t.get_text().startswith("#")] == [
        "#0",
        "#1",
        "#2",
        "#3",
    ]


@pytest.mark.parametrize("relu", [False, True])
def test_route_figure(relu):
    p = tiny.forward(relu=relu)
    g = tiny.backward(p)
    if relu:
        fig = tiny.route_figure(
            g["dL1Max"], p.pool_cache, g["dA"], p.relu_cache.mask[0, 0], g["dL1"]
        )
    else:
        fig = tiny.route_figure(g["dL1Max"], p.pool_cache, g["dA"])
    axes = fig.axes
    # matrix panels only (colorbars are not drawn): 4 without ReLU, 6 with
    assert len(axes) == (6 if relu else 4)
    titles = [ax.get_title() for ax in axes]
    assert titles[0] == "dL/dL1Max (2×2)" and ("dL/dL1" in titles)
    assert not any(
        t.get_text() == "-0" for ax in axes for t in ax.texts
    )  # -0.0 shown as 0
    # the mask panel shows exactly four 1s, circled
    mask_ax = axes[2]
    assert [t.get_text() for t in mask_ax.texts].count("1") == 4
    assert sum(isinstance(c, Circle) for c in mask_ax.patches) == 4


# ---------------------------------------------------------------------------
# The widget
# ---------------------------------------------------------------------------


def _first_max_positions(A):
    out = []
    for i in range(2):
        for j in range(2):
            win = A[2 * i : 2 * i + 2, 2 * j : 2 * j + 2]
            r, c = np.unravel_index(
                np.argmax(win), win.shape
            )  # numpy: first max, row-major
            out.append((2 * i + int(r), 2 * j + int(c)))
    return out


def _fmt(v):
    v = float(v) + 0.0
    return str(int(v)) if v.is_integer() else f"{v:g}"


def _check_state(state, xx, relu, pixel):
    """Every drawn number against PyTorch autograd; maxima and ties by hand; links well
    formed."""
    ref = _torch_reference(relu, XX=xx)
    A = ref["A"].detach().numpy()[0, 0]
    G = ref["L1"].grad.numpy()[0, 0]
    dXX = ref["x"].grad.numpy()[0, 0]
    P = {q["id"]: q for q in state["panels"]}
    assert P["XX"]["text"] == [[_fmt(v) for v in row] for row in xx]
    assert P["XX"]["classes"][pixel[0]][pixel[1]] == "sel"
    np.testing.assert_allclose(
        [[float(t) for t in row] for row in P["A"]["text"]], A, atol=1e-9
    )
    for name, ref_arr in (("G", G), ("dXX", dXX)):
        got = np.array([[float(t) for t in row] for row in P[name]["text"]])
        np.testing.assert_allclose(
            got, ref_arr, rtol=0, atol=1e-12
        )  # exact binary fractions, in full
    winners = _first_max_positions(A)
    assert {
        (r, c) for r in range(4) for c in range(4) if P["A"]["classes"][r][c] == "win"
    } == set(winners)
    for i in range(2):
        for j in range(2):
            win = A[2 * i : 2 * i + 2, 2 * j : 2 * j + 2]
            tied = {
                (2 * i + a, 2 * j + b)
                for a in range(2)
                for b in range(2)
                if win[a, b] == win.max()
            }
            marked = {
                (r, c)
                for r in range(2 * i, 2 * i + 2)
                for c in range(2 * j, 2 * j + 2)
                if P["A"]["classes"][r][c] == "tie"
            }
            assert marked == tied - set(winners)
    cells = {
        f"{q['id']}:{r}:{c}"
        for q in state["panels"]
        for r in range(q["rows"])
        for c in range(q["cols"])
    }
    assert set(state["links"]) <= cells and state["focus"] in state["links"]
    for key, lk in state["links"].items():
        assert set(lk["cells"]) <= cells, key
    for u in range(6):
        for v in range(6):
            text = state["links"][f"dXX:{u}:{v}"]["text"]
            readers = [
                (i, j)
                for i in range(4)
                for j in range(4)
                if i <= u < i + 3 and j <= v < j + 3
            ]
            assert text.startswith(f"XX[{u},{v}] is read by {len(readers)} cells of L1")
            assert text.endswith(f"= {_fmt(dXX[u, v])}.") or (
                dXX[u, v] == 0 and text.endswith("= 0.")
            )
            carry = [ij for ij in readers if G[ij] != 0]
            assert len(state["links"][f"dXX:{u}:{v}"]["windows"]) == len(carry)
    cap = state["caption"]
    assert cap.startswith(
        f"L2 = {float(ref['L2'].detach()):g}, loss = {float(ref['loss'].detach()):g}; "
    )
    assert ", ".join(f"({r},{c})" for r, c in winners) in cap


@pytest.fixture(scope="module")
def explorable():
    return tiny.TinyNetworkRoute()


@pytest.mark.torch
def test_explorer_default_state_is_the_chapters_network(explorable):
    assert explorable.values == {"row": 1, "col": 1, "value": "as drawn", "relu": False}
    s = explorable.current()
    _check_state(s, np.array(tiny.XX), False, (1, 1))
    assert (
        s["caption"]
        == "L2 = 2.75, loss = 1.53125; maxima of L1 at (1,1), (0,2), (3,0), (3,3)."
    )


def test_explorer_relu_reports_the_tie_of_zeros(explorable):
    s = explorable.set(relu=True)
    explorable.set(relu=False)
    assert "maxima of ReLU(L1) at (1,1), (0,2), (2,0), (3,3)" in s["caption"]
    assert (
        "Tie in window (1,0): the first maximum (row-major) gets the gradient."
        in s["caption"]
    )
    A = {q["id"]: q for q in s["panels"]}["A"]
    assert [A["classes"][r][c] for r, c in [(2, 0), (2, 1), (3, 0), (3, 1)]] == [
        "win",
        "tie",
        "tie",
        "tie",
    ]


@pytest.mark.torch
def test_explorer_every_state_against_torch(explorable):
    """Full sweep: 36 pixels x 3 values x with/without ReLU."""
    assert len(explorable.states) == 36 * len(tiny.PIXEL_VALUES) * 2
    for r in range(6):
        for c in range(6):
            for value in tiny.PIXEL_VALUES:
                for relu in (False, True):
                    xx = np.array(tiny.XX)
                    if value != "as drawn":
                        xx[r, c] = value
                    key = f"{r}|{c}|{value}|{'true' if relu else 'false'}"
                    _check_state(explorable.states[key], xx, relu, (r, c))


def test_explorer_repr_payload_rebuild(explorable):
    from cnnviz.explorable import rebuild

    assert repr(explorable) == repr(tiny.TinyNetworkRoute()) and "0x" not in repr(
        explorable
    )
    assert explorable.payload_size() <= 150_000
    assert rebuild("TinyNetworkRoute", explorable.config).states == explorable.states
    with pytest.raises(ValueError, match="has no action"):
        explorable.run_action("new")


def test_static_figure_of_a_state_fits_the_page():
    from cnnviz.statefig import state_figure

    xx = np.array(tiny.XX)
    xx[1, 1] = 4
    fig = state_figure(tiny.tiny_state(xx, pixel=(1, 1)))
    assert fig.get_size_inches()[0] * fig.dpi <= 960
    assert [ax.get_title(loc="left") for ax in fig.axes] == [
        "image XX",
        "L1, maxima marked",
        "G_L1 = dL/dL1",
        "G_XX = dL/dXX",
    ]


@pytest.mark.parametrize("relu,backward", [(False, False), (True, True)])
def test_figures_fit_the_page(relu, backward):
    p = tiny.forward(relu=relu)
    g = tiny.backward(p)
    figs = [
        tiny.network_figure(relu=relu, backward=backward),
        tiny.conv_window_figure(tiny.XX, tiny.W, p.L1, 1, 2),
        tiny.route_figure(
            g["dL1Max"],
            p.pool_cache,
            g["dA"],
            *([p.relu_cache.mask[0, 0], g["dL1"]] if relu else []),
        ),
    ]
    for fig in figs:
        assert fig.get_size_inches()[0] * fig.dpi <= 960
