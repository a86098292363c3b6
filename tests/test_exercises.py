"""The exercise checkers: they pass correct implementations written here (loops, a vectorised
one, and the core wrapped), reject a zoo of classic bugs with a message that names the failing
case and a hint that names the bug -- only when the bug's result is the learner's --, and behave
on unfilled stubs and bad arguments.

The correct implementations below are written from the definitions, independently of the
checkers; each bug is one knob turned on them, or a short function written the way a learner
writes it.  The gradient-check exercise has its own file, test_exercise_gradcheck.py.
"""
from __future__ import annotations

import importlib.util
import sys
from functools import partial

import numpy as np
import pytest

import mlp_cnn_core as core
import mlp_cnn_exercises as ex
from mlp_cnn_exercises import (
    check_avgpool_backward,
    check_conv_backward,
    check_maxpool_backward,
    check_maxpool_forward,
    check_numerical_gradient,
    check_relu_backward,
    check_softmax_cross_entropy,
)

CHECKERS = (check_relu_backward, check_maxpool_forward, check_maxpool_backward,
            check_avgpool_backward, check_conv_backward, check_softmax_cross_entropy, check_numerical_gradient)


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


def crop(a, p, shape, at=None):
    at = p if at is None else at
    return a[..., at:at + shape[-2], at:at + shape[-1]]


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
                     use_stride=True, use_padding=True, assign_slice=False, step=None, crop_at=None):
    N, C, H, W = x.shape
    xp = pad(x, p, pad_value)
    dxp = np.zeros_like(xp)
    offset = 0 if use_padding else p  # "padding ignored": windows start p cells too far
    step = step or (s if use_stride else 1)
    for n in range(N):
        for c in range(C):
            for i, j, rows, cols in windows(dout.shape, (k, k), step, offset):
                win = xp[n, c, rows, cols]
                if ties == "first":
                    mask = np.zeros(win.shape)
                    mask[np.unravel_index(np.argmax(win), win.shape)] = 1
                elif ties == "last":  # scanning with >=: a later tie replaces the best so far
                    best = (0, 0)
                    for a in range(win.shape[0]):
                        for b in range(win.shape[1]):
                            if win[a, b] >= win[best]:
                                best = (a, b)
                    mask = np.zeros(win.shape)
                    mask[best] = 1
                elif ties == "split":
                    mask = (win == win.max()) / np.count_nonzero(win == win.max())
                else:  # the naive mask
                    mask = (win == win.max()).astype(float)
                g = mask * dout[n, c, i, j]
                if assign_slice:
                    dxp[n, c, rows, cols] = g
                elif accumulate:
                    dxp[n, c, rows, cols] += g
                else:  # `=` at the winner only
                    dxp[n, c, rows, cols][mask == 1] = g[mask == 1]
    return crop(dxp, p, x.shape, crop_at)


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


def avgpool_backward(dout, x, k, s, p, include_pad=True, accumulate=True, use_stride=True, step=None,
                     crop_at=None):
    N, C, H, W = x.shape
    dxp = np.zeros((N, C, H + 2 * p, W + 2 * p))
    real = pad(np.ones_like(x), p, 0)
    for i, j, rows, cols in windows(dout.shape, (k, k), step or (s if use_stride else 1)):
        count = k * k if include_pad else real[:, :, rows, cols].sum(axis=(2, 3), keepdims=True)
        share = dout[:, :, i, j][:, :, None, None] / count
        if accumulate:
            dxp[:, :, rows, cols] += share
        else:
            dxp[:, :, rows, cols] = share
    return crop(dxp, p, x.shape, crop_at)


def avgpool_backward_cells(dout, x, k, s, p, border="drop"):
    """Chapter 9's loop, cell by cell; ``border`` is what happens to a cell outside x:
    "drop" (right), "clamp" (np.clip'd onto the border), "wrap" (no check: -1 is the last row)."""
    N, C, H, W = x.shape
    dx = np.zeros(x.shape)
    for i in range(dout.shape[2]):
        for j in range(dout.shape[3]):
            for r in range(i * s - p, i * s - p + k):
                for c in range(j * s - p, j * s - p + k):
                    if border == "clamp":
                        dx[:, :, min(max(r, 0), H - 1), min(max(c, 0), W - 1)] += dout[:, :, i, j] / (k * k)
                    elif border == "wrap" or (0 <= r < H and 0 <= c < W):
                        dx[:, :, r, c] += dout[:, :, i, j] / (k * k)
    return dx


def conv_backward(dout, x, w, s, p, batch="sum", use_stride=True, db_mean=False, dx_assign=False,
                  dw_assign=False, crop_at=None):
    """Loops over windows: dx[window] += w * dout, dw += x[window] * dout, db = sum of dout."""
    F, C, kh, kw = w.shape
    xp = pad(x, p, 0)
    dxp, dw = np.zeros_like(xp), np.zeros_like(w)
    images = {"sum": range(x.shape[0]), "first": [0], "last": [x.shape[0] - 1]}[batch]
    for n in range(x.shape[0]):
        for f in range(F):
            for i, j, rows, cols in windows(dout.shape, (kh, kw), s if use_stride else 1):
                if dx_assign:
                    dxp[n, :, rows, cols] = w[f] * dout[n, f, i, j]
                else:
                    dxp[n, :, rows, cols] += w[f] * dout[n, f, i, j]
                if n in images:
                    if dw_assign:
                        dw[f] = xp[n, :, rows, cols] * dout[n, f, i, j]
                    else:
                        dw[f] += xp[n, :, rows, cols] * dout[n, f, i, j]
    db = dout[list(images)].sum(axis=(0, 2, 3))
    if db_mean:
        db = dout.mean(axis=(0, 2, 3))
    return crop(dxp, p, x.shape, crop_at), dw, db


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


