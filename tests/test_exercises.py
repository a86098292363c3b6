"""The exercise checkers: they pass correct implementations written here (loops, a vectorised
one, and the core wrapped), reject a zoo of classic bugs with a message that names the failing
case and a hint that names the bug, and behave on unfilled stubs and bad arguments.

The correct implementations below are written from the definitions, independently of the
checkers; each bug is one knob turned on them.
"""
from __future__ import annotations

import importlib.util
import sys
from functools import partial

import numpy as np
import pytest

import mlp_cnn_core as core
import mlp_cnn_exercises as ex
from mlp_cnn_exercises import (check_avgpool_backward, check_conv_backward, check_maxpool_backward,
                               check_maxpool_forward, check_relu_backward, check_softmax_cross_entropy)

CHECKERS = (check_relu_backward, check_maxpool_forward, check_maxpool_backward,
            check_avgpool_backward, check_conv_backward, check_softmax_cross_entropy)


# ---------------------------------------------------------------------------
# Correct implementations, with knobs that turn them into the classic bugs
# ---------------------------------------------------------------------------

def windows(dout_shape, k_hw, stride, offset=0):
    """Every window (i, j) of the padded input as (i, j, row slice, column slice)
    (``offset`` shifts them: the "padding ignored" bug)."""
    kh, kw = k_hw
    for i in range(dout_shape[-2]):
        for j in range(dout_shape[-1]):
            r, c = i * stride + offset, j * stride + offset
            yield i, j, slice(r, r + kh), slice(c, c + kw)


def pad(x, p, value):
    return np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)), constant_values=value)


def crop(a, p, shape):
    return a[..., p:p + shape[-2], p:p + shape[-1]]


def relu_backward(dout, x, zero_passes=False):
    return dout * ((x >= 0) if zero_passes else (x > 0))


def maxpool_forward(x, k, s, p, pad_value=-np.inf, use_stride=True, use_padding=True):
    N, C, H, W = x.shape
    Ho, Wo = (H + 2 * p - k) // s + 1, (W + 2 * p - k) // s + 1
    xp = pad(x, p, pad_value)
    out = np.empty((N, C, Ho, Wo))
    offset = 0 if use_padding else p  # "padding ignored": windows start p cells too far
    for i, j, rows, cols in windows(out.shape, (k, k), s if use_stride else 1, offset):
        out[:, :, i, j] = xp[:, :, rows, cols].max(axis=(2, 3))
    return out


def maxpool_backward(dout, x, k, s, p, ties="first", accumulate=True, pad_value=-np.inf,
                     use_stride=True, use_padding=True, assign_slice=False):
    N, C, H, W = x.shape
    xp = pad(x, p, pad_value)
    dxp = np.zeros_like(xp)
    offset = 0 if use_padding else p  # "padding ignored": windows start p cells too far
    for n in range(N):
        for c in range(C):
            for i, j, rows, cols in windows(dout.shape, (k, k), s if use_stride else 1, offset):
                win = xp[n, c, rows, cols]
                if ties == "first":
                    mask = np.zeros(win.shape)
                    mask[np.unravel_index(np.argmax(win), win.shape)] = 1
                else:  # the naive mask
                    mask = (win == win.max()).astype(float)
                g = mask * dout[n, c, i, j]
                if assign_slice:
                    dxp[n, c, rows, cols] = g
                elif accumulate:
                    dxp[n, c, rows, cols] += g
                else:  # `=` at the winner only
                    dxp[n, c, rows, cols][mask == 1] = g[mask == 1]
    return crop(dxp, p, x.shape)


