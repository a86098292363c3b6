"""Tests of chapter 09's explorable (cnnviz.pooling.PoolingRouting, comparison_state) and
its figures.

The expected gradients are computed here independently of the code under test, straight from
the definitions with plain loops over the windows: max pooling sends each window's dL/dY to
its (unique) largest real cell; mean pooling sends dL/dY / k² to every real cell of the
window (padded cells count in the divisor and keep their share: count_include_pad=True).
PyTorch, when installed, is a second oracle.  Every state of the control grid is checked.
"""
import itertools
import json

import numpy as np
import pytest

import cnnviz
from cnnviz.explorable import rebuild
from cnnviz.pooling import (
    SIZES,
    PoolingRouting,
    compare_state,
    comparison_state,
    input_values,
    pooling_state,
    upstream_values,
)


def fmt(v):
    v = float(v) + 0.0
    return str(int(v)) if v.is_integer() else f"{v:.3g}"


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


def texts(M):
    return [[fmt(v) for v in row] for row in np.asarray(M)]


def check_state(state, x, dy, k, s, p):
    """The drawn state against the definitions, cell by cell, links and caption included."""
    n = x.shape[0]
    dx_max, dx_mean, _, _ = reference(x, dy, k, s, p)
    P = {q["id"]: q for q in state["panels"]}
    assert list(P) == ["x", "dy", "max", "mean"]
    xt = P["x"]["text"]
    assert len(xt) == n + 2 * p
    for r, c in itertools.product(range(n + 2 * p), repeat=2):
        real = p <= r < n + p and p <= c < n + p
        assert xt[r][c] == (fmt(x[r - p, c - p]) if real else "pad")
        assert ("pad" in P["x"]["classes"][r][c]) == (not real)
    assert P["dy"]["text"] == texts(dy)
    assert P["max"]["text"] == texts(dx_max) and P["mean"]["text"] == texts(dx_mean)
    nz_max, nz_mean = int(np.count_nonzero(dx_max)), int(np.count_nonzero(dx_mean))
    assert P["max"]["title"] == "∂L/∂X, max pool" and P["mean"]["title"] == "∂L/∂X, mean pool"
    assert P["max"]["subtitle"] == f"{nz_max} of {n * n} cells"
    assert P["mean"]["subtitle"] == f"{nz_mean} of {n * n} cells"
    assert P["dy"]["title"] == f"∂L/∂Y ({dy.shape[0]}×{dy.shape[1]})"
    win = {max(cells, key=lambda rc: x[rc]) for cells in windows(n, k, s, p).values()}
    assert {(r - p, c - p) for r, c in itertools.product(range(n + 2 * p), repeat=2)
            if P["x"]["classes"][r][c] == "win"} == win
    cells = {f"{q['id']}:{r}:{c}" for q in state["panels"] for r in range(q["rows"]) for c in range(q["cols"])}
    assert set(state["links"]) <= cells and state["focus"] in state["links"]
    for key, lk in state["links"].items():
        assert set(lk["cells"]) <= cells, key
        assert all(w[0] == "x" and w[3] == w[4] == k for w in lk["windows"])
    W = windows(n, k, s, p)
    for (i, j), real in W.items():
        lk = state["links"][f"dy:{i}:{j}"]
        r, c = max(real, key=lambda rc: x[rc])
        assert lk["text"].startswith(f"∂L/∂Y<sub>{i}{j}</sub> = {fmt(dy[i, j])}. Max pool: all of it to "
                                     f"X<sub>{r}{c}</sub>")
        assert f"to each of its {len(real)} cells" in lk["text"]
        assert ("shares of padded cells are lost" in lk["text"]) == (len(real) < k * k)
        assert {f"mean:{a}:{b}" for a, b in real} <= set(lk["cells"]) and f"max:{r}:{c}" in lk["cells"]
    for r, c in itertools.product(range(n), repeat=2):
        lk = state["links"][f"mean:{r}:{c}"]
        n_in = sum((r, c) in real for real in W.values())
        if n_in == 0:
            assert "lies in no window" in lk["text"]
        else:
            assert lk["text"].startswith(f"X<sub>{r}{c}</sub> is in {n_in} window")
            assert lk["text"].endswith(f"= {fmt(dx_mean[r, c])}.") and len(lk["windows"]) == n_in
            assert (f"= {fmt(dx_max[r, c])}." in lk["text"]) or dx_max[r, c] == 0
    cap = state["caption"]
    assert f"Σ ∂L/∂Y = {fmt(dy.sum())}." in cap
    assert f"<b>Max pool</b>: {nz_max} of {n * n} cells receive gradient, Σ ∂L/∂X = {fmt(dx_max.sum())}." in cap
    assert f"<b>Mean pool</b>: {nz_mean} of {n * n}, Σ ∂L/∂X = {fmt(dx_mean.sum())}." in cap
    assert ("overlap" in cap) == (s < k)
    covered = {rc for real in W.values() for rc in real}
    assert ("no window" in cap) == (len(covered) < n * n)
    assert ("padded zeros count" in cap) == (p > 0)