def conv_dx_recipe(dout, x, w, s, p, dilate=True):
    """Chapter 7's recipe as its text states it: dilate dout, pad it by k - 1 on every side,
    correlate with rot180(w) (channels swapped), crop p.  Without extra care for the rows the
    stride never reaches (the bug), and with ``dilate=False`` without the dilation."""
    N, C, H, W = x.shape
    F, _, kh, kw = w.shape
    if dilate:
        d = np.zeros((N, F, (dout.shape[2] - 1) * s + 1, (dout.shape[3] - 1) * s + 1))
        d[:, :, ::s, ::s] = dout
    else:
        d = dout
    full = np.pad(d, ((0, 0), (0, 0), (kh - 1, kh - 1), (kw - 1, kw - 1)))
    rot = w[..., ::-1, ::-1]
    Hf, Wf = full.shape[2] - kh + 1, full.shape[3] - kw + 1
    dxp = np.zeros((N, C, Hf, Wf))
    for a in range(kh):
        for b in range(kw):
            dxp += np.einsum("nfhw,fc->nchw", full[:, :, a:a + Hf, b:b + Wf], rot[:, :, a, b])
    return dxp[:, :, p:p + H, p:p + W], conv_backward(dout, x, w, s, p)[1], dout.sum(axis=(0, 2, 3))


def softmax_ce(logits, labels, shift="row", divisions=1, one_hot=True, loss_divisions=None, log_of_p=False):
    N = logits.shape[0]
    m = {"row": logits.max(axis=1, keepdims=True), "global": logits.max(), "none": 0.0}[shift]
    z = logits - m
    with np.errstate(all="ignore"):
        log_p = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
        p = np.exp(log_p) if shift == "row" else np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
        if log_of_p:  # log of the probability itself: it may have underflowed to 0
            log_p = np.log(p)
    rows = np.arange(N)
    loss = -log_p[rows, labels].sum() / N ** (divisions if loss_divisions is None else loss_divisions)
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
    (check_avgpool_backward, avgpool_backward_cells),
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
    assert printed == summary.lines() + "\n"
    assert max(map(len, printed.splitlines())) <= 88                 # the book's line length
    assert " ".join(printed.split()) == summary                      # wrapped, nothing lost
    assert summary.startswith(f"{checker.__name__}: ")
    assert " cases passed — " in summary


def one_line(summary: str) -> str:
    """A summary as one line (the checkers wrap it at 88 characters)."""
    return " ".join(summary.split())


def test_summaries_name_what_was_tried(capsys):
    assert one_line(check_maxpool_backward(maxpool_backward)) == (
        "check_maxpool_backward: 12 cases passed — 2×2 stride 2, ties, overlapping windows (3×3 stride 1), "
        "overlap with ties, padding with all-negative inputs, padding with ties, sizes not divisible by the "
        "stride, stride larger than the kernel, 3×3 stride 2, batches and channels, non-square inputs, "
        "random floats")
    assert "inputs exactly 0" in one_line(check_relu_backward(relu_backward))
    assert "padding (count_include_pad=True)" in one_line(check_avgpool_backward(avgpool_backward))
    assert "asymmetric kernel (rot180 ≠ transpose)" in one_line(check_conv_backward(conv_backward))
    assert "F ≠ C" in one_line(check_conv_backward(conv_backward))
    assert "logits of ±1000" in one_line(check_softmax_cross_entropy(softmax_ce))


# ---------------------------------------------------------------------------
# The bug zoo: (checker, wrong function, the case it must fail on, a word of the hint)
# ---------------------------------------------------------------------------

def assign_not_add(dout, x, k, s, p):
    return maxpool_backward(dout, x, k, s, p, accumulate=False)


# learner code for the cases where the old hints blamed the wrong bug (issue 15, item 3)

def maxpool_backward_uncropped(dout, x, k, s, p):
    xp = pad(x, p, -np.inf)
    dxp = np.zeros_like(xp)
    for n, c, i, j in np.ndindex(*dout.shape):
        win = xp[n, c, i * s:i * s + k, j * s:j * s + k]
        a, b = np.unravel_index(np.argmax(win), win.shape)
        dxp[n, c, i * s + a, j * s + b] += dout[n, c, i, j]
    return dxp                                       # the padding is never cropped off


def maxpool_backward_minus_p_crop(dout, x, k, s, p):
    dxp = maxpool_backward_uncropped(dout, x, k, s, p)
    return dxp[:, :, p:-p, p:-p]                     # empty when p = 0


