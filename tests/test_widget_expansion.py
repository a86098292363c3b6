"""Chapter 03's ExpansionExplorer: its state and summary checked against gradients computed here
with plain loops over the pooling windows (not with the code under test), its figure content,
and a sweep over every combination of the discrete controls."""
import itertools
import re

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib import colors as mcolors  # noqa: E402
from matplotlib import pyplot as plt  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402

from cnnviz import ACCENT, HIGHLIGHT  # noqa: E402
from cnnviz.expansion import (ExpansionExplorer, expansion_figure, naive_expansion,  # noqa: E402
                              overlap_figure, ties_figure, window_max_counts)


# ---------------------------------------------------------------------------
# Independent reference: loops over windows, one policy at a time
# ---------------------------------------------------------------------------

def ref_pool(x, k, s):
    """Per-window maxima lists and the gradients of the three policies, by hand."""
    H, W = x.shape
    Ho, Wo = (H - k) // s + 1, (W - k) // s + 1
    winners = {}
    for i in range(Ho):
        for j in range(Wo):
            cells = [(i * s + r, j * s + c) for r in range(k) for c in range(k)]
            m = max(x[rc] for rc in cells)
            winners[i, j] = [rc for rc in cells if x[rc] == m]  # row-major order
    return (Ho, Wo), winners


def ref_grads(x, dout, k, s):
    (Ho, Wo), winners = ref_pool(x, k, s)
    dx = {p: np.zeros_like(x, dtype=float) for p in ("first", "all", "split")}
    for (i, j), cells in winners.items():
        g = dout[i, j]
        dx["first"][cells[0]] += g
        for rc in cells:
            dx["all"][rc] += g
            dx["split"][rc] += g / len(cells)
    return dx, winners


def ref_masses(x, dout, k, s):
    """sum(dX) per policy straight from the window lists (no dX array at all)."""
    _, winners = ref_pool(x, k, s)
    first = sum(dout[w] for w in winners)
    all_ = sum(dout[w] * len(c) for w, c in winners.items())
    return {"first": first, "split": first, "all": all_, "dY": float(dout.sum())}


def summary_rows(html):
    """{label: (mass text, comparison text)} from the summary table."""
    rows = re.findall(r"<tr><td>(.*?)</td><td>(.*?)</td><td>(.*?)</td></tr>", html)
    return {label: (mass, cmp) for label, mass, cmp in rows}


LABELS = {"first": "first (PyTorch)", "all": "all (naive mask)", "split": "split", "naive": "naive expansion"}


def check_state(w):
    """Every number the widget shows, against the loops above."""
    n, k, s = w.size.value, w.window.value, w.stride.value
    rng = np.random.default_rng(w.seed.value)
    x = rng.integers(0, w.vmax.value + 1, size=(n, n)).astype(float)
    np.testing.assert_array_equal(w.x, x)
    (Ho, Wo), winners = ref_pool(x, k, s)
    assert w.dout.shape == (Ho, Wo)
    if w.upstream.value == "ones":
        np.testing.assert_array_equal(w.dout, np.ones((Ho, Wo)))
    else:
        assert set(np.unique(w.dout)) <= {1.0, 2.0, 3.0}
    dx, _ = ref_grads(x, w.dout, k, s)
    for p in ("first", "all", "split"):
        np.testing.assert_allclose(w.grads[p], dx[p], atol=1e-12, err_msg=p)
    masses = ref_masses(x, w.dout, k, s)
    rows = summary_rows(w.summary.value)
    for p in ("first", "all", "split"):
        assert w.mass[p] == pytest.approx(masses[p], abs=1e-9)
        mass_text, cmp_text = rows[LABELS[p]]
        assert mass_text == str(int(round(masses[p])))
        expected = "= sum(dY)" if abs(masses[p] - masses["dY"]) < 1e-9 else "&gt; sum(dY)"
        assert cmp_text == expected, (p, cmp_text)
    assert f"vs sum(dY) = {int(masses['dY'])}" in w.summary.value
    # first and split conserve the mass; all exceeds it exactly when some window ties (dY > 0)
    any_tie = any(len(c) > 1 for c in winners.values())
    assert (masses["all"] > masses["dY"]) == any_tie
    counts = np.array([[len(winners[i, j]) for j in range(Wo)] for i in range(Ho)])
    np.testing.assert_array_equal(w.counts, counts)
    ntied = int((counts > 1).sum())
    assert f"{ntied} of {Ho * Wo} windows have a tied maximum" in w.summary.value
    # cells winning several windows (under "first")
    wins = np.zeros_like(x, dtype=int)
    for cells in winners.values():
        wins[cells[0]] += 1
    assert f"{int((wins > 1).sum())} cells win more than one window" in w.summary.value
    # naive expansion
    defined = s == k and n % k == 0
    assert w.naive_ok == defined
    if defined:
        assert LABELS["naive"] in rows
        np.testing.assert_allclose(w.naive[2], dx["all"], atol=1e-12)  # the naive mask is "all"
    else:
        assert LABELS["naive"] not in rows
        assert "undefined" in w.message and f"{Ho * k}×{Wo * k}" in w.message
    if w.policy.value == "naive":
        if defined:
            np.testing.assert_allclose(w.dx, dx["all"])
        else:
            assert w.dx is None and "undefined" in w.summary.value
    else:
        np.testing.assert_allclose(w.dx, dx[w.policy.value], atol=1e-12)
    return x, winners