@pytest.fixture(scope="module")
def explorable():
    return PoolingRouting()


def test_default_state_is_the_chapters_case(explorable):
    w = explorable
    assert w.values == {"size": 6, "k": 3, "s": 1, "p": 1, "upstream": "random"} and w.config == {"seed": 0}
    x = input_values(6, 0)
    dy = upstream_values((6, 6), "random", 0)
    s = w.current()
    check_state(s, x, dy, 3, 1, 1)
    dx_max, dx_mean, _, _ = reference(x, dy, 3, 1, 1)
    assert np.count_nonzero(dx_mean) == 36 and dx_mean.sum() < dy.sum() == dx_max.sum()


def test_every_state_of_the_grid(explorable):
    """Full sweep: size x window x stride x padding x upstream; impossible paddings say why."""
    n_drawn = 0
    for n, k, s, p, up in itertools.product(SIZES, [1, 2, 3], [1, 2, 3], [0, 1], ["ones", "random"]):
        state = explorable.states[f"{n}|{k}|{s}|{p}|{up}"]
        if p > k // 2:
            assert set(state) == {"message"} and f"Choose p ≤ {k // 2}" in state["message"]
            continue
        x = input_values(n, 0)
        Ho = (n + 2 * p - k) // s + 1
        dy = upstream_values((Ho, Ho), up, 0)
        assert set(np.unique(dy)) <= ({1.0} if up == "ones" else {1.0, 2.0, 3.0, 4.0})
        check_state(state, x, dy, k, s, p)
        n_drawn += 1
    assert n_drawn == len(SIZES) * 5 * 3 * 2


def test_window_one_is_the_identity(explorable):
    s = explorable.set(k=1, s=1, p=0, upstream="random")
    explorable.set(k=3, s=1, p=1)
    P = {q["id"]: q for q in s["panels"]}
    assert P["max"]["text"] == P["mean"]["text"] == P["dy"]["text"]


def test_new_input_action_and_rebuild():
    w = PoolingRouting()
    w.run_action("new")
    assert w.config == {"seed": 1}
    x = input_values(6, 1)
    check_state(w.current(), x, upstream_values((6, 6), "random", 1), 3, 1, 1)
    assert rebuild("PoolingRouting", w.config).states == w.states
    with pytest.raises(ValueError, match="no action 'matrix'"):
        w.run_action("matrix", "1 2; 3 4")


def test_repr_payload_and_json(explorable):
    assert repr(explorable) == repr(PoolingRouting(seed=4)) and "0x" not in repr(explorable)
    json.dumps({"states": explorable.states, "controls": explorable.controls}, allow_nan=False)
    assert explorable.payload_size() <= 150_000      # the chapter's only explorable: <= ~250 KB per page


def test_upstream_values_errors():
    with pytest.raises(ValueError, match="kind must be 'ones' or 'random'"):
        upstream_values((2, 2), "zeros")


def test_pooling_state_rejects_an_impossible_geometry():
    with pytest.raises(ValueError):
        pooling_state(input_values(4, 0), 5, 1, 0)


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


@pytest.mark.parametrize("n,k,s,p", [(4, 3, 1, 1), (6, 2, 2, 0), (6, 3, 2, 1), (4, 2, 2, 0)])
def test_the_chapters_figures_draw_the_core_state_and_are_recomputed(n, k, s, p):
    """The chapter's figures: cnnviz.figure of comparison_state, from the inputs (a given dY
    too), recomputed from the recipe a page stores."""
    x = input_values(n, 0)
    Ho = (n + 2 * p - k) // s + 1
    dy = np.arange(1.0, Ho * Ho + 1).reshape(Ho, Ho) - 2.5          # signs of both kinds
    state = comparison_state(x, k, s, p, dy=dy)
    check_state(state, x, dy, k, s, p)
    assert state == compare_state(pooling_state(x, k, s, p, dy=dy))
    fig = cnnviz.figure(cnnviz.call(comparison_state, x, k, s, p, dy=dy), title="t")
    again = rebuild("StateFigure", json.loads(json.dumps(fig.config)))
    assert again.states == fig.states
    shown = fig.current()
    assert [q["id"] for q in shown["panels"]] == ["x", "dy", "max", "mean"]
    assert shown["caption"] == state["caption"]
    default = comparison_state(x, k, s, p)                 # dY = ones by default
    check_state(default, x, np.ones((Ho, Ho)), k, s, p)