def avgpool_backward_exclude_pad_cells(dout, x, k, s, p):
    """A learner's count_include_pad=False: divide by the real cells of each window."""
    N, C, H, W = x.shape
    dx = np.zeros(x.shape)
    for i in range(dout.shape[2]):
        for j in range(dout.shape[3]):
            cells = [(r, c) for r in range(i * s - p, i * s - p + k) for c in range(j * s - p, j * s - p + k)
                     if 0 <= r < H and 0 <= c < W]
            for r, c in cells:
                dx[:, :, r, c] += dout[:, :, i, j] / len(cells)
    return dx


def max_pooling_geometry_bugs(label, check, fn):
    """The padding and stride bugs of max pooling, which the checker names alike in the forward and
    the backward pass: ``{name: (checker, the learner's function, the case it fails on, the hint)}``."""
    return {
        f"{label}: zero padding": (check, partial(fn, pad_value=0.0), "padding 1 around an all-negative", "-inf"),
        f"{label}: padding ignored": (check, partial(fn, use_padding=False), "padding 1 around an all-negative",
                                      "padding ignored"),
        f"{label}: stride forgotten": (check, partial(fn, use_stride=False), "2×2 windows, stride 2",
                                       "stride forgotten"),
    }


ZOO = {
    "relu: ReLU'(0) = 1": (check_relu_backward, partial(relu_backward, zero_passes=True),
                          "inputs exactly 0", "x > 0, not x >= 0"),
    "relu: mask without dout": (check_relu_backward, lambda dout, x: (x > 0).astype(float),
                                "positive and negative inputs", "multiply by the upstream gradient"),
    "relu: mask from dout": (check_relu_backward, lambda dout, x: np.where(dout > 0, dout, 0.0),
                             "positive and negative inputs", "not from the sign of dout"),
    "relu: float32": (check_relu_backward, lambda dout, x: relu_backward(dout, x).astype(np.float32),
                      "positive and negative inputs", "dtype float32: compute in float64"),
    **max_pooling_geometry_bugs("maxpool fwd", check_maxpool_forward, maxpool_forward),
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
    **max_pooling_geometry_bugs("maxpool", check_maxpool_backward, maxpool_backward),
    "avgpool: count_exclude_pad": (check_avgpool_backward, partial(avgpool_backward, include_pad=False),
                                   "a corner window holds 4 real cells", "count_include_pad=True"),
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
                            "batch of 4, 5 classes", "your loss is N times the expected"),
    "softmax: /N twice": (check_softmax_cross_entropy, partial(softmax_ce, divisions=2),
                          "batch of 4, 5 classes", "your loss is divided by N twice"),
    "softmax: no max subtraction": (check_softmax_cross_entropy, partial(softmax_ce, shift="none"),
                                    "logits of ±1000", "no max subtraction"),
    "softmax: global max": (check_softmax_cross_entropy, partial(softmax_ce, shift="global"),
                            "one row near +1000", "not of the whole array"),
    "softmax: no one-hot": (check_softmax_cross_entropy, partial(softmax_ce, one_hot=False),
                            "one example, 3 classes", "subtract 1 at the label"),
    # --- the cases where the hint used to blame the wrong bug ------------------------------
    "maxpool: windows at i*k": (check_maxpool_backward,
                                lambda dout, x, k, s, p: maxpool_backward(dout, x, k, s, p, step=k),
                                "cell (1, 2) wins all four windows", "every kernel_size cells"),
    "avgpool: windows at i*k": (check_avgpool_backward,
                                lambda dout, x, k, s, p: avgpool_backward(dout, x, k, s, p, step=k),
                                "the centre cell is in all nine windows", "every kernel_size cells"),
    "conv: recipe without dilation": (check_conv_backward, partial(conv_dx_recipe, dilate=False),
                                      "stride 2 on a 7×6 input", "dilates dout"),
    "conv: recipe without the rows the stride never reaches": (
        check_conv_backward, conv_dx_recipe, "stride 2 on a 7×6 input", "the windows reach"),
    "maxpool: crop at the top-left": (check_maxpool_backward, partial(maxpool_backward, crop_at=0),
                                      "padding 1 around an all-negative", "the top-left corner"),
    "avgpool: crop at the top-left": (check_avgpool_backward, partial(avgpool_backward, crop_at=0),
                                      "a corner window holds 4 real cells", "the top-left corner"),
    "conv: crop at the top-left": (check_conv_backward, partial(conv_backward, crop_at=0),
                                   "padding 1 (zero padding", "the top-left corner"),
    "softmax: log of an underflowed probability": (check_softmax_cross_entropy, partial(softmax_ce, log_of_p=True),
                                                   "logits of ±1000", "underflows to log(0)"),
    "softmax: loss summed over the batch": (check_softmax_cross_entropy, partial(softmax_ce, loss_divisions=0),
                                            "batch of 4, 5 classes", "the SUM over the batch"),
    "softmax: dlogits not divided by N": (check_softmax_cross_entropy,
                                          lambda z, y: (softmax_ce(z, y)[0], softmax_ce(z, y, divisions=0)[1]),
                                          "batch of 4, 5 classes", "missing /N"),
    "avgpool: shares piled onto the border": (check_avgpool_backward, partial(avgpool_backward_cells, border="clamp"),
                                              "a corner window holds 4 real cells", "piled onto the nearest border"),
    "avgpool: count_include_pad=False, cell by cell": (check_avgpool_backward, avgpool_backward_exclude_pad_cells,
                                                       "a corner window holds 4 real cells",
                                                       "count_include_pad=False"),
    "maxpool: last maximum": (check_maxpool_backward, partial(maxpool_backward, ties="last"),
                              "ties: every 2×2 window", "yours gives it to the last one"),
    "maxpool: split ties": (check_maxpool_backward, partial(maxpool_backward, ties="split"),
                            "ties: every 2×2 window", "shares it equally"),
    "maxpool: padding not cropped (shape)": (check_maxpool_backward, maxpool_backward_uncropped,
                                             "padding 1 around an all-negative", "crop the padding off"),
    "maxpool: [p:-p] with p = 0 (shape)": (check_maxpool_backward, maxpool_backward_minus_p_crop,
                                           "2×2 windows, stride 2, no ties", "empty when p = 0"),
}