# ---------------------------------------------------------------------------
# Tests
# ---------------------------------------------------------------------------

@pytest.fixture
def w():
    ex = ExpansionExplorer(render=False)
    yield ex
    plt.close("all")


def test_default_state_has_ties_and_matches_the_loops(w):
    x, winners = check_state(w)
    assert (w.size.value, w.window.value, w.stride.value) == (4, 2, 2)
    assert any(len(c) > 1 for c in winners.values()), "the default should show ties"
    assert w.mass["all"] > w.mass["dY"]


def test_hand_worked_tie_example():
    """A 4x4 input whose windows hold a 3-way tie, a 2-way tie, a unique max and a 4-way tie."""
    x = np.array([[3, 3, 2, 5], [1, 3, 5, 0], [4, 0, 0, 0], [2, 1, 0, 0]], float)
    dout = np.array([[1, 2], [3, 4]], float)
    np.testing.assert_array_equal(window_max_counts(x, 2, 2), [[3, 2], [1, 4]])
    m = ref_masses(x, dout, 2, 2)
    assert (m["first"], m["split"], m["all"]) == (10, 10, 1 * 3 + 2 * 2 + 3 * 1 + 4 * 4)
    expanded, mask, dx = naive_expansion(x, dout, 2)
    assert expanded.shape == (4, 4) and mask.sum() == 3 + 2 + 1 + 4
    assert dx.sum() == 26


def test_controls_recompute_the_state(w):
    w.vmax.value = 1          # values in {0, 1}: ties everywhere
    check_state(w)
    assert (w.counts > 1).any()
    w.stride.value = 1        # overlapping windows
    x, winners = check_state(w)
    assert w.overlap and not w.naive_ok
    w.policy.value = "naive"
    check_state(w)
    assert w.dx is None
    assert "the windows overlap (stride 1 ≠ window 2)" in w.message
    w.stride.value = 2
    check_state(w)
    np.testing.assert_allclose(w.dx, w.grads["all"])
    w.size.value = 5          # 5 is not divisible by 2
    check_state(w)
    assert "not divisible" in w.message
    w.window.value = 3
    w.stride.value = 3
    w.size.value = 6
    check_state(w)
    assert w.naive_ok
    w.upstream.value = "ones"
    check_state(w)
    assert w.mass["dY"] == 4


def test_new_values_button_changes_the_seed(w):
    before = w.x.copy()
    seed = w.seed.value
    w.new_values.click()
    assert w.seed.value == seed + 1
    check_state(w)
    assert not np.array_equal(before, w.x)


def test_large_vmax_without_ties_all_policies_agree(w):
    w.vmax.value = 20
    found = False
    for seed in range(40):
        w.seed.value = seed
        if (w.counts == 1).all():
            found = True
            check_state(w)
            assert w.mass["all"] == w.mass["first"] == w.mass["split"] == w.mass["dY"]
            np.testing.assert_array_equal(w.grads["first"], w.grads["all"])
            break
    assert found


def _edge_count(ax, color):
    rgba = mcolors.to_rgba(color)
    return sum(1 for p in ax.patches if isinstance(p, Rectangle) and np.allclose(p.get_edgecolor(), rgba))


