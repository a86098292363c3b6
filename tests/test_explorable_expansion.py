"""Chapter 03's explorable (cnnviz.expansion.TiesAndOverlap, policies_state) and figures.

Expected values are computed here by plain loops, independently of the code under test: each
window's maxima, the first one in row-major order (strict ``>``), and dX under the three tie
policies ("first": the whole dY to the first maximum; "all": the whole dY to every maximum;
"split": dY / n to each of the n maxima), accumulated with ``+=``; they are also compared with
``mlp_cnn_core.maxpool2d_backward``.
"""
import json

import numpy as np
import pytest

import mlp_cnn_core as core
from cnnviz import explorable as ex
from cnnviz.draw import format_value as fv
from cnnviz.expansion import (
    SIZES,
    VMAX,
    TiesAndOverlap,
    expansion_state,
    naive_expansion,
    overlap_state,
    policies_state,
    tie_marks,
    tie_values,
    upstream_gradient,
)

POLICIES = ("first", "all", "split")


def loops(x, k, s, dout):
    """(maxima per window, dX per policy, windows containing each cell) by brute force."""
    H, W = x.shape
    Ho, Wo = (H - k) // s + 1, (W - k) // s + 1
    maxima, inside = {}, {}
    dx = {p: np.zeros((H, W)) for p in POLICIES}
    for i in range(Ho):
        for j in range(Wo):
            cells = [(r, c) for r in range(i * s, i * s + k) for c in range(j * s, j * s + k)]
            best = cells[0]
            for rc in cells:
                inside.setdefault(rc, []).append((i, j))
                if x[rc] > x[best]:
                    best = rc
            ms = [rc for rc in cells if x[rc] == x[best]]
            maxima[(i, j)] = ms
            dx["first"][best] += dout[i, j]
            for rc in ms:
                dx["all"][rc] += dout[i, j]
                dx["split"][rc] += dout[i, j] / len(ms)
    return maxima, dx, inside


def sub(name, r, c):
    return f"{name}<sub>{r}{c}</sub>"


def texts(M):
    return [[fv(v) for v in row] for row in np.asarray(M, dtype=float)]