# --- plausible wrong implementations, written as a learner would, without the tests in mind ----

def relu_heaviside(dout, x):
    return dout * np.heaviside(x, 0.5)               # "the derivative at 0 is in between"


def relu_identity(dout, x):
    return dout.copy()                               # forgot the mask


def relu_inverted(dout, x):
    return np.where(x < 0, dout, 0.0)                # the mask the wrong way round


def maxpool_forward_whole_block(x, k, s, p):
    N, C, H, W = x.shape
    xp = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)), constant_values=-np.inf)
    out = np.zeros((N, C, (H + 2 * p - k) // s + 1, (W + 2 * p - k) // s + 1))
    for i in range(out.shape[2]):
        for j in range(out.shape[3]):
            out[:, :, i, j] = np.max(xp[:, :, i * s:i * s + k, j * s:j * s + k])   # no axis
    return out


def maxpool_forward_ceil(x, k, s, p):
    N, C, H, W = x.shape
    Ho = int(np.ceil((H + 2 * p - k) / s)) + 1
    Wo = int(np.ceil((W + 2 * p - k) / s)) + 1
    xp = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)), constant_values=-np.inf)
    out = np.zeros((N, C, Ho, Wo))
    for i in range(Ho):
        for j in range(Wo):
            out[:, :, i, j] = xp[:, :, i * s:i * s + k, j * s:j * s + k].max(axis=(2, 3))
    return out


def avgpool_divide_by_k(dout, x, k, s, p):
    return avgpool_backward(dout * k, x, k, s, p)    # dout / k, "the average over a side"


def avgpool_kron(dout, x, k, s, p):
    return np.kron(dout, np.ones((1, 1, k, k))) / k ** 2   # chapter 3's expansion, / k^2


def avgpool_returns_dout_shape(dout, x, k, s, p):
    return dout / k ** 2                             # the share, but not spread over the windows


def conv_dx_assign(dout, x, w, s, p):
    return conv_backward(dout, x, w, s, p, dx_assign=True)


def conv_dw_assign(dout, x, w, s, p):
    return conv_backward(dout, x, w, s, p, dw_assign=True)


def conv_db_per_image(dout, x, w, s, p):
    dx, dw, _ = conv_backward(dout, x, w, s, p)
    return dx, dw, dout.sum(axis=(2, 3))


def softmax_columns(logits, labels):
    N = logits.shape[0]
    e = np.exp(logits - logits.max(axis=0, keepdims=True))
    p = e / e.sum(axis=0, keepdims=True)             # normalised over the batch
    loss = -np.log(p[np.arange(N), labels]).mean()
    d = p.copy()
    d[np.arange(N), labels] -= 1
    return loss, d / N


def softmax_all_labels(logits, labels):
    p = core.softmax(logits)
    loss = -np.log(p[:, labels]).mean()              # every label in every row
    d = p.copy()
    d[:, labels] -= 1
    return loss, d / len(labels)


def softmax_sign(logits, labels):
    loss, d = softmax_ce(logits, labels)
    return loss, -d                                  # the log-likelihood's gradient


def softmax_per_example(logits, labels):
    z = logits - logits.max(axis=1, keepdims=True)
    log_p = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    losses = -log_p[np.arange(len(labels)), labels]
    return losses, softmax_ce(logits, labels)[1]     # forgot the mean


def softmax_lse_without_max(logits, labels):
    m = logits.max(axis=1, keepdims=True)
    lse = np.log(np.exp(logits - m).sum(axis=1))     # forgot + m
    loss = -(logits[np.arange(len(labels)), labels] - lse).mean()
    return loss, softmax_ce(logits, labels)[1]


def strided(start, step, count):
    return slice(start, start + step * (count - 1) + 1, step)


def avgpool_offsets_assign(dout, x, k, s, p):
    """Chapter 10's offset loop, with = where += belongs."""
    N, C, H, W = x.shape
    Ho, Wo = dout.shape[-2:]
    dxp = np.zeros((N, C, H + 2 * p, W + 2 * p))
    for r0 in range(k):
        for c0 in range(k):
            dxp[:, :, strided(r0, s, Ho), strided(c0, s, Wo)] = dout / (k * k)
    return dxp[:, :, p:p + H, p:p + W]


