"""The gradient-check exercise: check_numerical_gradient passes central differences written
several ways, rejects the classic mistakes with a hint drawn from where f was evaluated (or from
what x looks like afterwards), and the functions around it (relative_error, suspect_layers) do
what their docstrings say.

The implementations here are written from the definition, the way a learner would, without
looking at the checker's battery.
"""
from __future__ import annotations

import numpy as np
import pytest

import mlp_cnn_core as core
import mlp_cnn_exercises as ex
from mlp_cnn_exercises import check_numerical_gradient, relative_error, suspect_layers

# ---------------------------------------------------------------------------
# Correct gradient checks, written four ways
# ---------------------------------------------------------------------------

def each_entry_moved(f, x, eps, indices=lambda x: np.ndindex(x.shape), view=lambda a: a,
                     slope=lambda fp, fm, eps: (fp - fm) / (2 * eps)):
    """The loop most gradient checks below are written around: for each index of ``indices(x)``,
    move that entry of ``view(x)`` by +eps and by -eps, evaluate f each time, put the entry back,
    and store ``slope(fp, fm, eps)`` at that index of ``view(grad)``.  A variant changes one of
    the three; with none changed it is the chapter's reference solution."""
    grad = np.zeros(x.shape)
    moved, slopes = view(x), view(grad)
    for idx in indices(x):
        old = np.copy(moved[idx])
        moved[idx] = old + eps
        fp = f(x)
        moved[idx] = old - eps
        fm = f(x)
        moved[idx] = old
        slopes[idx] = slope(fp, fm, eps)
    return grad


def central(f, x, eps=1e-6):
    """The reference solution of the chapter: move one entry, evaluate twice, put it back."""
    return each_entry_moved(f, x, eps)


def central_on_copies(f, x, eps=1e-6):
    grad = np.empty_like(x, dtype=float)
    for i in range(x.size):
        xp, xm = x.copy(), x.copy()
        xp.flat[i] += eps
        xm.flat[i] -= eps
        grad.flat[i] = (f(xp) - f(xm)) / (2 * eps)
    return grad


def central_nditer(f, x, eps=1e-6):
    """Each entry moved through the iterator's own view of it."""
    grad = np.zeros_like(x)
    with np.nditer(x, flags=["multi_index"], op_flags=["readwrite"]) as entries:
        for entry in entries:
            old = entry.copy()
            entry[...] = old + eps
            fp = f(x)
            entry[...] = old - eps
            fm = f(x)
            entry[...] = old
            grad[entries.multi_index] = (fp - fm) / (2 * eps)
    return grad


def central_flat(f, x, eps=1e-6):
    return each_entry_moved(f, x, eps, indices=lambda x: range(x.size), view=lambda a: a.flat)


@pytest.mark.parametrize("fn", [central, central_on_copies, central_nditer, central_flat],
                         ids=lambda f: f.__name__)
def test_correct_gradient_checks_pass(fn, capsys):
    summary = check_numerical_gradient(fn)
    assert " ".join(summary.split()) == ("check_numerical_gradient: 5 cases passed — a vector (3,), a matrix (2, 3), "
                       "three axes (2, 2, 3), eps = 1e-3, a non-contiguous x")
    assert capsys.readouterr().out == summary.lines() + "\n"


def test_an_unfilled_stub_returns_none(capsys):
    def numerical_gradient(f, x, eps=1e-6):
        raise NotImplementedError("your turn")
    assert check_numerical_gradient(numerical_gradient) is None
    assert "not implemented yet: fill in numerical_gradient" in capsys.readouterr().out


# ---------------------------------------------------------------------------
# The classic mistakes
# ---------------------------------------------------------------------------

def forward_difference(f, x, eps=1e-6):
    grad = np.zeros(x.shape)
    f0 = f(x)
    for idx in np.ndindex(x.shape):
        old = x[idx]
        x[idx] = old + eps
        grad[idx] = (f(x) - f0) / eps
        x[idx] = old
    return grad


