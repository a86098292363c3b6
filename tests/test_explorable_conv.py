"""Tests of chapter 07's explorable (cnnviz.conv.ConvInputCell, input_cell_state) and figure helpers.

The expected values are computed here independently of the code under test: the windows that read
an input cell and the weight each one uses by brute force (a loop over every output and every kernel
position), dX by mlp_cnn_core.conv2d_backward on the kernel 1..k*k and the seeded upstream gradient,
built in the test.
"""
import itertools
import json
import re

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

import mlp_cnn_core as core  # noqa: E402
from cnnviz.conv import (ConvInputCell, conv_matrix, full_correlation_figure, influence,  # noqa: E402
                         input_cell_state, prepared_gradient, upstream_values)
from cnnviz.statefig import state_figure  # noqa: E402
from cnnviz.draw import format_value  # noqa: E402
from cnnviz.explorable import rebuild  # noqa: E402

fmt = format_value


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
    for u, v in itertools.product(range(n), range(n)):
        pairs = brute_force(n, k, s, p, u, v)
        # the padded input shows how many windows read each cell; padding cells are marked
        assert P["x"]["text"][u + p][v + p] == str(len(pairs))
        lk = state["links"][f"dx:{u}:{v}"]
        assert state["links"][f"x:{u + p}:{v + p}"] == lk
        text = lk["text"]
        assert f"dL/dX[{u},{v}]" in text
        if not pairs:
            assert "no window" in text and dx[u, v] == 0 and lk["windows"] == []
            continue
        assert f"read by {len(pairs)} window(s)" in text
        assert text.endswith(f"= <b>{fmt(dx[u, v])}</b>.")
        # the terms, in the order of the windows, and their sum is the core's dX
        names = re.findall(r"dY\[(\d+),(\d+)\]·W\[(\d+),(\d+)\]", text)
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
    for i, j in itertools.product(range(Ho), range(Ho)):
        assert state["links"][f"dy:{i}:{j}"]["windows"] == [["x", i * s, j * s, k, k, ""]]


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
    # hand-worked: window (i, j) meets the centre cell through W[2 - i, 2 - j]
    order = re.findall(r"W\[(\d),(\d)\]", text)
    assert [(int(r), int(c)) for r, c in order] == [(2 - i, 2 - j) for i in range(3) for j in range(3)]
    assert "W[2,2] first" in state["caption"]


def test_strided_padded_hand_example():
    state = input_cell_state(6, 3, 2, 1)
    # padded row 4 is read by output rows 1 (kernel row 2) and 2 (kernel row 0);
    # padded col 3 by output col 1 (kernel col 1) only
    assert brute_force(6, 3, 2, 1, 3, 2) == {(1, 1): (2, 1), (2, 1): (0, 1)}
    text = state["links"]["dx:3:2"]["text"]
    assert "dY[1,1]·W[2,1] + dY[2,1]·W[0,1]" in text
    dy = upstream_values((3, 3), "random")
    assert text.endswith(f"= <b>{fmt(dy[1, 1] * 8 + dy[2, 1] * 2)}</b>.")


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


def test_state_figure_draws_the_followed_cell():
    state = input_cell_state(6, 3, 2, 1)
    fig = state_figure(state, follow="dx:3:2", panels=["x", "w", "dy", "dx"])
    assert len(fig.axes) == 4
    assert fig.get_figwidth() * fig.dpi <= 960
    x_ax = fig.axes[0]
    dashed = [q for q in x_ax.patches if q.get_linestyle() == "--"]
    assert len(dashed) == 2                      # the two windows that read x[3, 2]
    fig.canvas.draw()
    plt.close(fig)
    with pytest.raises(ValueError, match="no cell"):
        state_figure(state, follow="dx:9:9")
    with pytest.raises(ValueError, match="nothing to draw"):
        state_figure(input_cell_state(3, 4, 1, 0), follow="dx:0:0")
    fig = state_figure(input_cell_state(3, 4, 1, 0))   # no output: the figure says why
    assert "larger" in fig.axes[0].texts[0].get_text()
    plt.close(fig)


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
        assert fig.get_figwidth() * fig.dpi <= 960
        extra = (n + 2 * p - k) % s
        title = fig.axes[0].get_title()
        assert f"padded by k−1 = {k - 1}" in title
        assert (f"{k - 1 + extra} at the bottom/right" in title) == (extra > 0)
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