def maxpool_offsets_assign(dout, x, k, s, p):
    """Chapter 10's technique: running first maximum over the offsets, then one plane per
    offset -- written with = where += belongs."""
    N, C, H, W = x.shape
    Ho, Wo = dout.shape[-2:]
    xp = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)), constant_values=-np.inf)
    best = np.full(dout.shape, -np.inf)
    arg = np.zeros(dout.shape, dtype=int)
    for r0 in range(k):
        for c0 in range(k):
            plane = xp[:, :, strided(r0, s, Ho), strided(c0, s, Wo)]
            better = plane > best
            best = np.where(better, plane, best)
            arg = np.where(better, r0 * k + c0, arg)
    dxp = np.zeros_like(xp)
    for r0 in range(k):
        for c0 in range(k):
            dxp[:, :, strided(r0, s, Ho), strided(c0, s, Wo)] = dout * (arg == r0 * k + c0)
    return dxp[:, :, p:p + H, p:p + W]


LEARNER_ZOO = {
    "relu: heaviside(x, 0.5)": (check_relu_backward, relu_heaviside, "inputs exactly 0", "1/2 is what central"),
    "relu: no mask": (check_relu_backward, relu_identity, "positive and negative inputs", "passed through unchanged"),
    "relu: inverted mask": (check_relu_backward, relu_inverted, "positive and negative inputs", "inverted"),
    "maxpool fwd: max over the whole block": (check_maxpool_forward, maxpool_forward_whole_block,
                                              "7×5 input", "axis=(2, 3)"),
    "maxpool fwd: ceil": (check_maxpool_forward, maxpool_forward_ceil, "padding 1 around an all-negative",
                          "rounds down"),
    "avgpool: = in chapter 10's offset loop": (check_avgpool_backward, avgpool_offsets_assign,
                                               "the centre cell is in all nine", "never ="),
    "maxpool: = in chapter 10's offset loop": (check_maxpool_backward, maxpool_offsets_assign,
                                               "cell (1, 2) wins all four windows", "never ="),
    "avgpool: / k": (check_avgpool_backward, avgpool_divide_by_k, "2×2 windows, stride 2", "not by kernel_size"),
    "avgpool: np.kron expansion": (check_avgpool_backward, avgpool_kron, "the centre cell is in all nine",
                                   "chapter 3's expansion"),
    "avgpool: dout-shaped (shape)": (check_avgpool_backward, avgpool_returns_dout_shape,
                                     "2×2 windows, stride 2", "dout's size"),
    "conv: = in dx": (check_conv_backward, conv_dx_assign, "one 3×3 kernel", "dx[window] = ... overwrites"),
    "conv: = in dw": (check_conv_backward, conv_dw_assign, "one 3×3 kernel", "dw[f] = ... keeps the last"),
    "conv: db per image (shape)": (check_conv_backward, conv_db_per_image, "one 3×3 kernel", "one row per image"),
    "softmax: normalised over the batch": (check_softmax_cross_entropy, softmax_columns, "one example",
                                           "normalises each ROW"),
    "softmax: p[:, labels]": (check_softmax_cross_entropy, softmax_all_labels, "batch of 4",
                              "p[np.arange(N), labels]"),
    "softmax: gradient of the log-likelihood": (check_softmax_cross_entropy, softmax_sign, "one example",
                                                "opposite sign"),
    "softmax: one loss per example (shape)": (check_softmax_cross_entropy, softmax_per_example, "one example",
                                              "returns them all"),
    "softmax: log-sum-exp without the max": (check_softmax_cross_entropy, softmax_lse_without_max, "one example",
                                             "add it back"),
}


def failure(checker, fn) -> AssertionError:
    with pytest.raises(AssertionError) as info:
        checker(fn)
    return info.value


@pytest.mark.parametrize("bug", list(ZOO) + list(LEARNER_ZOO))
def test_the_bug_zoo_is_rejected_with_the_case_and_a_hint(bug):
    checker, fn, case, hint = {**ZOO, **LEARNER_ZOO}[bug]
    message = str(failure(checker, fn))
    first_line, *_, last_line = message.splitlines()
    assert first_line.startswith(f"{checker.__name__} failed on case ")
    assert case in first_line, message
    assert last_line.startswith("Hint: ") and hint in last_line, message
    assert ex.NO_KNOWN_BUG not in last_line, message
    assert "expected" in message


# --- neutral: a wrong function no modelled bug explains gets a hint that blames none ---------

def maxpool_backward_column_major(dout, x, k, s, p):
    """The first maximum in column-major order (argmax of the transposed window)."""
    xp = pad(x, p, -np.inf)
    dxp = np.zeros_like(xp)
    for n, c, i, j in np.ndindex(*dout.shape):
        win = xp[n, c, i * s:i * s + k, j * s:j * s + k]
        b, a = np.unravel_index(np.argmax(win.T), win.T.shape)
        dxp[n, c, i * s + a, j * s + b] += dout[n, c, i, j]
    return crop(dxp, p, x.shape)


def maxpool_backward_wrong_unravel(dout, x, k, s, p):
    """The winner's offset unravelled with the input's width instead of the window's."""
    xp = pad(x, p, -np.inf)
    dxp = np.zeros_like(xp)
    for n, c, i, j in np.ndindex(*dout.shape):
        win = xp[n, c, i * s:i * s + k, j * s:j * s + k]
        a, b = divmod(int(np.argmax(win)), x.shape[-1])
        dxp[n, c, i * s + a, j * s + b] += dout[n, c, i, j]
    return crop(dxp, p, x.shape)