def backward_difference(f, x, eps=1e-6):
    """(f(x) - f(x - eps e_i)) / eps: the forward difference with the step -eps."""
    return forward_difference(f, x, -eps)


def divided_by_eps(f, x, eps=1e-6):
    return each_entry_moved(f, x, eps, slope=lambda fp, fm, eps: (fp - fm) / eps)


def precedence(f, x, eps=1e-6):
    return each_entry_moved(f, x, eps, slope=lambda fp, fm, eps: (fp - fm) / 2 * eps)


def moved_by_steps(f, x, eps, restore):
    """Each entry moved by += eps and -= 2 eps, and put back by ``+= eps`` or not at all."""
    grad = np.zeros(x.shape)
    for idx in np.ndindex(x.shape):
        x[idx] += eps
        fp = f(x)
        x[idx] -= 2 * eps
        fm = f(x)
        if restore:
            x[idx] += eps
        grad[idx] = (fp - fm) / (2 * eps)
    return grad


def never_restored(f, x, eps=1e-6):
    return moved_by_steps(f, x, eps, restore=False)


def restored_by_arithmetic(f, x, eps=1e-6):
    return moved_by_steps(f, x, eps, restore=True)


def restored_at_the_end(f, x, eps=1e-6):
    saved = x.copy()
    grad = never_restored(f, x, eps)
    x[...] = saved
    return grad


def first_axis_only(f, x, eps=1e-6):
    """for i in range(len(x)) on a matrix: x[i] is a whole row."""
    return each_entry_moved(f, x, eps, indices=lambda x: range(len(x)))


def flat_up_to_len(f, x, eps=1e-6):
    return each_entry_moved(f, x, eps, indices=lambda x: range(len(x)), view=lambda a: a.flat)


def aliased(f, x, eps=1e-6):
    grad = np.zeros(x.shape)
    for idx in np.ndindex(x.shape):
        x_plus = x
        x_plus[idx] += eps
        x_minus = x
        x_minus[idx] -= eps
        grad[idx] = (f(x_plus) - f(x_minus)) / (2 * eps)
    return grad


def via_reshape(f, x, eps=1e-6):
    # x.reshape(-1) is a view of x... when x is contiguous
    return each_entry_moved(f, x, eps, indices=lambda x: range(x.size), view=lambda a: a.reshape(-1))


def all_at_once(f, x, eps=1e-6):
    slope = (f(x + eps) - f(x - eps)) / (2 * eps)
    return np.full(x.shape, slope)


def written_to_a_copy(f, x, eps=1e-6):
    grad = np.zeros(x.shape)
    for i in range(x.size):
        xp, xm = x.copy(), x.copy()
        xp.flat[i] += eps
        xm.flat[i] -= eps
        grad.flatten()[i] = (f(xp) - f(xm)) / (2 * eps)
    return grad


def flattened_point(f, x, eps=1e-6):
    v = x.ravel().copy()
    grad = np.zeros(v.size)
    for i in range(v.size):
        vp, vm = v.copy(), v.copy()
        vp[i] += eps
        vm[i] -= eps
        grad[i] = (f(vp) - f(vm)) / (2 * eps)
    return grad.reshape(x.shape)


def sign_flipped(f, x, eps=1e-6):
    return -central(f, x, eps)


def transposed_result(f, x, eps=1e-6):
    return central(f, x, eps).T if x.ndim == 2 else central(f, x, eps)


def returns_x(f, x, eps=1e-6):
    g = central(f, x, eps)
    x[...] = g
    return x


