"""Chapter 02's explorable (cnnviz.maxpool.MaxPoolRouting, routing_state) and figure helpers.

Every expected value is computed here, independently of the code under test: the pooled output,
each window's winner (the first maximum in row-major order, found by a plain loop with a strict
``>``), the tied maxima, how many windows each cell won and the routed gradient (a ``+=`` loop);
the routed gradient is also compared with ``mlp_cnn_core.maxpool2d_backward``.
"""
import json
import re

import numpy as np
import pytest

import mlp_cnn_core as core
from cnnviz import explorable as ex
from cnnviz.draw import format_value as fv
from cnnviz.maxpool import (
    MaxPoolRouting,
    coverage,
    parse_matrix,
    random_input,
    random_upstream,
    routing_figure_state,
    routing_state,
    window_class,
)


def brute_force(x, k, s):
    """(y, winners, maxima, counts, inside) for a k x k window sliding with stride s over a 2-D x:
    winners[(i, j)] = the first maximum (strict >), maxima[(i, j)] = every cell equal to the max,
    counts = windows won per cell, inside[(r, c)] = the windows containing the cell."""
    H, W = x.shape
    Ho, Wo = (H - k) // s + 1, (W - k) // s + 1
    y = np.zeros((Ho, Wo))
    winners, maxima, inside = {}, {}, {}
    counts = np.zeros((H, W), int)
    for i in range(Ho):
        for j in range(Wo):
            best = None
            for r in range(i * s, i * s + k):
                for c in range(j * s, j * s + k):
                    inside.setdefault((r, c), []).append((i, j))
                    if best is None or x[r, c] > x[best]:
                        best = (r, c)
            y[i, j] = x[best]
            winners[(i, j)] = best
            maxima[(i, j)] = [(r, c) for r in range(i * s, i * s + k) for c in range(j * s, j * s + k)
                              if x[r, c] == x[best]]
            counts[best] += 1
    return y, winners, maxima, counts, inside


def brute_dx(winners, shape, dout):
    dx = np.zeros(shape)
    for (i, j), rc in winners.items():
        dx[rc] += dout[i, j]
    return dx


def sub(name, r, c):
    return f"{name}<sub>{r}{c}</sub>"


def texts(M):
    return [[fv(v) for v in row] for row in np.asarray(M, dtype=float)]


def panels_by_id(state):
    return {p["id"]: p for p in state["panels"]}