def conv_dx_rot90(dout, x, w, s, p):
    return conv_dx_rotated(dout, x, w, s, p, kernel=lambda w: np.rot90(w, 1, axes=(2, 3)))


def relu_half(dout, x):
    return 0.5 * dout * (x > 0)


NEUTRAL = {
    "maxpool: column-major first maximum": (check_maxpool_backward, maxpool_backward_column_major,
                                            "ties: every 2×2 window", "first maximum of a window in row-major"),
    "maxpool: unravelled with the input's width (raises)": (
        check_maxpool_backward, maxpool_backward_wrong_unravel, "2×2 windows, stride 2, no ties",
        "the error comes from your function (the traceback above shows the line); this case exercises one window"),
    "conv: kernel turned by 90 degrees": (check_conv_backward, conv_dx_rot90, "one 3×3 kernel",
                                          "is read by window (0, 0) at kernel offset (0, 0)"),
    "relu: half the gradient": (check_relu_backward, relu_half, "positive and negative inputs", "there x ="),
    "avgpool: padded shares wrapped around (raises)": (
        check_avgpool_backward, partial(avgpool_backward_cells, border="wrap"), "a corner window holds 4 real cells",
        "raised IndexError"),
    "softmax: label smoothing": (check_softmax_cross_entropy,
                                 lambda z, y: core.softmax_cross_entropy(z, y)[0] + 0.1, "one example",
                                 "expected a tuple"),
}


@pytest.mark.parametrize("name", list(NEUTRAL))
def test_a_result_no_modelled_bug_explains_gets_a_neutral_hint(name):
    checker, fn, case, pointer = NEUTRAL[name]
    message = str(failure(checker, fn))
    first_line, *_, last_line = message.splitlines()
    assert case in first_line, message
    assert pointer in message, message
    exercise = next(e for e in EXERCISES if e.checker == checker.__name__)
    for bug in exercise.bugs:  # no modelled bug is blamed
        assert bug.hint not in last_line, message


def test_a_neutral_hint_points_at_the_first_wrong_cell_and_the_case():
    message = str(failure(check_maxpool_backward, maxpool_backward_column_major))
    assert message.splitlines()[-1] == (
        f"Hint: {ex.NO_KNOWN_BUG}. Start at dx[0, 0, 0, 1]: x[0, 0, 0, 1] lies in window (0, 0) and is the first "
        "maximum of (0, 0), so dx there is the sum of dout over that window. This case exercises ties: only "
        "the first maximum of a window in row-major order receives its gradient")


def test_a_failure_shows_the_first_wrong_cell_and_the_planes():
    message = str(failure(check_maxpool_backward, assign_not_add))
    # the dout of that case is seeded; the four windows' gradients add up at (1, 2)
    case = ex._MAXPOOL_BACKWARD.cases[2]
    dout = case.inputs["dout"][0, 0]
    assert f"dx[0, 0, 1, 2]: expected {dout.sum():g}, got {dout[-1, -1]:g} (1 of 16 values differ)" in message
    for panel in ("x[0, 0] =", "dout[0, 0] =", "expected dx[0, 0] =", "your dx[0, 0] ="):
        assert panel in message
    assert "called assign_not_add(dout shape (1, 1, 2, 2), x shape (1, 1, 4, 4), kernel_size=3, stride=1, " \
           "padding=0)" in message


def test_wrapped_shares_are_named_where_the_learners_loop_does_not_raise():
    exercise = ex._AVGPOOL_BACKWARD
    case = next(c for c in exercise.cases if c.name.startswith("padding 1 around a 3×3 input"))
    got = avgpool_backward_cells(*case.inputs.values(), border="wrap")
    expected = core_avgpool_backward(*case.inputs.values())
    assert ex._diagnose(exercise, case, case.inputs, 0, (got,), (expected,), (0, 0, 0, 0)) == ex._WRAP_HINT


def test_two_bugs_that_coincide_on_a_case_are_both_named():
    """On 2×2 windows with padding 1 around a 3×3 input, count_include_pad=False and piling the
    padded shares onto the border give the same dx: the hint names both (the battery puts a case
    that tells them apart first)."""
    exercise = ex._AVGPOOL_BACKWARD
    case = next(c for c in exercise.cases if c.name.startswith("padding 1 around a 3×3 input"))
    got = avgpool_backward_cells(*case.inputs.values(), border="clamp")
    assert np.allclose(got, avgpool_backward(*case.inputs.values(), include_pad=False))
    expected = core_avgpool_backward(*case.inputs.values())
    hint = ex._diagnose(exercise, case, case.inputs, 0, (got,), (expected,), (0, 0, 0, 0))
    assert hint.startswith("your dx is what each of these bugs gives on this case: (1) ")
    assert ex._EXCLUDE_HINT in hint and ex._CLAMP_HINT in hint


def test_avgpool_has_a_case_that_separates_count_exclude_pad_from_the_border_bugs():
    exercise = ex._AVGPOOL_BACKWARD
    args = cases_named(exercise, "a corner window holds 4 real cells")
    results = [avgpool_backward(*args.values(), include_pad=False),
               avgpool_backward_cells(*args.values(), border="clamp"),
               core_avgpool_backward(*args.values())]
    for a in range(3):
        for b in range(a + 1, 3):
            assert not np.allclose(results[a], results[b])