ZOO = {
    "one-sided forward": (forward_difference, "case 1 of 5", "f was evaluated at x + eps*e_i and at x but never at "
                          "x - eps*e_i: a one-sided difference"),
    "one-sided backward": (backward_difference, "case 1 of 5", "f was evaluated at x - eps*e_i and at x but never at "
                           "x + eps*e_i: a one-sided difference"),
    "eps instead of 2 eps": (divided_by_eps, "case 1 of 5", "divide by 2*eps, not by eps"),
    "operator precedence": (precedence, "case 1 of 5", "Python reads it as ((fp - fm) / 2) * eps"),
    "x never restored": (never_restored, "case 1 of 5", "is still moved by -1e-06 (3 entries not put back)"),
    "restored by arithmetic": (restored_by_arithmetic, "case 1 of 5", "putting it back by arithmetic"),
    "restored only at the end": (restored_at_the_end, "case 1 of 5", "an entry was not put back before the next"),
    "for i in range(len(x)) on a matrix": (first_axis_only, "case 2 of 5", "x[i] is a whole slice"),
    "x.flat[i] for i in range(len(x))": (flat_up_to_len, "case 2 of 5", "only 2 of the 6 entries of x were"),
    "x_plus = x (no copy)": (aliased, "case 1 of 5", "always at x itself"),
    "x.reshape(-1) of a non-contiguous x": (via_reshape, "case 5 of 5", "this x is not C-contiguous"),
    "every entry moved at once": (all_at_once, "case 1 of 5", "every entry of x moved at once"),
    "slopes written into grad.flatten()": (written_to_a_copy, "case 1 of 5", "all zeros although f saw every entry"),
    "f called with a flattened x": (flattened_point, "case 2 of 5", "call f with an array of x's shape"),
    "sign flipped": (sign_flipped, "case 1 of 5", "the wrong sign"),
    "transposed result": (transposed_result, "case 2 of 5", "Its last two axes are swapped"),
    "the gradient written into x": (returns_x, "case 1 of 5", "changed its input x in place"),
}


@pytest.mark.parametrize("bug", list(ZOO))
def test_the_gradcheck_zoo_is_rejected_with_a_true_hint(bug):
    fn, case, hint = ZOO[bug]
    with pytest.raises(AssertionError) as info:
        check_numerical_gradient(fn)
    message = str(info.value)
    lines = message.splitlines()
    assert lines[0].startswith(f"check_numerical_gradient failed on {case}: "), message
    assert lines[1].startswith(f"  called {fn.__name__}(f, x shape "), message
    assert lines[-1].startswith("Hint: ") and hint in message, message


def test_a_one_sided_difference_fails_with_room_to_spare():
    """The tolerance (1e-7) sits well between central differences (rounding, ~1e-9 here) and
    the one-sided error eps/2 * f'' (at least 1.5e-6, f'' >= 3 on every case)."""
    for case in ex._GRADCHECK.cases:
        x, f, eps = case.inputs["x"], case.inputs["f"], case.inputs["eps"]
        exact = f.gradient(x)
        err_central = np.abs(central(f, x.copy(), eps) - exact).max()
        err_forward = np.abs(forward_difference(f, x.copy(), eps) - exact).max()
        assert err_central < ex._GRADCHECK.atol / 10, case.name
        assert err_forward > 10 * ex._GRADCHECK.atol, case.name


def test_the_report_shows_the_point_and_both_gradients():
    with pytest.raises(AssertionError) as info:
        check_numerical_gradient(divided_by_eps)
    message = str(info.value)
    case = ex._GRADCHECK.cases[0]
    exact = case.inputs["f"].gradient(case.inputs["x"])
    assert f"grad[0]: expected {exact[0]:.10g}, got " in message
    assert "x =" in message and "expected grad =" in message and "your grad =" in message
    assert "called divided_by_eps(f, x shape (3,), eps=1e-06)" in message


def test_the_battery_holds_what_it_claims():
    cases = ex._GRADCHECK.cases
    assert [c.inputs["x"].shape for c in cases] == [(3,), (2, 3), (2, 2, 3), (2, 3), (3, 2)]
    assert not cases[-1].inputs["x"].flags.c_contiguous
    assert not ex._copy_inputs(cases[-1])["x"].flags.c_contiguous  # the learner gets it that way too
    for case in cases:
        f, x = case.inputs["f"], case.inputs["x"]
        assert np.allclose(central(f, x.copy(), case.inputs["eps"]), f.gradient(x), atol=1e-7)
        assert (np.diag(f.A) + 6 * f.c * np.minimum(x.ravel(), 0) >= 3).all()   # f'' >= 3
        assert (f.A[~np.eye(x.size, dtype=bool)] > 0).all()  # every slope depends on every entry


