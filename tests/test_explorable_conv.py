"""Tests of chapter 07's explorable (cnnviz.conv.ConvInputCell, input_cell_state) and figures.

The expected values are computed here independently of the code under test: the windows that read
an input cell and the weight each one uses by brute force (a loop over every output and every kernel
position), dX by mlp_cnn_core.conv2d_backward on the kernel 1..k*k and the seeded upstream gradient,
built in the test.
"""
import itertools
import json
import re

import numpy as np
import pytest

import mlp_cnn_core as core
from cnnviz.conv import (
    ConvInputCell,
    conv_matrix,
    conv_matrix_state,
    full_correlation_state,
    influence,
    input_cell_state,
    prepared_gradient,
    upstream_values,
)
from cnnviz.draw import format_value
from cnnviz.explorable import call, figure, rebuild

fmt = format_value


def brute_force(n, k, s, p, u, v):
    """{(i, j): (α, β)} for every output (i, j) that reads input (u, v) through weight K[α, β]."""
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


def kernel(k):
    return np.arange(1, k * k + 1, dtype=float).reshape(k, k)


def core_dx(n, k, s, p, dy):
    _, cache = core.conv2d_forward(np.zeros((1, 1, n, n)), kernel(k)[None, None], None, s, p)
    return core.conv2d_backward(dy[None, None], cache)[0][0, 0]


def panels_of(state):
    return {q["id"]: q for q in state["panels"]}


