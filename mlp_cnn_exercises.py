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
* A case fails: it raises ``AssertionError`` naming the case and the call, showing the
  first wrong value (expected vs got, with the surrounding plane) and a one-line hint.
  A hint names a bug only on evidence: each checker knows the classic bugs of its
  exercise (``=`` for ``+=``, the tie mask ``x == max``, zero padding in max pooling, a
  kernel not rotated, a missing ``/N``, ...), computes what each of them returns on the
  failing case, and names the bug whose result equals the reader's (a bug whose other
  outputs agree with the reader's too goes first; all of them when several coincide).
  When none does, the hint says so, points at the first wrong cell (which windows hold
  it, which cells it depends on) and at what the case exercises, without guessing a
  cause.  A result of the wrong shape is described axis by axis, with the size each
  usual mistake gives (padding not cropped off, the stride ignored, rows and columns
  swapped, ...).  NaN and infinities are compared by where they are: a NaN never
  matches an infinity.  An exception raised by the reader's function, a result of the
  wrong type or dtype, or an input modified in place fail the same way.
* The function still raises ``NotImplementedError`` on the first case (an unfilled
  stub): the checker prints "not implemented yet" and returns ``None``, so a chapter
  runs from top to bottom before the reader has written anything.

The semantics are PyTorch's: images are ``(N, C, H, W)``; ``kernel_size`` (k), ``stride``
(s) and ``padding`` (p) are ints; in max pooling the first maximum of a window (row-major
order) gets the gradient and padding acts as -inf; average pooling divides by k² including
padded cells; ReLU'(0) = 0; cross-entropy is a batch mean.  In the docstrings ∂L/∂X is the
gradient of the loss L with respect to an array X (it has X's shape); in code it is ``dx``,
and ``dout`` is ∂L/∂Y for the layer's output Y.

:func:`check_numerical_gradient` checks the reader's own finite-difference gradient (the
tool that proves every other gradient), :func:`relative_error` is the comparison the book
uses with it, and :func:`suspect_layers` hands out four layers, one with a planted bug,
for the reader's gradient check to find.
"""
from __future__ import annotations

import textwrap
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

import mlp_cnn_core as core

__all__ = [
    "check_relu_backward",
    "check_maxpool_forward",
    "check_maxpool_backward",
    "check_avgpool_backward",
    "check_conv_backward",
    "check_softmax_cross_entropy",
    "check_numerical_gradient",
    "relative_error",
    "suspect_layers",
    "SuspectLayer",
    "CheckSummary",
]

RTOL, ATOL = 1e-7, 1e-9  # float64 inputs; most cases are small integers, compared (near) exactly

NO_KNOWN_BUG = "no bug this checker knows gives exactly this result"


# ---------------------------------------------------------------------------
# What a checker is made of: cases, known bugs, one runner
# ---------------------------------------------------------------------------

@dataclass(frozen=True)
class _Case:
    name: str    # shown when the case fails: what it is and why it is there
    tag: str     # a few words for the summary line
    inputs: Dict[str, Any]  # the learner's arguments, in order
    focus: str   # what the case exercises, said without naming a bug (the neutral hint's pointer)


@dataclass(frozen=True)
class _Bug:
    hint: str
    fn: Callable[..., Optional[tuple]]  # the learner's signature -> a result per output (None: the reference's)
    family: str = ""        # variants of one mistake: when several match, the first one's hint is given
    compound: bool = False  # two bugs at once: named only when no single bug matches


def _no_sizes(case: _Case, out: str, axis: int) -> Dict[int, str]:
    return {}


def _copy_inputs(case: _Case) -> Dict[str, Any]:
    """The learner's arguments: copies of the case's arrays (same memory layout), the rest as is."""
    return {k: (np.copy(v, order="K") if isinstance(v, np.ndarray) else v) for k, v in case.inputs.items()}


@dataclass(frozen=True)
class _Exercise:
    checker: str
    signature: str
    outputs: Tuple[str, ...]
    axes: Dict[str, str]      # each output's shape, in words
    reference: Callable[..., Any]  # the core, wrapped to the learner's signature
    bugs: Tuple[_Bug, ...]
    cases: Tuple[_Case, ...]
    show: Tuple[str, ...]     # inputs printed next to a wrong result
    locate: Callable[[_Case, str, tuple], str]  # what the first wrong cell depends on
    sizes: Callable[[_Case, str, int], Dict[int, str]] = _no_sizes  # sizes the usual mistakes give an axis
    rtol: float = RTOL
    atol: float = ATOL
    prepare: Callable[[_Case], Dict[str, Any]] = _copy_inputs
    # more evidence than the result: a hint from the arguments after the call (f's recorded points)
    inspect: Optional[Callable[[_Case, Dict[str, Any], np.ndarray], Optional[str]]] = None
    # the hint for an input changed in place, from its values before and after (None: the generic one)
    changed: Optional[Callable[[str, np.ndarray, np.ndarray, _Case], Optional[str]]] = None


class CheckSummary(str):
    """The summary a checker returns.  It is printed by the checker already (wrapped at 88
    characters, the book's line length: :meth:`lines`), so a notebook cell that ends with the
    call does not display it a second time."""

    def lines(self) -> str:
        """The summary as printed: lines of at most 88 characters, the next ones indented."""
        return textwrap.fill(self, width=88, subsequent_indent="  ", break_on_hyphens=False)

    def _ipython_display_(self) -> None:
        pass


class _Mismatch(Exception):
    """A failed case: what is wrong, the hint, and the arrays to print (their plane ``where``)."""

    def __init__(self, what: str, hint: str, panels: tuple = (), where: tuple = ()):
        super().__init__(what)
        self.what, self.hint, self.panels, self.where = what, hint, panels, where


class _BadCall(ValueError):
    """Raised by an argument of the learner's function that was called the wrong way."""

    def __init__(self, message: str, hint: str):
        super().__init__(message)
        self.hint = hint


def _as_tuple(result: Any, n: int) -> tuple:
    return (result,) if n == 1 else tuple(result)


def _run(ex: _Exercise, fn: Any) -> Optional[CheckSummary]:
    """Run ``fn`` on every case of ``ex``; raise AssertionError at the first failure."""
    if not callable(fn):
        raise TypeError(f"{ex.checker}: fn must be a function {ex.signature}, "
                        f"got {type(fn).__name__} {_short(fn)}")
    name = getattr(fn, "__name__", "your function")
    for number, case in enumerate(ex.cases, 1):
        args = ex.prepare(case)
        try:
            result = fn(*args.values())
        except NotImplementedError as err:
            if number == 1:
                print(f"not implemented yet: fill in {name} above, then run this cell again")
                return None
            raise AssertionError(_report(ex, case, number, name, _Mismatch(
                f"{name} raised NotImplementedError: {err}",
                f"this case is not handled yet; it exercises {case.focus}"))) from err
        except Exception as err:
            hint = err.hint if isinstance(err, _BadCall) else (
                f"the error comes from your function (the traceback above shows the line); "
                f"this case exercises {case.focus}")
            kind = "ValueError" if isinstance(err, _BadCall) else type(err).__name__
            raise AssertionError(_report(ex, case, number, name, _Mismatch(
                f"{name} raised {kind}: {err}", hint))) from err
        try:
            _check_unchanged(ex, case, args)
            _compare(ex, case, args, result)
        except _Mismatch as bad:
            raise AssertionError(_report(ex, case, number, name, bad)) from None
    tags = list(dict.fromkeys(case.tag for case in ex.cases))
    summary = CheckSummary(f"{ex.checker}: {len(ex.cases)} cases passed — {', '.join(tags)}")
    print(summary.lines())
    return summary


def _check_unchanged(ex: _Exercise, case: _Case, args: Dict[str, Any]) -> None:
    for key, original in case.inputs.items():
        if not isinstance(original, np.ndarray) or np.array_equal(args[key], original, equal_nan=True):
            continue
        if args[key].shape != original.shape:
            raise _Mismatch(f"your function changed the shape of its input {key} in place, from "
                            f"{original.shape} to {args[key].shape}",
                            f"the caller still needs {key}: reshape a copy or a view, never {key} itself")
        idx = _first(args[key] != original)
        hint = ex.changed(key, original, args[key], case) if ex.changed else None
        before, after = _num(original[idx]), _num(args[key][idx])
        if before == after:  # a change in the last digits: show them all
            before, after = repr(float(original[idx])), repr(float(args[key][idx]))
        raise _Mismatch(
            f"your function changed its input {key} in place: {key}{_fmt_index(idx)} was "
            f"{before}, is now {after}",
            hint or f"the caller still needs {key}: work on a copy ({key}.copy()) or build a new array "
                    f"instead of assigning into {key} (x[...] = ..., x *= ..., np.maximum(..., out=x))",
            ((f"{key} before your call", original), (f"{key} after your call", args[key])), idx[:-2])


def _close(ex: _Exercise, got: np.ndarray, expected: np.ndarray) -> np.ndarray:
    return np.isclose(got, expected, rtol=ex.rtol, atol=ex.atol)


def _compare(ex: _Exercise, case: _Case, args: Dict[str, Any], result: Any) -> None:
    expected = tuple(np.asarray(e, dtype=np.float64)
                     for e in _as_tuple(ex.reference(**case.inputs), len(ex.outputs)))
    got = _result_arrays(ex, result)
    for k, (out, exp, arr) in enumerate(zip(ex.outputs, expected, got)):
        if arr.shape != exp.shape:
            raise _Mismatch(_shape_what(ex, out, arr.shape, exp.shape), _shape_hint(ex, case, k, got, expected))
        close = _close(ex, arr.astype(np.float64), exp)
        if not close.all():
            idx = _first(~close)
            what = (f"{out}{_fmt_index(idx)}: expected {_num(exp[idx])}, got {_num(arr[idx])} "
                    f"({np.count_nonzero(~close)} of {close.size} values differ{_nonfinite(arr, exp)})"
                    f"{_others(ex, k, expected, got)}")
            hint = _diagnose(ex, case, args, k, got, expected, idx)
            raise _Mismatch(what, hint, ((f"expected {out}", exp), (f"your {out}", arr)), idx[:-2])
        if arr.dtype != np.float64:
            raise _Mismatch(f"{out} has dtype {arr.dtype}, expected float64 (the inputs' dtype)",
                            _dtype_hint(out, arr))


def _nonfinite(arr: np.ndarray, exp: np.ndarray) -> str:
    """Where the learner's result holds NaN or infinities the reference does not."""
    arr = arr.astype(np.float64)
    parts = []
    for label, mask in (("NaN", np.isnan(arr) & ~np.isnan(exp)), ("inf", np.isposinf(arr) & ~np.isposinf(exp)),
                        ("-inf", np.isneginf(arr) & ~np.isneginf(exp))):
        if mask.any():
            parts.append(f"{np.count_nonzero(mask)} {label}")
    return f"; yours holds {' and '.join(parts)} where the expected values are finite" if parts else ""


def _others(ex: _Exercise, k: int, expected: tuple, got: tuple) -> str:
    """The state of the other outputs: "dw and db are right" is evidence too."""
    if len(ex.outputs) == 1:
        return ""
    right, wrong = [], []
    for j, (out, exp, arr) in enumerate(zip(ex.outputs, expected, got)):
        if j == k:
            continue
        ok = arr.shape == exp.shape and bool(_close(ex, arr.astype(np.float64), exp).all())
        (right if ok else wrong).append(out)
    text = []
    if right:
        text.append(f"your {' and '.join(right)} {'is' if len(right) == 1 else 'are'} right")
    if wrong:
        text.append(f"{' and '.join(wrong)} {'is' if len(wrong) == 1 else 'are'} wrong too")
    return "; " + ", ".join(text)


def _dtype_hint(out: str, arr: np.ndarray) -> str:
    return (f"{out} has dtype {arr.dtype}: compute in float64 like the inputs (np.zeros_like(x) keeps "
            f"x's dtype; np.zeros(shape) is float64; dtype=int truncates, float32 rounds)")


def _result_arrays(ex: _Exercise, result: Any) -> tuple:
    outs = ex.outputs
    if len(outs) > 1 and not (isinstance(result, (tuple, list)) and len(result) == len(outs)):
        raise _Mismatch(f"expected a tuple ({', '.join(outs)}), got {_short(result)}",
                        f"return the {len(outs)} results as a tuple: return {', '.join(outs)}")
    arrays = []
    for out, value in zip(outs, _as_tuple(result, len(outs))):
        arr = np.asarray(value)
        if arr.dtype.kind not in "biuf":
            raise _Mismatch(f"{out} is {_short(value)}, not an array of numbers",
                            f"return {out} as a numpy array of floats ({ex.axes[out]})")
        arrays.append(arr)
    return tuple(arrays)


# --- diagnosis: a bug is named only when its result equals the learner's --------------------

def _models(ex: _Exercise, case: _Case) -> List[Tuple[_Bug, tuple]]:
    """What each known bug returns on ``case``, one entry per output (``None``: the bug leaves
    that output as the reference computes it); bugs that raise or do not apply are left out."""
    found = []
    for bug in ex.bugs:
        try:
            with np.errstate(all="ignore"):
                wrong = bug.fn(*_copy_inputs(case).values())
        except Exception:  # the bug raises on this case (as the learner's code would): no result
            continue
        if wrong is not None:
            found.append((bug, tuple(None if w is None else np.asarray(w, dtype=np.float64) for w in wrong)))
    return found


def _matching(ex: _Exercise, case: _Case, k: int, got: tuple, expected: tuple,
              same: Callable[[np.ndarray, np.ndarray], bool]) -> List[str]:
    """The hints of the bugs whose output ``k`` is ``same`` as the learner's.  Bugs whose other
    outputs also equal the learner's (an output a bug leaves alone must be right) come first:
    when there are any, only they are named; a single bug goes before two bugs at once, and of
    several variants of one mistake the first is named."""
    matches, consistent = [], []
    for bug, wrong in _models(ex, case):
        if wrong[k] is None or not same(got[k], wrong[k]):
            continue
        matches.append(bug)
        if all(_same(ex, got[j], expected[j] if wrong[j] is None else wrong[j])
               for j in range(len(got)) if j != k):
            consistent.append(bug)
    found = consistent or matches
    if any(not bug.compound for bug in found):
        found = [bug for bug in found if not bug.compound]
    named, families = [], set()
    for bug in found:
        if bug.family and bug.family in families:
            continue
        families.add(bug.family)
        named.append(bug.hint)
    return named


def _same(ex: _Exercise, got: np.ndarray, wrong: np.ndarray) -> bool:
    """Equal within tolerance, NaN where NaN, +inf where +inf, -inf where -inf."""
    got = got.astype(np.float64)
    if got.shape != wrong.shape:
        return False
    for test in (np.isnan, np.isposinf, np.isneginf):
        if not np.array_equal(test(got), test(wrong)):
            return False
    finite = np.isfinite(got)
    return bool(np.allclose(got[finite], wrong[finite], rtol=ex.rtol, atol=ex.atol))


def _named(out: str, hints: Sequence[str]) -> str:
    hints = list(dict.fromkeys(hints))
    if len(hints) == 1:
        return hints[0]
    listed = "; ".join(f"({n}) {h}" for n, h in enumerate(hints, 1))
    return f"your {out} is what each of these bugs gives on this case: {listed}"


def _diagnose(ex: _Exercise, case: _Case, args: Dict[str, Any], k: int, got: tuple, expected: tuple,
              idx: tuple) -> str:
    out, arr, exp = ex.outputs[k], got[k], expected[k]
    if arr.dtype.kind in "fiu" and arr.dtype != np.float64 and _same(ex, arr, exp.astype(arr.dtype).astype(np.float64)):
        return _dtype_hint(out, arr)  # the right values, rounded or truncated by the dtype
    if ex.inspect is not None:
        seen = ex.inspect(case, args, arr)
        if seen:
            return seen
    matches = _matching(ex, case, k, got, expected, lambda a, b: _same(ex, a, b))
    if matches:
        return _named(out, matches)
    return (f"{NO_KNOWN_BUG}. Start at {out}{_fmt_index(idx)}: {ex.locate(case, out, idx)}. "
            f"This case exercises {case.focus}")


def _shape_what(ex: _Exercise, out: str, got: tuple, exp: tuple) -> str:
    what = f"{out} has shape {got}, expected {exp}"
    if len(got) != len(exp):
        return what + f" ({len(got)} ax{'i' if len(got) == 1 else 'e'}s instead of {len(exp)})"
    diffs = [f"axis {a} has {g} instead of {e} ({abs(g - e)} {'more' if g > e else 'fewer'})"
             for a, (g, e) in enumerate(zip(got, exp)) if g != e]
    return what + ": " + ", ".join(diffs)


def _shape_hint(ex: _Exercise, case: _Case, k: int, got: tuple, expected: tuple) -> str:
    out, arr, exp = ex.outputs[k], got[k], expected[k]
    exact = _matching(ex, case, k, got, expected, lambda a, b: _same(ex, a, b))
    if exact:
        return _named(out, exact)
    shaped = _matching(ex, case, k, got, expected, lambda a, b: a.shape == b.shape)
    facts = []
    got_shape, exp_shape = arr.shape, exp.shape
    if len(got_shape) == len(exp_shape) >= 2 and got_shape == exp_shape[:-2] + exp_shape[:-3:-1]:
        facts.append("Its last two axes are swapped (rows and columns)")
    elif len(got_shape) == len(exp_shape) and sorted(got_shape) == sorted(exp_shape):
        facts.append("The right sizes in another order")
    elif len(got_shape) == len(exp_shape):
        for a, (g, e) in enumerate(zip(got_shape, exp_shape)):
            if g != e and g in ex.sizes(case, out, a):
                facts.append(f"Axis {a}: {g} is {ex.sizes(case, out, a)[g]}")
    elif int(np.prod(got_shape)) == int(np.prod(exp_shape)):
        facts.append(f"The right number of entries ({int(np.prod(exp_shape))}) in another shape")
    shaped = list(dict.fromkeys(shaped))
    if shaped:
        facts.append("That shape is also what " + ("this gives: " if len(shaped) == 1 else "each of these gives: ")
                     + "; ".join(shaped))
    return ". ".join([f"{out} is {ex.axes[out]}"] + facts)


# --- formatting --------------------------------------------------------------

def _first(mask: np.ndarray) -> tuple:
    return tuple(int(i) for i in np.argwhere(mask)[0]) if mask.ndim else ()


def _fmt_index(idx: tuple) -> str:
    return f"[{', '.join(map(str, idx))}]" if idx else ""


def _num(v: Any) -> str:
    return f"{float(v):.10g}"


def _short(v: Any) -> str:
    if isinstance(v, np.ndarray):
        return f"an array of shape {v.shape} and dtype {v.dtype}"
    text = repr(v)
    return f"{type(v).__name__} {text[:60]}{'...' if len(text) > 60 else ''}"


def _describe(value: Any) -> str:
    if isinstance(value, np.ndarray):
        return f"shape {value.shape}"
    return repr(value)


def _plane(arr: np.ndarray, where: tuple) -> Optional[np.ndarray]:
    """The 2-D plane ``arr[where]`` (or all of ``arr``) when it is small enough to print."""
    if arr.ndim > 2 and len(where) == arr.ndim - 2:
        arr = arr[where]
    return arr if 0 < arr.ndim <= 2 and arr.size <= 100 else None


def _show(label: str, arr: Any, where: tuple) -> str:
    arr = np.asarray(arr)
    plane = _plane(arr.astype(np.float64) if arr.dtype == bool else arr, where)
    if plane is None:
        return ""
    text = np.array2string(plane, precision=6, suppress_small=True, max_line_width=100)
    head = f"{label}{_fmt_index(where) if plane.ndim < np.ndim(arr) else ''}"
    return f"\n  {head} =\n" + "\n".join("    " + line for line in text.splitlines())


def _report(ex: _Exercise, case: _Case, number: int, name: str, bad: _Mismatch) -> str:
    def arg(k: str, v: Any) -> str:
        if isinstance(v, np.ndarray):
            return f"{k} {_describe(v)}"
        return k if callable(v) else f"{k}={v!r}"
    call = ", ".join(arg(k, v) for k, v in case.inputs.items())
    text = (f"{ex.checker} failed on case {number} of {len(ex.cases)}: \"{case.name}\"\n"
            f"  called {name}({call})\n"
            f"  {bad.what}")
    labels = {label for label, _ in bad.panels}
    shown = tuple((key, case.inputs[key]) for key in ex.show
                  if f"{key} before your call" not in labels) if bad.panels else ()
    for label, arr in shown + tuple(bad.panels):
        text += _show(label, arr, bad.where)
    return text + f"\nHint: {bad.hint}"


# ---------------------------------------------------------------------------
# Inputs: seeded, float64, built from small integers wherever ties or exact sums matter
# ---------------------------------------------------------------------------

def _ints(seed: int, shape: Tuple[int, ...], low: int, high: int) -> np.ndarray:
    """Integers in [low, high] as float64 (exactly representable, so ties are real ties)."""
    return np.random.default_rng(seed).integers(low, high + 1, size=shape).astype(np.float64)


def _floats(seed: int, shape: Tuple[int, ...]) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape)