def check_state(state, x, k, s, dout):
    """One state of the explorable agrees with brute force and the core."""
    y, winners, maxima, counts, inside = brute_force(x, k, s)
    dx = brute_dx(winners, x.shape, dout)
    _, cache = core.maxpool2d_forward(x, k, s)
    np.testing.assert_array_equal(core.maxpool2d_backward(dout, cache), dx)
    P = panels_by_id(state)
    assert list(P) == ["x", "y", "dy", "m", "dx"]
    assert P["x"]["text"] == texts(x)
    assert P["y"]["text"] == texts(y)
    assert P["dy"]["text"] == texts(dout)
    assert P["m"]["text"] == texts(counts)
    assert P["dx"]["text"] == texts(dx)
    H, W = x.shape
    tied = {rc for m in maxima.values() if len(m) > 1 for rc in m}
    for r in range(H):
        for c in range(W):
            want = ("win" if counts[r, c] else "tie" if (r, c) in tied else
                    "" if (r, c) in inside else "dim")
            assert P["x"]["classes"][r][c] == want, (r, c)
            assert P["dx"]["classes"][r][c] == ("win" if counts[r, c] else "")
    # every link points at cells and windows that exist
    sizes = {pid: (p["rows"], p["cols"]) for pid, p in P.items()}
    for key, lk in state["links"].items():
        for cid in [key] + lk["cells"]:
            pid, r, c = cid.split(":")
            assert pid in sizes and 0 <= int(r) < sizes[pid][0] and 0 <= int(c) < sizes[pid][1], cid
        for pid, r, c, h, w, _ in lk["windows"]:
            assert pid == "x" and 0 <= r and r + h <= H and 0 <= c and c + w <= W
    # output cells: the window, the winner, the gradient, the ties
    for (i, j), (r, c) in winners.items():
        lk = state["links"][f"y:{i}:{j}"]
        assert state["links"][f"dy:{i}:{j}"] == lk
        assert lk["windows"] == [["x", i * s, j * s, k, k, ""]]
        assert {f"x:{r}:{c}", f"dx:{r}:{c}", f"m:{r}:{c}"} <= set(lk["cells"])
        assert f"{sub('Y', i, j)} = {fv(y[i, j])}" in lk["text"] and f"taken from {sub('X', r, c)}" in lk["text"]
        assert f"∂L/∂{sub('Y', i, j)} = {fv(dout[i, j])} goes to ∂L/∂{sub('X', r, c)}" in lk["text"]
        assert ("Tie:" in lk["text"]) == (len(maxima[(i, j)]) > 1)
        for a, b in maxima[(i, j)][1:]:
            assert sub("X", a, b) in lk["text"].split("Tie:")[1]
    # input cells: the windows containing them, what they win, what they receive
    for r in range(H):
        for c in range(W):
            lk = state["links"][f"x:{r}:{c}"]
            assert state["links"][f"dx:{r}:{c}"] == lk == state["links"][f"m:{r}:{c}"]
            ins = inside.get((r, c), [])
            assert sorted(tuple(w[1:3]) for w in lk["windows"]) == sorted((i * s, j * s) for i, j in ins)
            assert f"∂L/∂{sub('X', r, c)} = " in lk["text"] and lk["text"].endswith(f" = {fv(dx[r, c])}.")
            won = [ij for ij, rc in winners.items() if rc == (r, c)]
            assert {f"y:{i}:{j}" for i, j in won} == {cid for cid in lk["cells"] if cid.startswith("y:")}
            if len(won) > 1:
                assert " + ".join(fv(dout[ij]) for ij in won) in lk["text"]
    assert f"Σ ∂L/∂X = {fv(dx.sum())} = Σ ∂L/∂Y = {fv(dout.sum())}" in state["caption"]
    several = int((counts > 1).sum())
    assert (f"{several} cell" in state["caption"]) == (several > 0) or several == 0
    return y, dx


# ---------------------------------------------------------------------------------------------
# routing_state on hand-worked examples
# ---------------------------------------------------------------------------------------------

def test_stack_exchange_example():
    x = np.arange(1, 17, dtype=float).reshape(4, 4)
    dout = np.array([[0.5, -1.0], [2.0, 1.5]])
    st = routing_state(x, 3, 1, dout)
    y, dx = check_state(st, x, 3, 1, dout)
    assert panels_by_id(st)["y"]["text"] == [["11", "12"], ["15", "16"]]
    assert panels_by_id(st)["m"]["text"] == [["0"] * 4, ["0"] * 4, ["0", "0", "1", "1"], ["0", "0", "1", "1"]]
    assert "several windows" not in st["caption"]


def test_one_cell_wins_four_windows_and_receives_the_sum():
    x = np.array([[1, 2, 3, 4], [5, 6, 16, 8], [9, 10, 11, 12], [13, 14, 15, 7]], dtype=float)
    dout = np.array([[0.5, -1.0], [2.0, 1.5]])
    st = routing_state(x, 3, 1, dout)
    check_state(st, x, 3, 1, dout)
    lk = st["links"]["x:1:2"]
    assert lk["text"] == ("X<sub>12</sub> = 16 wins 4 of the 4 windows it is in: "
                          "∂L/∂X<sub>12</sub> = 0.5 + -1 + 2 + 1.5 = 3.")
    assert "1 cell wins several windows and receives the sum" in st["caption"]