def check_state(state, n, k, s, p):
    """One state of the explorable against brute force and the core."""
    if k > n + 2 * p:
        assert set(state) == {"message"} and "larger than the padded input" in state["message"]
        return
    Ho = (n + 2 * p - k) // s + 1
    dy = upstream_values((Ho, Ho), "random")
    dx = core_dx(n, k, s, p, dy)
    P = panels_of(state)
    assert set(P) == {"x", "w", "dy", "dx", "g", "wr"}
    assert (P["x"]["rows"], P["dy"]["rows"], P["dx"]["rows"], P["w"]["rows"]) == (n + 2 * p, Ho, n, k)
    assert P["dx"]["text"] == [[fmt(t) for t in row] for row in dx]
    assert P["dy"]["text"] == [[fmt(t) for t in row] for row in dy]
    assert P["w"]["text"] == [[fmt(t) for t in row] for row in kernel(k)]
    assert P["wr"]["text"] == [[fmt(t) for t in row] for row in kernel(k)[::-1, ::-1]]
    # every link points at cells and panels that exist
    for key, lk in state["links"].items():
        for cid in [key] + lk["cells"]:
            pid, r, c = cid.split(":")
            assert pid in P and 0 <= int(r) < P[pid]["rows"] and 0 <= int(c) < P[pid]["cols"], cid
        for pid, r, c, h, w, _ in lk["windows"]:
            assert pid in P and r >= 0 and c >= 0 and r + h <= P[pid]["rows"] and c + w <= P[pid]["cols"]
    def link_of(cid):
        lk = state["links"][cid]
        return state["links"][lk] if isinstance(lk, str) else lk

    for u, v in itertools.product(range(n), range(n)):
        pairs = brute_force(n, k, s, p, u, v)
        # the padded input shows how many windows read each cell; padding cells are marked
        assert P["x"]["text"][u + p][v + p] == str(len(pairs))
        lk = link_of(f"dx:{u}:{v}")
        assert link_of(f"x:{u + p}:{v + p}") == lk
        text = lk["text"]
        assert f"∂L/∂X<sub>{u}{v}</sub>" in text
        if not pairs:
            assert "no window" in text and dx[u, v] == 0 and lk["windows"] == []
            continue
        assert f"read by {len(pairs)} window{'s' if len(pairs) > 1 else ''}:" in text
        assert text.endswith(f"= <b>{fmt(dx[u, v])}</b>.")
        # the terms, in the order of the windows, and their sum is the core's dX
        names = re.findall(r"∂L/∂Y<sub>(\d)(\d)</sub>·K<sub>(\d)(\d)</sub>", text)
        assert {(int(a), int(b)): (int(c), int(d)) for a, b, c, d in names} == pairs
        assert sum(dy[i, j] * kernel(k)[r, c] for (i, j), (r, c) in pairs.items()) == pytest.approx(dx[u, v], abs=1e-12)
        assert sorted(map(tuple, lk["windows"])) == sorted(
            [("x", i * s, j * s, k, k, "") for i, j in pairs] + [("g", u + p, v + p, k, k, "")])
        cells = set(lk["cells"])
        assert {c for c in cells if c.startswith("w:")} == {f"w:{r}:{c}" for r, c in pairs.values()}
        assert {c for c in cells if c.startswith("wr:")} == {f"wr:{k - 1 - r}:{k - 1 - c}" for r, c in pairs.values()}
        assert {c for c in cells if c.startswith("dy:")} == {f"dy:{i}:{j}" for i, j in pairs}
    for pad in [(a, b) for a in range(n + 2 * p) for b in range(n + 2 * p)
                if not (p <= a < p + n and p <= b < p + n)]:
        assert "pad" in P["x"]["classes"][pad[0]][pad[1]] and P["x"]["text"][pad[0]][pad[1]] == ""
        assert "cropped away" in link_of(f"x:{pad[0]}:{pad[1]}")["text"]
    # an upstream cell, on ∂L/∂Y or at its place in pad(∂L/∂Y): its window and the dX cells it reaches
    g_rows = P["g"]["rows"]
    assert g_rows == n + 2 * p + k - 1
    placed = {}
    for i, j in itertools.product(range(Ho), range(Ho)):
        lk = link_of(f"dy:{i}:{j}")
        assert lk["windows"] == [["x", i * s, j * s, k, k, ""]]
        reached = {(u, v) for u, v in itertools.product(range(n), range(n)) if (i, j) in brute_force(n, k, s, p, u, v)}
        assert {c for c in lk["cells"] if c.startswith("dx:")} == {f"dx:{u}:{v}" for u, v in reached}
        a, b = k - 1 + i * s, k - 1 + j * s                   # dilated by s, padded by k - 1
        placed[(a, b)] = dy[i, j]
        assert link_of(f"g:{a}:{b}") == lk and f"g:{a}:{b}" in lk["cells"]
        assert P["g"]["text"][a][b] == fmt(dy[i, j])
    # every other cell of pad(∂L/∂Y) is a zero, and says whether of the dilation or of the padding
    for a, b in itertools.product(range(g_rows), range(g_rows)):
        if (a, b) in placed:
            continue
        text = link_of(f"g:{a}:{b}")["text"]
        between = (k - 1 <= a <= k - 1 + (Ho - 1) * s) and (k - 1 <= b <= k - 1 + (Ho - 1) * s)
        assert text.startswith("A zero put in by the dilation" if between else "A zero of the padding"), (a, b)
        assert P["g"]["text"][a][b] == ("0" if between else "")
    # a weight (on K or rot180(K)): the cells of ∂L/∂X it carries a gradient to
    for a, b in itertools.product(range(k), range(k)):
        lk = link_of(f"w:{a}:{b}")
        assert link_of(f"wr:{k - 1 - a}:{k - 1 - b}") == lk
        reached = {(u, v) for u, v in itertools.product(range(n), range(n))
                   if (a, b) in brute_force(n, k, s, p, u, v).values()}
        assert {c for c in lk["cells"] if c.startswith("dx:")} == {f"dx:{u}:{v}" for u, v in reached}
        assert f"to {len(reached)} cell" in lk["text"] and f"used by all {Ho * Ho} windows" in lk["text"]


@pytest.fixture(scope="module")
def explorable():
    return ConvInputCell()


def test_every_control_value(explorable):
    """The full grid: each stored state agrees with brute force and the core."""
    specs = {c["name"]: c["options"] for c in explorable.controls}
    assert specs == {"size": [3, 4, 5, 6], "k": [2, 3, 4], "stride": [1, 2, 3], "padding": [0, 1, 2]}
    seen = 0
    for n, k, s, p in itertools.product(*specs.values()):
        state = explorable.set(size=n, k=k, stride=s, padding=p)
        check_state(state, n, k, s, p)
        seen += 1
    assert seen == len(explorable.states) == 108


