"""mlp_cnn_exercises: one-call checkers for the book's "your turn" exercises.

In a layer chapter the reader writes a backward pass from scratch (a function that
starts as a stub raising ``NotImplementedError``) and checks it with one call::

    from mlp_cnn_exercises import check_maxpool_backward

    def maxpool_backward(dout, x, kernel_size, stride, padding):
        raise NotImplementedError  # your turn

    check_maxpool_backward(maxpool_backward)

A checker runs the reader's function on a battery of named cases and compares every
result with :mod:`mlp_cnn_core`, the book's reference (whose gradients are checked
against PyTorch and finite differences).  The batteries hold what ordinary tests miss:
ties between small integers, overlapping windows where one cell wins several windows,
padding around all-negative inputs, sizes the stride does not divide, batches and
channels, non-square inputs and kernels, logits of +-1000.

* Every case passes: the checker prints a one-line summary of what was tried and
  returns it.
* A case fails: it raises ``AssertionError`` naming the case, showing the first wrong
  value (expected vs got, with the surrounding plane) and a one-line hint.  When the
  wrong result equals what a classic bug produces (``=`` for ``+=``, the ``x == max``
  tie mask, zero padding in max pooling, a kernel not rotated, a missing ``/N``, ...)
  the hint names that bug.  An exception raised by the reader's function, a result of
  the wrong shape or type, or an input modified in place fail the same way.
* The function still raises ``NotImplementedError`` on the first case (an unfilled
  stub): the checker prints "not implemented yet" and returns ``None``, so a chapter
  runs from top to bottom before the reader has written anything.

The semantics are PyTorch's: images are ``(N, C, H, W)``; ``kernel_size``, ``stride``
and ``padding`` are ints; in max pooling the first maximum of a window (row-major
order) gets the gradient and padding acts as -inf; average pooling divides by
``kernel_size**2`` including padded cells; ReLU'(0) = 0; cross-entropy is a batch mean.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Dict, Optional, Tuple

import numpy as np

import mlp_cnn_core as core

__all__ = [
    "check_relu_backward",
    "check_maxpool_forward",
    "check_maxpool_backward",
    "check_avgpool_backward",
    "check_conv_backward",
    "check_softmax_cross_entropy",
    "CheckSummary",
]

RTOL, ATOL = 1e-7, 1e-9  # float64 inputs; most cases are small integers, compared (near) exactly


# ---------------------------------------------------------------------------
# What a checker is made of: cases, known bugs, one runner
# ---------------------------------------------------------------------------

@dataclass(frozen=True)
class _Case:
    name: str    # shown when the case fails: what it is and why it is there
    tag: str     # a few words for the summary line
    inputs: Dict[str, object]  # the learner's arguments, in order
    hint: str    # what this case tests: the hint when no known bug explains a failure


@dataclass(frozen=True)
class _Bug:
    hint: str
    fn: Callable  # the learner's signature; returns a wrong result (None entries: not modelled)


@dataclass(frozen=True)
class _Exercise:
    checker: str
    signature: str
    outputs: Tuple[str, ...]
    shape_hints: Dict[str, str]
    reference: Callable       # the core, wrapped to the learner's signature
    bugs: Tuple[_Bug, ...]
    cases: Tuple[_Case, ...]
    show: Tuple[str, ...]     # inputs printed next to a wrong result


class CheckSummary(str):
    """The summary a checker returns.  It is printed by the checker already, so a notebook
    cell that ends with the call does not display it a second time."""

    def _ipython_display_(self):
        pass


class _Mismatch(Exception):
    """A failed case: what is wrong, the hint, and the arrays to print (their plane ``where``)."""

    def __init__(self, what: str, hint: str, panels: tuple = (), where: tuple = ()):
        super().__init__(what)
        self.what, self.hint, self.panels, self.where = what, hint, panels, where


def _copy_inputs(case: _Case) -> Dict[str, object]:
    return {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in case.inputs.items()}


def _as_tuple(result, n: int) -> tuple:
    return (result,) if n == 1 else tuple(result)


def _run(ex: _Exercise, fn) -> Optional[CheckSummary]:
    """Run ``fn`` on every case of ``ex``; raise AssertionError at the first failure."""
    if not callable(fn):
        raise TypeError(f"{ex.checker}: fn must be a function {ex.signature}, "
                        f"got {type(fn).__name__} {_short(fn)}")
    name = getattr(fn, "__name__", "your function")
    for number, case in enumerate(ex.cases, 1):
        args = _copy_inputs(case)
        try:
            result = fn(*args.values())
        except NotImplementedError as err:
            if number == 1:
                print(f"not implemented yet: fill in {name} above, then run this cell again")
                return None
            raise AssertionError(_report(ex, case, number, name, _Mismatch(
                f"{name} raised NotImplementedError: {err}", case.hint))) from err
        except Exception as err:
            raise AssertionError(_report(ex, case, number, name, _Mismatch(
                f"{name} raised {type(err).__name__}: {err}", case.hint))) from err
        try:
            _check_unchanged(case, args)
            _compare(ex, case, result)
        except _Mismatch as bad:
            raise AssertionError(_report(ex, case, number, name, bad)) from None
    tags = list(dict.fromkeys(case.tag for case in ex.cases))
    summary = CheckSummary(f"{ex.checker}: {len(ex.cases)} cases passed — {', '.join(tags)}")
    print(summary)
    return summary


def _check_unchanged(case: _Case, args: Dict[str, object]) -> None:
    for key, original in case.inputs.items():
        if not isinstance(original, np.ndarray) or np.array_equal(args[key], original, equal_nan=True):
            continue
        if args[key].shape != original.shape:
            raise _Mismatch(f"your function changed the shape of its input {key} in place, from "
                            f"{original.shape} to {args[key].shape}",
                            f"the caller still needs {key}: reshape a copy or a view, never {key} itself")
        idx = _first(args[key] != original)
        raise _Mismatch(
            f"your function changed its input {key} in place: {key}{_fmt_index(idx)} was "
            f"{_num(original[idx])}, is now {_num(args[key][idx])}",
            f"the caller still needs {key}: work on a copy ({key}.copy()) or build a new array "
            f"instead of assigning into {key} (x[...] = ..., x *= ..., np.maximum(..., out=x))",
            ((f"{key} before your call", original), (f"{key} after your call", args[key])), idx[:-2])


def _compare(ex: _Exercise, case: _Case, result) -> None:
    expected = _as_tuple(ex.reference(**case.inputs), len(ex.outputs))
    got = _result_arrays(ex, result)
    for k, (out, exp, arr) in enumerate(zip(ex.outputs, expected, got)):
        if arr.shape != exp.shape:
            raise _Mismatch(f"{out} has shape {arr.shape}, expected {exp.shape}", ex.shape_hints[out])
        close = np.isclose(arr, exp, rtol=RTOL, atol=ATOL)
        if not close.all():
            idx = _first(~close)
            what = (f"{out}{_fmt_index(idx)}: expected {_num(exp[idx])}, got {_num(arr[idx])} "
                    f"({np.count_nonzero(~close)} of {close.size} values differ)")
            hint = _diagnose(ex, case, k, arr.astype(np.float64))
            if hint == case.hint and arr.dtype != np.float64:
                hint = _dtype_hint(out, arr)
            raise _Mismatch(what, hint, ((f"expected {out}", exp), (f"your {out}", arr)), idx[:-2])
        if arr.dtype != np.float64:
            raise _Mismatch(f"{out} has dtype {arr.dtype}, expected float64 (the inputs' dtype)",
                            _dtype_hint(out, arr))


def _dtype_hint(out: str, arr: np.ndarray) -> str:
    return (f"{out} has dtype {arr.dtype}: compute in float64 like the inputs (np.zeros_like(x) keeps "
            f"x's dtype; np.zeros(shape) is float64; dtype=int truncates, float32 rounds)")


def _result_arrays(ex: _Exercise, result) -> tuple:
    outs = ex.outputs
    if len(outs) > 1 and not (isinstance(result, (tuple, list)) and len(result) == len(outs)):
        raise _Mismatch(f"expected a tuple ({', '.join(outs)}), got {_short(result)}",
                        f"return the {len(outs)} results as a tuple: return {', '.join(outs)}")
    arrays = []
    for out, value in zip(outs, _as_tuple(result, len(outs))):
        arr = np.asarray(value)
        if arr.dtype.kind not in "biuf":
            raise _Mismatch(f"{out} is {_short(value)}, not an array of numbers",
                            f"return {out} as a numpy array of floats ({ex.shape_hints[out]})")
        arrays.append(arr)
    return tuple(arrays)


def _diagnose(ex: _Exercise, case: _Case, k: int, got: np.ndarray) -> str:
    """The hint of the first known bug whose result equals the learner's, else the case's hint."""
    for bug in ex.bugs:
        try:
            with np.errstate(all="ignore"):
                wrong = bug.fn(*_copy_inputs(case).values())
        except Exception:  # a bug model that does not apply to this case
            continue
        if wrong is None or wrong[k] is None:
            continue
        if _same(got, np.asarray(wrong[k], dtype=np.float64)):
            return bug.hint
    return case.hint


def _same(got: np.ndarray, wrong: np.ndarray) -> bool:
    """Equal within tolerance, counting any two non-finite values (inf, nan) as alike."""
    finite = np.isfinite(got)
    return (got.shape == wrong.shape and np.array_equal(finite, np.isfinite(wrong))
            and np.allclose(got[finite], wrong[finite], rtol=RTOL, atol=ATOL))


# --- formatting --------------------------------------------------------------

def _first(mask: np.ndarray) -> tuple:
    return tuple(int(i) for i in np.argwhere(mask)[0]) if mask.ndim else ()


def _fmt_index(idx: tuple) -> str:
    return f"[{', '.join(map(str, idx))}]" if idx else ""


def _num(v) -> str:
    return f"{float(v):.10g}"


def _short(v) -> str:
    if isinstance(v, np.ndarray):
        return f"an array of shape {v.shape} and dtype {v.dtype}"
    text = repr(v)
    return f"{type(v).__name__} {text[:60]}{'...' if len(text) > 60 else ''}"


def _describe(value) -> str:
    if isinstance(value, np.ndarray):
        return f"shape {value.shape}"
    return repr(value)


def _plane(arr: np.ndarray, where: tuple) -> Optional[np.ndarray]:
    """The 2-D plane ``arr[where]`` (or all of ``arr``) when it is small enough to print."""
    if arr.ndim > 2 and len(where) == arr.ndim - 2:
        arr = arr[where]
    return arr if 0 < arr.ndim <= 2 and arr.size <= 100 else None


def _show(label: str, arr, where: tuple) -> str:
    arr = np.asarray(arr)
    plane = _plane(arr.astype(np.float64) if arr.dtype == bool else arr, where)
    if plane is None:
        return ""
    text = np.array2string(plane, precision=6, suppress_small=True, max_line_width=100)
    head = f"{label}{_fmt_index(where) if plane.ndim < np.ndim(arr) else ''}"
    return f"\n  {head} =\n" + "\n".join("    " + line for line in text.splitlines())


def _report(ex: _Exercise, case: _Case, number: int, name: str, bad: _Mismatch) -> str:
    call = ", ".join(f"{k} {_describe(v)}" if isinstance(v, np.ndarray) else f"{k}={v!r}"
                     for k, v in case.inputs.items())
    text = (f"{ex.checker} failed on case {number} of {len(ex.cases)}: \"{case.name}\"\n"
            f"  called {name}({call})\n"
            f"  {bad.what}")
    shown = tuple((key, case.inputs[key]) for key in ex.show) if bad.panels else ()
    for label, arr in shown + tuple(bad.panels):
        text += _show(label, arr, bad.where)
    return text + f"\nHint: {bad.hint}"


# ---------------------------------------------------------------------------
# Inputs: seeded, float64, built from small integers wherever ties or exact sums matter
# ---------------------------------------------------------------------------

def _ints(seed: int, shape, low: int, high: int) -> np.ndarray:
    """Integers in [low, high] as float64 (exactly representable, so ties are real ties)."""
    return np.random.default_rng(seed).integers(low, high + 1, size=shape).astype(np.float64)


def _floats(seed: int, shape) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape)


def _grid(rows) -> np.ndarray:
    """A literal 2-D map as a (1, 1, H, W) image."""
    return np.array(rows, dtype=np.float64)[None, None]


def _pool_cases(rows, with_dout: bool) -> Tuple[_Case, ...]:
    """Pooling cases from ``(name, tag, x, kernel_size, stride, padding, hint)`` rows;
    ``dout`` (integers 1..9, so that lost or duplicated gradient shows) is seeded per case."""
    cases = []
    for seed, (name, tag, x, k, s, p, hint) in enumerate(rows):
        Ho, Wo = (core.pool_output_size(n, k, s, p) for n in x.shape[-2:])
        dout = {"dout": _ints(100 + seed, x.shape[:2] + (Ho, Wo), 1, 9)} if with_dout else {}
        cases.append(_Case(name, tag, {**dout, "x": x, "kernel_size": k, "stride": s, "padding": p}, hint))
    return tuple(cases)


# ---------------------------------------------------------------------------
# The core, called with the learner's signatures
# ---------------------------------------------------------------------------

def _relu_backward(dout, x):
    return core.relu_backward(dout, core.relu_forward(x)[1])


def _maxpool_forward(x, kernel_size, stride, padding):
    return core.maxpool2d_forward(x, kernel_size, stride, padding)[0]


def _maxpool_backward(dout, x, kernel_size, stride, padding, ties="first"):
    return core.maxpool2d_backward(dout, core.maxpool2d_forward(x, kernel_size, stride, padding, ties)[1])


def _avgpool_backward(dout, x, kernel_size, stride, padding):
    return core.avgpool2d_backward(dout, core.avgpool2d_forward(x, kernel_size, stride, padding)[1])


def _conv_backward(dout, x, w, stride, padding):
    return core.conv2d_backward(dout, core.conv2d_forward(x, w, None, stride, padding)[1])


# ---------------------------------------------------------------------------
# Classic bugs, reproduced so that a wrong result can be recognised
# ---------------------------------------------------------------------------

def _assigned(backward, footprint):
    """The ``=`` for ``+=`` bug: windows visited in row-major order, each *assigning* its
    ``footprint`` cells (the winner only, or the whole window slice), so the last window wins."""
    def bug(dout, x, kernel_size, stride, padding):
        dx = np.zeros_like(x)
        for idx in np.ndindex(*dout.shape):
            one = np.zeros_like(dout)
            one[idx] = 1.0
            cells = footprint(one, x, kernel_size, stride, padding) != 0
            dx[cells] = (backward(one, x, kernel_size, stride, padding) * dout[idx])[cells]
        return (dx,)
    return bug


def _stride_forgotten(backward, kernel_hw):
    """Window (i, j) placed at (i, j) instead of (i*stride, j*stride)."""
    def bug(dout, x, k, stride, padding):
        if stride == 1:
            return None
        kh, kw = kernel_hw(k)
        sizes = (core.pool_output_size(n, m, 1, padding) for n, m in zip(x.shape[-2:], (kh, kw)))
        full = np.zeros(dout.shape[:-2] + tuple(sizes))
        full[..., :dout.shape[-2], :dout.shape[-1]] = dout
        result = backward(full, x, k, 1, padding)
        return result if isinstance(result, tuple) else (result,)
    return bug


def _padded_by_hand(pool, value, before, after):
    """Max pooling of ``x`` padded by hand with ``value`` (``before``/``after`` times the padding on
    each side of H and W), then pooled without padding: ``value=0`` is the zero-padding bug,
    ``before=0`` the bug of windows starting at ``i*stride`` (the padding ignored)."""
    def bug(*args):
        *dout, x, k, s, p = args
        if p == 0:
            return None
        H, W = x.shape[-2:]
        xp = np.pad(x, [(0, 0)] * (x.ndim - 2) + [(before * p, after * p)] * 2, constant_values=value)
        out = pool(*dout, xp, k, s, 0)
        return (out[..., before * p:before * p + H, before * p:before * p + W] if dout else out,)
    return bug


def _count_exclude_pad(dout, x, kernel_size, stride, padding):
    """Average pooling dividing by the number of real (unpadded) cells of each window."""
    real = core.avgpool2d_forward(np.ones_like(x), kernel_size, stride, padding)[0] * kernel_size ** 2
    return (_avgpool_backward(dout * kernel_size ** 2 / real, x, kernel_size, stride, padding),)


def _pool_kernel(k):
    return k, k


def _conv_kernel(w):
    return w.shape[-2:]


def _conv_dx_with(instead_of_rot180):
    """dx by the rotated-kernel formula with ``instead_of_rot180(w)`` where rot180(w) belongs
    (the core's formula rotates what it is given, so it is given the rotation of that)."""
    def bug(dout, x, w, stride, padding):
        used = instead_of_rot180(w)
        if used is None:
            return None
        dx = core.conv2d_input_grad_rotated(dout, core.rot180(used), x.shape, stride, padding)
        return dx, None, None
    return bug


def _conv_one_image(n):
    """dw and db from a single image of the batch (overwritten, not summed, over the batch)."""
    def bug(dout, x, w, stride, padding):
        m = n % x.shape[0]
        _, dw, db = _conv_backward(dout[m:m + 1], x[m:m + 1], w, stride, padding)
        return None, dw, db
    return bug


def _softmax_rows(logits, shift):
    e = np.exp(logits - shift)
    return e / e.sum(axis=1, keepdims=True)


def _ce_from(logits, labels, shift):
    """(loss, dlogits) with ``shift`` subtracted from the logits instead of each row's max."""
    rows = np.arange(len(labels))
    z = logits - shift
    e = np.exp(z)
    loss = -(z[rows, labels] - np.log(e.sum(axis=1))).mean()
    d = e / e.sum(axis=1, keepdims=True)
    d[rows, labels] -= 1
    return loss, d / len(labels)


def _ce_scaled(factor):
    def bug(logits, labels):
        loss, d = core.softmax_cross_entropy(logits, labels)
        return loss * factor(len(labels)), d * factor(len(labels))
    return bug


# ---------------------------------------------------------------------------
# ReLU (chapter 4)
# ---------------------------------------------------------------------------

_ZERO_HINT = "ReLU'(0) = 0 (PyTorch's convention): the mask is x > 0, not x >= 0; an input of exactly 0 passes no gradient"

_RELU = _Exercise(
    checker="check_relu_backward",
    signature="fn(dout, x) -> dx",
    outputs=("dx",),
    shape_hints={"dx": "dx has the shape of x (and of dout)"},
    reference=_relu_backward,
    bugs=(
        _Bug(_ZERO_HINT, lambda dout, x: (dout * (x >= 0),)),
        _Bug("multiply by the upstream gradient: dx = dout * (x > 0), not the mask alone",
             lambda dout, x: (x > 0,)),
        _Bug("the mask comes from the forward input x (x > 0), not from the sign of dout",
             lambda dout, x: (dout * (dout > 0),)),
        _Bug("that is the forward pass max(x, 0): the backward pass returns dout where x > 0, 0 elsewhere",
             lambda dout, x: (np.maximum(x, 0),)),
    ),
    cases=(
        _Case("positive and negative inputs, upstream gradient of both signs", "mixed signs",
              {"dout": _floats(1, (1, 2, 3, 4)), "x": _floats(2, (1, 2, 3, 4))},
              "dx = dout where x > 0 and 0 where x <= 0"),
        _Case("inputs exactly 0 (ReLU'(0) = 0, as in PyTorch)", "inputs exactly 0",
              {"dout": _ints(3, (2, 1, 3, 3), 1, 9), "x": _ints(4, (2, 1, 3, 3), -1, 1)}, _ZERO_HINT),
        _Case("negative upstream gradient at positive inputs (it passes through unchanged)",
              "negative dout", {"dout": -_ints(5, (1, 1, 4, 4), 1, 9), "x": _ints(6, (1, 1, 4, 4), -2, 2)},
              "where x > 0 the gradient passes through whatever its sign: dx = dout there"),
        _Case("batch 2, 3 channels, non-square 4×5, -0.0 among the inputs", "batch and channels",
              {"dout": _floats(7, (2, 3, 4, 5)),
               "x": np.where(_ints(8, (2, 3, 4, 5), 0, 3) == 0, -0.0, _floats(9, (2, 3, 4, 5)))},
              "dx has the shape of x; every (image, channel, row, column) is treated alike"),
    ),
    show=("x", "dout"),
)


def check_relu_backward(fn):
    """Check a ReLU backward pass (chapter 4).

    ``fn(dout, x) -> dx``: ``x`` is the forward input ``(N, C, H, W)``, ``dout`` the
    upstream gradient of the same shape; return ``dx = dout * (x > 0)`` (ReLU'(0) = 0).
    Returns the summary string (also printed); raises AssertionError at the first wrong case.
    """
    return _run(_RELU, fn)


# ---------------------------------------------------------------------------
# Max pooling (chapters 2 and 3; the vectorised version in chapter 10)
# ---------------------------------------------------------------------------

_TIE_HINT = ("a tie: only the FIRST maximum of a window in row-major order (what np.argmax returns) "
             "receives the gradient, as in PyTorch; the mask x == max gives it to every tied maximum")
_OVERLAP_HINT = ("windows overlap (stride < kernel_size): a cell that wins several windows receives "
                 "the sum of their gradients, so accumulate with += in a loop or np.add.at when "
                 "vectorised, never = (nor a fancy-indexed dx[rows, cols] += ..., which keeps one)")
_PAD_HINT = ("padded cells act as -inf, never as 0: with an all-negative input a zero pad would win "
             "the window; window (i, j) starts at row i*stride - padding of the unpadded input")
_PAD_IGNORED_HINT = ("padding ignored: window (i, j) starts at row i*stride - padding, column j*stride - padding "
                     "of the unpadded input (or pad x with -inf first and start at i*stride)")
_STRIDE_HINT = ("window (i, j) starts at row i*stride - padding, column j*stride - padding; "
                "Ho = (H + 2*padding - kernel_size) // stride + 1, and cells after the last window get 0")

_MAXPOOL_ROWS = (
    ("2×2 windows, stride 2, no ties (the source article's setting)", "2×2 stride 2",
     np.random.default_rng(10).permutation(16).astype(np.float64).reshape(1, 1, 4, 4), 2, 2, 0,
     "each window's gradient goes to the position of its maximum; every other cell gets 0"),
    ("ties: every 2×2 window's maximum appears two or three times (small integers)", "ties",
     _grid([[1, 3, 2, 2], [3, 0, 2, 1], [5, 5, 4, 0], [5, 1, 4, 4]]), 2, 2, 0, _TIE_HINT),
    ("3×3 windows, stride 1: cell (1, 2) wins all four windows", "overlapping windows (3×3 stride 1)",
     _grid([[3, 1, 7, 0], [4, 6, 9, 2], [8, 5, 1, 3], [0, 2, 6, 5]]), 3, 1, 0, _OVERLAP_HINT),
    ("3×3 windows, stride 1, with ties (integers -2..2)", "overlap with ties",
     _ints(11, (1, 1, 5, 5), -2, 2), 3, 1, 0, _OVERLAP_HINT + "; on a tie the first maximum wins"),
    ("padding 1 around an all-negative 3×3 input, 2×2 windows, stride 2", "padding with all-negative inputs",
     -np.random.default_rng(12).permutation(np.arange(1.0, 10.0)).reshape(1, 1, 3, 3), 2, 2, 1, _PAD_HINT),
    ("3×3 windows, stride 2, padding 1, all-negative ties, batch 2", "padding with ties",
     _ints(13, (2, 1, 5, 5), -3, -1), 3, 2, 1, _PAD_HINT),
    ("7×5 input, 2×2 windows, stride 2 (the stride does not divide: the last row is in no window)",
     "sizes not divisible by the stride", _floats(14, (1, 2, 7, 5)), 2, 2, 0, _STRIDE_HINT),
    ("2×2 windows, stride 3 (gaps between the windows)", "stride larger than the kernel",
     _ints(15, (1, 1, 7, 8), 0, 4), 2, 3, 0, _STRIDE_HINT),
    ("3×3 windows, stride 2 on a 7×7 map (neighbours share a row or a column), ties",
     "3×3 stride 2", _ints(16, (1, 1, 7, 7), 0, 3), 3, 2, 0, _OVERLAP_HINT),
    ("batch 2, 3 channels, 2×2 windows, stride 2, ties", "batches and channels",
     _ints(17, (2, 3, 4, 6), -2, 2), 2, 2, 0, "every (image, channel) plane is pooled on its own"),
    ("non-square 6×9 input, 3×3 windows, stride 2, padding 1, batch 2, 2 channels, ties",
     "non-square inputs", _ints(18, (2, 2, 6, 9), -2, 2), 3, 2, 1,
     "rows and columns have their own sizes: Ho from H, Wo from W"),
    ("random floats, batch 3, 2 channels, 2×2 windows, stride 1, padding 1", "random floats",
     _floats(19, (3, 2, 5, 4)), 2, 1, 1, _OVERLAP_HINT),
)

_WINDOW_HINT = "out[n, c, i, j] is the maximum of the kernel_size×kernel_size window at (i, j); " + _STRIDE_HINT
_MAXPOOL_SHAPE_HINT = "Ho = (H + 2*padding - kernel_size) // stride + 1 (and Wo likewise)"

_MAXPOOL_FORWARD = _Exercise(
    checker="check_maxpool_forward",
    signature="fn(x, kernel_size, stride, padding) -> out",
    outputs=("out",),
    shape_hints={"out": f"out is (N, C, Ho, Wo) with {_MAXPOOL_SHAPE_HINT}"},
    reference=_maxpool_forward,
    bugs=(
        _Bug(_PAD_HINT, _padded_by_hand(_maxpool_forward, 0.0, 1, 1)),
        _Bug(_PAD_IGNORED_HINT, _padded_by_hand(_maxpool_forward, -np.inf, 0, 2)),
        _Bug("stride forgotten: " + _STRIDE_HINT,
             lambda x, k, s, p: None if s == 1 else
             (_maxpool_forward(x, k, 1, p)[..., :core.pool_output_size(x.shape[-2], k, s, p),
                                           :core.pool_output_size(x.shape[-1], k, s, p)],)),
    ),
    cases=tuple(_Case(c.name, c.tag, c.inputs, _PAD_HINT if c.inputs["padding"] else _WINDOW_HINT)
                for c in _pool_cases(_MAXPOOL_ROWS, with_dout=False)),
    show=("x",),
)

_MAXPOOL_BACKWARD = _Exercise(
    checker="check_maxpool_backward",
    signature="fn(dout, x, kernel_size, stride, padding) -> dx",
    outputs=("dx",),
    shape_hints={"dx": "dx has the shape of x"},
    reference=_maxpool_backward,
    bugs=(
        _Bug(_TIE_HINT, lambda *a: (_maxpool_backward(*a, ties="all"),)),
        _Bug(_OVERLAP_HINT, _assigned(_maxpool_backward, _maxpool_backward)),
        _Bug("= assigns the whole window slice, zeroing what earlier windows gave: " + _OVERLAP_HINT,
             _assigned(_maxpool_backward, _avgpool_backward)),
        _Bug("two bugs: " + _TIE_HINT + "; and " + _OVERLAP_HINT,
             _assigned(lambda *a: _maxpool_backward(*a, ties="all"), _avgpool_backward)),
        _Bug(_PAD_HINT, _padded_by_hand(_maxpool_backward, 0.0, 1, 1)),
        _Bug(_PAD_IGNORED_HINT, _padded_by_hand(_maxpool_backward, -np.inf, 0, 2)),
        _Bug("stride forgotten: " + _STRIDE_HINT, _stride_forgotten(_maxpool_backward, _pool_kernel)),
        _Bug("multiply the mask by dout: each window sends its own upstream gradient, not 1",
             lambda dout, x, k, s, p: (_maxpool_backward(np.ones_like(dout), x, k, s, p),)),
    ),
    cases=_pool_cases(_MAXPOOL_ROWS, with_dout=True),
    show=("x", "dout"),
)


def check_maxpool_forward(fn):
    """Check a max-pooling forward pass (chapter 2; vectorised in chapter 10 "make it fast").

    ``fn(x, kernel_size, stride, padding) -> out``: ``x`` is ``(N, C, H, W)``, the three
    geometry arguments are ints, padding acts as -inf; ``out`` is ``(N, C, Ho, Wo)``.
    Returns the summary string (also printed); raises AssertionError at the first wrong case.
    """
    return _run(_MAXPOOL_FORWARD, fn)


def check_maxpool_backward(fn):
    """Check a max-pooling backward pass (chapters 2 and 3; vectorised in chapter 10).

    ``fn(dout, x, kernel_size, stride, padding) -> dx``: find each window's winner from
    ``x`` (the first maximum in row-major order, padding as -inf) and add the window's
    ``dout`` onto it (``+=``: overlapping windows add up).  ``dx`` has the shape of ``x``.
    Returns the summary string (also printed); raises AssertionError at the first wrong case.
    """
    return _run(_MAXPOOL_BACKWARD, fn)


# ---------------------------------------------------------------------------
# Average pooling (chapter 9)
# ---------------------------------------------------------------------------

_SHARE_HINT = "every cell of a window receives dout / kernel_size**2 (the average's derivative)"
_INCLUDE_PAD_HINT = ("count_include_pad=True (PyTorch's default): every window divides by kernel_size**2, "
                     "padded cells included, even where fewer real cells are inside")

_AVGPOOL_ROWS = (
    ("2×2 windows, stride 2", "2×2 stride 2", _ints(20, (1, 1, 4, 4), 0, 9), 2, 2, 0, _SHARE_HINT),
    ("3×3 windows, stride 1: the centre cell is in all nine windows", "overlapping windows (3×3 stride 1)",
     _ints(21, (1, 1, 5, 5), 0, 9), 3, 1, 0, _OVERLAP_HINT.replace("wins", "belongs to")),
    ("padding 1 around a 3×3 input, 2×2 windows, stride 2", "padding (count_include_pad=True)",
     _ints(22, (1, 1, 3, 3), -9, -1), 2, 2, 1, _INCLUDE_PAD_HINT),
    ("3×3 windows, stride 2, padding 1, batch 2", "padding with overlap",
     _ints(23, (2, 1, 5, 5), 0, 9), 3, 2, 1, _INCLUDE_PAD_HINT),
    ("7×5 input, 2×2 windows, stride 2 (the stride does not divide: the last row is in no window)",
     "sizes not divisible by the stride", _floats(24, (1, 2, 7, 5)), 2, 2, 0, _STRIDE_HINT),
    ("2×2 windows, stride 3 (gaps between the windows)", "stride larger than the kernel",
     _ints(25, (1, 1, 7, 8), 0, 4), 2, 3, 0, _STRIDE_HINT),
    ("non-square 6×9 input, 3×3 windows, stride 2, padding 1, batch 2, 3 channels",
     "batches, channels, non-square inputs", _ints(26, (2, 3, 6, 9), 0, 9), 3, 2, 1, _INCLUDE_PAD_HINT),
    ("random floats, batch 3, 2 channels, 2×2 windows, stride 1, padding 1", "random floats",
     _floats(27, (3, 2, 5, 4)), 2, 1, 1, _INCLUDE_PAD_HINT),
)

_AVGPOOL_BACKWARD = _Exercise(
    checker="check_avgpool_backward",
    signature="fn(dout, x, kernel_size, stride, padding) -> dx",
    outputs=("dx",),
    shape_hints={"dx": "dx has the shape of x"},
    reference=_avgpool_backward,
    bugs=(
        _Bug("your windows divide by their number of real cells (count_include_pad=False); here, as in "
             "PyTorch's default count_include_pad=True, every window divides by kernel_size**2, padded "
             "cells included", _count_exclude_pad),
        _Bug(_OVERLAP_HINT.replace("wins", "belongs to"), _assigned(_avgpool_backward, _avgpool_backward)),
        _Bug("stride forgotten: " + _STRIDE_HINT, _stride_forgotten(_avgpool_backward, _pool_kernel)),
        _Bug("divide by kernel_size**2, the number of cells in a window: " + _SHARE_HINT,
             lambda dout, x, k, s, p: (_avgpool_backward(dout * k, x, k, s, p),)),
        _Bug("divide by kernel_size**2: " + _SHARE_HINT,
             lambda dout, x, k, s, p: (_avgpool_backward(dout * k * k, x, k, s, p),)),
    ),
    cases=_pool_cases(_AVGPOOL_ROWS, with_dout=True),
    show=("dout",),
)


def check_avgpool_backward(fn):
    """Check an average-pooling backward pass (chapter 9).

    ``fn(dout, x, kernel_size, stride, padding) -> dx``: every cell of a window receives
    ``dout / kernel_size**2`` (padded cells counted, ``count_include_pad=True``), summed over
    the windows that contain it.  ``x`` only gives the shape.  ``dx`` has the shape of ``x``.
    Returns the summary string (also printed); raises AssertionError at the first wrong case.
    """
    return _run(_AVGPOOL_BACKWARD, fn)


# ---------------------------------------------------------------------------
# Convolution (chapter 7)
# ---------------------------------------------------------------------------

_ROT_HINT = ("dx is the full correlation of dout with the kernel rotated by 180 degrees, "
             "rot180(w) = w[..., ::-1, ::-1]; equivalently dx[window] += w * dout for every window")
_BATCH_HINT = ("dw and db sum over every image of the batch (+= inside the loop over n, or "
               ".sum(axis=0)); yours keeps the contribution of one image")
_CONV_HINT = ("dx[n, :, window] += w[f] * dout[n, f, i, j]; dw[f] += x[n, :, window] * dout[n, f, i, j]; "
              "db[f] = dout[:, f].sum()")


def _conv_case(name, tag, seed, x_shape, w, stride, padding, hint, floats=False):
    """A convolution case; ``w`` is a literal kernel or the shape of a seeded one."""
    def draw(offset, shape):
        return _floats(seed + offset, shape) if floats else _ints(seed + offset, shape, -3, 3)
    w = draw(1, w) if isinstance(w, tuple) else w
    Ho, Wo = (core.pool_output_size(n, k, stride, padding) for n, k in zip(x_shape[2:], w.shape[2:]))
    inputs = {"dout": draw(2, (x_shape[0], w.shape[0], Ho, Wo)), "x": draw(0, x_shape), "w": w,
              "stride": stride, "padding": padding}
    return _Case(name, tag, inputs, hint)


_CONV_BACKWARD = _Exercise(
    checker="check_conv_backward",
    signature="fn(dout, x, w, stride, padding) -> (dx, dw, db)",
    outputs=("dx", "dw", "db"),
    shape_hints={"dx": "dx has the shape of x (N, C, H, W): crop the padding off",
                 "dw": "dw has the shape of w (F, C, kh, kw)",
                 "db": "db has one entry per filter, shape (F,): dout.sum(axis=(0, 2, 3))"},
    reference=_conv_backward,
    bugs=(
        _Bug("the kernel is not rotated: " + _ROT_HINT, _conv_dx_with(lambda w: w)),
        _Bug("rot180(w) is not the transpose: flip both spatial axes, w[..., ::-1, ::-1], do not swap "
             "them (w.T, swapaxes); dx is the full correlation of dout with rot180(w)",
             _conv_dx_with(lambda w: w.swapaxes(-1, -2) if w.shape[-1] == w.shape[-2] else None)),
        _Bug("dx[:, c] sums dout[:, f] correlated with rot180(w[f, c]) over the filters f: "
             "the kernel's channel axes swap roles (w.transpose(1, 0, 2, 3))",
             _conv_dx_with(lambda w: core.rot180(w.transpose(1, 0, 2, 3))
                           if w.shape[0] == w.shape[1] > 1 else None)),
        _Bug("stride forgotten: window (i, j) starts at row i*stride - padding, column j*stride - padding",
             _stride_forgotten(_conv_backward, _conv_kernel)),
        _Bug(_BATCH_HINT, _conv_one_image(0)),
        _Bug(_BATCH_HINT, _conv_one_image(-1)),
        _Bug("dw and db are sums over the batch, not means (the 1/N belongs to the loss)",
             lambda dout, x, w, s, p: (None, *(g / len(x) for g in _conv_backward(dout, x, w, s, p)[1:]))),
        _Bug("db[f] is the sum of dout[:, f] over the batch and both spatial axes, not their mean",
             lambda dout, x, w, s, p: (None, None, dout.mean(axis=(0, 2, 3)))),
        _Bug("dw is not rotated: dw[f, c] is the correlation of x[:, c] with dout[:, f], no 180-degree flip",
             lambda dout, x, w, s, p: (None, core.rot180(_conv_backward(dout, x, w, s, p)[1]), None)),
    ),
    cases=(
        _conv_case("one 3×3 kernel, stride 1, no padding; the kernel is asymmetric, so rot180(w) ≠ wᵀ",
                   "asymmetric kernel (rot180 ≠ transpose)", 30, (1, 1, 5, 5),
                   np.arange(1.0, 10.0).reshape(1, 1, 3, 3), 1, 0, _ROT_HINT),
        _conv_case("padding 1 (zero padding; dx is cropped back to the input's size)", "padding",
                   33, (1, 1, 4, 4), (1, 1, 3, 3), 1, 1,
                   "pad x with zeros for the windows, then crop dx back: dx = dx_padded[..., p:p+H, p:p+W]"),
        _conv_case("stride 2 on a 7×6 input with a 3×3 kernel (the last column is never read)",
                   "sizes not divisible by the stride", 36, (1, 1, 7, 6), (1, 1, 3, 3), 2, 0,
                   "window (i, j) starts at row i*stride, column j*stride; cells no window reads get 0"),
        _conv_case("batch of 3 (dw and db sum over the batch)", "batch of 3", 39, (3, 1, 4, 4),
                   (1, 1, 2, 2), 1, 0, _BATCH_HINT.replace("; yours keeps the contribution of one image", "")),
        _conv_case("F ≠ C: 2 input channels, 3 filters", "F ≠ C", 42, (1, 2, 4, 5), (3, 2, 3, 3), 1, 0,
                   "dx[n, c] sums over the filters f; dw[f, c] pairs filter f with input channel c"),
        _conv_case("non-square 2×3 kernel on a 5×7 input, stride 2, padding 1, batch 2, F = C = 2",
                   "non-square kernel and input", 45, (2, 2, 5, 7), (2, 2, 2, 3), 2, 1,
                   "rows use kh, columns use kw: Ho = (H + 2p - kh) // s + 1, Wo = (W + 2p - kw) // s + 1"),
        _conv_case("everything at once: batch 2, C = 3, F = 2, 3×2 kernel, stride 2, padding 2, random floats",
                   "random floats", 48, (2, 3, 6, 5), (2, 3, 3, 2), 2, 2, _CONV_HINT, floats=True),
    ),
    show=(),
)


def check_conv_backward(fn):
    """Check a convolution backward pass (chapter 7).

    ``fn(dout, x, w, stride, padding) -> (dx, dw, db)``: the forward pass is the
    cross-correlation ``out[n, f] = sum_c x[n, c] (*) w[f, c] + b[f]`` with zero padding;
    ``x`` is ``(N, C, H, W)``, ``w`` is ``(F, C, kh, kw)`` (possibly non-square, F ≠ C),
    ``dout`` is ``(N, F, Ho, Wo)``.  Return the three gradients with the shapes of x, w and b.
    Returns the summary string (also printed); raises AssertionError at the first wrong case.
    """
    return _run(_CONV_BACKWARD, fn)


# ---------------------------------------------------------------------------
# Softmax + cross-entropy (chapter 6)
# ---------------------------------------------------------------------------

_N_HINT = "the loss is the batch MEAN, so divide by the batch size N exactly once: dlogits = (p - one_hot) / N"
_MAX_HINT = ("exp overflows for large logits: subtract each row's max first, "
             "z - z.max(axis=1, keepdims=True) (softmax does not change)")

_SOFTMAX_CE = _Exercise(
    checker="check_softmax_cross_entropy",
    signature="fn(logits, labels) -> (loss, dlogits)",
    outputs=("loss", "dlogits"),
    shape_hints={"loss": "the loss is one number (a float or a 0-d array): the mean over the batch",
                 "dlogits": "dlogits has the shape of logits (N, K)"},
    reference=core.softmax_cross_entropy,
    bugs=(
        _Bug("missing /N: " + _N_HINT, _ce_scaled(lambda n: n)),
        _Bug("/N applied twice: " + _N_HINT, _ce_scaled(lambda n: 1 / n)),
        _Bug("subtract the max of each row (axis=1, keepdims=True), not of the whole array: a row far "
             "below the global max underflows to 0/0",
             lambda z, y: _ce_from(z, y, z.max())),
        _Bug("no max subtraction: " + _MAX_HINT,
             lambda z, y: _ce_from(z, y, 0.0)),
        _Bug("log(softmax) underflows to log(0) = -inf: compute log p = shifted - log(sum(exp(shifted))) "
             "from the shifted logits",
             lambda z, y: (-np.log(_softmax_rows(z, z.max(axis=1, keepdims=True))[np.arange(len(y)), y]).mean(),
                           None)),
        _Bug("subtract 1 at the label: dlogits = (p - one_hot(labels)) / N",
             lambda z, y: (None, _softmax_rows(z, z.max(axis=1, keepdims=True)) / len(y))),
    ),
    cases=(
        _Case("one example, 3 classes", "one example",
              {"logits": np.array([[2.0, 1.0, 0.1]]), "labels": np.array([0])},
              "loss = -log softmax(logits)[label]; dlogits = softmax(logits) - one_hot(label)"),
        _Case("batch of 4, 5 classes (the loss is the batch mean)", "a batch of 4",
              {"logits": _floats(50, (4, 5)), "labels": np.array([0, 3, 4, 1])}, _N_HINT),
        _Case("logits of ±1000: rows [1000, 0, -1000] and [-1000, 1000, 0]", "logits of ±1000",
              {"logits": np.array([[1000.0, 0.0, -1000.0], [-1000.0, 1000.0, 0.0]]), "labels": np.array([2, 1])},
              _MAX_HINT),
        _Case("one row near +1000, one near -1000 (subtract each row's own max)", "rows at ±1000",
              {"logits": np.array([[1000.0, 999.0, 998.0], [-1000.0, -1002.0, -1001.0]]),
               "labels": np.array([0, 2])}, _MAX_HINT + "; each row its own max"),
        _Case("equal logits in a row (a uniform softmax), labels 0 and K-1", "equal logits",
              {"logits": np.array([[0.0, 0.0, 0.0, 0.0], [3.0, 3.0, 3.0, 3.0], [1.0, -1.0, 2.0, -2.0]]),
               "labels": np.array([0, 3, 3])}, "p = 1/K in a row of equal logits; the label still gets p - 1"),
        _Case("batch of 6, 10 classes, logits of size ~10", "a batch of 6, 10 classes",
              {"logits": 10 * _floats(51, (6, 10)), "labels": np.array([9, 0, 3, 3, 7, 1])}, _N_HINT),
    ),
    show=("logits", "labels"),
)


def check_softmax_cross_entropy(fn):
    """Check softmax + cross-entropy, loss and gradient (chapter 6).

    ``fn(logits, labels) -> (loss, dlogits)``: ``logits`` is ``(N, K)`` floats, ``labels``
    ``(N,)`` ints in ``[0, K)``; ``loss`` is the mean over the batch of ``-log softmax(logits)[label]``
    and ``dlogits = (softmax(logits) - one_hot(labels)) / N``.  It must stay finite for logits of +-1000.
    Returns the summary string (also printed); raises AssertionError at the first wrong case.
    """
    return _run(_SOFTMAX_CE, fn)