# ---------------------------------------------------------------------------
# relative_error and suspect_layers
# ---------------------------------------------------------------------------

def test_relative_error():
    assert relative_error(np.ones(3), np.ones(3)) == 0.0
    assert relative_error([1.0, 0.0], [1.0, 2.0]) == 1.0
    assert relative_error(np.array([1.0]), np.array([1.0 + 1e-8])) == pytest.approx(5e-9, rel=1e-6)
    assert relative_error(np.zeros(2), np.zeros(2)) == 0.0
    assert np.isnan(relative_error([np.nan], [1.0]))
    with pytest.raises(ValueError, match=r"same shape, got \(2,\) and \(3,\)"):
        relative_error(np.zeros(2), np.zeros(3))


def test_suspect_layers_hold_exactly_one_planted_bug_a_gradient_check_finds():
    rng = np.random.default_rng(0)
    verdicts = {}
    for layer in suspect_layers():
        x = rng.standard_normal(layer.input_shape)
        out = layer.forward(x)
        dout = rng.standard_normal(out.shape)
        dx = layer.backward(dout, x)
        assert dx.shape == x.shape
        numeric = central(lambda v: float(np.sum(dout * layer.forward(v))), x.copy())
        verdicts[layer.name] = relative_error(dx, numeric)
    bad = [name for name, err in verdicts.items() if err > 1e-5]
    assert bad == ["max pooling 3×3, stride 2, padding 1"], verdicts
    assert all(err < 1e-6 for name, err in verdicts.items() if name not in bad), verdicts


def test_the_planted_bug_hides_where_no_cell_wins_two_windows():
    """Without a double winner (here: x increasing along each row and column, so each window's
    winner is its own bottom-right cell) the planted bug gives the right gradient: a check
    needs a random point."""
    layer = suspect_layers()[1]
    x = np.add.outer(np.arange(7.0), np.arange(7.0))[None, None] * np.ones(layer.input_shape)
    x = x + 0.01 * np.arange(x.size).reshape(x.shape)           # no ties
    dout = np.random.default_rng(1).standard_normal(layer.forward(x).shape)
    right = core.maxpool2d_backward(dout, core.maxpool2d_forward(x, 3, 2, 1)[1])
    assert np.allclose(layer.backward(dout, x), right)


def test_the_planted_bug_is_the_winner_assignment_bug():
    layer = suspect_layers()[1]
    rng = np.random.default_rng(3)
    for _ in range(3):
        x = rng.standard_normal(layer.input_shape)
        dout = rng.standard_normal(layer.forward(x).shape)
        assert np.array_equal(layer.backward(dout, x), ex._maxpool_loop(dout, x, 3, 2, 1, update="winner")[0])


def test_a_network_with_the_planted_bug_trains_like_the_correct_one():
    import mlp_cnn_train as tr
    from cnnviz.training import load_digits_split
    data = load_digits_split(0)
    planted = suspect_layers()[1]

    class PlantedPool(tr.MaxPool2D):
        def forward(self, x):
            self.x = x
            return super().forward(x)

        def backward(self, dout):
            return planted.backward(dout, self.x)

    losses = {}
    for pool in (tr.MaxPool2D, PlantedPool):
        rng = np.random.default_rng(0)
        model = tr.Sequential(tr.Conv2D(1, 8, 3, padding=1, rng=rng), tr.ReLU(), pool(3, 2, 1), tr.Flatten(),
                              tr.Dense(8 * 4 * 4, 10, rng=rng))
        history = tr.train_classifier(model, data.x_train[:400], data.y_train[:400], epochs=12,
                                      optimizer=tr.Adam(model, lr=0.01))
        losses[pool] = history["loss"]
    right, buggy = losses[tr.MaxPool2D], losses[PlantedPool]
    assert buggy[-1] < buggy[0] / 10                       # it trains ...
    assert abs(buggy[-1] - right[-1]) < 0.2 * right[-1]    # ... as well as the correct network