def test_default_state_reads_the_kernel_backwards(explorable):
    explorable.set(size=5, k=3, stride=1, padding=0)
    state = explorable.current()
    assert state["focus"] == "dx:2:2"
    text = state["links"]["dx:2:2"]["text"]
    # hand-worked: window (i, j) meets the centre cell through K[2 - i, 2 - j]
    order = re.findall(r"K<sub>(\d)(\d)</sub>", text)
    assert [(int(r), int(c)) for r, c in order] == [(2 - i, 2 - j) for i in range(3) for j in range(3)]
    assert "K<sub>22</sub> first" in state["caption"]


def test_strided_padded_hand_example():
    state = input_cell_state(6, 3, 2, 1)
    # padded row 4 is read by output rows 1 (kernel row 2) and 2 (kernel row 0);
    # padded col 3 by output col 1 (kernel col 1) only
    assert brute_force(6, 3, 2, 1, 3, 2) == {(1, 1): (2, 1), (2, 1): (0, 1)}
    text = state["links"]["dx:3:2"]["text"]
    assert "∂L/∂Y<sub>11</sub>·K<sub>21</sub> + ∂L/∂Y<sub>21</sub>·K<sub>01</sub>" in text
    dy = upstream_values((3, 3), "random")
    assert text.endswith(f"= <b>{fmt(dy[1, 1] * 8 + dy[2, 1] * 2)}</b>.")
    assert "(-2)·8 + 2·2" in text and dy[1, 1] == -2 and dy[2, 1] == 2   # negative factors in parentheses


def test_unreached_cell_gets_zero():
    # H = 6, k = 3, stride 2, no padding: windows cover rows 0..4, row 5 is never read
    state = input_cell_state(6, 3, 2, 0)
    assert "no window" in state["links"]["dx:5:1"]["text"]
    assert panels_of(state)["dx"]["text"][5] == ["0"] * 6


def test_kernel_larger_than_padded_input(explorable):
    assert "no output" in explorable.set(size=3, k=4, stride=1, padding=0)["message"]
    assert "panels" in explorable.set(size=3, k=4, stride=1, padding=1)


def test_influence_matches_brute_force():
    for n, k, s, p in itertools.product([3, 5, 7], [1, 2, 4], [1, 2, 3], [0, 2]):
        if k > n + 2 * p:
            continue
        for u, v in itertools.product(range(n), range(n)):
            mask, index = influence(n, k, s, p, u, v)
            found = brute_force(n, k, s, p, u, v)
            assert {(int(i), int(j)) for i, j in zip(*np.nonzero(mask))} == set(found)
            for (i, j), rc in found.items():
                assert tuple(index[i, j]) == rc
            assert np.all(index[~mask] == -1)


def test_controls_repr_payload_and_rebuild(explorable):
    with pytest.raises(ValueError, match="stride must be one of"):
        explorable.set(stride=4)
    assert repr(explorable) == repr(ConvInputCell())
    assert "0x" not in repr(explorable) and "run this cell" in repr(explorable)
    assert explorable.payload_size() <= 250_000
    again = rebuild("ConvInputCell", explorable.config)
    assert json.dumps(again.states, sort_keys=True) == json.dumps(explorable.states, sort_keys=True)


def test_figure_of_the_followed_cell():
    fig = figure(call(input_cell_state, 6, 3, 2, 1), follow="dx:3:2", panels=["x", "w", "dy", "dx"])
    st = fig.current()
    assert [q["id"] for q in st["panels"]] == ["x", "w", "dy", "dx"]
    assert list(st["links"]) == ["dx:3:2"] and st["focus"] == "dx:3:2"
    lk = st["links"]["dx:3:2"]
    assert sorted(w[:3] for w in lk["windows"] if w[0] == "x") == [["x", 2, 2], ["x", 4, 2]]   # two windows
    again = rebuild("StateFigure", fig.config)
    assert again.current() == st
    with pytest.raises(ValueError, match="no cell"):
        figure(call(input_cell_state, 6, 3, 2, 1), follow="dx:9:9")
    with pytest.raises(ValueError, match="nothing to draw"):
        figure(call(input_cell_state, 3, 4, 1, 0), follow="dx:0:0")
    assert "larger" in figure(call(input_cell_state, 3, 4, 1, 0)).current()["message"]