def maxpool_backward_vectorised(dout, x, k, s, p, add_at=True):
    """Window views, one argmax over each window, np.add.at to scatter (the chapter 10 way);
    ``add_at=False`` is the fancy-indexed ``+=``, which keeps one of several repeated cells."""
    N, C, H, W = x.shape
    xp = pad(x, p, -np.inf)
    view = np.lib.stride_tricks.sliding_window_view(xp, (k, k), axis=(2, 3))[:, :, ::s, ::s]
    Ho, Wo = dout.shape[2:]
    flat = view[:, :, :Ho, :Wo].reshape(N, C, Ho, Wo, k * k)
    arg = flat.argmax(axis=-1)
    n, c, i, j = np.indices((N, C, Ho, Wo))
    dxp = np.zeros_like(xp)
    cells = (n, c, i * s + arg // k, j * s + arg % k)
    if add_at:
        np.add.at(dxp, cells, dout)
    else:
        dxp[cells] += dout
    return crop(dxp, p, x.shape)


def avgpool_backward(dout, x, k, s, p, include_pad=True, accumulate=True, use_stride=True):
    N, C, H, W = x.shape
    dxp = np.zeros((N, C, H + 2 * p, W + 2 * p))
    real = pad(np.ones_like(x), p, 0)
    for i, j, rows, cols in windows(dout.shape, (k, k), s if use_stride else 1):
        count = k * k if include_pad else real[:, :, rows, cols].sum(axis=(2, 3), keepdims=True)
        share = dout[:, :, i, j][:, :, None, None] / count * np.ones((k, k))
        if accumulate:
            dxp[:, :, rows, cols] += share
        else:
            dxp[:, :, rows, cols] = share
    return crop(dxp, p, x.shape)


def conv_backward(dout, x, w, s, p, batch="sum", use_stride=True, db_mean=False):
    """Loops over windows: dx[window] += w * dout, dw += x[window] * dout, db = sum of dout."""
    F, C, kh, kw = w.shape
    xp = pad(x, p, 0)
    dxp, dw = np.zeros_like(xp), np.zeros_like(w)
    images = {"sum": range(x.shape[0]), "first": [0], "last": [x.shape[0] - 1]}[batch]
    for n in range(x.shape[0]):
        for f in range(F):
            for i, j, rows, cols in windows(dout.shape, (kh, kw), s if use_stride else 1):
                dxp[n, :, rows, cols] += w[f] * dout[n, f, i, j]
                if n in images:
                    dw[f] += xp[n, :, rows, cols] * dout[n, f, i, j]
    db = dout[list(images)].sum(axis=(0, 2, 3))
    if db_mean:
        db = dout.mean(axis=(0, 2, 3))
    return crop(dxp, p, x.shape), dw, db


def conv_dx_rotated(dout, x, w, s, p, kernel=lambda w: w[..., ::-1, ::-1]):
    """dx as a full correlation of the stride-dilated dout with the turned kernel."""
    N, C, H, W = x.shape
    F, _, kh, kw = w.shape
    Ho, Wo = dout.shape[2:]
    d = np.zeros((N, F, (Ho - 1) * s + 1, (Wo - 1) * s + 1))
    d[:, :, ::s, ::s] = dout
    Hp, Wp = H + 2 * p, W + 2 * p
    full = np.zeros((N, F, Hp + kh - 1, Wp + kw - 1))
    full[:, :, kh - 1:kh - 1 + d.shape[2], kw - 1:kw - 1 + d.shape[3]] = d
    turned = kernel(w)
    dxp = np.zeros((N, C, Hp, Wp))
    for a in range(turned.shape[2]):
        for b in range(turned.shape[3]):
            dxp += np.einsum("nfhw,fc->nchw", full[:, :, a:a + Hp, b:b + Wp], turned[:, :, a, b])
    _, dw, db = conv_backward(dout, x, w, s, p)
    return crop(dxp, p, x.shape), dw, db


def softmax_ce(logits, labels, shift="row", divisions=1, one_hot=True):
    N = logits.shape[0]
    m = {"row": logits.max(axis=1, keepdims=True), "global": logits.max(), "none": 0.0}[shift]
    z = logits - m
    with np.errstate(all="ignore"):
        log_p = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
        p = np.exp(log_p) if shift == "row" else np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    rows = np.arange(N)
    loss = -log_p[rows, labels].sum() / N ** divisions
    d = p.copy()
    if one_hot:
        d[rows, labels] -= 1
    return loss, d / N ** divisions


# the core, wrapped to the exercises' signatures
def core_relu(dout, x):
    return core.relu_backward(dout, core.relu_forward(x)[1])


def core_maxpool_forward(x, k, s, p):
    return core.maxpool2d_forward(x, k, s, p)[0]


def core_maxpool_backward(dout, x, k, s, p):
    return core.maxpool2d_backward(dout, core.maxpool2d_forward(x, k, s, p)[1])


def core_avgpool_backward(dout, x, k, s, p):
    return core.avgpool2d_backward(dout, core.avgpool2d_forward(x, k, s, p)[1])


def core_conv_backward(dout, x, w, s, p):
    return core.conv2d_backward(dout, core.conv2d_forward(x, w, None, s, p)[1])


CORRECT = [
    (check_relu_backward, relu_backward),
    (check_relu_backward, core_relu),
    (check_maxpool_forward, maxpool_forward),
    (check_maxpool_forward, core_maxpool_forward),
    (check_maxpool_backward, maxpool_backward),
    (check_maxpool_backward, maxpool_backward_vectorised),
    (check_maxpool_backward, core_maxpool_backward),
    (check_avgpool_backward, avgpool_backward),
    (check_avgpool_backward, core_avgpool_backward),
    (check_conv_backward, conv_backward),
    (check_conv_backward, conv_dx_rotated),
    (check_conv_backward, core_conv_backward),
    (check_softmax_cross_entropy, softmax_ce),
    (check_softmax_cross_entropy, core.softmax_cross_entropy),
]


@pytest.mark.parametrize("checker, fn", CORRECT, ids=lambda v: getattr(v, "__name__", ""))
def test_correct_implementations_pass_with_a_summary(checker, fn, capsys):
    summary = checker(fn)
    printed = capsys.readouterr().out
    assert printed == summary + "\n"
    assert summary.startswith(f"{checker.__name__}: ")
    assert " cases passed — " in summary


def test_summaries_name_what_was_tried(capsys):
    assert check_maxpool_backward(maxpool_backward) == (
        "check_maxpool_backward: 12 cases passed — 2×2 stride 2, ties, overlapping windows (3×3 stride 1), "
        "overlap with ties, padding with all-negative inputs, padding with ties, sizes not divisible by the "
        "stride, stride larger than the kernel, 3×3 stride 2, batches and channels, non-square inputs, "
        "random floats")
    assert "inputs exactly 0" in check_relu_backward(relu_backward)
    assert "padding (count_include_pad=True)" in check_avgpool_backward(avgpool_backward)
    assert "asymmetric kernel (rot180 ≠ transpose)" in check_conv_backward(conv_backward)
    assert "F ≠ C" in check_conv_backward(conv_backward)
    assert "logits of ±1000" in check_softmax_cross_entropy(softmax_ce)


# ---------------------------------------------------------------------------
# The bug zoo: (checker, wrong function, the case it must fail on, a word of the hint)
# ---------------------------------------------------------------------------

def assign_not_add(dout, x, k, s, p):
    return maxpool_backward(dout, x, k, s, p, accumulate=False)


ZOO = {
    "relu: ReLU'(0) = 1": (check_relu_backward, partial(relu_backward, zero_passes=True),
                          "inputs exactly 0", "x > 0, not x >= 0"),
    "relu: mask without dout": (check_relu_backward, lambda dout, x: (x > 0).astype(float),
                                "positive and negative inputs", "multiply by the upstream gradient"),
    "relu: mask from dout": (check_relu_backward, lambda dout, x: np.where(dout > 0, dout, 0.0),
                             "positive and negative inputs", "not from the sign of dout"),
    "relu: float32": (check_relu_backward, lambda dout, x: relu_backward(dout, x).astype(np.float32),
                      "positive and negative inputs", "dtype float32: compute in float64"),
    "maxpool fwd: zero padding": (check_maxpool_forward, partial(maxpool_forward, pad_value=0.0),
                                  "padding 1 around an all-negative", "-inf"),
    "maxpool fwd: padding ignored": (check_maxpool_forward, partial(maxpool_forward, use_padding=False),
                                     "padding 1 around an all-negative", "padding ignored"),
    "maxpool fwd: stride forgotten": (check_maxpool_forward, partial(maxpool_forward, use_stride=False),
                                      "2×2 windows, stride 2", "stride forgotten"),
    "maxpool: naive tie mask": (check_maxpool_backward, partial(maxpool_backward, ties="all"),
                                "ties: every 2×2 window", "x == max"),
    "maxpool: = instead of +=": (check_maxpool_backward, assign_not_add,
                                 "3×3 windows, stride 1: cell (1, 2) wins all four windows", "+="),
    "maxpool: = on the window slice": (check_maxpool_backward, partial(maxpool_backward, assign_slice=True),
                                       "cell (1, 2) wins all four windows", "+="),
    "maxpool: fancy-indexed +=": (check_maxpool_backward, partial(maxpool_backward_vectorised, add_at=False),
                                  "cell (1, 2) wins all four windows", "np.add.at"),
    "maxpool: float32": (check_maxpool_backward,
                         lambda *a: maxpool_backward(*a).astype(np.float32),
                         "2×2 windows, stride 2, no ties", "dtype float32"),
    "maxpool: integer dx": (check_maxpool_backward,
                            lambda *a: maxpool_backward(*a).astype(int),
                            "2×2 windows, stride 2, no ties", "dtype int64"),
    "maxpool: zero padding": (check_maxpool_backward, partial(maxpool_backward, pad_value=0.0),
                              "padding 1 around an all-negative", "-inf"),
    "maxpool: padding ignored": (check_maxpool_backward, partial(maxpool_backward, use_padding=False),
                                 "padding 1 around an all-negative", "padding ignored"),
    "maxpool: stride forgotten": (check_maxpool_backward, partial(maxpool_backward, use_stride=False),
                                  "2×2 windows, stride 2", "stride forgotten"),
    "avgpool: count_exclude_pad": (check_avgpool_backward, partial(avgpool_backward, include_pad=False),
                                   "padding 1 around a 3×3 input", "count_include_pad=True"),
    "avgpool: = instead of +=": (check_avgpool_backward, partial(avgpool_backward, accumulate=False),
                                 "the centre cell is in all nine windows", "+="),
    "avgpool: stride forgotten": (check_avgpool_backward, partial(avgpool_backward, use_stride=False),
                                  "2×2 windows, stride 2", "stride forgotten"),
    "avgpool: no division": (check_avgpool_backward,
                             lambda dout, x, k, s, p: avgpool_backward(dout * k * k, x, k, s, p),
                             "2×2 windows, stride 2", "kernel_size**2"),
    "conv: unrotated kernel": (check_conv_backward, partial(conv_dx_rotated, kernel=lambda w: w),
                               "the kernel is asymmetric", "not rotated"),
    "conv: transposed kernel": (check_conv_backward,
                                partial(conv_dx_rotated, kernel=lambda w: w.swapaxes(-1, -2)),
                                "the kernel is asymmetric", "rot180(w) is not the transpose"),
    "conv: stride forgotten": (check_conv_backward, partial(conv_backward, use_stride=False),
                               "stride 2 on a 7×6 input", "stride forgotten"),
    "conv: dw, db from the last image": (check_conv_backward, partial(conv_backward, batch="last"),
                                         "batch of 3", "batch"),
    "conv: dw, db from the first image": (check_conv_backward, partial(conv_backward, batch="first"),
                                          "batch of 3", "batch"),
    "conv: db from one image": (check_conv_backward,
                                lambda dout, x, w, s, p: conv_backward(dout, x, w, s, p)[:2] + (
                                    dout[0].sum(axis=(1, 2)),),
                                "batch of 3", "batch"),
    "conv: db a mean": (check_conv_backward, partial(conv_backward, db_mean=True),
                        "one 3×3 kernel", "not their mean"),
    "softmax: missing /N": (check_softmax_cross_entropy, partial(softmax_ce, divisions=0),
                            "batch of 4, 5 classes", "missing /N"),
    "softmax: /N twice": (check_softmax_cross_entropy, partial(softmax_ce, divisions=2),
                          "batch of 4, 5 classes", "/N applied twice"),
    "softmax: no max subtraction": (check_softmax_cross_entropy, partial(softmax_ce, shift="none"),
                                    "logits of ±1000", "no max subtraction"),
    "softmax: global max": (check_softmax_cross_entropy, partial(softmax_ce, shift="global"),
                            "one row near +1000", "not of the whole array"),
    "softmax: no one-hot": (check_softmax_cross_entropy, partial(softmax_ce, one_hot=False),
                            "one example, 3 classes", "subtract 1 at the label"),
}


def failure(checker, fn) -> AssertionError:
    with pytest.raises(AssertionError) as info:
        checker(fn)
    return info.value


@pytest.mark.parametrize("bug", list(ZOO))
def test_the_bug_zoo_is_rejected_with_the_case_and_a_hint(bug):
    checker, fn, case, hint = ZOO[bug]
    message = str(failure(checker, fn))
    first_line, *_, last_line = message.splitlines()
    assert first_line.startswith(f"{checker.__name__} failed on case ")
    assert case in first_line, message
    assert last_line.startswith("Hint: ") and hint in last_line, message
    assert "expected" in message


def test_a_failure_shows_the_first_wrong_cell_and_the_planes():
    message = str(failure(check_maxpool_backward, assign_not_add))
    # the dout of that case is seeded; the four windows' gradients add up at (1, 2)
    case = ex._MAXPOOL_BACKWARD.cases[2]
    dout = case.inputs["dout"][0, 0]
    assert f"dx[0, 0, 1, 2]: expected {dout.sum():g}, got {dout[-1, -1]:g} (1 of 16 values differ)" in message
    assert "x[0, 0] =" in message and "dout[0, 0] =" in message and "expected dx[0, 0] =" in message and "your dx[0, 0] =" in message
    assert "called assign_not_add(dout shape (1, 1, 2, 2), x shape (1, 1, 4, 4), kernel_size=3, stride=1, " \
           "padding=0)" in message


# ---------------------------------------------------------------------------
# Exceptions, wrong results, mutation, stubs, bad arguments
# ---------------------------------------------------------------------------

def test_an_exception_in_the_learners_function_is_reported_and_chained():
    def broken(dout, x, k, s, p):
        raise KeyError("boom")
    err = failure(check_maxpool_backward, broken)
    assert 'case 1 of 12: "2×2 windows, stride 2, no ties' in str(err)
    assert "broken raised KeyError: 'boom'" in str(err)
    assert isinstance(err.__cause__, KeyError)


def test_an_exception_on_a_later_case_names_that_case():
    def no_padding(dout, x, k, s, p):
        if p:
            raise ValueError("padding is not supported")
        return maxpool_backward(dout, x, k, s, p)
    err = failure(check_maxpool_backward, no_padding)
    assert "padding 1 around an all-negative" in str(err) and "ValueError: padding is not supported" in str(err)
    assert isinstance(err.__cause__, ValueError)


def test_a_wrong_shape_is_reported():
    message = str(failure(check_maxpool_backward, lambda dout, x, k, s, p: maxpool_backward(dout, x, k, s, p)[..., 1:]))
    assert "dx has shape (1, 1, 4, 3), expected (1, 1, 4, 4)" in message and "Hint: dx has the shape of x" in message
    message = str(failure(check_conv_backward, lambda *a: conv_backward(*a)[:2] + (conv_backward(*a)[2][None],)))
    assert "db has shape (1, 1), expected (1,)" in message and "dout.sum(axis=(0, 2, 3))" in message


def test_a_wrong_type_is_reported():
    assert "dx is NoneType None, not an array of numbers" in str(failure(check_relu_backward, lambda dout, x: None))
    message = str(failure(check_conv_backward, lambda *a: conv_backward(*a)[0]))
    assert "expected a tuple (dx, dw, db)" in message and "return dx, dw, db" in message
    assert "loss is str" in str(failure(check_softmax_cross_entropy, lambda z, y: ("0.5", softmax_ce(z, y)[1])))


def test_a_function_that_mutates_its_input_fails():
    def in_place(dout, x):
        dout[x <= 0] = 0
        return dout
    message = str(failure(check_relu_backward, in_place))
    assert "changed its input dout in place" in message and "dout.copy()" in message
    assert "dout before your call" in message and "dout after your call" in message
    # the battery itself is untouched: a correct function still passes afterwards
    assert check_relu_backward(relu_backward)


def test_a_mutating_maxpool_is_caught_too():
    def clobbers_x(dout, x, k, s, p):
        dx = maxpool_backward(dout, x, k, s, p)
        x[...] = 0
        return dx
    assert "changed its input x in place" in str(failure(check_maxpool_backward, clobbers_x))


def test_a_function_that_reshapes_its_input_in_place_fails():
    def flattens(dout, x):
        x.shape = (-1,)
        return relu_backward(dout, x.reshape(dout.shape))
    assert "changed the shape of its input x in place, from (1, 2, 3, 4) to (24,)" in str(
        failure(check_relu_backward, flattens))


@pytest.mark.parametrize("checker", CHECKERS, ids=lambda c: c.__name__)
def test_an_unfilled_stub_prints_a_friendly_line_and_returns_none(checker, capsys):
    def your_function(*args):
        raise NotImplementedError("your turn")
    assert checker(your_function) is None
    assert capsys.readouterr().out == "not implemented yet: fill in your_function above, then run this cell again\n"


def test_not_implemented_on_a_later_case_is_a_failure():
    def half_done(dout, x, k, s, p):
        if s != k:
            raise NotImplementedError("overlapping windows")
        return maxpool_backward(dout, x, k, s, p)
    err = failure(check_maxpool_backward, half_done)
    assert "cell (1, 2) wins all four windows" in str(err) and "NotImplementedError" in str(err)


@pytest.mark.parametrize("checker", CHECKERS, ids=lambda c: c.__name__)
@pytest.mark.parametrize("bad", [None, 3, "maxpool_backward", np.zeros(3)], ids=repr)
def test_a_non_callable_argument_is_a_type_error(checker, bad):
    with pytest.raises(TypeError, match=r"fn must be a function fn\("):
        checker(bad)


# ---------------------------------------------------------------------------
# The batteries say what they hold, and every modelled bug can fire
# ---------------------------------------------------------------------------

def cases_named(exercise, fragment):
    found = [c for c in exercise.cases if fragment in c.name]
    assert len(found) == 1, fragment
    return found[0].inputs


def test_the_cases_hold_what_their_names_claim():
    mp = ex._MAXPOOL_BACKWARD
    x = cases_named(mp, "cell (1, 2) wins all four windows")["x"]
    counts = core.maxpool2d_mask(core.maxpool2d_forward(x, 3, 1, 0)[1])[0, 0]
    assert counts[1, 2] == 4 and counts.sum() == 4
    x = cases_named(mp, "ties: every 2×2 window")["x"][0, 0]
    for r in (0, 2):
        for c in (0, 2):
            win = x[r:r + 2, c:c + 2]
            assert 2 <= (win == win.max()).sum() <= 3
    for fragment in ("all-negative 3×3 input", "all-negative ties"):
        assert (cases_named(mp, fragment)["x"] < 0).all()
    inputs = cases_named(mp, "7×5 input")
    assert inputs["dout"].shape[2] * 2 == 6  # three windows cover rows 0..5 of 7
    centre = cases_named(ex._AVGPOOL_BACKWARD, "centre cell is in all nine windows")
    ones = np.ones_like(centre["dout"])
    assert core_avgpool_backward(ones, centre["x"], 3, 1, 0)[0, 0, 2, 2] == pytest.approx(9 / 9)
    w = cases_named(ex._CONV_BACKWARD, "rot180(w) ≠ wᵀ")["w"]
    assert not np.array_equal(core.rot180(w), w.swapaxes(-1, -2))
    inputs = cases_named(ex._CONV_BACKWARD, "F ≠ C")
    assert inputs["w"].shape[0] != inputs["x"].shape[1]
    assert np.abs(cases_named(ex._SOFTMAX_CE, "logits of ±1000")["logits"]).max() == 1000
    inputs = cases_named(ex._CONV_BACKWARD, "the last column is never read")
    dx = core_conv_backward(np.ones_like(inputs["dout"]), inputs["x"], np.ones_like(inputs["w"]), 2, 0)[0]
    assert (dx[..., -1] == 0).all() and (dx[..., :-1] > 0).all()
    relu_zero = cases_named(ex._RELU, "inputs exactly 0")["x"]
    assert (relu_zero == 0).any()


EXERCISES = (ex._RELU, ex._MAXPOOL_FORWARD, ex._MAXPOOL_BACKWARD, ex._AVGPOOL_BACKWARD,
             ex._CONV_BACKWARD, ex._SOFTMAX_CE)


@pytest.mark.parametrize("exercise", EXERCISES, ids=lambda e: e.checker)
def test_every_modelled_bug_is_wrong_on_some_case(exercise):
    """A bug model that equals the reference on every case could never name a bug."""
    for bug in exercise.bugs:
        differs = False
        for case in exercise.cases:
            with np.errstate(all="ignore"):
                wrong = bug.fn(*case.inputs.values())
            if wrong is None:
                continue
            right = ex._as_tuple(exercise.reference(**case.inputs), len(exercise.outputs))
            differs |= any(g is not None and (np.shape(g) != np.shape(r) or
                                              not np.allclose(g, r, equal_nan=True))
                           for g, r in zip(wrong, right))
        assert differs, bug.hint


def test_the_batteries_are_float64_and_the_same_on_every_import(monkeypatch):
    spec = importlib.util.spec_from_file_location("exercises_again", ex.__file__)
    again = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "exercises_again", again)  # dataclasses look their module up
    spec.loader.exec_module(again)
    for name in ("_RELU", "_MAXPOOL_FORWARD", "_MAXPOOL_BACKWARD", "_AVGPOOL_BACKWARD", "_CONV_BACKWARD",
                 "_SOFTMAX_CE"):
        for case, twin in zip(getattr(ex, name).cases, getattr(again, name).cases):
            for key, value in case.inputs.items():
                if isinstance(value, np.ndarray):
                    assert value.dtype in (np.float64, np.int64), (case.name, key)
                    assert np.array_equal(value, twin.inputs[key]), (case.name, key)
                else:
                    assert value == twin.inputs[key]


def test_the_module_needs_only_numpy_and_the_core():
    import ast
    from pathlib import Path
    tree = ast.parse(Path(ex.__file__).read_text())
    imports = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
               for alias in node.names}
    imports |= {node.module.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert imports <= {"__future__", "dataclasses", "typing", "numpy", "mlp_cnn_core"}, imports