def test_nan_and_inf_are_not_alike():
    exercise = ex._SOFTMAX_CE
    assert not ex._same(exercise, np.array(np.inf), np.array(np.nan))
    assert not ex._same(exercise, np.array([np.inf, 1.0]), np.array([-np.inf, 1.0]))
    assert not ex._same(exercise, np.array([np.nan, 1.0]), np.array([1.0, np.nan]))
    assert ex._same(exercise, np.array([np.nan, np.inf, 1.0]), np.array([np.nan, np.inf, 1.0 + 1e-12]))


def test_a_non_finite_result_says_where_it_is():
    message = str(failure(check_softmax_cross_entropy, partial(softmax_ce, shift="none")))
    assert "loss: expected 1000, got inf (1 of 1 values differ; yours holds 1 inf where the expected values " \
           "are finite); dlogits is wrong too" in message
    # the loss alone (inf) is also what log(0) gives; dlogits (NaN from inf/inf) names the bug
    assert message.splitlines()[-1].startswith("Hint: no max subtraction")
    message = str(failure(check_softmax_cross_entropy, partial(softmax_ce, log_of_p=True)))
    assert "loss: expected 1000, got inf" in message and "your dlogits is right" in message
    assert message.splitlines()[-1].startswith("Hint: log(softmax) underflows")


def test_the_other_outputs_are_reported_right_or_wrong():
    message = str(failure(check_conv_backward, partial(conv_dx_rotated, kernel=lambda w: w)))
    assert "your dw and db are right" in message
    message = str(failure(check_conv_backward, partial(conv_backward, batch="last")))
    assert "db is wrong too" in message


# ---------------------------------------------------------------------------
# Shapes: which axis, by how much, and the sizes the usual mistakes give
# ---------------------------------------------------------------------------

def test_a_wrong_shape_is_reported_axis_by_axis():
    message = str(failure(check_maxpool_backward, lambda dout, x, k, s, p: maxpool_backward(dout, x, k, s, p)[..., 1:]))
    assert "dx has shape (1, 1, 4, 3), expected (1, 1, 4, 4): axis 3 has 3 instead of 4 (1 fewer)" in message
    assert message.splitlines()[-1] == "Hint: dx is (N, C, H, W), the shape of x"
    message = str(failure(check_conv_backward, lambda *a: conv_backward(*a)[:2] + (conv_backward(*a)[2][None],)))
    assert "db has shape (1, 1), expected (1,) (2 axes instead of 1)" in message
    assert "dout.sum(axis=(0, 2, 3))" in message


def test_a_shape_names_the_size_each_usual_mistake_gives():
    def uncropped_avg(dout, x, k, s, p):
        dxp = np.zeros((x.shape[0], x.shape[1], x.shape[2] + 2 * p, x.shape[3] + 2 * p))
        for i, j, rows, cols in windows(dout.shape, (k, k), s):
            dxp[:, :, rows, cols] += dout[:, :, i, j, None, None] / (k * k)
        return dxp + 0.0 * np.arange(dxp.shape[-1])   # the same shape, as a learner's array
    message = str(failure(check_avgpool_backward, uncropped_avg))
    assert "axis 2 has 6 instead of 4 (2 more), axis 3 has 6 instead of 4 (2 more)" in message
    assert "crop the padding off" in message.splitlines()[-1]
    def transposed_where_not_square(*a):
        dx = maxpool_backward(*a)
        return dx if dx.shape[-1] == dx.shape[-2] else dx.swapaxes(-1, -2)
    message = str(failure(check_maxpool_backward, transposed_where_not_square))
    assert "7×5 input" in message.splitlines()[0]
    assert message.splitlines()[-1] == ("Hint: dx is (N, C, H, W), the shape of x. Its last two axes are swapped "
                                        "(rows and columns)")


def test_a_shape_from_a_modelled_bug_names_the_bug_even_when_the_values_differ():
    """conv_dx_recipe without dilation, then every value doubled: the shape is still the
    undilated recipe's, and the hint says that shape is what that bug gives."""
    def doubled_where_strided(*a):
        if a[3] == 1:
            return conv_backward(*a)
        return (2 * conv_dx_recipe(*a, dilate=False)[0],) + conv_dx_recipe(*a)[1:]
    message = str(failure(check_conv_backward, doubled_where_strided))
    last = message.splitlines()[-1]
    assert "That shape is also what this gives: " + ex._DILATE_HINT in last
    assert "Axis 2: 5 is Ho + k - 1 - 2p" in last


def test_maxpool_forward_shapes_name_the_formula():
    def no_plus_one(x, k, s, p):
        out = maxpool_forward(x, k, s, p)
        return out[..., :-1, :-1]
    message = str(failure(check_maxpool_forward, no_plus_one))
    assert "the + 1 is missing" in message.splitlines()[-1]


# ---------------------------------------------------------------------------
# Exceptions, wrong results, mutation, stubs, bad arguments
# ---------------------------------------------------------------------------