def test_ties_name_the_first_maximum_and_the_losers():
    # the chapter's exercise 2.1 with 3×3 windows, stride 1: window (1, 0) holds three 9s, window (1, 1) two
    x = np.array([[3, 1, 4, 1], [5, 9, 2, 6], [5, 3, 5, 8], [9, 7, 9, 3]], dtype=float)
    dout = np.array([[1.0, 2.0], [3.0, 4.0]])
    st = routing_state(x, 3, 1, dout)
    check_state(st, x, 3, 1, dout)
    assert ("Tie: X<sub>30</sub>, X<sub>32</sub> also hold 9; the first maximum in row-major order, "
            "X<sub>11</sub>") in st["links"]["y:1:0"]["text"]
    assert "Tie: X<sub>32</sub> also holds 9" in st["links"]["y:1:1"]["text"]
    assert "Tie" not in st["links"]["y:0:0"]["text"]
    assert st["links"]["x:3:2"]["text"] == ("X<sub>32</sub> = 9 is in 2 windows but wins none "
                                           "(a tied maximum, but not the first): ∂L/∂X<sub>32</sub> = 0.")


def test_cells_in_no_window_are_greyed_and_receive_nothing():
    x = np.arange(25, dtype=float).reshape(5, 5)
    dout = np.ones((2, 2))
    st = routing_state(x, 2, 3, dout)        # windows at rows/cols 0-1 and 3-4: row/col 2 skipped
    check_state(st, x, 2, 3, dout)
    assert panels_by_id(st)["x"]["classes"][2] == ["dim"] * 5
    assert st["links"]["x:2:2"]["text"] == "X<sub>22</sub> lies in no window: ∂L/∂X<sub>22</sub> = 0."
    assert "9 cells lie in no window" in st["caption"]


def test_nan_wins_its_window():
    x = np.array([[1.0, np.nan], [3.0, 2.0]])
    st = routing_state(x, 2, 2, np.array([[5.0]]))
    P = panels_by_id(st)
    assert P["y"]["text"] == [["NaN"]] and P["dx"]["text"] == [["0", "5"], ["0", "0"]]
    json.dumps(ex._clean(st), allow_nan=False)


# ---------------------------------------------------------------------------------------------
# The explorable: every state of the control grid, actions, errors, repr, payload
# ---------------------------------------------------------------------------------------------

def expected_input(w, size):
    typed = w.config.get("x")
    return np.asarray(typed, dtype=float) if typed is not None else random_input(size, w.config["seed"])


def sweep(w):
    names = [c["name"] for c in w.controls]
    n = 0
    for key, state in w.states.items():
        values = dict(zip(names, key.split("|")))
        size, k, s = int(values["size"]), int(values["k"]), int(values["s"])
        x = expected_input(w, size)
        Ho, Wo = (x.shape[0] - k) // s + 1, (x.shape[1] - k) // s + 1
        dout = np.ones((Ho, Wo)) if values["upstream"] == "ones" else random_upstream((Ho, Wo), w.config["seed"])
        check_state(state, x, k, s, dout)
        n += 1
    return n


def test_every_state_of_the_default_explorable():
    w = MaxPoolRouting()
    assert w.values == {"size": 5, "k": 3, "s": 2, "upstream": "random"}
    assert sweep(w) == 5 * 4 * 4 * 2


def test_controls_and_default_state():
    w = MaxPoolRouting()
    assert [c["name"] for c in w.controls] == ["size", "k", "s", "upstream"]
    assert w.controls[0]["labels"] == ["4×4", "5×5", "6×6", "7×7", "8×8"]
    st = w.current()
    assert st["focus"] == "y:0:0" and st["focus"] in st["links"]
    x = random_input(5, 12)
    assert panels_by_id(st)["x"]["text"] == texts(x)
    st2 = w.set(k=2, s=1, upstream="ones")
    assert panels_by_id(st2)["dy"]["text"] == [["1"] * 4] * 4


def test_random_inputs_are_seeded_small_integers():
    a, b = random_input(6, 3), random_input(6, 3)
    np.testing.assert_array_equal(a, b)
    assert a.shape == (6, 6) and set(np.unique(a)) <= set(range(10))
    assert not np.array_equal(random_input(6, 3), random_input(6, 4))
    g = random_upstream((3, 4), 1)
    assert g.shape == (3, 4) and set(np.abs(g).ravel()) <= {1.0, 2.0, 3.0}