def _grid(rows: Sequence[Sequence[float]]) -> np.ndarray:
    """A literal 2-D map as a (1, 1, H, W) image."""
    return np.array(rows, dtype=np.float64)[None, None]


def _pool_cases(rows: Sequence[tuple], with_dout: bool) -> Tuple[_Case, ...]:
    """Pooling cases from ``(name, tag, x, kernel_size, stride, padding, focus)`` rows;
    ``dout`` (integers 1..9, so that lost or duplicated gradient shows) is seeded per case."""
    cases = []
    for seed, (name, tag, x, k, s, p, focus) in enumerate(rows):
        Ho, Wo = (core.pool_output_size(n, k, s, p) for n in x.shape[-2:])
        dout = {"dout": _ints(100 + seed, x.shape[:2] + (Ho, Wo), 1, 9)} if with_dout else {}
        cases.append(_Case(name, tag, {**dout, "x": x, "kernel_size": k, "stride": s, "padding": p}, focus))
    return tuple(cases)


# ---------------------------------------------------------------------------
# The core, called with the learner's signatures
# ---------------------------------------------------------------------------

def _relu_backward(dout: np.ndarray, x: np.ndarray) -> np.ndarray:
    return core.relu_backward(dout, core.relu_forward(x)[1])


def _maxpool_forward(x: np.ndarray, kernel_size: int, stride: int, padding: int) -> np.ndarray:
    return core.maxpool2d_forward(x, kernel_size, stride, padding)[0]


def _maxpool_backward(dout: np.ndarray, x: np.ndarray, kernel_size: int, stride: int, padding: int,
                      ties: str = "first") -> np.ndarray:
    return core.maxpool2d_backward(dout, core.maxpool2d_forward(x, kernel_size, stride, padding, ties)[1])


def _avgpool_backward(dout: np.ndarray, x: np.ndarray, kernel_size: int, stride: int, padding: int) -> np.ndarray:
    return core.avgpool2d_backward(dout, core.avgpool2d_forward(x, kernel_size, stride, padding)[1])


def _conv_backward(dout: np.ndarray, x: np.ndarray, w: np.ndarray, stride: int, padding: int) -> tuple:
    return core.conv2d_backward(dout, core.conv2d_forward(x, w, None, stride, padding)[1])


# ---------------------------------------------------------------------------
# Window geometry in words: what the first wrong cell depends on
# ---------------------------------------------------------------------------

def _windows_of(r: int, c: int, k: Tuple[int, int], s: int, p: int, out: Tuple[int, int]) -> List[tuple]:
    """Windows ``(i, j)`` holding input cell ``(r, c)``, with the cell's offset ``(α, β)`` in each."""
    return [((i, j), (r + p - i * s, c + p - j * s)) for i in range(out[0]) for j in range(out[1])
            if 0 <= r + p - i * s < k[0] and 0 <= c + p - j * s < k[1]]


def _list(items: Sequence[Any], most: int = 9) -> str:
    text = ", ".join(str(i) for i in items[:most])
    return text + (f" and {len(items) - most} more" if len(items) > most else "")


def _span(i: int, k: int, s: int, p: int, n: int) -> str:
    """The rows (or columns) of the input that window ``i`` covers, padding left out."""
    lo, hi = i * s - p, i * s - p + k - 1
    real = f"{max(lo, 0)}..{min(hi, n - 1)}"
    return real + (f" (the rest is padding: {lo}..{hi} with padding)" if lo < 0 or hi > n - 1 else "")


def _pool_geometry(case: _Case) -> Tuple[int, int, int, Tuple[int, int]]:
    i = case.inputs
    x, k, s, p = i["x"], i["kernel_size"], i["stride"], i["padding"]
    return k, s, p, tuple(core.pool_output_size(n, k, s, p) for n in x.shape[-2:])


def _locate_maxpool_forward(case: _Case, out: str, idx: tuple) -> str:
    k, s, p, _ = _pool_geometry(case)
    x = case.inputs["x"]
    n, c, i, j = idx
    H, W = x.shape[-2:]
    return (f"out{_fmt_index(idx)} is the maximum of window ({i}, {j}), which covers rows "
            f"{_span(i, k, s, p, H)} and columns {_span(j, k, s, p, W)} of x[{n}, {c}]")


