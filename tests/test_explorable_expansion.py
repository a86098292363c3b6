"""Chapter 03's explorable (cnnviz.expansion.TiesAndOverlap, policies_state) and figures.

Expected values are computed here by plain loops, independently of the code under test: each
window's maxima, the first one in row-major order (strict ``>``), and dX under the three tie
policies ("first": the whole dY to the first maximum; "all": the whole dY to every maximum;
"split": dY / n to each of the n maxima), accumulated with ``+=``; they are also compared with
``mlp_cnn_core.maxpool2d_backward``.
"""
import json

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

import mlp_cnn_core as core  # noqa: E402
from cnnviz import explorable as ex  # noqa: E402
from cnnviz.draw import format_value as fv  # noqa: E402
from cnnviz.expansion import (VMAX, TiesAndOverlap, expansion_figure, naive_expansion,  # noqa: E402
                              overlap_figure, policies_state, tie_marks, tie_values, ties_figure,
                              upstream_gradient)

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


def texts(M):
    return [[fv(v) for v in row] for row in np.asarray(M, dtype=float)]


def check_state(st, x, k, s, dout):
    maxima, dx, inside = loops(x, k, s, dout)
    for p in POLICIES:
        _, cache = core.maxpool2d_forward(x, k, s, ties=p)
        np.testing.assert_allclose(core.maxpool2d_backward(dout, cache), dx[p], rtol=0, atol=1e-12)
    P = {p["id"]: p for p in st["panels"]}
    H, W = x.shape
    tiles = s == k and H % k == 0 and W % k == 0
    assert list(P) == ["x", "dy"] + (["ex"] if tiles else []) + ["dx_first", "dx_all", "dx_split"]
    assert P["x"]["text"] == texts(x) and P["dy"]["text"] == texts(dout)
    assert P["dy"]["title"] == f"dY ({dout.shape[0]}×{dout.shape[1]}), Σ = {fv(dout.sum())}"
    for p in POLICIES:
        assert P[f"dx_{p}"]["text"] == texts(dx[p])
        assert P[f"dx_{p}"]["title"] == f"dX {p}, Σ = {fv(dx[p].sum())}"
    if tiles:
        expanded, _, naive_dx = naive_expansion(x, dout, k)
        assert P["ex"]["text"] == texts(expanded)
        np.testing.assert_array_equal(naive_dx, dx["all"])      # the naive expansion is "all"
        assert "naive expansion expand(dY) ⊙ (x == expand(y)) is defined: it equals 'all'" in st["caption"]
    else:
        assert (f"naive expansion is undefined here: expand(dY) is {dout.shape[0] * k}×{dout.shape[1] * k}, "
                f"x is {H}×{W}") in st["caption"]
    # marks: first maxima, tied maxima, cells in no window
    first = {ms[0] for ms in maxima.values()}
    tied = {rc for ms in maxima.values() if len(ms) > 1 for rc in ms}
    for r in range(H):
        for c in range(W):
            want = " ".join(t for t, on in (("win", (r, c) in first), ("tie", (r, c) in tied)) if on)
            assert P["x"]["classes"][r][c] == (want or ("" if (r, c) in inside else "dim")), (r, c)
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
            assert f"only at x[{ms[0][0]},{ms[0][1]}], which gets dY = {fv(g)}" in t
        else:
            assert f"a {len(ms)}-way tie" in t and f"first: x[{ms[0][0]},{ms[0][1]}] gets {fv(g)}" in t
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
                assert "dX = 0 under every policy" in lk["text"]
    mass = ", ".join(f"{p} {fv(dx[p].sum())}" for p in POLICIES)
    assert all(part in st["caption"] for part in mass.split(", "))
    assert f"{sum(len(ms) > 1 for ms in maxima.values())} of {len(maxima)} windows tie" in st["caption"]


def test_hand_worked_ties():
    x = np.array([[3., 3., 2., 5.], [1., 3., 5., 0.], [4., 0., 0., 0.], [2., 1., 0., 0.]])
    dout = np.array([[1., 2.], [3., 4.]])
    st = policies_state(x, 2, 2, dout)
    check_state(st, x, 2, 2, dout)
    assert "Σ dY = 10; Σ dX: first 10 (=), all 26 (>), split 10 (=)" in st["caption"]
    assert st["links"]["dy:0:0"]["text"] == ("window (0,0): maximum 3, a 3-way tie (x[0,0], x[0,1], x[1,1]). "
                                            "first: x[0,0] gets 1. all: each gets 1, 3 in total. "
                                            "split: each gets 0.333.")
    counts, first, tied = tie_marks(x, 2, 2)
    assert counts.tolist() == [[3, 2], [1, 4]]
    assert first[0, 0] and not first[0, 1] and tied[0, 1] and not tied[2, 0] and first[2, 0]


def test_overlap_without_ties():
    x = np.arange(36.0).reshape(6, 6)[::-1]
    st = policies_state(x, 3, 1, np.ones((4, 4)))
    check_state(st, x, 3, 1, np.ones((4, 4)))
    assert "The windows overlap (stride 1 < window 3)" in st["caption"]
    assert st["panels"][0]["windows"] == []         # overlapping windows are shown on hover only


def test_every_state_of_the_explorable():
    w = TiesAndOverlap()
    assert w.values == {"size": 4, "k": 2, "s": 2, "vmax": 3, "upstream": "random"}
    names = [c["name"] for c in w.controls]
    assert names == ["size", "k", "s", "vmax", "upstream"]
    assert w.controls[3]["label"] == "values 0..v_max (small = many ties)"
    n = 0
    for key, st in w.states.items():
        v = dict(zip(names, key.split("|")))
        size, k, s, vmax = int(v["size"]), int(v["k"]), int(v["s"]), int(v["vmax"])
        x = tie_values(size, vmax, w.config["seed"])
        Ho = (size - k) // s + 1
        check_state(st, x, k, s, upstream_gradient((Ho, Ho), v["upstream"], w.config["seed"]))
        n += 1
    assert n == 5 * 2 * 3 * len(VMAX) * 2


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
    assert st["focus"] in st["links"]


def test_vmax_coarsens_one_draw_and_small_vmax_means_ties():
    a, b = tie_values(6, 1, 5), tie_values(6, 9, 5)
    assert set(np.unique(a)) <= {0.0, 1.0} and set(np.unique(b)) <= set(map(float, range(10)))
    np.testing.assert_array_equal(a, np.floor(b / 5))         # the same draw, rounded to 2 levels
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
    with pytest.raises(ValueError, match=r"expand\(dY\) has shape \(4, 4\) but x has shape \(5, 5\)"):
        naive_expansion(np.zeros((5, 5)), np.ones((2, 2)), 2)


def test_figures_fit_the_page():
    x = np.array([[3., 3., 2., 5.], [1., 3., 5., 0.], [4., 0., 0., 0.], [2., 1., 0., 0.]])
    dout = np.array([[1., 2.], [3., 4.]])
    figs = [expansion_figure(x, dout, 2), overlap_figure(x, np.ones((3, 3)), 2, 1),
            ties_figure(x, dout, 2, numerical=np.zeros((4, 4))), ties_figure(tie_values(6, 1, 4), np.ones((3, 3)), 2, 2),
            ties_figure(tie_values(6, 9, 12), np.ones((4, 4)), 3, 1)]
    for fig in figs:
        assert fig.get_figwidth() * fig.dpi <= 960
        plt.close(fig)
    fig = ties_figure(x, dout, 2)
    titles = [a.get_title() for a in fig.axes]
    assert "dX all, Σ = 26" in titles and "dX split, Σ = 10" in titles
    plt.close(fig)