def test_new_values_action_draws_new_inputs():
    w = MaxPoolRouting(seed=3)
    before = panels_by_id(w.current())["x"]["text"]
    w.run_action("new")
    assert w.config["seed"] == 4
    assert panels_by_id(w.current())["x"]["text"] == texts(random_input(5, 4)) != before
    assert sweep(w) == 160


def test_typed_matrix_action():
    w = MaxPoolRouting()
    w.set(k=4)
    w.run_action("matrix", "3 1 4\n1 5 9;2 6 5")
    assert w.config["x"] == [[3, 1, 4], [1, 5, 9], [2, 6, 5]]
    assert w.controls[0]["options"] == [3] and w.controls[0]["labels"] == ["3×3"]
    assert w.controls[1]["options"] == [1, 2, 3] and w.values["k"] == 3      # the window fits the input
    assert sweep(w) == 1 * 3 * 4 * 2
    assert panels_by_id(w.current())["y"]["text"] == [["9"]]
    # a non-square typed input
    w.run_action("matrix", "1 2 3 4 5; 5 4 3 2 1")
    assert w.controls[0]["labels"] == ["2×5"] and w.controls[1]["options"] == [1, 2]
    assert sweep(w) == 2 * 4 * 2
    # back to random inputs
    w.run_action("new")
    assert w.config["x"] is None and w.values["size"] == 5 and sweep(w) == 160


@pytest.mark.parametrize("text, message", [
    ("", "the box is empty"),
    ("1 2; 3", r"the rows have different lengths \[1, 2\]"),
    ("1 a; 2 3", "row 0 \\('1 a'\\) is not a list of numbers"),
    ("1 2 3", r"2 to 8 rows and 2 to 8 columns; got shape \(1, 3\)"),
    ("; ".join(["1 " * 9] * 9), r"got shape \(9, 9\)"),
])
def test_a_bad_typed_matrix_is_a_clear_error_and_changes_nothing(text, message):
    w = MaxPoolRouting()
    before = json.dumps(w.states, sort_keys=True)
    with pytest.raises(ValueError, match=message):
        w.run_action("matrix", text)
    assert json.dumps(w.states, sort_keys=True) == before and w.config["x"] is None
    sent = []
    w.send = sent.append
    w._on_msg(w, {"type": "action", "name": "matrix", "value": text}, [])
    assert sent[0]["type"] == "error" and re.search(message, sent[0]["text"])


def test_constructor_input_and_rebuild():
    x = [[1, 2], [3, 4]]
    w = MaxPoolRouting(x=x)
    assert w.values["size"] == 2 and w.values["k"] == 2
    assert ex.rebuild("MaxPoolRouting", w.config).states == w.states
    with pytest.raises(ValueError, match="2 to 8 rows"):
        MaxPoolRouting(x=[1, 2, 3])


def test_repr_payload_and_json():
    w = MaxPoolRouting()
    assert repr(w) == repr(MaxPoolRouting(seed=5))
    assert "run this cell" in repr(w) and "0x" not in repr(w)
    json.dumps({"states": w.states, "controls": w.controls}, allow_nan=False)
    assert w.payload_size() <= 250_000      # the chapter's page holds this one explorable


# ---------------------------------------------------------------------------------------------
# Small helpers and the static figure
# ---------------------------------------------------------------------------------------------

def test_parse_matrix():
    np.testing.assert_array_equal(parse_matrix("[1, 2]\n[3, -4.5]"), [[1, 2], [3, -4.5]])
    assert np.isnan(parse_matrix("nan 1; 2 3")[0, 0])


def test_coverage_counts_windows():
    _, _, _, _, inside = brute_force(np.zeros((6, 5)), 3, 2)
    cov = coverage((6, 5), 3, 2)
    for r in range(6):
        for c in range(5):
            assert cov[r, c] == len(inside.get((r, c), []))