def _locate_maxpool_backward(case: _Case, out: str, idx: tuple) -> str:
    k, s, p, size = _pool_geometry(case)
    n, c, r, q = idx
    held = _windows_of(r, q, (k, k), s, p, size)
    if not held:
        return f"x{_fmt_index(idx)} lies in no window, so no gradient reaches it"
    offsets = core.maxpool2d_forward(case.inputs["x"], k, s, p)[1].offset[n, c]
    won = [w for w, (a, b) in held if offsets[w] == a * k + b]
    return (f"x{_fmt_index(idx)} lies in window{'s' if len(held) > 1 else ''} {_list([w for w, _ in held])} and is "
            + (f"the first maximum of {_list(won)}" if won else "the first maximum of none of them")
            + f", so dx there is the sum of dout over {'those' if len(won) != 1 else 'that'} window"
            + ("s" if len(won) != 1 else "") + (" (0)" if not won else ""))


def _locate_avgpool_backward(case: _Case, out: str, idx: tuple) -> str:
    k, s, p, size = _pool_geometry(case)
    held = [w for w, _ in _windows_of(idx[2], idx[3], (k, k), s, p, size)]
    if not held:
        return f"x{_fmt_index(idx)} lies in no window, so no gradient reaches it"
    if len(held) == 1:
        return (f"x{_fmt_index(idx)} lies in window {held[0]} only, which gives it "
                f"dout{_fmt_index(idx[:2] + held[0])} / {k * k}")
    return f"x{_fmt_index(idx)} lies in windows {_list(held)}; each gives it its dout / {k * k}"


def _locate_conv(case: _Case, out: str, idx: tuple) -> str:
    i = case.inputs
    w, s, p = i["w"], i["stride"], i["padding"]
    kh, kw = w.shape[-2:]
    size = tuple(core.pool_output_size(n, m, s, p) for n, m in zip(i["x"].shape[-2:], (kh, kw)))
    if out == "dx":
        held = _windows_of(idx[2], idx[3], (kh, kw), s, p, size)
        if not held:
            return f"no window reads x{_fmt_index(idx)}, so no gradient reaches it"
        return (f"x{_fmt_index(idx)} is read by window{'s' if len(held) > 1 else ''} "
                f"{_list([f'{w_} at kernel offset {o}' for w_, o in held], 6)}; dx there is the sum over "
                f"the filters f and those windows of w[f, {idx[1]}, α, β] * dout[{idx[0]}, f, i, j]")
    if out == "dw":
        f, c, a, b = idx
        return (f"dw{_fmt_index(idx)} is the sum over the images n and the windows (i, j) of "
                f"dout[n, {f}, i, j] * x[n, {c}, i*{s} - {p} + {a}, j*{s} - {p} + {b}] (0 on padded cells)")
    return f"db{_fmt_index(idx)} is the sum of dout[:, {idx[0]}] over the batch and both spatial axes"


# ---------------------------------------------------------------------------
# Classic bugs, written the way a learner writes them, one knob per bug
# ---------------------------------------------------------------------------

def _pads(p: int) -> tuple:
    return ((0, 0), (0, 0), (p, p), (p, p))


def _crop_as(dxp: np.ndarray, shape: Tuple[int, ...], p: int, how: str) -> np.ndarray:
    """Cut the padded input's gradient back to ``shape``: at ``p`` (right), at the top-left corner,
    at ``2p`` (the bottom-right), with ``[p:-p]`` (empty when p = 0), or not at all."""
    H, W = shape[-2:]
    at = {"p": p, "0": 0, "2p": 2 * p}.get(how)
    if at is not None:
        return dxp[..., at:at + H, at:at + W].copy()
    if how == "p:-p":
        return dxp[..., p:-p, p:-p].copy()
    return dxp.copy()  # "none"


def _tie_mask(win: np.ndarray, ties: str) -> np.ndarray:
    """Which cells of a window get its gradient (and what share), by tie policy."""
    flat = win.ravel()
    mask = np.zeros(flat.shape)
    if ties == "first":
        mask[np.argmax(flat)] = 1.0
    elif ties == "last":
        mask[flat.size - 1 - np.argmax(flat[::-1])] = 1.0
    else:  # "all": the mask x == max; "split": the same, shared out
        mask = (flat == flat.max()).astype(np.float64)
        if ties == "split":
            mask /= mask.sum()
    return mask.reshape(win.shape)


def _maxpool_loop(dout: np.ndarray, x: np.ndarray, k: int, s: int, p: int, *, ties: str = "first",
                  step: Optional[int] = None, offset: int = 0, pad_value: float = -np.inf,
                  update: str = "add", times_dout: bool = True, crop: str = "p") -> tuple:
    """Max-pool backward the learner's way: pad, loop over the windows, slice (numpy clips a slice
    that runs off the end), mask the winner, write the gradient.  Each keyword is one bug: the tie
    policy, windows every ``step`` cells instead of ``s``, windows ``offset`` cells late (padding
    ignored), zero padding, ``update`` "winner" (``=`` at the winner) or "slice" (``=`` on the
    window slice), the mask not multiplied by dout, the padding cropped in the wrong place."""
    step = s if step is None else step
    xp = np.pad(x, _pads(p), constant_values=pad_value)
    dxp = np.zeros_like(xp)
    for n, c, i, j in np.ndindex(*dout.shape):
        r, q = i * step + offset, j * step + offset
        win = xp[n, c, r:r + k, q:q + k]
        mask = _tie_mask(win, ties)
        g = mask * (dout[n, c, i, j] if times_dout else 1.0)
        if update == "add":
            dxp[n, c, r:r + k, q:q + k] += g
        elif update == "winner":
            dxp[n, c, r:r + k, q:q + k][mask != 0] = g[mask != 0]
        else:
            dxp[n, c, r:r + k, q:q + k] = g
    return (_crop_as(dxp, x.shape, p, crop),)


def _maxpool_forward_loop(x: np.ndarray, k: int, s: int, p: int, *, step: Optional[int] = None, offset: int = 0,
                          pad_value: float = -np.inf, whole_block: bool = False,
                          size: Optional[Callable[[int], int]] = None) -> tuple:
    """Max-pool forward the learner's way; ``size(n)`` is the learner's formula for Ho (and Wo)."""
    step = s if step is None else step
    N, C, H, W = x.shape
    Ho, Wo = (size(H), size(W)) if size else (core.pool_output_size(H, k, s, p), core.pool_output_size(W, k, s, p))
    xp = np.pad(x, _pads(p), constant_values=pad_value)
    out = np.empty((N, C, Ho, Wo))
    for i in range(Ho):
        for j in range(Wo):
            r, q = i * step + offset, j * step + offset
            win = xp[:, :, r:r + k, q:q + k]
            out[:, :, i, j] = win.max() if whole_block else win.max(axis=(2, 3))
    return (out,)


def _avgpool_loop(dout: np.ndarray, x: np.ndarray, k: int, s: int, p: int, *, step: Optional[int] = None,
                  divide: str = "k2", border: str = "drop", update: str = "add", crop: str = "p") -> tuple:
    """Average-pool backward the learner's way: each window hands ``dout / count`` to its cells.
    ``divide``: "k2" (right), "k", "1" (no division), "real" (count_include_pad=False).
    ``border``: what happens to a padded cell's share: "drop" (right), "clamp" (piled onto the
    nearest border cell, as np.clip on the index does), "wrap" (a negative index wraps to the
    far side; an index past the end raises IndexError, as it would in the learner's loop)."""
    step = s if step is None else step
    N, C, H, W = x.shape
    dxp = np.zeros((N, C, H + 2 * p, W + 2 * p))
    real = np.pad(np.ones((H, W)), p)
    for i, j in np.ndindex(*dout.shape[-2:]):
        r, q = i * step, j * step
        count = {"k2": k * k, "k": k, "1": 1, "real": real[r:r + k, q:q + k].sum()}[divide]
        share = dout[:, :, i, j, None, None] / count
        if update == "add":
            dxp[:, :, r:r + k, q:q + k] += share
        else:
            dxp[:, :, r:r + k, q:q + k] = share
    if border == "drop":
        return (_crop_as(dxp, x.shape, p, crop),)

    def home(t: int, n: int) -> int:
        if border == "clamp":
            return min(max(t - p, 0), n - 1)
        if t - p >= n:
            raise IndexError("a window reaches past the end")
        return t - p  # negative: wraps around
    dx = np.zeros(x.shape)
    for t, u in np.ndindex(*dxp.shape[-2:]):
        if dxp[..., t, u].any():
            dx[..., home(t, H), home(u, W)] += dxp[..., t, u]
    return (dx,)


def _offsets_assign(dout: np.ndarray, x: np.ndarray, k: int, s: int, p: int, *, kind: str) -> tuple:
    """Chapter 10's vectorised backward, one loop over the k² offsets (α, β) of a window, each
    writing the plane of cells at offset (α, β) of every window, with ``=`` instead of ``+=``:
    where windows overlap, a later offset's plane overwrites an earlier one's."""
    N, C, H, W = x.shape
    Ho, Wo = dout.shape[-2:]
    won = core.maxpool2d_forward(x, k, s, p)[1].offset if kind == "max" else None
    dxp = np.zeros((N, C, H + 2 * p, W + 2 * p))
    for a in range(k):
        for b in range(k):
            part = dout / (k * k) if kind == "avg" else dout * (won == a * k + b)
            dxp[:, :, a:a + s * (Ho - 1) + 1:s, b:b + s * (Wo - 1) + 1:s] = part
    return (_crop_as(dxp, x.shape, p, "p"),)


def _expanded(dout: np.ndarray, x: np.ndarray, k: int, s: int, p: int) -> tuple:
    """Chapter 3's expansion reused: every dout cell spread over a k×k block, divided by k²."""
    return (np.repeat(np.repeat(dout, k, axis=2), k, axis=3) / (k * k),)


def _conv_loop(dout: np.ndarray, x: np.ndarray, w: np.ndarray, s: int, p: int, *, step: Optional[int] = None,
               dx_update: str = "add", dw_update: str = "add", crop: str = "p") -> tuple:
    """Convolution backward the learner's way: loops over n, f, i, j; ``dx[window] += w[f] * dout``,
    ``dw[f] += x[window] * dout``.  Knobs: windows every ``step`` cells (the stride forgotten),
    ``=`` instead of ``+=`` in dx or in dw, the crop."""
    F, C, kh, kw = w.shape
    sh, sw = (s, s) if step is None else (step, step)
    xp = np.pad(x, _pads(p))
    dxp, dw = np.zeros_like(xp), np.zeros_like(w)
    for n, f, i, j in np.ndindex(*dout.shape):
        rows, cols = slice(i * sh, i * sh + kh), slice(j * sw, j * sw + kw)
        if dx_update == "add":
            dxp[n, :, rows, cols] += w[f] * dout[n, f, i, j]
        else:
            dxp[n, :, rows, cols] = w[f] * dout[n, f, i, j]
        if dw_update == "add":
            dw[f] += xp[n, :, rows, cols] * dout[n, f, i, j]
        else:
            dw[f] = xp[n, :, rows, cols] * dout[n, f, i, j]
    return _crop_as(dxp, x.shape, p, crop), dw, dout.sum(axis=(0, 2, 3))


def _conv_recipe(dout: np.ndarray, x: np.ndarray, w: np.ndarray, s: int, p: int, *,
                 turn: Callable[[np.ndarray], np.ndarray] = core.rot180, swap_channels: bool = True,
                 dilate: bool = True, leftover: bool = True, crop: str = "p") -> tuple:
    """dx by chapter 7's recipe: dilate dout by the stride, pad it by k - 1 on every side (plus the
    rows and columns no window reached), correlate with rot180(w) with its channel axes swapped,
    crop the padding.  Each keyword is one way to get the recipe wrong."""
    N, C, H, W = x.shape
    F, _, kh, kw = w.shape
    Ho, Wo = dout.shape[-2:]
    d = core.dilate(dout, s) if dilate else dout
    eh, ew = ((H + 2 * p - ((Ho - 1) * s + kh), W + 2 * p - ((Wo - 1) * s + kw))
              if dilate and leftover else (0, 0))
    d = np.pad(d, ((0, 0), (0, 0), (kh - 1, kh - 1 + eh), (kw - 1, kw - 1 + ew)))
    turned = turn(w)
    dxp = core.conv2d_forward(d, turned.transpose(1, 0, 2, 3) if swap_channels else turned)[0]
    return _crop_as(dxp, x.shape, p, crop), None, None