def check_state(st, x, k, s, dout, numerical=None):
    maxima, dx, inside = loops(x, k, s, dout)
    for p in POLICIES:
        _, cache = core.maxpool2d_forward(x, k, s, ties=p)
        np.testing.assert_allclose(core.maxpool2d_backward(dout, cache), dx[p], rtol=0, atol=1e-12)
    P = {p["id"]: p for p in st["panels"]}
    H, W = x.shape
    tiles = s == k and H % k == 0 and W % k == 0
    extra = [] if numerical is None else ["num"]
    assert list(P) == ["x", "dy"] + (["ex"] if tiles else []) + ["dx_first", "dx_all", "dx_split"] + extra
    assert P["x"]["text"] == texts(x) and P["dy"]["text"] == texts(dout)
    assert P["dy"]["title"] == f"∂L/∂Y: Σ = {fv(dout.sum())}"
    for p in POLICIES:
        assert P[f"dx_{p}"]["text"] == texts(dx[p])
        assert P[f"dx_{p}"]["title"] == f"∂L/∂X, {p}: Σ = {fv(dx[p].sum())}"
    if numerical is not None:
        assert P["num"]["text"] == texts(numerical)
    if tiles:
        expanded, _, naive_dx = naive_expansion(x, dout, k)
        np.testing.assert_array_equal(expanded, np.kron(dout, np.ones((k, k))))
        assert P["ex"]["text"] == texts(expanded)
        np.testing.assert_array_equal(naive_dx, dx["all"])      # the naive expansion is "all"
        assert "naive expansion expand(∂L/∂Y) ⊙ 𝟙[X = expand(Y)] is defined: it equals 'all'" in st["caption"]
    else:
        assert (f"naive expansion is undefined here: expand(∂L/∂Y) is {dout.shape[0] * k}×{dout.shape[1] * k}, "
                f"X is {H}×{W}") in st["caption"]
    # windows: every one when they tile or leave gaps, the top-left 2×2 block when they overlap
    Ho, Wo = dout.shape
    drawn = [(i, j) for i in range(Ho) for j in range(Wo) if s >= k or (i < 2 and j < 2)]
    if s < k:   # four colours, one per window of the 2×2 block
        colours = {(0, 0): "c1", (0, 1): "c2", (1, 0): "c3", (1, 1): "c4"}
    else:       # two colours, like a chessboard
        colours = {(0, 0): "c1", (0, 1): "c2", (1, 0): "c2", (1, 1): "c1"}
    assert P["x"]["windows"] == [["x", i * s, j * s, k, k, colours[(i % 2, j % 2)]] for i, j in drawn]
    assert P["dy"]["windows"] == [["dy", i, j, 1, 1, colours[(i % 2, j % 2)]] for i, j in drawn]
    # marks: first maxima, tied maxima, cells in no window
    first = {ms[0] for ms in maxima.values()}
    tied = {rc for ms in maxima.values() if len(ms) > 1 for rc in ms}
    for r in range(H):
        for c in range(W):
            want = " ".join(t for t, on in (("win", (r, c) in first), ("tie", (r, c) in tied)) if on)
            assert P["x"]["classes"][r][c] == (want or ("" if (r, c) in inside else "dim")), (r, c)
            assert all(P[f"dx_{p}"]["classes"][r][c] == P["x"]["classes"][r][c] for p in POLICIES)
    for (i, j), ms in maxima.items():
        assert P["dy"]["classes"][i][j] == ("tie" if len(ms) > 1 else "")
    # links exist, point at real cells, and say what each policy gives
    shapes = {pid: (p["rows"], p["cols"]) for pid, p in P.items()}
    for key, lk in st["links"].items():
        for cid in [key] + lk["cells"]:
            pid, r, c = cid.split(":")
            assert 0 <= int(r) < shapes[pid][0] and 0 <= int(c) < shapes[pid][1], cid
        for pid, r, c, h, w, _ in lk["windows"]:
            assert shapes[pid] == (H, W) and r + h <= H and c + w <= W
    for (i, j), ms in maxima.items():
        t = st["links"][f"dy:{i}:{j}"]["text"]
        g = dout[i, j]
        if len(ms) == 1:
            assert f"only at {sub('X', *ms[0])}, which gets ∂L/∂{sub('Y', i, j)} = {fv(g)}" in t
        else:
            assert f"a {len(ms)}-way tie" in t and f"first: {sub('X', *ms[0])} gets {fv(g)}" in t
            assert f"all: each gets {fv(g)}, {fv(len(ms) * g)} in total" in t
            assert f"split: each gets {fv(g / len(ms))}" in t
    for r in range(H):
        for c in range(W):
            lk = st["links"][f"x:{r}:{c}"]
            assert all(st["links"][f"dx_{p}:{r}:{c}"] == lk for p in POLICIES)
            assert len(lk["windows"]) == len(inside.get((r, c), []))
            if any((r, c) in ms for ms in maxima.values()):
                for p in POLICIES:
                    assert f"{p}: " in lk["text"] and (f" = {fv(dx[p][r, c])}" in lk["text"]
                                                       or f"{p}: {fv(dx[p][r, c])}" in lk["text"])
            else:
                assert f"∂L/∂{sub('X', r, c)} = 0 under every policy" in lk["text"]
    mass = ", ".join(f"{p} {fv(dx[p].sum())}" for p in POLICIES)
    assert all(part in st["caption"] for part in mass.split(", "))
    assert f"{sum(len(ms) > 1 for ms in maxima.values())} of {len(maxima)} windows tie" in st["caption"]


def test_hand_worked_ties():
    x = np.array([[3., 3., 2., 5.], [1., 3., 5., 0.], [4., 0., 0., 0.], [2., 1., 0., 0.]])
    dout = np.array([[1., 2.], [3., 4.]])
    st = policies_state(x, 2, 2, dout)
    check_state(st, x, 2, 2, dout)
    assert "Σ ∂L/∂Y = 10; Σ ∂L/∂X: first 10 (=), all 26 (>), split 10 (=)" in st["caption"]
    assert st["links"]["dy:0:0"]["text"] == ("Window (0, 0): maximum 3, a 3-way tie (X<sub>00</sub>, X<sub>01</sub>, "
                                            "X<sub>11</sub>). first: X<sub>00</sub> gets 1. all: each gets 1, "
                                            "3 in total. split: each gets 0.333.")
    assert st["links"]["x:0:1"]["text"] == ("X<sub>01</sub> = 3 is one of the 3 tied maxima of its window. "
                                           "∂L/∂X<sub>01</sub>: first: 0; all: 1; split: 0.333.")
    counts, first, tied = tie_marks(x, 2, 2)
    assert counts.tolist() == [[3, 2], [1, 4]]
    assert first[0, 0] and not first[0, 1] and tied[0, 1] and not tied[2, 0] and first[2, 0]