def test_figure_marks_ties_and_titles_the_masses(w):
    w.vmax.value = 2
    x, winners = check_state(w)
    tied, unique = np.zeros(x.shape, bool), np.zeros(x.shape, bool)
    for cells in winners.values():
        for rc in cells:
            (tied if len(cells) > 1 else unique)[rc] = True
    unique &= ~tied
    fig = w.figure()
    axes = fig.axes
    assert _edge_count(axes[0], ACCENT) == tied.sum()
    assert _edge_count(axes[0], HIGHLIGHT) == unique.sum()
    titles = [ax.get_title() for ax in axes]
    masses = ref_masses(x, w.dout, w.window.value, w.stride.value)
    assert len(axes) == 5  # x, dY and the three policies (show_all is on by default)
    for p in ("first", "all", "split"):
        assert any(t.startswith(f"dX {p}") and t.endswith(f"sum = {int(round(masses[p]))}") for t in titles), titles
    plt.close(fig)
    w.show_all.value = False
    w.policy.value = "split"
    fig = w.figure()
    assert len(fig.axes) == 3 and fig.axes[2].get_title().startswith("dX split")
    plt.close(fig)
    w.policy.value = "naive"
    fig = w.figure()
    assert [ax.get_title().split(" ")[0] for ax in fig.axes] == ["input", "dY", "expand(dY)", "mask", "dX"]
    plt.close(fig)


def test_render_draws_into_the_output_widget():
    ex = ExpansionExplorer(render=False)
    assert ex.show() is ex.widget and ex.render
    ex.stride.value = 1          # redraws without raising
    check_state(ex)
    plt.close("all")


SIZES = range(4, 9)
WINDOWS = (2, 3)
STRIDES = (1, 2, 3)
VMAX = (1, 10, 20)
UPSTREAM = ("ones", "random")
POLICIES = ("first", "all", "split", "naive")


def test_every_combination_of_the_discrete_controls():
    """State and summary for every combination (sliders at their extremes and middle)."""
    ex = ExpansionExplorer(render=False)
    for n, k, s, v, up, pol, show in itertools.product(SIZES, WINDOWS, STRIDES, VMAX, UPSTREAM, POLICIES,
                                                       (False, True)):
        ex.size.value, ex.window.value, ex.stride.value, ex.vmax.value = n, k, s, v
        ex.upstream.value, ex.policy.value, ex.show_all.value = up, pol, show
        check_state(ex)


def test_every_geometry_and_policy_draws():
    """The figure for every window, stride and policy (values with many ties), on a 6x6 input
    (divisible by 2 and 3: the naive expansion is defined for both windows) and an 8x8 one (the
    largest; not divisible by 3).  Drawing is the slow part, so the sizes in between are left to
    the state sweep above; show_all alternates with the stride."""
    ex = ExpansionExplorer(render=False, vmax=1)
    for n, k, s, pol in itertools.product((6, 8), WINDOWS, STRIDES, POLICIES):
        ex.size.value, ex.window.value, ex.stride.value, ex.policy.value = n, k, s, pol
        ex.show_all.value = s != 2
        fig = ex.figure()
        if pol == "naive":
            expected = 5 if ex.naive_ok else 3
        else:
            expected = 5 if ex.show_all.value else 3
        assert len(fig.axes) == expected
        plt.close(fig)


def test_chapter_figures():
    x = np.array([[3, -1, 7, 2], [5, 0, -4, 6], [-2, 8, 1, -3], [4, -5, 9, 10]], float)
    fig = expansion_figure(x, np.array([[1, 2], [3, 4]], float))
    assert len(fig.axes) == 5
    assert {t.get_text() for t in fig.texts} == {"→", "⊙", "="}
    plt.close(fig)
    fig = overlap_figure(x, np.arange(1, 10, dtype=float).reshape(3, 3), 2, 1)
    assert "sum = 45" in fig.axes[3].get_title()
    assert "sum = 45" not in fig.axes[4].get_title()  # the '=' bug loses gradient
    plt.close(fig)
    xt = np.array([[3, 3, 2, 5], [1, 3, 5, 0], [4, 0, 0, 0], [2, 1, 0, 0]], float)
    fig = ties_figure(xt, np.array([[1, 2], [3, 4]], float))
    titles = [ax.get_title() for ax in fig.axes]
    assert titles[2].endswith("sum = 10") and titles[3].endswith("sum = 26") and titles[4].endswith("sum = 10")
    plt.close(fig)