def _conv_one_image(n: int) -> Callable[..., tuple]:
    """dw and db from a single image of the batch (overwritten, not summed, over the batch)."""
    def bug(dout, x, w, stride, padding):
        m = n % x.shape[0]
        _, dw, db = _conv_backward(dout[m:m + 1], x[m:m + 1], w, stride, padding)
        return None, dw, db
    return bug


def _softmax_rows(logits: np.ndarray, shift: Any, axis: int = 1) -> np.ndarray:
    e = np.exp(logits - shift)
    return e / e.sum(axis=axis, keepdims=True)


def _ce_from(logits: np.ndarray, labels: np.ndarray, shift: Any, axis: int = 1) -> tuple:
    """(loss, dlogits) with ``shift`` subtracted from the logits instead of each row's max, the
    softmax normalised along ``axis``."""
    rows = np.arange(len(labels))
    z = logits - shift
    e = np.exp(z)
    p = e / e.sum(axis=axis, keepdims=True)
    loss = -np.log(p[rows, labels]).mean() if axis == 0 else -(z[rows, labels] - np.log(e.sum(axis=1))).mean()
    d = p.copy()
    d[rows, labels] -= 1
    return loss, d / len(labels)


def _ce(logits: np.ndarray, labels: np.ndarray) -> tuple:
    return core.softmax_cross_entropy(logits, labels)


def _ce_all_labels(logits: np.ndarray, labels: np.ndarray) -> tuple:
    """``p[:, labels]`` where ``p[range(N), labels]`` is meant: every row indexed by every label."""
    p = core.softmax(logits)
    loss = -np.log(p[:, labels]).mean()
    d = p.copy()
    d[:, labels] -= 1
    return loss, d / len(labels)


# ---------------------------------------------------------------------------
# ReLU (chapter 4)
# ---------------------------------------------------------------------------

_ZERO_HINT = ("ReLU'(0) = 0 (PyTorch's convention): the mask is x > 0, not x >= 0; an input of exactly 0 "
              "passes no gradient")

_RELU = _Exercise(
    checker="check_relu_backward",
    signature="fn(dout, x) -> dx",
    outputs=("dx",),
    axes={"dx": "(N, C, H, W), the shape of x (and of dout)"},
    reference=_relu_backward,
    bugs=(
        _Bug(_ZERO_HINT, lambda dout, x: (dout * (x >= 0),)),
        _Bug("ReLU'(0) = 0 (PyTorch's convention); 1/2 is what central differences give at the kink "
             "(the mean of the slopes 0 and 1), not the derivative the layer uses: the mask is x > 0",
             lambda dout, x: (dout * np.heaviside(x, 0.5),)),
        _Bug("multiply by the upstream gradient: dx = dout * (x > 0), not the mask alone",
             lambda dout, x: (x > 0,)),
        _Bug("the mask comes from the forward input x (x > 0), not from the sign of dout",
             lambda dout, x: (dout * (dout > 0),)),
        _Bug("that is the forward pass max(x, 0): the backward pass returns dout where x > 0, 0 elsewhere",
             lambda dout, x: (np.maximum(x, 0),)),
        _Bug("dout times the ReLU's output max(x, 0): the derivative is the 0/1 mask 1[x > 0], not the output",
             lambda dout, x: (dout * np.maximum(x, 0),)),
        _Bug("dout passed through unchanged: the ReLU's derivative is 0 where x <= 0, so dx = dout * (x > 0)",
             lambda dout, x: (dout,)),
        _Bug("the mask is inverted: the gradient passes where x > 0 (the ReLU's slope is 1 there), "
             "and is 0 where x <= 0", lambda dout, x: (dout * (x < 0),)),
        _Bug("the mask is inverted: the gradient passes where x > 0 (the ReLU's slope is 1 there), "
             "and is 0 where x <= 0", lambda dout, x: (dout * (x <= 0),)),
    ),
    cases=(
        _Case("positive and negative inputs, upstream gradient of both signs", "mixed signs",
              {"dout": _floats(1, (1, 2, 3, 4)), "x": _floats(2, (1, 2, 3, 4))},
              "the mask: dx = dout where x > 0 and 0 where x <= 0"),
        _Case("inputs exactly 0 (ReLU'(0) = 0, as in PyTorch)", "inputs exactly 0",
              {"dout": _ints(3, (2, 1, 3, 3), 1, 9), "x": _ints(4, (2, 1, 3, 3), -1, 1)},
              "inputs of exactly 0, where PyTorch's ReLU'(0) = 0"),
        _Case("negative upstream gradient at positive inputs (it passes through unchanged)",
              "negative dout", {"dout": -_ints(5, (1, 1, 4, 4), 1, 9), "x": _ints(6, (1, 1, 4, 4), -2, 2)},
              "negative upstream gradients: where x > 0 dx = dout whatever its sign"),
        _Case("batch 2, 3 channels, non-square 4×5, -0.0 among the inputs", "batch and channels",
              {"dout": _floats(7, (2, 3, 4, 5)),
               "x": np.where(_ints(8, (2, 3, 4, 5), 0, 3) == 0, -0.0, _floats(9, (2, 3, 4, 5)))},
              "a batch of images with channels (every entry is treated alike) and inputs of -0.0"),
    ),
    show=("x", "dout"),
    locate=lambda case, out, idx: (f"there x = {_num(case.inputs['x'][idx])} and dout = "
                                   f"{_num(case.inputs['dout'][idx])}"),
)