def test_overlap_without_ties():
    x = np.arange(36.0).reshape(6, 6)[::-1]
    st = policies_state(x, 3, 1, np.ones((4, 4)))
    check_state(st, x, 3, 1, np.ones((4, 4)))
    assert "The windows overlap (stride 1 < window 3; the first four are outlined)" in st["caption"]


def test_every_state_of_the_explorable():
    w = TiesAndOverlap()
    assert w.values == {"size": 4, "k": 2, "s": 2, "vmax": 3, "upstream": "random"}
    names = [c["name"] for c in w.controls]
    assert names == ["size", "k", "s", "vmax", "upstream"]
    assert w.controls[3]["label"] == "values from 0 to" and "_" not in json.dumps(w.controls)
    n = 0
    for key, st in w.states.items():
        v = dict(zip(names, key.split("|")))
        size, k, s, vmax = int(v["size"]), int(v["k"]), int(v["s"]), int(v["vmax"])
        x = tie_values(size, vmax, w.config["seed"])
        Ho = (size - k) // s + 1
        check_state(st, x, k, s, upstream_gradient((Ho, Ho), v["upstream"], w.config["seed"]))
        n += 1
    assert n == len(SIZES) * 2 * 3 * len(VMAX) * 2


def test_every_control_changes_the_picture_in_every_state():
    """No control is shown that does nothing: from every state, every other option of every
    control draws something else (apart from geometry coincidences named here)."""
    w = TiesAndOverlap()
    names = [c["name"] for c in w.controls]
    same = []
    for key, st in w.states.items():
        vals = key.split("|")
        for idx, c in enumerate(w.controls):
            for opt in c["keys"]:
                if opt == vals[idx]:
                    continue
                other = w.states["|".join(vals[:idx] + [opt] + vals[idx + 1:])]
                if json.dumps(other, sort_keys=True) == json.dumps(st, sort_keys=True):
                    same.append((key, names[idx], opt))
    # the only identical pictures: a 4×4 input with 3×3 windows has one window for stride 2 and 3
    assert all(n == "s" and k.startswith("4|3|") and {k.split("|")[2], o} == {"2", "3"} for k, n, o in same), same[:5]


def test_default_state_has_every_kind_of_tie():
    st = TiesAndOverlap().current()
    assert "3 of 4 windows tie" in st["caption"] and "all 16 (>)" in st["caption"]
    assert "a 4-way tie" in st["links"]["dy:0:0"]["text"]
    # the other lessons are on the grid: sizes the windows do not tile, few ties, overlap
    w = TiesAndOverlap()
    assert "undefined" in w.set(size=5)["caption"] and "0 of 9 windows tie" in w.set(size=6, vmax=99)["caption"]
    assert "several windows" in w.set(size=6, k=3, s=1)["caption"]
    assert st["focus"] in st["links"]


def test_vmax_coarsens_one_draw_and_small_vmax_means_ties():
    a, b = tie_values(6, 1, 5), tie_values(6, 99, 5)
    assert set(np.unique(a)) <= {0.0, 1.0} and set(np.unique(b)) <= set(map(float, range(100)))
    np.testing.assert_array_equal(a, np.floor(b / 50))        # the same draw, rounded to 2 levels
    counts1 = tie_marks(a, 2, 2)[0]
    counts9 = tie_marks(b, 2, 2)[0]
    assert (counts1 > 1).sum() > (counts9 > 1).sum()


def test_new_values_action_repr_payload_and_rebuild():
    w = TiesAndOverlap()
    before = w.current()
    w.run_action("new")
    assert w.config["seed"] == 3 and w.current() != before
    assert ex.rebuild("TiesAndOverlap", w.config).states == w.states
    assert repr(w) == repr(TiesAndOverlap(seed=9)) and "0x" not in repr(w)
    json.dumps({"states": w.states, "controls": w.controls}, allow_nan=False)
    assert w.payload_size() <= 250_000          # the chapter's page holds this one explorable
    with pytest.raises(ValueError, match="no action 'matrix'"):
        w.run_action("matrix", "1 2; 3 4")