def test_window_colours_differ_between_neighbours():
    assert [window_class(i, j) for i in range(2) for j in range(2)] == ["c1", "c2", "c3", "c4"]
    assert [window_class(i, j, False) for i in range(2) for j in range(2)] == ["c1", "c2", "c2", "c1"]
    for overlap in (True, False):
        for i in range(5):
            for j in range(5):
                assert window_class(i, j, overlap) != window_class(i + 1, j, overlap)
                assert window_class(i, j, overlap) != window_class(i, j + 1, overlap)


def test_routing_figure_outlines_every_window_in_its_colour():
    x = np.array([[1, 2, 3, 4], [5, 6, 16, 8], [9, 10, 11, 12], [13, 14, 15, 7]], dtype=float)
    dout = np.array([[0.5, -1.0], [2.0, 1.5]])
    st = routing_figure_state(x, 3, 1, dout)
    P = panels_by_id(st)
    check_state({**st, "links": st["links"], "caption": st["caption"]}, x, 3, 1, dout)
    assert P["x"]["windows"] == [["x", 0, 0, 3, 3, "c1"], ["x", 0, 1, 3, 3, "c2"],
                                 ["x", 1, 0, 3, 3, "c3"], ["x", 1, 1, 3, 3, "c4"]]
    for pid in ("y", "dy"):
        assert P[pid]["windows"] == [[pid, 0, 0, 1, 1, "c1"], [pid, 0, 1, 1, 1, "c2"],
                                     [pid, 1, 0, 1, 1, "c3"], [pid, 1, 1, 1, 1, "c4"]]
    assert st["legend"]["window.c3"] == "window (1, 0): Y<sub>10</sub>"
    assert P["m"]["text"][1][2] == "4" and P["dx"]["text"][1][2] == "3"
    # what the view draws for it: every class and window has a legend entry
    keys = {k for k, _ in ex.legend_entries(st)}
    assert {"win", "window.c1", "window.c2", "window.c3", "window.c4"} <= keys


def test_routing_figure_of_two_channels_pools_each_on_its_own():
    x = np.stack([random_input(4, 1), random_input(4, 2)])
    dout = np.stack([random_upstream((2, 2), 1), random_upstream((2, 2), 2)])
    st = routing_figure_state(x, 2, 2, dout, channel_names=["a", "b"])
    assert [p["id"] for p in st["panels"]] == ["x0", "y0", "dy0", "m0", "dx0", "x1", "y1", "dy1", "m1", "dx1"]
    P = panels_by_id(st)
    assert P["x0"]["title"] == "a: X (4×4)" and P["x1"]["title"] == "b: X (4×4)"
    assert P["x1"].get("newRow") and not P["x0"].get("newRow")
    for ch in range(2):
        y, winners, maxima, counts, _ = brute_force(x[ch], 2, 2)
        assert P[f"y{ch}"]["text"] == texts(y)
        assert P[f"m{ch}"]["text"] == texts(counts)
        assert P[f"dx{ch}"]["text"] == texts(brute_dx(winners, (4, 4), dout[ch]))
        assert all(w[0] == f"x{ch}" for w in P[f"x{ch}"]["windows"])
    assert "links" not in st
    with pytest.raises(ValueError, match="2 channel names for 3 channels"):
        routing_figure_state(np.zeros((3, 4, 4)), 2, 2, np.zeros((3, 2, 2)), channel_names=["a", "b"])


def test_routing_figure_colours_windows_that_tile_like_a_chessboard():
    st = routing_figure_state(random_input(6, 3), 2, 2, np.ones((3, 3)))
    assert [w[5] for w in panels_by_id(st)["x"]["windows"]] == ["c1", "c2", "c1", "c2", "c1", "c2",
                                                                  "c1", "c2", "c1"]
    assert panels_by_id(st)["x"]["windows"][4] == ["x", 2, 2, 2, 2, "c1"]
    assert st["legend"]["window.c2"] == "windows with i + j odd"


def test_routing_figure_names_many_overlapping_windows_by_parity():
    st = routing_figure_state(random_input(6, 3), 3, 1, np.ones((4, 4)))
    assert panels_by_id(st)["x"]["windows"][5] == ["x", 1, 1, 3, 3, "c4"]
    assert st["legend"]["window.c1"] == "windows, i and j even"