def test_an_exception_in_the_learners_function_is_reported_and_chained():
    def broken(dout, x, k, s, p):
        raise KeyError("boom")
    err = failure(check_maxpool_backward, broken)
    assert 'case 1 of 12: "2×2 windows, stride 2, no ties' in str(err)
    assert "broken raised KeyError: 'boom'" in str(err)
    assert str(err).splitlines()[-1].startswith("Hint: the error comes from your function")
    assert isinstance(err.__cause__, KeyError)


def test_an_exception_on_a_later_case_names_that_case():
    def no_padding(dout, x, k, s, p):
        if p:
            raise ValueError("padding is not supported")
        return maxpool_backward(dout, x, k, s, p)
    err = failure(check_maxpool_backward, no_padding)
    assert "padding 1 around an all-negative" in str(err) and "ValueError: padding is not supported" in str(err)
    assert "this case exercises padding around an all-negative input" in str(err)
    assert isinstance(err.__cause__, ValueError)


def test_a_wrong_type_is_reported():
    assert "dx is NoneType None, not an array of numbers" in str(failure(check_relu_backward, lambda dout, x: None))
    message = str(failure(check_conv_backward, lambda *a: conv_backward(*a)[0]))
    assert "expected a tuple (dx, dw, db)" in message and "return dx, dw, db" in message
    assert "loss is str" in str(failure(check_softmax_cross_entropy, lambda z, y: ("0.5", softmax_ce(z, y)[1])))


def test_a_boolean_mask_is_the_mask_bug_not_a_dtype_problem():
    message = str(failure(check_relu_backward, lambda dout, x: x > 0))
    assert "multiply by the upstream gradient" in message.splitlines()[-1]


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
    corner = cases_named(ex._AVGPOOL_BACKWARD, "a corner window holds 4 real cells")
    real = core.avgpool2d_forward(np.ones_like(corner["x"]), 3, 1, 1)[0][0, 0, 0, 0] * 9
    assert real == pytest.approx(4)
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
            try:
                with np.errstate(all="ignore"):
                    wrong = bug.fn(*case.inputs.values())
            except Exception:  # the modelled code raises on this case, as the learner's would
                continue
            if wrong is None:
                continue
            right = ex._as_tuple(exercise.reference(**case.inputs), len(exercise.outputs))
            differs |= any(g is not None and (np.shape(g) != np.shape(r) or
                                              not np.allclose(g, r, equal_nan=True))
                           for g, r in zip(wrong, right))
        assert differs, bug.hint


def test_the_learner_loops_behind_the_bug_models_are_right_with_no_knob_turned():
    """The bug models are the learner's loops with one knob turned: with none turned they must
    equal the core on every case, or a model could match a result for the wrong reason."""
    for case in ex._MAXPOOL_BACKWARD.cases:
        assert np.allclose(ex._maxpool_loop(*case.inputs.values())[0], core_maxpool_backward(*case.inputs.values()))
    for case in ex._MAXPOOL_FORWARD.cases:
        assert np.allclose(ex._maxpool_forward_loop(*case.inputs.values())[0],
                           core_maxpool_forward(*case.inputs.values()))
    for case in ex._AVGPOOL_BACKWARD.cases:
        assert np.allclose(ex._avgpool_loop(*case.inputs.values())[0], core_avgpool_backward(*case.inputs.values()))
    for case in ex._CONV_BACKWARD.cases:
        right = core_conv_backward(*case.inputs.values())
        for got, want in zip(ex._conv_loop(*case.inputs.values()), right):
            assert np.allclose(got, want)
        assert np.allclose(ex._conv_recipe(*case.inputs.values())[0], right[0])


def test_the_batteries_are_float64_and_the_same_on_every_import(monkeypatch):
    spec = importlib.util.spec_from_file_location("exercises_again", ex.__file__)
    again = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "exercises_again", again)  # dataclasses look their module up
    spec.loader.exec_module(again)
    for name in ("_RELU", "_MAXPOOL_FORWARD", "_MAXPOOL_BACKWARD", "_AVGPOOL_BACKWARD", "_CONV_BACKWARD",
                 "_SOFTMAX_CE", "_GRADCHECK"):
        for case, twin in zip(getattr(ex, name).cases, getattr(again, name).cases):
            for key, value in case.inputs.items():
                if isinstance(value, np.ndarray):
                    assert value.dtype in (np.float64, np.int64), (case.name, key)
                    assert np.array_equal(value, twin.inputs[key]), (case.name, key)
                elif callable(value):
                    probe = np.linspace(-1, 1, case.inputs["x"].size).reshape(case.inputs["x"].shape)
                    assert value(probe) == twin.inputs[key](probe)
                else:
                    assert value == twin.inputs[key]


def test_the_module_needs_only_numpy_the_core_and_the_standard_library():
    import ast
    from pathlib import Path
    tree = ast.parse(Path(ex.__file__).read_text())
    imports = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
               for alias in node.names}
    imports |= {node.module.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert imports <= {"__future__", "dataclasses", "textwrap", "typing", "numpy", "mlp_cnn_core"}, imports


def test_every_public_function_is_typed():
    import inspect
    for name in ex.__all__:
        obj = getattr(ex, name)
        if inspect.isfunction(obj):
            sig = inspect.signature(obj)
            assert sig.return_annotation is not inspect.Signature.empty, name
            assert all(p.annotation is not inspect.Parameter.empty for p in sig.parameters.values()), name