def test_naive_expansion_is_refused_when_windows_do_not_tile():
    with pytest.raises(ValueError, match=r"expand\(∂L/∂Y\) has shape \(4, 4\) but x has shape \(5, 5\)"):
        naive_expansion(np.zeros((5, 5)), np.ones((2, 2)), 2)


def test_ties_figure_with_central_differences():
    x = np.array([[3., 3., 2., 5.], [1., 3., 5., 0.], [4., 0., 0., 0.], [2., 1., 0., 0.]])
    dout = np.array([[1., 2.], [3., 4.]])
    L = lambda v: np.sum(dout * core.maxpool2d_forward(v, 2)[0])  # noqa: E731
    num = np.round(core.numerical_gradient(L, x), 6)
    st = policies_state(x, 2, 2, dout, numerical=num)
    check_state(st, x, 2, 2, dout, numerical=num)
    P = {p["id"]: p for p in st["panels"]}
    assert P["num"]["title"] == "central differences: Σ = 14.5"
    assert P["dx_split"]["text"][0][:2] == ["0.333", "0.333"]
    assert P["dx_first"].get("newRow") and not P["dx_all"].get("newRow")


def test_expansion_figure():
    x = np.array([[3., -1., 7., 2.], [5., 0., -4., 6.], [-2., 8., 1., -3.], [4., -5., 9., 10.]])
    dout = np.array([[1., 2.], [3., 4.]])
    st = expansion_state(x, dout, 2)
    P = {p["id"]: p for p in st["panels"]}
    assert list(P) == ["x", "dy", "ex", "m", "dx"]
    maxima, dx, _ = loops(x, 2, 2, dout)
    mask = np.zeros((4, 4))
    for ms in maxima.values():
        mask[ms[0]] = 1
    assert P["ex"]["text"] == texts(np.kron(dout, np.ones((2, 2))))
    assert P["m"]["text"] == texts(mask) and P["dx"]["text"] == texts(dx["first"])
    assert [P[p].get("op") for p in P] == [None, None, None, "⊙", "="]
    assert P["ex"].get("newRow")
    for pid in ("x", "ex", "m", "dx"):
        assert P[pid]["windows"] == [[pid, 0, 0, 2, 2, "c1"], [pid, 0, 2, 2, 2, "c2"],
                                     [pid, 2, 0, 2, 2, "c2"], [pid, 2, 2, 2, 2, "c1"]]
    assert all(P[pid]["classes"][u][v] == ("win" if mask[u, v] else "")
               for pid in ("x", "m", "dx") for u in range(4) for v in range(4))


def test_overlap_figure_marks_the_cells_the_assignment_bug_gets_wrong():
    x = np.array([[3., -1., 7., 2.], [5., 0., -4., 6.], [-2., 8., 1., -3.], [4., -5., 9., 10.]])
    dout = np.arange(1., 10.).reshape(3, 3)
    st = overlap_state(x, dout, 2, 1)
    P = {p["id"]: p for p in st["panels"]}
    maxima, dx, _ = loops(x, 2, 1, dout)
    won = np.zeros((4, 4), int)
    bug = np.zeros((4, 4))
    for (i, j), ms in sorted(maxima.items()):       # row-major: the last window written wins
        won[ms[0]] += 1
        bug[ms[0]] = dout[i, j]
    assert P["m"]["text"] == texts(won) and P["dx"]["text"] == texts(dx["first"])
    assert P["bug"]["text"] == texts(bug)
    assert P["dx"]["title"] == "∂L/∂X with +=: Σ = 45" and P["bug"]["title"] == "∂L/∂X with =: Σ = 34"
    assert [(u, v) for u in range(4) for v in range(4) if P["bug"]["classes"][u][v] == "sel"] == [(0, 2), (2, 1)]
    assert [(u, v) for u in range(4) for v in range(4) if P["m"]["classes"][u][v] == "hl"] == [(0, 2), (2, 1)]
    assert len(P["x"]["windows"]) == 4
    assert "2 cells win several windows" in st["caption"]