def full_correlation_by_hand(g, kern):
    """A plain stride-1 valid correlation of g with the kernel flipped on both axes."""
    k = kern.shape[0]
    m = g.shape[0] - k + 1
    return np.array([[np.sum(g[a:a + k, b:b + k] * kern[::-1, ::-1]) for b in range(m)] for a in range(m)])


def test_prepared_gradient_and_full_correlation_state():
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
        full = full_correlation_by_hand(g, kern)
        _, cache = core.conv2d_forward(np.zeros((1, 1, n, n)), kern[None, None], None, s, p)
        np.testing.assert_allclose(full[p:p + n, p:p + n], core.conv2d_backward(dy[None, None], cache)[0][0, 0],
                                   atol=1e-12)
        cells = [(0, 0), (n - 1, n - 1)]
        st = full_correlation_state(dy, kern, n, s, p, cells=cells)
        P = panels_of(st)
        assert list(P) == ["g", "wr", "dx"]
        assert P["dx"]["text"] == [[fmt(t) for t in row] for row in full[p:p + n, p:p + n]]
        assert P["wr"]["text"] == [[fmt(t) for t in row] for row in kern[::-1, ::-1]]
        assert P["g"]["rows"] == n + 2 * p + k - 1
        assert P["g"]["windows"] == [["g", u + p, v + p, k, k, f"c{m + 1}"] for m, (u, v) in enumerate(cells)]
        assert P["dx"]["windows"] == [["dx", u, v, 1, 1, f"c{m + 1}"] for m, (u, v) in enumerate(cells)]
        extra = (n + 2 * p - k) % s
        assert f"the k − 1 = {k - 1} zeros around it" in st["caption"]
        assert ("no window read" in st["caption"]) == (extra > 0)
        assert ("cropping the padding" in st["caption"]) == (p > 0)
        assert st["legend"]["window.c2"] == f"rot180(K) making ∂L/∂X<sub>{n - 1}{n - 1}</sub>"


def test_conv_matrix_state_shows_the_rotation_in_a_row_of_the_transpose():
    kern = np.array([[1.0, 2.0], [3.0, 4.0]])
    st = conv_matrix_state(kern, 3, (1, 1))
    P = panels_of(st)
    # A by hand: output (i, j) reads input (i + α, j + β) through K[α, β]
    A = np.zeros((4, 9))
    for i, j, a, b in itertools.product(range(2), range(2), range(2), range(2)):
        A[i * 2 + j, (i + a) * 3 + (j + b)] = kern[a, b]
    assert P["A"]["text"] == [[fmt(t) for t in row] for row in A]
    assert P["At"]["text"] == [[fmt(t) for t in row] for row in A.T]
    assert P["r"]["text"] == [["4", "3"], ["2", "1"]]          # rot180(K), not K^T = [[1, 3], [2, 4]]
    assert [r[4] for r in P["A"]["classes"]] == ["hl"] * 4 and sum(c == "hl" for r in P["A"]["classes"] for c in r) == 4
    assert P["At"]["classes"][4] == ["hl"] * 4
    assert P["A"]["colLabels"][4] == "X₁₁" and P["A"]["rowLabels"][0] == "Y₀₀"


def test_conv_matrix_transpose_is_the_backward_pass():
    rng = np.random.default_rng(4)
    kern = rng.standard_normal((2, 3))
    A = conv_matrix(4, 5, kern, 1, 1)
    x = rng.standard_normal((4, 5))
    y, cache = core.conv2d_forward(x[None, None], kern[None, None], None, 1, 1)
    np.testing.assert_allclose(A @ x.ravel(), y.ravel(), atol=1e-12)
    dy = rng.standard_normal(y.shape)
    np.testing.assert_allclose(A.T @ dy.ravel(), core.conv2d_backward(dy, cache)[0].ravel(), atol=1e-12)