def check_relu_backward(fn: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> Optional[CheckSummary]:
    """Check a ReLU backward pass (chapter 4).

    ``fn(dout, x) -> dx``: ``x`` is the forward input X, of shape (N, C, H, W); ``dout`` is
    ∂L/∂Y of the same shape; return ∂L/∂X = ∂L/∂Y · 1[X > 0] (ReLU'(0) = 0), a new float64 array.
    Returns the summary string (also printed), ``None`` for an unfilled stub; raises
    AssertionError at the first wrong case.
    """
    return _run(_RELU, fn)


# ---------------------------------------------------------------------------
# Max pooling (chapters 2 and 3; the vectorised version in chapter 10)
# ---------------------------------------------------------------------------

_TIE_HINT = ("a tie: only the FIRST maximum of a window in row-major order (what np.argmax returns) "
             "receives the gradient, as in PyTorch; the mask x == max gives it to every tied maximum")
_LAST_HINT = ("a tie: the FIRST maximum of a window in row-major order (what np.argmax returns) receives "
              "the gradient, as in PyTorch; yours gives it to the last one (a >= while scanning, or an "
              "argmax of the reversed window)")
_SPLIT_HINT = ("a tie: the FIRST maximum of a window in row-major order receives the whole gradient, as in "
               "PyTorch; yours shares it equally among the tied maxima (a valid choice, not this book's rule)")
_OVERLAP_HINT = ("windows overlap (stride < kernel_size): a cell that wins several windows receives "
                 "the sum of their gradients, so accumulate with += in a loop or np.add.at when "
                 "vectorised, never = (nor a fancy-indexed dx[rows, cols] += ..., which keeps one)")
_SLICE_HINT = ("= assigns the whole window slice, zeroing what earlier windows gave: " + _OVERLAP_HINT)
_PAD_HINT = ("padded cells act as -inf, never as 0: with an all-negative input a zero pad would win "
             "the window; window (i, j) starts at row i*stride - padding of the unpadded input")
_PAD_IGNORED_HINT = ("padding ignored: window (i, j) starts at row i*stride - padding, column j*stride - padding "
                     "of the unpadded input (or pad x with -inf first and start at i*stride)")
_STRIDE_HINT = ("window (i, j) starts at row i*stride - padding, column j*stride - padding; "
                "Ho = (H + 2*padding - kernel_size) // stride + 1, and cells after the last window get 0")
_STRIDE_FWD_HINT = ("window (i, j) starts at row i*stride - padding, column j*stride - padding of x; "
                    "Ho = (H + 2*padding - kernel_size) // stride + 1")
_STEP_K_HINT = ("your windows start every kernel_size cells (at i*kernel_size); they start every stride "
                "cells: window (i, j) begins at row i*stride - padding, column j*stride - padding")
_CROP_HINT = ("the padded input's gradient is cropped in the wrong place: the real cells are "
              "dxp[..., p:p + H, p:p + W] (yours starts at {at}, so every value is shifted by {shift} cells)")


def _crop_hint(at: str, shift: str) -> str:
    return _CROP_HINT.format(at=at, shift=shift)


def _stride_rows(seed: int) -> Tuple[tuple, tuple]:
    """Two rows every pooling battery holds, x drawn with ``seed`` and ``seed + 1``: a size the
    stride does not divide, and a stride larger than the window."""
    return (
        ("7×5 input, 2×2 windows, stride 2 (the stride does not divide: the last row is in no window)",
         "sizes not divisible by the stride", _floats(seed, (1, 2, 7, 5)), 2, 2, 0,
         "a size the stride does not divide: the last row lies in no window and gets 0"),
        ("2×2 windows, stride 3 (gaps between the windows)", "stride larger than the kernel",
         _ints(seed + 1, (1, 1, 7, 8), 0, 4), 2, 3, 0, "a stride larger than the window: cells between windows get 0"),
    )


_MAXPOOL_ROWS = (
    ("2×2 windows, stride 2, no ties (the source article's setting)", "2×2 stride 2",
     np.random.default_rng(10).permutation(16).astype(np.float64).reshape(1, 1, 4, 4), 2, 2, 0,
     "one window per cell: each window's gradient goes to the position of its maximum, every other cell gets 0"),
    ("ties: every 2×2 window's maximum appears two or three times (small integers)", "ties",
     _grid([[1, 3, 2, 2], [3, 0, 2, 1], [5, 5, 4, 0], [5, 1, 4, 4]]), 2, 2, 0,
     "ties: only the first maximum of a window in row-major order receives its gradient"),
    ("3×3 windows, stride 1: cell (1, 2) wins all four windows", "overlapping windows (3×3 stride 1)",
     _grid([[3, 1, 7, 0], [4, 6, 9, 2], [8, 5, 1, 3], [0, 2, 6, 5]]), 3, 1, 0,
     "overlapping windows: one cell wins several windows and receives the sum of their gradients"),
    ("3×3 windows, stride 1, with ties (integers -2..2)", "overlap with ties",
     _ints(11, (1, 1, 5, 5), -2, 2), 3, 1, 0, "overlapping windows with ties (the first maximum of each window)"),
    ("padding 1 around an all-negative 3×3 input, 2×2 windows, stride 2", "padding with all-negative inputs",
     -np.random.default_rng(12).permutation(np.arange(1.0, 10.0)).reshape(1, 1, 3, 3), 2, 2, 1,
     "padding around an all-negative input: a padded cell never wins, and window (i, j) starts at "
     "row i*stride - padding"),
    ("3×3 windows, stride 2, padding 1, all-negative ties, batch 2", "padding with ties",
     _ints(13, (2, 1, 5, 5), -3, -1), 3, 2, 1, "padding, overlapping windows and ties together, in a batch"),
    *_stride_rows(14),
    ("3×3 windows, stride 2 on a 7×7 map (neighbours share a row or a column), ties",
     "3×3 stride 2", _ints(16, (1, 1, 7, 7), 0, 3), 3, 2, 0,
     "windows that share a row or a column with their neighbours, and ties"),
    ("batch 2, 3 channels, 2×2 windows, stride 2, ties", "batches and channels",
     _ints(17, (2, 3, 4, 6), -2, 2), 2, 2, 0, "a batch of images with channels: every (image, channel) plane "
     "is pooled on its own"),
    ("non-square 6×9 input, 3×3 windows, stride 2, padding 1, batch 2, 2 channels, ties",
     "non-square inputs", _ints(18, (2, 2, 6, 9), -2, 2), 3, 2, 1,
     "a non-square input: Ho comes from H and Wo from W"),
    ("random floats, batch 3, 2 channels, 2×2 windows, stride 1, padding 1", "random floats",
     _floats(19, (3, 2, 5, 4)), 2, 1, 1, "random floats with overlap and padding"),
)


def _pool_sizes(case: _Case, out: str, axis: int) -> Dict[int, str]:
    """Sizes the usual mistakes give an axis of a pooling (or convolution) result, each with
    what gives it (two mistakes that give one size are both named)."""
    i = case.inputs
    x, s, p = i["x"], i["stride"], i["padding"]
    sizes: Dict[int, str] = {}

    def add(size: int, text: str) -> None:
        if size >= 0:
            sizes[size] = f"{sizes[size]}, or {text}" if size in sizes else text
    if axis < 2:
        add(x.shape[0], "N, the batch size")
        add(x.shape[1], "C, the number of channels")
        if "w" in i and axis == 1:
            add(i["w"].shape[0], "F, the number of filters (dx has one channel per input channel c, "
                                 "summed over the filters)")
        sizes.pop(x.shape[axis], None)
        return sizes
    k = i["kernel_size"] if "kernel_size" in i else i["w"].shape[axis]
    n = x.shape[axis]
    o = core.pool_output_size(n, k, s, p)
    side, osz = ("H", "Ho") if axis == 2 else ("W", "Wo")
    if out == "dx":
        if p:
            add(n + 2 * p, f"{side} + 2p, the padded input's size: crop the padding off, dxp[..., p:p + H, p:p + W]")
            add(n - 2 * p, f"{side} - 2p: the padding cut off an array that was never padded")
        else:
            add(0, "0: dxp[..., p:-p, p:-p] is empty when p = 0 (-0 is 0); crop with dxp[..., p:p + H, p:p + W]")
        reach = (o - 1) * s + k
        add(reach - 2 * p, f"(Ho - 1)*s + k - 2p, the cells the windows reach: the last {n + 2 * p - reach} of the "
                           f"padded input lie in no window; their gradient is 0, but they are part of dx")
        add(o, f"{osz}, dout's size: dx has the shape of x, not of dout")
        add(o * k, f"{osz}*k: every dout cell spread over a k×k block, which tiles x only when stride = "
                   f"kernel_size, without padding, and the sizes divide")
        if "w" in i:
            add(o + k - 1 - 2 * p, f"{osz} + k - 1 - 2p: the full correlation of dout without dilating it by the "
                                   f"stride (stride - 1 zeros between its entries)")
            add(o + k - 1, f"{osz} + k - 1: the full correlation of dout, not dilated by the stride nor cropped")
        sizes.pop(n, None)
    else:  # a forward output
        add(n + 2 * p - k + 1, f"{side} + 2p - k + 1, the size with stride 1: the stride is left out")
        add((n + 2 * p - k) // s, f"(H + 2p - k) // s: the + 1 is missing ({osz} = (H + 2p - k) // s + 1)")
        add((n - k) // s + 1, f"(H - k) // s + 1: the padding is left out of {osz} = (H + 2p - k) // s + 1")
        add(-(-(n + 2 * p - k) // s) + 1, f"ceil((H + 2p - k) / s) + 1: {osz} rounds down (floor), a last window "
                                          f"that would stick out is dropped")
        add((n + p - k) // s + 1, "(H + p - k) // s + 1: padding counted on one side only")
        add(n // k, "H // k: windows of size k side by side, the stride and the padding left out")
        add(n, f"{side}, the input's size")
        sizes.pop(o, None)
    return sizes


_MAXPOOL_FORWARD = _Exercise(
    checker="check_maxpool_forward",
    signature="fn(x, kernel_size, stride, padding) -> out",
    outputs=("out",),
    axes={"out": "(N, C, Ho, Wo) with Ho = (H + 2*padding - kernel_size) // stride + 1 (and Wo likewise)"},
    reference=_maxpool_forward,
    bugs=(
        _Bug(_PAD_HINT, lambda x, k, s, p: _maxpool_forward_loop(x, k, s, p, pad_value=0.0)),
        _Bug(_PAD_IGNORED_HINT, lambda x, k, s, p: _maxpool_forward_loop(x, k, s, p, offset=p) if p else None),
        _Bug("stride forgotten: " + _STRIDE_FWD_HINT, lambda x, k, s, p: _maxpool_forward_loop(x, k, s, p, step=1)),
        _Bug("stride forgotten, in the windows and in Ho: " + _STRIDE_FWD_HINT,
             lambda x, k, s, p: _maxpool_forward_loop(x, k, s, p, step=1,
                                                      size=lambda n: n + 2 * p - k + 1) if s > 1 else None),
        _Bug(_STEP_K_HINT, lambda x, k, s, p: _maxpool_forward_loop(x, k, s, p, step=k) if k != s else None),
        _Bug("each image and channel has its own maximum: reduce over the window's axes only, "
             "window.max(axis=(2, 3)), not over the whole (N, C, k, k) block",
             lambda x, k, s, p: _maxpool_forward_loop(x, k, s, p, whole_block=True)),
        _Bug("Ho = (H + 2*padding - kernel_size) // stride + 1 rounds down (floor): a last window that would "
             "stick out of the padded input is dropped",
             lambda x, k, s, p: _maxpool_forward_loop(x, k, s, p, size=lambda n: -(-(n + 2 * p - k) // s) + 1)),
        _Bug("the padding is left out of Ho: Ho = (H + 2*padding - kernel_size) // stride + 1",
             lambda x, k, s, p: _maxpool_forward_loop(x, k, s, p, size=lambda n: (n - k) // s + 1) if p else None),
    ),
    cases=tuple(_Case(c.name, c.tag, c.inputs, f"{c.tag}: out[n, c, i, j] is the maximum of window (i, j), "
                      f"whose first row is i*stride - padding, padded cells counting as -inf")
                for c in _pool_cases(_MAXPOOL_ROWS, with_dout=False)),
    show=("x",),
    locate=_locate_maxpool_forward,
    sizes=_pool_sizes,
)

_MAXPOOL_BACKWARD = _Exercise(
    checker="check_maxpool_backward",
    signature="fn(dout, x, kernel_size, stride, padding) -> dx",
    outputs=("dx",),
    axes={"dx": "(N, C, H, W), the shape of x"},
    reference=_maxpool_backward,
    bugs=(
        _Bug(_TIE_HINT, lambda *a: _maxpool_loop(*a, ties="all")),
        _Bug(_LAST_HINT, lambda *a: _maxpool_loop(*a, ties="last")),
        _Bug(_SPLIT_HINT, lambda *a: _maxpool_loop(*a, ties="split")),
        _Bug(_OVERLAP_HINT, lambda *a: _maxpool_loop(*a, update="winner"), family="="),
        _Bug(_SLICE_HINT, lambda *a: _maxpool_loop(*a, update="slice"), family="="),
        _Bug(_OVERLAP_HINT, lambda *a: _offsets_assign(*a, kind="max"), family="="),
        _Bug("two bugs: " + _TIE_HINT + "; and " + _OVERLAP_HINT,
             lambda *a: _maxpool_loop(*a, ties="all", update="slice"), family="= and ==", compound=True),
        _Bug("two bugs: " + _TIE_HINT + "; and " + _OVERLAP_HINT,
             lambda *a: _maxpool_loop(*a, ties="all", update="winner"), family="= and ==", compound=True),
        _Bug(_PAD_HINT, lambda *a: _maxpool_loop(*a, pad_value=0.0) if a[-1] else None),
        _Bug(_PAD_IGNORED_HINT, lambda *a: _maxpool_loop(*a, offset=a[-1]) if a[-1] else None),
        _Bug("stride forgotten: " + _STRIDE_HINT, lambda *a: _maxpool_loop(*a, step=1)),
        _Bug(_STEP_K_HINT, lambda *a: _maxpool_loop(*a, step=a[2])),
        _Bug("multiply the mask by dout: each window sends its own upstream gradient, not 1",
             lambda *a: _maxpool_loop(*a, times_dout=False)),
        _Bug(_crop_hint("[0, 0], the top-left corner", "p"), lambda *a: _maxpool_loop(*a, crop="0")),
        _Bug(_crop_hint("[2p, 2p]", "p"), lambda *a: _maxpool_loop(*a, crop="2p")),
        _Bug("dxp[..., p:-p, p:-p] is empty when p = 0 (-0 is 0): crop with dxp[..., p:p + H, p:p + W]",
             lambda *a: _maxpool_loop(*a, crop="p:-p") if not a[-1] else None),
        _Bug("the padded input's gradient is returned whole: crop the padding off, dxp[..., p:p + H, p:p + W]",
             lambda *a: _maxpool_loop(*a, crop="none") if a[-1] else None),
    ),
    cases=_pool_cases(_MAXPOOL_ROWS, with_dout=True),
    show=("x", "dout"),
    locate=_locate_maxpool_backward,
    sizes=_pool_sizes,
)


def check_maxpool_forward(fn: Callable[[np.ndarray, int, int, int], np.ndarray]) -> Optional[CheckSummary]:
    """Check a max-pooling forward pass (chapter 2; vectorised in chapter 10 "make it fast").

    ``fn(x, kernel_size, stride, padding) -> out``: X is (N, C, H, W); the window size k,
    stride s and padding p are ints, padding acts as -inf; the output Y is (N, C, Ho, Wo) with
    Ho = ⌊(H + 2p − k)/s⌋ + 1.  Returns the summary string (also printed), ``None`` for an
    unfilled stub; raises AssertionError at the first wrong case.
    """
    return _run(_MAXPOOL_FORWARD, fn)


def check_maxpool_backward(fn: Callable[[np.ndarray, np.ndarray, int, int, int], np.ndarray]
                           ) -> Optional[CheckSummary]:
    """Check a max-pooling backward pass (chapters 2 and 3; vectorised in chapter 10).

    ``fn(dout, x, kernel_size, stride, padding) -> dx``: find each window's winner from X
    (the first maximum in row-major order, padding as -inf) and add the window's ∂L/∂Y onto it
    (``+=``: overlapping windows add up).  ∂L/∂X has the shape of X.  Returns the summary
    string (also printed), ``None`` for an unfilled stub; raises AssertionError at the first
    wrong case.
    """
    return _run(_MAXPOOL_BACKWARD, fn)


# ---------------------------------------------------------------------------
# Average pooling (chapter 9)
# ---------------------------------------------------------------------------

_SHARE_HINT = "every cell of a window receives dout / kernel_size**2 (the average's derivative)"
_EXCLUDE_HINT = ("your windows divide by their number of real cells (count_include_pad=False); here, as in "
                 "PyTorch's default count_include_pad=True, every window divides by kernel_size**2, padded "
                 "cells included, and the padded cells' shares are dropped")
_CLAMP_HINT = ("the shares of padded cells are piled onto the nearest border cell (as np.clip on the index "
               "does); they belong to the padding and are dropped: skip cells outside 0 <= r < H, 0 <= c < W")
_WRAP_HINT = ("a padded cell's share wraps around to the far side of x (index -1 is the last row); it "
              "belongs to the padding and is dropped: skip cells outside 0 <= r < H, 0 <= c < W")
_AVG_OVERLAP_HINT = _OVERLAP_HINT.replace("wins", "belongs to")

_AVGPOOL_ROWS = (
    ("2×2 windows, stride 2", "2×2 stride 2", _ints(20, (1, 1, 4, 4), 0, 9), 2, 2, 0,
     "windows that tile x: each cell receives dout / 4 from its one window"),
    ("3×3 windows, stride 1: the centre cell is in all nine windows", "overlapping windows (3×3 stride 1)",
     _ints(21, (1, 1, 5, 5), 0, 9), 3, 1, 0,
     "overlapping windows: a cell in several windows receives the sum of their shares"),
    ("3×3 windows, stride 1, padding 1 on a 4×4 input: a corner window holds 4 real cells of its 9",
     "padding (count_include_pad=True)", _ints(28, (1, 1, 4, 4), 0, 9), 3, 1, 1,
     "padding with count_include_pad=True: every window divides by k*k, and the padded cells' shares "
     "are dropped"),
    ("padding 1 around a 3×3 input, 2×2 windows, stride 2", "padding with 2×2 windows",
     _ints(22, (1, 1, 3, 3), -9, -1), 2, 2, 1,
     "padding with count_include_pad=True: every window divides by k*k, padded cells included"),
    ("3×3 windows, stride 2, padding 1, batch 2", "padding with overlap",
     _ints(23, (2, 1, 5, 5), 0, 9), 3, 2, 1, "padding and overlapping windows together, in a batch"),
    *_stride_rows(24),
    ("non-square 6×9 input, 3×3 windows, stride 2, padding 1, batch 2, 3 channels",
     "batches, channels, non-square inputs", _ints(26, (2, 3, 6, 9), 0, 9), 3, 2, 1,
     "a non-square input, batches and channels, with padding"),
    ("random floats, batch 3, 2 channels, 2×2 windows, stride 1, padding 1", "random floats",
     _floats(27, (3, 2, 5, 4)), 2, 1, 1, "random floats with overlap and padding"),
)

_AVGPOOL_BACKWARD = _Exercise(
    checker="check_avgpool_backward",
    signature="fn(dout, x, kernel_size, stride, padding) -> dx",
    outputs=("dx",),
    axes={"dx": "(N, C, H, W), the shape of x"},
    reference=_avgpool_backward,
    bugs=(
        _Bug(_EXCLUDE_HINT, lambda *a: _avgpool_loop(*a, divide="real") if a[-1] else None),
        _Bug(_CLAMP_HINT, lambda *a: _avgpool_loop(*a, border="clamp") if a[-1] else None),
        _Bug(_WRAP_HINT, lambda *a: _avgpool_loop(*a, border="wrap") if a[-1] else None),
        _Bug(_AVG_OVERLAP_HINT, lambda *a: _avgpool_loop(*a, update="assign"), family="="),
        _Bug(_AVG_OVERLAP_HINT, lambda *a: _offsets_assign(*a, kind="avg"), family="="),
        _Bug("stride forgotten: " + _STRIDE_HINT, lambda *a: _avgpool_loop(*a, step=1)),
        _Bug(_STEP_K_HINT, lambda *a: _avgpool_loop(*a, step=a[2])),
        _Bug("divide by kernel_size**2, the number of cells in a window, not by kernel_size: " + _SHARE_HINT,
             lambda *a: _avgpool_loop(*a, divide="k")),
        _Bug("divide by kernel_size**2: " + _SHARE_HINT, lambda *a: _avgpool_loop(*a, divide="1")),
        _Bug(_crop_hint("[0, 0], the top-left corner", "p"), lambda *a: _avgpool_loop(*a, crop="0") if a[-1] else None),
        _Bug("dxp[..., p:-p, p:-p] is empty when p = 0 (-0 is 0): crop with dxp[..., p:p + H, p:p + W]",
             lambda *a: _avgpool_loop(*a, crop="p:-p") if not a[-1] else None),
        _Bug("the padded input's gradient is returned whole: crop the padding off, dxp[..., p:p + H, p:p + W]",
             lambda *a: _avgpool_loop(*a, crop="none") if a[-1] else None),
        _Bug("every dout cell spread over a k×k block (chapter 3's expansion) / k**2: that is the gradient only "
             "when the windows tile x (stride = kernel_size, no padding, sizes divisible); window (i, j) starts "
             "at row i*stride - padding", _expanded),
    ),
    cases=_pool_cases(_AVGPOOL_ROWS, with_dout=True),
    show=("dout",),
    locate=_locate_avgpool_backward,
    sizes=_pool_sizes,
)


def check_avgpool_backward(fn: Callable[[np.ndarray, np.ndarray, int, int, int], np.ndarray]
                           ) -> Optional[CheckSummary]:
    """Check an average-pooling backward pass (chapter 9).

    ``fn(dout, x, kernel_size, stride, padding) -> dx``: every cell of a window receives
    ∂L/∂Y_ij / k² (padded cells counted, ``count_include_pad=True``, their shares dropped),
    summed over the windows that contain it.  X only gives the shape; ∂L/∂X has the shape of X.
    Returns the summary string (also printed), ``None`` for an unfilled stub; raises
    AssertionError at the first wrong case.
    """
    return _run(_AVGPOOL_BACKWARD, fn)


# ---------------------------------------------------------------------------
# Convolution (chapter 7)
# ---------------------------------------------------------------------------

_ROT_HINT = ("dx is the full correlation of dout with the kernel rotated by 180 degrees, "
             "rot180(w) = w[..., ::-1, ::-1]; equivalently dx[window] += w * dout for every window")
_BATCH_HINT = ("dw and db sum over every image of the batch (+= inside the loop over n, or "
               ".sum(axis=0)); yours keeps the contribution of one image")
_DILATE_HINT = ("with stride s the recipe first dilates dout (s - 1 zeros between neighbouring entries, "
                "core.dilate) so that each dout cell sits where its window starts; yours correlates dout "
                "undilated")
_LEFTOVER_HINT = ("the full correlation of the dilated dout covers only the rows and columns the windows "
                  "reach, (Ho - 1)*s + kh of them; the padded input has H + 2p, and the rest lie in no window: "
                  "their gradient is 0, but they are part of dx (pad the dilated dout at the end by the missing "
                  "rows and columns, or start from np.zeros of x's padded shape)")
_CONV_ASSIGN_DX = ("dx[window] = ... overwrites what earlier windows (and filters) gave: windows overlap "
                   "when stride < kernel size, and a cell of x collects w * dout from every window and "
                   "every filter that reads it: accumulate with +=")
_CONV_ASSIGN_DW = ("dw[f] = ... keeps the last window's product: dw[f] is the sum over every image and "
                   "every window of x[window] * dout[n, f, i, j], so accumulate with +=")


def _conv_case(name: str, tag: str, seed: int, x_shape: Tuple[int, ...], w: Any, stride: int, padding: int,
               focus: str, floats: bool = False) -> _Case:
    """A convolution case; ``w`` is a literal kernel or the shape of a seeded one."""
    def draw(offset, shape):
        return _floats(seed + offset, shape) if floats else _ints(seed + offset, shape, -3, 3)
    w = draw(1, w) if isinstance(w, tuple) else w
    Ho, Wo = (core.pool_output_size(n, k, stride, padding) for n, k in zip(x_shape[2:], w.shape[2:]))
    inputs = {"dout": draw(2, (x_shape[0], w.shape[0], Ho, Wo)), "x": draw(0, x_shape), "w": w,
              "stride": stride, "padding": padding}
    return _Case(name, tag, inputs, focus)


def _conv_sizes(case: _Case, out: str, axis: int) -> Dict[int, str]:
    i = case.inputs
    F, C = i["w"].shape[:2]
    if out == "dx":
        return _pool_sizes(case, out, axis)
    if out == "dw":
        return {C: "C, the number of input channels", F: "F, the number of filters"} if axis < 2 else {}
    return {i["x"].shape[0]: "N, the batch size: db sums over the batch too"}


_CONV_BACKWARD = _Exercise(
    checker="check_conv_backward",
    signature="fn(dout, x, w, stride, padding) -> (dx, dw, db)",
    outputs=("dx", "dw", "db"),
    axes={"dx": "(N, C, H, W), the shape of x",
          "dw": "(F, C, kh, kw), the shape of w",
          "db": "(F,), one entry per filter: dout.sum(axis=(0, 2, 3))"},
    reference=_conv_backward,
    bugs=(
        _Bug("the kernel is not rotated: " + _ROT_HINT, lambda *a: _conv_recipe(*a, turn=lambda w: w)),
        _Bug("rot180(w) is not the transpose: flip both spatial axes, w[..., ::-1, ::-1], do not swap "
             "them (w.T, swapaxes); dx is the full correlation of dout with rot180(w)",
             lambda *a: _conv_recipe(*a, turn=lambda w: w.swapaxes(-1, -2)) if a[2].shape[-1] == a[2].shape[-2]
             else None),
        _Bug("dx[:, c] sums dout[:, f] correlated with rot180(w[f, c]) over the filters f: "
             "the kernel's channel axes swap roles (w.transpose(1, 0, 2, 3))",
             lambda *a: _conv_recipe(*a, swap_channels=False) if a[2].shape[0] == a[2].shape[1] > 1 else None),
        _Bug(_DILATE_HINT, lambda *a: _conv_recipe(*a, dilate=False) if a[3] > 1 else None),
        _Bug(_DILATE_HINT, lambda *a: _conv_recipe(*a, dilate=False, crop="p:-p") if a[3] > 1 and a[4] else None),
        _Bug(_LEFTOVER_HINT, lambda *a: _conv_recipe(*a, leftover=False)),
        _Bug(_LEFTOVER_HINT, lambda *a: _conv_recipe(*a, leftover=False, crop="p:-p") if a[4] else None),
        _Bug("stride forgotten: window (i, j) starts at row i*stride - padding, column j*stride - padding",
             lambda *a: _conv_loop(*a, step=1)[:2] + (None,) if a[3] > 1 else None),
        _Bug(_CONV_ASSIGN_DX, lambda *a: (_conv_loop(*a, dx_update="assign")[0], None, None)),
        _Bug(_CONV_ASSIGN_DW, lambda *a: (None, _conv_loop(*a, dw_update="assign")[1], None)),
        _Bug(_crop_hint("[0, 0], the top-left corner", "p"),
             lambda *a: (_conv_loop(*a, crop="0")[0], None, None) if a[4] else None),
        _Bug("dxp[..., p:-p, p:-p] is empty when p = 0 (-0 is 0): crop with dxp[..., p:p + H, p:p + W]",
             lambda *a: (_conv_loop(*a, crop="p:-p")[0], None, None) if not a[4] else None),
        _Bug("the padded input's gradient is returned whole: crop the padding off, dxp[..., p:p + H, p:p + W]",
             lambda *a: (_conv_loop(*a, crop="none")[0], None, None) if a[4] else None),
        _Bug(_BATCH_HINT, _conv_one_image(0)),
        _Bug(_BATCH_HINT, _conv_one_image(-1)),
        _Bug("dw and db are sums over the batch, not means (the 1/N belongs to the loss)",
             lambda dout, x, w, s, p: (None, *(g / len(x) for g in _conv_backward(dout, x, w, s, p)[1:]))),
        _Bug("db[f] is the sum of dout[:, f] over the batch and both spatial axes, not their mean",
             lambda dout, x, w, s, p: (None, None, dout.mean(axis=(0, 2, 3)))),
        _Bug("db has one entry per filter: dout.sum(axis=(0, 2, 3)), not a single sum over everything",
             lambda dout, x, w, s, p: (None, None, dout.sum())),
        _Bug("db sums over the batch too: dout.sum(axis=(0, 2, 3)); yours keeps one row per image",
             lambda dout, x, w, s, p: (None, None, dout.sum(axis=(2, 3)))),
        _Bug("db sums over the rows and columns too: dout.sum(axis=(0, 2, 3)); yours keeps dout's spatial axes",
             lambda dout, x, w, s, p: (None, None, dout.sum(axis=0))),
        _Bug("dw is not rotated: dw[f, c] is the correlation of x[:, c] with dout[:, f], no 180-degree flip",
             lambda dout, x, w, s, p: (None, core.rot180(_conv_backward(dout, x, w, s, p)[1]), None)),
    ),
    cases=(
        _conv_case("one 3×3 kernel, stride 1, no padding; the kernel is asymmetric, so rot180(w) ≠ wᵀ",
                   "asymmetric kernel (rot180 ≠ transpose)", 30, (1, 1, 5, 5),
                   np.arange(1.0, 10.0).reshape(1, 1, 3, 3), 1, 0,
                   "an asymmetric kernel (its rotation, its transpose and itself all differ) and overlapping "
                   "windows"),
        _conv_case("padding 1 (zero padding; dx is cropped back to the input's size)", "padding",
                   33, (1, 1, 4, 4), (1, 1, 3, 3), 1, 1,
                   "zero padding: the gradient of the padded input, cropped back to x's size"),
        _conv_case("stride 2 on a 7×6 input with a 3×3 kernel (the last column is never read)",
                   "sizes not divisible by the stride", 36, (1, 1, 7, 6), (1, 1, 3, 3), 2, 0,
                   "stride 2, and a column no window reads (its gradient is 0)"),
        _conv_case("batch of 3 (dw and db sum over the batch)", "batch of 3", 39, (3, 1, 4, 4),
                   (1, 1, 2, 2), 1, 0, "a batch: dw and db sum over its images"),
        _conv_case("F ≠ C: 2 input channels, 3 filters", "F ≠ C", 42, (1, 2, 4, 5), (3, 2, 3, 3), 1, 0,
                   "F ≠ C: dx[n, c] sums over the filters f; dw[f, c] pairs filter f with input channel c"),
        _conv_case("non-square 2×3 kernel on a 5×7 input, stride 2, padding 1, batch 2, F = C = 2",
                   "non-square kernel and input", 45, (2, 2, 5, 7), (2, 2, 2, 3), 2, 1,
                   "a non-square kernel: rows use kh, columns use kw"),
        _conv_case("everything at once: batch 2, C = 3, F = 2, 3×2 kernel, stride 2, padding 2, random floats",
                   "random floats", 48, (2, 3, 6, 5), (2, 3, 3, 2), 2, 2,
                   "everything at once on random floats"),
    ),
    show=(),
    locate=_locate_conv,
    sizes=_conv_sizes,
)


def check_conv_backward(fn: Callable[[np.ndarray, np.ndarray, np.ndarray, int, int], tuple]
                        ) -> Optional[CheckSummary]:
    """Check a convolution backward pass (chapter 7).

    ``fn(dout, x, w, stride, padding) -> (dx, dw, db)``: the forward pass is the
    cross-correlation Y[n, f] = Σ_c X[n, c] ⋆ K[f, c] + b[f] with zero padding; X (``x``) is
    (N, C, H, W), the kernel K (``w``) is (F, C, k_h, k_w) (possibly non-square, F ≠ C), ∂L/∂Y
    (``dout``) is (N, F, Ho, Wo).  Return ∂L/∂X, ∂L/∂K and ∂L/∂b with the shapes of X, K and b.
    Returns the summary string (also printed), ``None`` for an unfilled stub; raises
    AssertionError at the first wrong case.
    """
    return _run(_CONV_BACKWARD, fn)


# ---------------------------------------------------------------------------
# Softmax + cross-entropy (chapter 6)
# ---------------------------------------------------------------------------

_MAX_HINT = ("exp overflows for large logits: subtract each row's max first, "
             "z - z.max(axis=1, keepdims=True) (softmax does not change)")


def _locate_ce(case: _Case, out: str, idx: tuple) -> str:
    z, y = case.inputs["logits"], case.inputs["labels"]
    if out == "loss":
        return (f"the loss is the mean over the N = {len(y)} rows of -log softmax(logits[n])[labels[n]]; "
                f"the labels are {y.tolist()}")
    n, m = idx
    p = core.softmax(z)[n, m]
    return (f"row {n} has label {y[n]}; dlogits[{n}, {m}] = (p - {int(m == y[n])}) / N with "
            f"p = softmax(logits[{n}])[{m}] = {_num(p)} and N = {len(y)}")


_SOFTMAX_CE = _Exercise(
    checker="check_softmax_cross_entropy",
    signature="fn(logits, labels) -> (loss, dlogits)",
    outputs=("loss", "dlogits"),
    axes={"loss": "one number (a float or a 0-d array): the mean over the batch",
          "dlogits": "(N, K), the shape of logits"},
    reference=_ce,
    bugs=(
        _Bug("your loss is N times the expected: the SUM over the batch; the loss is the batch mean, "
             "divide it by N", lambda z, y: (_ce(z, y)[0] * len(y), None)),
        _Bug("your loss is divided by N twice: .mean() already divides by N",
             lambda z, y: (_ce(z, y)[0] / len(y), None)),
        _Bug("missing /N: the loss is the batch MEAN, so its gradient is dlogits = (p - one_hot) / N",
             lambda z, y: (None, _ce(z, y)[1] * len(y))),
        _Bug("/N applied twice: the loss is the batch mean, so divide by the batch size N exactly once: "
             "dlogits = (p - one_hot) / N", lambda z, y: (None, _ce(z, y)[1] / len(y))),
        _Bug("subtract the max of each row (axis=1, keepdims=True), not of the whole array: a row far "
             "below the global max underflows to 0/0", lambda z, y: _ce_from(z, y, z.max())),
        _Bug("no max subtraction: " + _MAX_HINT, lambda z, y: _ce_from(z, y, 0.0)),
        _Bug("log(softmax) underflows to log(0) = -inf: compute log p = shifted - log(sum(exp(shifted))) "
             "from the shifted logits",
             lambda z, y: (-np.log(_softmax_rows(z, z.max(axis=1, keepdims=True))[np.arange(len(y)), y]).mean(),
                           None)),
        _Bug("log-sum-exp with the max taken out must add it back: log sum exp(z) = m + log sum exp(z - m); "
             "yours mixes the shifted and the unshifted logits",
             lambda z, y: (-(z[np.arange(len(y)), y]
                             - np.log(np.exp(z - z.max(axis=1, keepdims=True)).sum(axis=1))).mean(), None)),
        _Bug("subtract 1 at the label: dlogits = (p - one_hot(labels)) / N",
             lambda z, y: (None, core.softmax(z) / len(y))),
        _Bug("softmax normalises each ROW (over the classes, axis=1); yours normalises each column "
             "(over the batch, axis=0)", lambda z, y: _ce_from(z, y, z.max(axis=0, keepdims=True), axis=0)),
        _Bug("p[:, labels] picks every label in every row; one entry per row is p[np.arange(N), labels]",
             _ce_all_labels),
        _Bug("the loss is -log p[label], a positive number; yours has the opposite sign",
             lambda z, y: (-_ce(z, y)[0], None)),
        _Bug("dlogits = (p - one_hot) / N; yours has the opposite sign, (one_hot - p) / N, the gradient "
             "of the log-likelihood rather than of the loss", lambda z, y: (None, -_ce(z, y)[1])),
        _Bug("the loss is one number, the mean of the per-example losses; yours returns them all",
             lambda z, y: (-np.log(core.softmax(z)[np.arange(len(y)), y]), None)),
    ),
    cases=(
        _Case("one example, 3 classes", "one example",
              {"logits": np.array([[2.0, 1.0, 0.1]]), "labels": np.array([0])},
              "one example: loss = -log softmax(logits)[label], dlogits = softmax(logits) - one_hot(label)"),
        _Case("batch of 4, 5 classes (the loss is the batch mean)", "a batch of 4",
              {"logits": _floats(50, (4, 5)), "labels": np.array([0, 3, 4, 1])},
              "a batch: the loss is the mean over its rows"),
        _Case("logits of ±1000: rows [1000, 0, -1000] and [-1000, 1000, 0]", "logits of ±1000",
              {"logits": np.array([[1000.0, 0.0, -1000.0], [-1000.0, 1000.0, 0.0]]), "labels": np.array([2, 1])},
              "logits of ±1000, where exp overflows and probabilities underflow to 0"),
        _Case("one row near +1000, one near -1000 (subtract each row's own max)", "rows at ±1000",
              {"logits": np.array([[1000.0, 999.0, 998.0], [-1000.0, -1002.0, -1001.0]]),
               "labels": np.array([0, 2])}, "rows of very different sizes (each row has its own max)"),
        _Case("equal logits in a row (a uniform softmax), labels 0 and K-1", "equal logits",
              {"logits": np.array([[0.0, 0.0, 0.0, 0.0], [3.0, 3.0, 3.0, 3.0], [1.0, -1.0, 2.0, -2.0]]),
               "labels": np.array([0, 3, 3])}, "equal logits (p = 1/K) and a repeated label"),
        _Case("batch of 6, 10 classes, logits of size ~10", "a batch of 6, 10 classes",
              {"logits": 10 * _floats(51, (6, 10)), "labels": np.array([9, 0, 3, 3, 7, 1])},
              "a batch of 6 with 10 classes and large logits"),
    ),
    show=("logits", "labels"),
    locate=_locate_ce,
    sizes=lambda case, out, axis: ({len(case.inputs["labels"]): "N: one loss per example"} if out == "loss" else {}),
)


def check_softmax_cross_entropy(fn: Callable[[np.ndarray, np.ndarray], tuple]) -> Optional[CheckSummary]:
    """Check softmax + cross-entropy, loss and gradient (chapter 6).

    ``fn(logits, labels) -> (loss, dlogits)``: the logits z are (N, M) floats, the labels t are
    (N,) ints in [0, M); the loss L is the batch mean of −log softmax(z_n)[t_n] and
    ∂L/∂z = (p − 1[m = t]) / N.  Both must stay finite for logits of ±1000.  Returns the
    summary string (also printed), ``None`` for an unfilled stub; raises AssertionError at the
    first wrong case.
    """
    return _run(_SOFTMAX_CE, fn)


# ---------------------------------------------------------------------------
# The gradient check itself (pain point "it trains, so it's right")
# ---------------------------------------------------------------------------

class _Smooth:
    """f(x) = ½ vᵀAv + bᵀv + c Σ v³ with v = x.ravel(): smooth, with an exact gradient.

    A is symmetric with a diagonal of 6..9 and positive off-diagonal entries 1..2, so that
    ∂²f/∂x_i² ≥ 3 everywhere the cases look (a one-sided difference is then off by more than
    1e-6 at eps = 1e-6) and every entry's slope depends on every other entry (a point left moved
    changes the next slopes)."""

    def __init__(self, seed: int, size: int, cubic: float):
        rng = np.random.default_rng(seed)
        off = rng.integers(1, 3, size=(size, size)).astype(np.float64)
        self.A = np.triu(off, 1) + np.triu(off, 1).T + np.diag(rng.integers(6, 10, size=size).astype(np.float64))
        self.b = rng.integers(-3, 4, size=size).astype(np.float64)
        self.c = cubic

    def __call__(self, x: np.ndarray) -> float:
        v = np.asarray(x, dtype=np.float64).ravel()
        return float(0.5 * v @ self.A @ v + self.b @ v + self.c * np.sum(v ** 3))

    def gradient(self, x: np.ndarray) -> np.ndarray:
        v = np.asarray(x, dtype=np.float64).ravel()
        return (self.A @ v + self.b + 3 * self.c * v ** 2).reshape(np.shape(x))


class _Recorder:
    """``f`` as the learner's function sees it: checks the shape of every point it is given and
    remembers the points and the values (the evidence for the hints)."""

    def __init__(self, f: _Smooth, shape: Tuple[int, ...]):
        self.f, self.shape = f, shape
        self.points: List[np.ndarray] = []
        self.values: List[float] = []
        self.__name__ = "f"

    def __call__(self, x: Any) -> float:
        arr = np.asarray(x)
        if arr.shape != self.shape:
            raise _BadCall(f"f was called with {_short(x)}; it takes an array of x's shape {self.shape}",
                           "call f with an array of x's shape: move an entry of x itself (x[idx] += eps) or of "
                           "a copy of the same shape, then pass that array (not a flattened or indexed piece)")
        value = self.f(arr)
        if len(self.points) < 2000:
            self.points.append(np.array(arr, dtype=np.float64))
            self.values.append(value)
        return value

    def __repr__(self) -> str:
        return "f"


def _gradcheck_case(name: str, tag: str, seed: int, shape: Tuple[int, ...], eps: float, cubic: float,
                    focus: str, transpose: bool = False) -> _Case:
    x = np.round(np.random.default_rng(seed).uniform(-1.5, 1.5, size=shape), 6)
    if transpose:
        x = np.ascontiguousarray(x.T).T  # the same values, stored column by column: the transpose of a C array
    return _Case(name, tag, {"f": _Smooth(seed, x.size, cubic), "x": x, "eps": eps}, focus)


def _gradcheck_prepare(case: _Case) -> Dict[str, Any]:
    args = _copy_inputs(case)
    args["f"] = _Recorder(case.inputs["f"], case.inputs["x"].shape)
    return args


def _is(value: float, target: float) -> bool:
    return abs(value - target) <= 1e-6 * abs(target)


def _entry(shape: Tuple[int, ...], flat: int) -> str:
    return f"x{_fmt_index(tuple(int(i) for i in np.unravel_index(flat, shape)))}"


def _trace_hint(case: _Case, args: Dict[str, Any], got: np.ndarray) -> Optional[str]:
    """What the calls of f show: the points the learner's function evaluated f at."""
    rec: _Recorder = args["f"]
    x0, eps = case.inputs["x"], case.inputs["eps"]
    shape, size = x0.shape, x0.size
    if not rec.points:
        return "your function never called f: the gradient comes from evaluating f at moved copies of x"
    plus, minus, base = set(), set(), False
    odd: Dict[int, float] = {}
    multi: List[np.ndarray] = []
    for point in rec.points:
        d = (point - x0).ravel()
        moved = np.flatnonzero(d)
        if moved.size == 0:
            base = True
        elif moved.size == 1:
            i, v = int(moved[0]), float(d[moved[0]])
            if _is(v, eps):
                plus.add(i)
            elif _is(v, -eps):
                minus.add(i)
            else:
                odd.setdefault(i, v)
        else:
            multi.append(d)
    if not (plus or minus or odd or multi):
        layout = ("; this x is not C-contiguous (a transposed view), so x.reshape(-1) and x.ravel() are copies: "
                  "writing into them leaves x alone" if not x0.flags.c_contiguous else "")
        return (f"f was called {len(rec.points)} times, always at x itself: your moves never reached the array "
                f"you passed to f (a copy was moved, or two names for one array made +eps and -eps cancel)"
                f"{layout}. Move x[idx] in the array you pass to f, for idx in np.ndindex(x.shape)")
    if multi:
        return _several_moved(multi[0], x0, eps)
    never = [i for i in range(size) if i not in plus | minus | set(odd)]
    if never:
        seen = sorted(plus | minus | set(odd))
        first_n = seen == list(range(len(seen)))
        return (f"f never saw {_entry(shape, never[0])} moved: only {len(seen)} of the {size} entries of x were "
                f"({', '.join(_entry(shape, i) for i in seen[:4])}{', ...' if len(seen) > 4 else ''}"
                + (f": the first {len(seen)} in row-major order" if first_n else "")
                + "). The loop must visit every entry: for idx in np.ndindex(x.shape), or for i in range(x.size) "
                  "with x.flat[i]")
    if odd:
        i, step = next(iter(odd.items()))
        return (f"f saw {_entry(shape, i)} moved by {step:.3g}, not by +eps or -eps (eps = {eps:g}): evaluate "
                f"f at x + eps*e_i and at x - eps*e_i")
    if plus != minus:
        error = float(np.max(np.abs(got.astype(np.float64) - case.inputs["f"].gradient(x0))))
        if plus and minus:  # some entries moved both ways, some one way only
            i = min(plus ^ minus)
            up, down = ("+", "-") if i in plus else ("-", "+")
            return (f"f saw {_entry(shape, i)} moved by {up}eps but never by {down}eps: every entry needs both "
                    f"points, (f(x + eps*e_i) - f(x - eps*e_i)) / (2*eps)")
        up, down = ("+", "-") if plus else ("-", "+")
        return (f"f was evaluated at x {up} eps*e_i{' and at x' if base else ''} but never at x {down} eps*e_i: "
                f"a one-sided difference, whose error is about eps/2 * f'' (yours is off by up to {error:.1g} "
                f"here); the central difference (f(x + eps*e_i) - f(x - eps*e_i)) / (2*eps) is off by about eps**2")
    return _formula_hint(rec, x0, eps, got)


def _several_moved(d: np.ndarray, x0: np.ndarray, eps: float) -> str:
    """The first point at which f saw several entries of x moved at once."""
    shape, size = x0.shape, x0.size
    moved = np.flatnonzero(d)
    alike = all(_is(v, d[moved[0]]) for v in d[moved])
    if moved.size == size and alike:
        return (f"f was called with every entry of x moved at once (x {'+' if d[moved[0]] > 0 else '-'} eps): that "
                f"measures the slope along (1, 1, ..., 1), the sum of all the partial derivatives. Move one "
                f"entry at a time: for idx in np.ndindex(x.shape)")
    if x0.ndim > 1 and alike:
        rows = {int(np.unravel_index(i, shape)[0]) for i in moved}
        if len(rows) == 1 and moved.size == size // shape[0]:
            r = rows.pop()
            return (f"f was called with all of x[{r}] moved at once ({moved.size} entries): x has {x0.ndim} axes, "
                    f"so x[i] is a whole slice and a loop for i in range(len(x)) moves slices. Move one entry at "
                    f"a time: for idx in np.ndindex(x.shape), x[idx] += eps")
    if all(_is(abs(v), eps) for v in d[moved]):
        return (f"f was called with {moved.size} entries of x moved at once ({_entry(shape, moved[0])} and "
                f"{_entry(shape, moved[-1])} among them): an entry was not put back before the next one moved. "
                f"After its two evaluations restore it, x[idx] = old")
    return (f"f was called at a point where {moved.size} entries differ from x ({_entry(shape, moved[0])} by "
            f"{d[moved[0]]:.3g}): move one entry at a time, by +eps and by -eps, and put it back")


def _formula_hint(rec: _Recorder, x0: np.ndarray, eps: float, got: np.ndarray) -> Optional[str]:
    """The points were right (each entry moved by +eps and by -eps, one at a time): check the
    arithmetic against the values f returned there."""
    fp, fm = np.full(x0.size, np.nan), np.full(x0.size, np.nan)
    for point, value in zip(rec.points, rec.values):
        d = (point - x0).ravel()
        moved = np.flatnonzero(d)
        if moved.size == 1:
            target = fp if d[moved[0]] > 0 else fm
            if np.isnan(target[moved[0]]):
                target[moved[0]] = value
    got = got.astype(np.float64).ravel()
    if not np.any(got):
        return ("your grad is all zeros although f saw every entry moved: the slopes never reached the array "
                "you return (written into a copy such as grad.flatten(), or never stored)")
    candidates = (
        ((fp - fm) / eps, "your gradient is twice the slope: the points x + eps and x - eps are 2*eps apart, "
                          "so divide by 2*eps, not by eps"),
        ((fm - fp) / (2 * eps), "your gradient has the wrong sign: it is (f(x + eps*e_i) - f(x - eps*e_i)) / "
                                "(2*eps), the upper point first"),
        ((fp - fm) / 2 * eps, "(fp - fm) / 2 * eps multiplies by eps (Python reads it as ((fp - fm) / 2) * eps): "
                              "write (fp - fm) / (2 * eps)"),
        (fp - fm, "divide the difference by 2*eps: (f(x + eps*e_i) - f(x - eps*e_i)) / (2*eps)"),
    )
    for value, hint in candidates:
        if np.allclose(got, value, rtol=1e-6, atol=1e-9 * np.max(np.abs(value))):
            return hint
    right = (fp - fm) / (2 * eps)
    if np.allclose(np.sort(got), np.sort(right), rtol=1e-6, atol=1e-7):
        return ("the right slopes at the wrong entries: store each difference at the entry you moved "
                "(grad[idx] for the idx you moved, in x's shape)")
    return None


def _gradcheck_changed(key: str, before: np.ndarray, after: np.ndarray, case: _Case) -> Optional[str]:
    if key != "x":
        return None
    eps = case.inputs["eps"]
    d = (after - before).ravel()
    moved = np.flatnonzero(d)
    first = _entry(before.shape, moved[0])
    if all(_is(abs(v), eps) or _is(abs(v), 2 * eps) for v in d[moved]):
        return (f"{first} is still moved by {d[moved[0]]:.3g} ({moved.size} entr{'y' if moved.size == 1 else 'ies'} "
                f"not put back): after evaluating f at x + eps and x - eps, put the entry back, x[idx] = old "
                f"(the caller's x must come back unchanged)")
    if np.all(np.abs(d[moved]) <= 1e-12 * np.maximum(1.0, np.abs(before.ravel()[moved]))):
        return (f"{first} differs from before by {d[moved[0]]:.1e}: putting it back by arithmetic (x[idx] += eps "
                f"after x[idx] -= 2*eps) is not exact in floating point. Keep old = x[idx] and assign x[idx] = old")
    return None


def _locate_gradcheck(case: _Case, out: str, idx: tuple) -> str:
    return (f"it is the slope of f along {'x' + _fmt_index(idx)} (x there = {_num(case.inputs['x'][idx])}, "
            f"eps = {case.inputs['eps']:g})")


_GRADCHECK = _Exercise(
    checker="check_numerical_gradient",
    signature="fn(f, x, eps=1e-6) -> grad",
    outputs=("grad",),
    axes={"grad": "the shape of x: one slope per entry"},
    reference=lambda f, x, eps: f.gradient(x),
    bugs=(),
    cases=(
        _gradcheck_case("x of shape (3,), f a quadratic ½ xᵀAx + bᵀx, eps = 1e-6", "a vector (3,)",
                        60, (3,), 1e-6, 0.0, "a vector x"),
        _gradcheck_case("x of shape (2, 3): every slope depends on every entry", "a matrix (2, 3)",
                        61, (2, 3), 1e-6, 0.0, "a matrix x: every entry is moved, one at a time, and put back"),
        _gradcheck_case("x of shape (2, 2, 3), f with a cubic term", "three axes (2, 2, 3)",
                        62, (2, 2, 3), 1e-6, 0.25, "an x with three axes and a non-quadratic f"),
        _gradcheck_case("eps = 1e-3 on a quadratic: central differences are exact for any eps, a one-sided "
                        "difference is off by eps/2 * f''", "eps = 1e-3", 63, (2, 3), 1e-3, 0.0,
                        "a larger eps: central differences stay exact on a quadratic"),
        _gradcheck_case("x is a transposed view (3, 2): not C-contiguous, so x.reshape(-1) is a copy",
                        "a non-contiguous x", 64, (3, 2), 1e-6, 0.0,
                        "an x that is not C-contiguous (moving entries of a flattened copy never reaches f)",
                        transpose=True),
    ),
    show=("x",),
    locate=_locate_gradcheck,
    sizes=lambda case, out, axis: {},
    rtol=1e-8,
    atol=1e-7,
    prepare=_gradcheck_prepare,
    inspect=_trace_hint,
    changed=_gradcheck_changed,
)


def check_numerical_gradient(fn: Callable[..., np.ndarray]) -> Optional[CheckSummary]:
    """Check a central-difference gradient (the gradient check every chapter relies on).

    ``fn(f, x, eps=1e-6) -> grad``: ``f`` maps an array of x's shape to a float, ``x`` is a
    float64 array of any shape (the battery uses (3,), (2, 3), (2, 2, 3) and a non-contiguous
    (3, 2)); return a new float64 array of x's shape whose entry ``idx`` is
    (f(x + eps·e_idx) − f(x − eps·e_idx)) / (2·eps), with ``x`` unchanged afterwards (restore each
    entry by assignment, ``x[idx] = old``).  The checker calls ``fn(f, x, eps)`` with eps given,
    compares with the exact gradient of smooth functions (tolerance 1e-7) and watches where f is
    evaluated, so a hint can say which points your function used.  Returns the summary string
    (also printed), ``None`` for an unfilled stub; raises AssertionError at the first wrong case.
    """
    return _run(_GRADCHECK, fn)


def relative_error(a: Any, b: Any, floor: float = 1e-12) -> float:
    """The largest entrywise relative error between two gradients of the same shape,
    max |a − b| / max(|a| + |b|, floor): 0 for equal arrays, 1 when one of the two is 0 and the
    other is not, 1e-7 or less between a correct backward pass and central differences in
    float64 (away from kinks).

    It is the measure chapter 8's network gradient check reports.  Raises ValueError when the
    shapes differ (nothing is broadcast); NaN in either array gives NaN.
    """
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"a and b must have the same shape, got {a.shape} and {b.shape}")
    if a.size == 0:
        return 0.0
    return float(np.max(np.abs(a - b) / np.maximum(np.abs(a) + np.abs(b), floor)))


# ---------------------------------------------------------------------------
# Layers for the reader's gradient check to judge, one with a planted bug
# ---------------------------------------------------------------------------

@dataclass(frozen=True)
class SuspectLayer:
    """A layer with a fixed geometry: ``forward(x) -> out`` and ``backward(dout, x) -> dx``
    (∂L/∂X from ∂L/∂Y and the forward input X), for inputs of shape ``input_shape``."""
    name: str
    input_shape: Tuple[int, ...]
    forward: Callable[[np.ndarray], np.ndarray] = field(repr=False)
    backward: Callable[[np.ndarray, np.ndarray], np.ndarray] = field(repr=False)


def _planted_maxpool_backward(dout: np.ndarray, x: np.ndarray) -> np.ndarray:
    """3×3 max pooling, stride 2, padding 1, backward with the planted bug: each window's dout is
    *assigned* to its winner, so a cell that wins two overlapping windows keeps the later one's
    (``_maxpool_loop(..., update="winner")``, vectorised: the last window of each winner wins)."""
    N, C, H, W = x.shape
    argmax = core.maxpool2d_forward(x, 3, 2, 1)[1].argmax            # winner's row * W + col, per window
    keys = (argmax + (np.arange(N * C) * H * W).reshape(N, C, 1, 1)).ravel()
    last = keys.size - 1 - np.unique(keys[::-1], return_index=True)[1]  # each winner's last window
    dx = np.zeros(x.size)
    dx[keys[last]] = dout.ravel()[last]
    return dx.reshape(x.shape)


def suspect_layers() -> Tuple[SuspectLayer, ...]:
    """Four layers whose backward passes look right: the right shapes, gradient where it belongs,
    and a network built with them trains as well as the correct one.  Exactly one backward pass
    has a planted bug; a gradient check at a random point finds it.  (At a point where a ReLU input is 0 or two
    inputs of a pooling window tie, finite differences disagree with every correct backward
    pass too: check away from those kinks.)
    """
    w = np.array([[[[1.0, -2.0, 0.5], [0.0, 3.0, -1.0], [2.0, 1.0, -0.5]]]])
    return (
        SuspectLayer("ReLU", (2, 3, 4, 4), lambda x: core.relu_forward(x)[0], _relu_backward),
        SuspectLayer("max pooling 3×3, stride 2, padding 1", (2, 2, 7, 7),
                     lambda x: _maxpool_forward(x, 3, 2, 1), _planted_maxpool_backward),
        SuspectLayer("average pooling 2×2, stride 2", (2, 2, 6, 6),
                     lambda x: core.avgpool2d_forward(x, 2, 2)[0], lambda d, x: _avgpool_backward(d, x, 2, 2, 0)),
        SuspectLayer("convolution with one 3×3 kernel, padding 1", (2, 1, 5, 5),
                     lambda x: core.conv2d_forward(x, w, None, 1, 1)[0],
                     lambda d, x: _conv_backward(d, x, w, 1, 1)[0]),
    )
