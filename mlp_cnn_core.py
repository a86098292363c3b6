"""mlp_cnn_core: the forward and backward math of a small CNN, in numpy only.

Every chapter of the book stands on this module.  Conventions:

* Images are ``(N, C, H, W)`` like PyTorch.  Pooling also accepts any number of
  leading dimensions before ``(H, W)`` (a plain 2-D matrix works).
* Every ``*_forward`` returns ``(out, cache)``; every ``*_backward`` takes
  ``(dout, cache)`` and returns the gradient(s) of the inputs.
* ``kernel_size``, ``stride`` and ``padding`` take an int or an ``(h, w)`` pair;
  ``stride=None`` means "equal to the kernel".
* Float inputs keep their dtype (float32 stays float32); integer and boolean
  inputs are computed in float64.
* The gradient semantics are PyTorch's: max pooling sends each window's
  gradient to the *first* maximum in row-major order (a NaN wins its window),
  padding in max pooling acts as -inf, overlapping windows *add* their
  gradients, average pooling counts padded zeros (``count_include_pad=True``),
  ReLU'(0) = 0, convolution is cross-correlation, cross-entropy is a mean over
  the batch.
* Bad input raises ``ValueError`` or ``TypeError`` naming the argument and the
  shapes involved.  Inputs are never modified.

Each layer comes twice: a ``*_naive`` version that loops over every output cell
(the one to read first), then the vectorised version.  The vectorised versions
share one idea: a strided view of the (padded) input holds every window at once
(:func:`_windows`, nothing copied); loop over the ``kh * kw`` offsets ``(a, b)``
inside a window, and at each offset handle *every* window at once.  The backward passes add
(``+=``) onto the same slices, so overlapping windows accumulate.  Max pooling's
backward pass (PyTorch's ``ties="first"``) adds each window's gradient onto the cell
named by ``argmax`` instead, with one ``np.bincount``.
"""
from __future__ import annotations

import functools
import itertools
import math
import numbers
from dataclasses import dataclass
from typing import Any, Callable, Optional, Tuple

import numpy as np

__all__ = [
    "conv2d_forward", "conv2d_backward",
    "conv2d_forward_naive", "conv2d_backward_naive",
    "relu_forward", "relu_backward",
    "maxpool2d_forward", "maxpool2d_backward",
    "maxpool2d_forward_naive", "maxpool2d_backward_naive",
    "maxpool2d_mask", "maxpool2d_winners", "WindowGeometry",
    "avgpool2d_forward", "avgpool2d_backward",
    "flatten_forward", "flatten_backward",
    "dense_forward", "dense_backward",
    "softmax", "softmax_cross_entropy", "l2_loss",
    "numerical_gradient",
    "pool_output_size", "expand_gradient",
    "im2col", "col2im", "dilate", "rot180",
    "conv2d_input_grad_rotated",
    "ConvCache", "ReluCache", "MaxPoolCache", "AvgPoolCache", "FlattenCache", "DenseCache",
    "TIES_POLICIES",
]

TIES_POLICIES = ("first", "all", "split")


# ---------------------------------------------------------------------------
# Argument checks
# ---------------------------------------------------------------------------

def _pair(value: Any, name: str) -> Tuple[int, int]:
    """``value`` as an ``(h, w)`` pair of Python ints, or TypeError."""
    if type(value) is int:  # the common case, checked first because every layer call comes here
        return value, value
    pair = tuple(value) if isinstance(value, (tuple, list)) else (value, value)
    if len(pair) != 2 or not all(isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))
                                 for v in pair):
        raise TypeError(f"{name} must be an int or a pair of ints (h, w), got {value!r}")
    return int(pair[0]), int(pair[1])


def _as_float(x: Any, name: str) -> np.ndarray:
    """``x`` as a float array: float dtypes kept, ints and bools -> float64.  Never written to."""
    arr = np.asarray(x)
    if arr.dtype.kind == "f":
        return arr
    if arr.dtype.kind in "iub":
        return arr.astype(np.float64)
    raise TypeError(f"{name} must hold real numbers, got dtype {arr.dtype} (shape {arr.shape})")


def _check_ndim(arr: np.ndarray, name: str, ndim: int, layout: str) -> None:
    if arr.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D {layout}, got shape {arr.shape}")


def _check_dout(dout: Any, shape: Tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    d = _as_float(dout, "dout")
    if d.shape != tuple(shape):
        raise ValueError(f"dout must have the shape of the forward output {tuple(shape)}, got {d.shape}")
    return d if d.dtype == dtype else d.astype(np.promote_types(dtype, d.dtype), copy=False)


def _check_cache(cache: Any, cls: type, fn: str) -> None:
    if not isinstance(cache, cls):
        raise TypeError(f"cache must be the {cls.__name__} returned by {fn}, got {type(cache).__name__}")


def _bias(b: Any, n: int, w: np.ndarray, layout: str):
    """The bias as a float array of shape ``(n,)`` (or None), checked against the weights ``w``."""
    if b is None:
        return None
    b = _as_float(b, "b")
    if b.shape != (n,):
        raise ValueError(f"b must have shape {layout} = {(n,)} to match w {w.shape}, got {b.shape}")
    return b


def pool_output_size(size: int, kernel: int, stride: Optional[int] = None, padding: int = 0) -> int:
    """Output length of a window sliding over ``size`` cells: ``floor((size + 2p - k) / s) + 1``.

    Chapter 3 derives it.
    """
    stride = kernel if stride is None else stride
    return (size + 2 * padding - kernel) // stride + 1


# ---------------------------------------------------------------------------
# Window geometry, shared by pooling and convolution
# ---------------------------------------------------------------------------

@dataclass(frozen=True)
class WindowGeometry:
    """Where the windows of a pooling or convolution layer sit (Chapter 3 draws them).

    ``kernel_size``, ``stride``, ``padding`` are ``(h, w)`` pairs, ``in_size`` is the unpadded
    input ``(H, W)`` and ``out_size`` the output ``(Ho, Wo)``.  Window ``(i, j)`` covers the
    padded input's rows ``i*sh .. i*sh + kh - 1`` and columns ``j*sw .. j*sw + kw - 1``.
    """
    kernel_size: Tuple[int, int]
    stride: Tuple[int, int]
    padding: Tuple[int, int]
    in_size: Tuple[int, int]
    out_size: Tuple[int, int]

    @classmethod
    def of(cls, x_shape, kernel_size, stride, padding, pool: bool) -> "WindowGeometry":
        """Check the arguments against an input of shape ``(..., H, W)`` and build the geometry."""
        (H, W), (kh, kw) = x_shape[-2:], _pair(kernel_size, "kernel_size")
        (sh, sw), (ph, pw) = (kh, kw) if stride is None else _pair(stride, "stride"), _pair(padding, "padding")
        if min(kh, kw) <= 0:
            raise ValueError(f"kernel_size must be positive, got {(kh, kw)}")
        if min(sh, sw) <= 0:
            raise ValueError(f"stride must be positive, got {(sh, sw)}")
        if min(ph, pw) < 0:
            raise ValueError(f"padding must be >= 0, got {(ph, pw)}")
        if pool and (2 * ph > kh or 2 * pw > kw):
            raise ValueError(f"padding must be at most half the kernel size (as in PyTorch): "
                             f"padding={(ph, pw)}, kernel_size={(kh, kw)}")
        if kh > H + 2 * ph or kw > W + 2 * pw:
            raise ValueError(f"kernel_size {(kh, kw)} is larger than the padded input "
                             f"{(H + 2 * ph, W + 2 * pw)} (input shape {tuple(x_shape)}, padding {(ph, pw)})")
        out = ((H + 2 * ph - kh) // sh + 1, (W + 2 * pw - kw) // sw + 1)
        return cls((kh, kw), (sh, sw), (ph, pw), (H, W), out)

    def input_cell(self, i, j, a, b) -> Tuple[Any, Any]:
        """The input cell ``(row, col)`` at offset ``(a, b)`` of window ``(i, j)`` (arrays work too);
        it lies outside ``[0, H) x [0, W)`` when it is a padded cell."""
        return i * self.stride[0] - self.padding[0] + a, j * self.stride[1] - self.padding[1] + b

    def cells(self, i, j):
        """The input cells ``(row, col)`` of window ``(i, j)`` in row-major order, padding left out."""
        (kh, kw), (H, W) = self.kernel_size, self.in_size
        at = (self.input_cell(i, j, a, b) for a in range(kh) for b in range(kw))
        return [(r, c) for r, c in at if 0 <= r < H and 0 <= c < W]

    def windows_of(self, r, c):
        """The windows ``(i, j)`` that contain input cell ``(r, c)``, in row-major order."""
        (kh, kw), (sh, sw), (ph, pw), (Ho, Wo) = self.kernel_size, self.stride, self.padding, self.out_size
        rows = [i for i in range(Ho) if 0 <= r + ph - i * sh < kh]
        return [(i, j) for i in rows for j in range(Wo) if 0 <= c + pw - j * sw < kw]

    def is_real(self, i, j, a, b):
        """True where offset ``(a, b)`` of window ``(i, j)`` is a cell of the input, not padding."""
        r, c = self.input_cell(i, j, a, b)
        return (0 <= r) & (r < self.in_size[0]) & (0 <= c) & (c < self.in_size[1])


def _pad(x: np.ndarray, geo: WindowGeometry, value: float) -> np.ndarray:
    (ph, pw), (H, W) = geo.padding, geo.in_size
    if not (ph or pw):
        return x
    xp = np.full(x.shape[:-2] + (H + 2 * ph, W + 2 * pw), value, dtype=x.dtype)
    xp[..., ph:ph + H, pw:pw + W] = x
    return xp


def _crop(xp: np.ndarray, geo: WindowGeometry) -> np.ndarray:
    (ph, pw), (H, W) = geo.padding, geo.in_size
    return xp[..., ph:ph + H, pw:pw + W].copy() if (ph or pw) else xp


def _windows(xp: np.ndarray, geo: WindowGeometry) -> np.ndarray:
    """Every window of the padded input ``xp (..., Hp, Wp)`` at once, as a view ``(..., Ho, Wo, kh, kw)``
    (nothing is copied): entry ``[..., i, j, a, b]`` is ``xp[..., i*sh + a, j*sw + b]``.

    This is numpy's ``sliding_window_view(xp, (kh, kw), axis=(-2, -1))[..., ::sh, ::sw, :, :]``,
    built directly from strides because that call alone costs more than a small layer.  Windows
    overlap when the stride is smaller than the kernel, so the vectorised layers read and write
    the view one window offset ``[..., a, b]`` at a time: within one offset no two windows share a cell.
    """
    (sh, sw), (r, c) = geo.stride, xp.strides[-2:]
    return np.ndarray(xp.shape[:-2] + geo.out_size + geo.kernel_size, xp.dtype, xp, 0,
                      xp.strides[:-2] + (sh * r, sw * c, r, c))


def _offsets(geo: WindowGeometry):
    """The offsets ``(a, b)`` inside a window, in row-major order."""
    return itertools.product(range(geo.kernel_size[0]), range(geo.kernel_size[1]))


def _add_windows(dxp: np.ndarray, geo: WindowGeometry, parts: np.ndarray) -> np.ndarray:
    """The backward of :func:`_windows`: ``+=`` each ``parts[..., i, j, a, b]`` onto the cell of the
    padded ``dxp`` it was read from (overlapping windows accumulate), one offset at a time."""
    if parts.size <= _SMALL:  # one np.bincount over every cell's flat index costs less than kh*kw calls
        sums = np.bincount(_cell_index(geo, dxp.shape).ravel(), parts.ravel(), minlength=dxp.size)
        dxp += sums.reshape(dxp.shape).astype(dxp.dtype, copy=False)
        return dxp
    win = _windows(dxp, geo)
    for a, b in _offsets(geo):
        win[..., a, b] += parts[..., a, b]
    return dxp


def _zeros_padded(lead: Tuple[int, ...], geo: WindowGeometry, dtype) -> np.ndarray:
    """Zeros of the padded input's shape; they start as +0.0, so no routed gradient is ever -0.0."""
    (ph, pw), (H, W) = geo.padding, geo.in_size
    return np.zeros(lead + (H + 2 * ph, W + 2 * pw), dtype=dtype)


_SMALL = 4096  # arrays this small take a path with fewer numpy calls (each costs about a microsecond)


@functools.lru_cache(maxsize=64)
def _cell_index(geo: WindowGeometry, shape: Tuple[int, ...]) -> np.ndarray:
    """The flat index of every cell of :func:`_windows` in a padded array of ``shape``."""
    return _windows(np.arange(math.prod(shape)).reshape(shape), geo)


@functools.lru_cache(maxsize=64)
def _window_starts(geo: WindowGeometry) -> Tuple[np.ndarray, np.ndarray]:
    """Flat index ``row * W + col`` of offset ``(0, 0)`` of each window ``(Ho, Wo)``, and how far
    offset ``a * kw + b`` lies from it (``a * W + b`` cells).  Cached: layers reuse their geometry."""
    (kh, kw), (Ho, Wo), W = geo.kernel_size, geo.out_size, geo.in_size[1]
    r0, c0 = geo.input_cell(np.arange(Ho)[:, None], np.arange(Wo), 0, 0)
    return r0 * W + c0, (np.arange(kh)[:, None] * W + np.arange(kw)).ravel()


class _Cache:
    """Readable, deterministic repr: the fields a chapter teaches; small arrays in full."""
    _shown: Tuple[str, ...] = ()

    def __repr__(self) -> str:
        def show(v):
            if isinstance(v, np.ndarray):
                if v.size > 64:
                    return f"<array shape={v.shape} dtype={v.dtype}>"
                return "array(" + np.array2string(v, separator=", ", threshold=64).replace("\n", "\n      ") + ")"
            return repr(v)
        return f"{type(self).__name__}(" + ", ".join(f"{k}={show(getattr(self, k))}" for k in self._shown) + ")"


class _PoolCache(_Cache):
    """The geometry read back under the names the chapters use."""
    geometry: WindowGeometry

    kernel_size = property(lambda self: self.geometry.kernel_size)
    stride = property(lambda self: self.geometry.stride)
    padding = property(lambda self: self.geometry.padding)


# ---------------------------------------------------------------------------
# Max pooling (Chapters 1-3)
# ---------------------------------------------------------------------------

@dataclass(repr=False)
class MaxPoolCache(_PoolCache):
    """What max pooling remembers for its backward pass.

    ``argmax[..., i, j]`` is the flat index ``row * W + col`` (in the unpadded input) of the cell
    that won window ``(i, j)`` -- the "coordinates of the maxima" of the source article; ``rows``
    and ``cols`` are the same thing split in two.  ``offset`` is the winner's position inside its
    window, ``a * kw + b``.  ``x`` is the input (for the ``"all"``/``"split"`` policies), ``out``
    the forward output.
    """
    geometry: WindowGeometry
    ties: str
    offset: np.ndarray
    out: np.ndarray
    x: np.ndarray
    _shown = ("x_shape", "kernel_size", "stride", "padding", "ties", "argmax")

    x_shape = property(lambda self: self.x.shape)

    @property
    def argmax(self) -> np.ndarray:
        start, step = _window_starts(self.geometry)  # each window's corner + the winner's offset
        return start + step[self.offset]

    rows = property(lambda self: self.argmax // self.geometry.in_size[1])
    cols = property(lambda self: self.argmax % self.geometry.in_size[1])


def _pool_input(x, kernel_size, stride, padding, fn: str, ties: str = "first"):
    if ties not in TIES_POLICIES:
        raise ValueError(f"ties must be one of {TIES_POLICIES}, got {ties!r}")
    x = _as_float(x, "x")
    if x.ndim < 2:
        raise ValueError(f"x must have at least 2 dimensions (..., H, W) for {fn}, got shape {x.shape}")
    return x, WindowGeometry.of(x.shape, kernel_size, stride, padding, pool=True)


def _first_max(values) -> int:
    """Index of a window's winner: its first maximum; a NaN beats everything and a later NaN beats
    an earlier one (PyTorch's rule ``v > best or isnan(v)``)."""
    best = 0
    for n, v in enumerate(values):
        if v > values[best] or np.isnan(v):
            best = n
    return best


def maxpool2d_forward_naive(x, kernel_size, stride=None, padding=0, ties="first"):
    """Max pooling, one Python loop step per output cell (Chapter 2 reads it line by line).

    Same arguments and result as :func:`maxpool2d_forward`.  The winner of a window is its first
    maximum in row-major order; a NaN beats everything (and a later NaN beats an earlier one, as in
    PyTorch); padded cells never win.
    """
    x, geo = _pool_input(x, kernel_size, stride, padding, "maxpool2d_forward_naive", ties)
    (kh, kw), (Ho, Wo) = geo.kernel_size, geo.out_size
    out = np.empty(x.shape[:-2] + (Ho, Wo), dtype=x.dtype)
    offset = np.empty(out.shape, dtype=np.intp)
    for idx in np.ndindex(*out.shape):
        *lead, i, j = idx
        cells = [(a, b) for a in range(kh) for b in range(kw) if geo.is_real(i, j, a, b)]  # no padding
        values = [x[tuple(lead) + geo.input_cell(i, j, a, b)] for a, b in cells]
        best = _first_max(values)
        out[idx], offset[idx] = values[best], cells[best][0] * kw + cells[best][1]
    return out, MaxPoolCache(geo, ties, offset, out.copy(), x)


def maxpool2d_backward_naive(dout, cache):
    """Gradient of max pooling, one window at a time (Chapter 2): find the window's winner(s)
    again and ``+=`` its gradient onto them (``+=``, not ``=``: Chapter 3's overlapping windows)."""
    _check_cache(cache, MaxPoolCache, "maxpool2d_forward")
    dout = _check_dout(dout, cache.out.shape, cache.x.dtype)
    geo, (kh, kw) = cache.geometry, cache.geometry.kernel_size
    dx = np.zeros(cache.x.shape, dtype=dout.dtype)
    for idx in np.ndindex(*dout.shape):
        *lead, i, j = idx
        cells = [geo.input_cell(i, j, a, b) for a in range(kh) for b in range(kw) if geo.is_real(i, j, a, b)]
        values = [cache.x[tuple(lead) + rc] for rc in cells]
        if cache.ties == "first":
            winners = [cells[_first_max(values)]]
        else:  # every cell equal to the maximum (a NaN equals a NaN maximum)
            top = values[_first_max(values)]
            winners = [rc for rc, v in zip(cells, values) if v == top or (np.isnan(v) and np.isnan(top))]
        share = dout[idx] / len(winners) if cache.ties == "split" else dout[idx]
        for rc in winners:
            dx[tuple(lead) + rc] += share
    return dx


def maxpool2d_forward(x, kernel_size, stride=None, padding=0, ties="first"):
    """Max pooling over the last two axes (Chapters 1 and 2; overlap and padding in Chapter 3).

    Parameters
    ----------
    x : array ``(..., H, W)`` -- any leading dimensions (``(N, C, H, W)``, ``(C, H, W)``, ``(H, W)``).
    kernel_size, stride, padding : int or ``(h, w)``; ``stride=None`` means ``kernel_size``.
        ``padding`` must be at most half the kernel (PyTorch's rule); padded cells act as -inf.
    ties : ``"first"`` (PyTorch: the first maximum in row-major order gets the gradient),
        ``"all"`` (every tied maximum gets the full gradient -- the naive ``x == max`` mask) or
        ``"split"`` (tied maxima share the gradient equally).

    Returns
    -------
    out : array ``(..., Ho, Wo)`` with ``Ho = floor((H + 2p - k) / s) + 1``.
    cache : :class:`MaxPoolCache`.

    Vectorised over the windows: loop over the ``kh * kw`` offsets, and at each offset compare
    every window's cell there with the best so far (strictly greater: the first maximum stays).
    """
    x, geo = _pool_input(x, kernel_size, stride, padding, "maxpool2d_forward", ties)
    (ph, pw), (sh, sw), (kh, kw), (Ho, Wo) = geo.padding, geo.stride, geo.kernel_size, geo.out_size
    win = _windows(np.ascontiguousarray(_pad(x, geo, -np.inf)), geo)
    if not (ph or pw) and win.size <= _SMALL:  # small: numpy's argmax (the first maximum) in one call
        cells = win.reshape(win.shape[:-2] + (kh * kw,))  # a copy, each window's cells in a row
        return _fix_nan(cells.max(axis=-1), cells.argmax(axis=-1).astype(np.int32), win, geo, ties, x)
    out = win[..., 0, 0].copy()
    offset = np.zeros(out.shape, dtype=np.int32)
    if ph or pw:  # start at each window's first real cell: padding never wins, not even over a real -inf
        a0 = np.maximum(ph - sh * np.arange(Ho), 0)[:, None]
        b0 = np.maximum(pw - sw * np.arange(Wo), 0)
        out[...] = win[..., np.arange(Ho)[:, None], np.arange(Wo), a0, b0]
        offset += (a0 * kw + b0).astype(np.int32)
    beats = np.empty(out.shape, dtype=bool)
    for a, b in itertools.islice(_offsets(geo), 1, None):
        v = win[..., a, b]
        np.greater(v, out, out=beats)                                 # strictly greater: the first maximum stays
        np.maximum(out, v, out=out)                                   # (np.maximum lets a NaN through)
        np.maximum(offset, beats * np.int32(a * kw + b), out=offset)  # offsets only grow
    return _fix_nan(out, offset, win, geo, ties, x)


def _fix_nan(out, offset, win, geo, ties, x):
    """A NaN wins its window, and PyTorch keeps the last NaN it meets; returns ``(out, cache)``."""
    nan = np.isnan(out)
    if nan.any():
        for a, b in _offsets(geo):
            offset[nan & np.isnan(win[..., a, b])] = a * geo.kernel_size[1] + b
    return out, MaxPoolCache(geo, ties, offset, out.copy(), x)  # a caller may edit `out`


def _shares(cache: MaxPoolCache) -> np.ndarray:
    """``(..., Ho, Wo, kh, kw)``: the share of each window's gradient each offset receives."""
    geo = cache.geometry
    (kh, kw), (Ho, Wo), out = geo.kernel_size, geo.out_size, cache.out[..., None, None]
    if cache.ties == "first":
        shares = np.zeros(out.shape[:-2] + (kh * kw,), dtype=cache.x.dtype)
        np.put_along_axis(shares, cache.offset[..., None], 1, axis=-1)
        return shares.reshape(out.shape[:-2] + (kh, kw))
    win = _windows(np.ascontiguousarray(_pad(cache.x, geo, -np.inf)), geo)
    real = geo.is_real(np.arange(Ho)[:, None, None, None], np.arange(Wo)[:, None, None], np.arange(kh)[:, None],
                       np.arange(kw))
    shares = (((win == out) | (np.isnan(win) & np.isnan(out))) & real).astype(cache.x.dtype)
    if cache.ties == "split":
        shares /= shares.sum(axis=(-2, -1), keepdims=True)
    return shares


def maxpool2d_backward(dout, cache):
    """Gradient of max pooling (Chapter 2; ties and overlap in Chapter 3).

    ``dout`` has the forward output's shape ``(..., Ho, Wo)``; returns ``dx`` of shape ``(..., H, W)``.
    Each window's gradient goes to its winner(s) according to ``cache.ties``; a cell that wins
    several overlapping windows receives the *sum* of their gradients.
    """
    _check_cache(cache, MaxPoolCache, "maxpool2d_forward")
    dout = _check_dout(dout, cache.out.shape, cache.x.dtype)
    x, geo = cache.x, cache.geometry
    if cache.ties == "first":  # window (i, j) adds dout[..., i, j] onto its winner; overlaps add up
        lead, plane = x.shape[:-2], geo.in_size[0] * geo.in_size[1]
        maps = np.arange(0, math.prod(lead) * plane, plane).reshape(lead + (1, 1))  # where each map starts
        dx = np.bincount((cache.argmax + maps).ravel(), weights=dout.ravel(), minlength=x.size)
        return dx.reshape(x.shape).astype(dout.dtype, copy=False)
    shares, d = _shares(cache), dout[..., None, None]
    parts = np.where(shares != 0, d * shares, dout.dtype.type(0))  # never inf * 0 = NaN
    return _crop(_add_windows(_zeros_padded(x.shape[:-2], geo, dout.dtype), geo, parts), geo)


def maxpool2d_winners(x, kernel_size, stride=None, padding=0, ties="first"):
    """Which cells of each window receive its gradient, and what share (Chapters 2 and 3).

    Returns an array of shape ``x.shape[:-2] + (Ho, Wo, kh, kw)``: entry ``[..., i, j, a, b]`` is
    the share of window ``(i, j)``'s upstream gradient that goes to the input cell
    ``WindowGeometry.input_cell(i, j, a, b)``: 1 for the first maximum (``"first"``; a NaN wins,
    the last NaN as in PyTorch), 1 for every tied maximum (``"all"``), ``1/t`` for each of ``t``
    tied maxima (``"split"``); 0 elsewhere and on padded cells.  Summing ``winners * dout`` onto
    those cells gives :func:`maxpool2d_backward`'s ``dx``.
    """
    return _shares(maxpool2d_forward(x, kernel_size, stride, padding, ties)[1])


def maxpool2d_mask(cache):
    """How many windows each input cell won, an int array of the input's shape (Chapter 2's mask).

    With non-overlapping windows and ``ties="first"`` this is the 0/1 mask of the source
    articles; with overlapping windows a cell can win several windows (2, 3, ...); with
    ``ties="all"`` or ``"split"`` every tied maximum is counted (Chapter 3).
    """
    _check_cache(cache, MaxPoolCache, "maxpool2d_forward")
    won, geo = (_shares(cache) > 0).astype(np.int64), cache.geometry
    return _crop(_add_windows(_zeros_padded(cache.x.shape[:-2], geo, np.int64), geo, won), geo)


def expand_gradient(dout, kernel_size):
    """Repeat each gradient cell over its k x k window, the source article's "expansion" (Chapter 3).

    ``(..., Ho, Wo)`` -> ``(..., Ho*kh, Wo*kw)``.  Multiplied by the 0/1 mask this is the
    max-pool gradient -- but only for non-overlapping windows (stride == kernel) without ties.
    """
    d = _as_float(dout, "dout")
    if d.ndim < 2:
        raise ValueError(f"dout must have at least 2 dimensions (..., Ho, Wo), got shape {d.shape}")
    kh, kw = _pair(kernel_size, "kernel_size")
    if min(kh, kw) <= 0:
        raise ValueError(f"kernel_size must be positive, got {(kh, kw)}")
    return np.repeat(np.repeat(d, kh, axis=-2), kw, axis=-1)


# ---------------------------------------------------------------------------
# Average pooling (Chapter 9)
# ---------------------------------------------------------------------------

@dataclass(repr=False)
class AvgPoolCache(_PoolCache):
    """Average pooling's cache: only the geometry (the gradient does not depend on x)."""
    geometry: WindowGeometry
    x_shape: Tuple[int, ...]
    out_shape: Tuple[int, ...]
    dtype: np.dtype
    _shown = ("x_shape", "kernel_size", "stride", "padding", "out_shape")


def avgpool2d_forward(x, kernel_size, stride=None, padding=0):
    """Average pooling over the last two axes, PyTorch's ``count_include_pad=True`` (Chapter 9).

    ``x (..., H, W)`` -> ``out (..., Ho, Wo)``; every window divides by ``kh*kw``, padded
    zeros included.  Returns ``(out, AvgPoolCache)``.
    """
    x, geo = _pool_input(x, kernel_size, stride, padding, "avgpool2d_forward")
    win = _windows(np.ascontiguousarray(_pad(x, geo, 0)), geo)
    out = np.zeros(x.shape[:-2] + geo.out_size, dtype=x.dtype)
    for a, b in _offsets(geo):
        out += win[..., a, b]
    out /= x.dtype.type(geo.kernel_size[0] * geo.kernel_size[1])
    return out, AvgPoolCache(geo, x.shape, out.shape, x.dtype)


def avgpool2d_backward(dout, cache):
    """Gradient of average pooling (Chapter 9): every cell of a window receives ``dout / (kh*kw)``,
    summed over the windows that contain it.  ``dout (..., Ho, Wo)`` -> ``dx (..., H, W)``."""
    _check_cache(cache, AvgPoolCache, "avgpool2d_forward")
    dout = _check_dout(dout, cache.out_shape, cache.dtype)
    (kh, kw), geo = cache.kernel_size, cache.geometry
    share = np.broadcast_to((dout / dout.dtype.type(kh * kw))[..., None, None], dout.shape + (kh, kw))
    return _crop(_add_windows(_zeros_padded(cache.x_shape[:-2], geo, dout.dtype), geo, share), geo)


# ---------------------------------------------------------------------------
# Convolution: cross-correlation, as in every deep-learning framework (Chapters 5 and 7)
# ---------------------------------------------------------------------------

@dataclass(repr=False)
class ConvCache(_PoolCache):
    """Convolution's cache: the input, the kernel and the geometry."""
    geometry: WindowGeometry
    x: np.ndarray
    w: np.ndarray
    has_bias: bool = True
    _shown = ("x_shape", "w_shape", "stride", "padding", "out_shape", "has_bias")

    x_shape = property(lambda self: self.x.shape)
    w_shape = property(lambda self: self.w.shape)
    out_shape = property(lambda self: (self.x.shape[0], self.w.shape[0]) + self.geometry.out_size)


def _conv_input(x, w, b, stride, padding):
    x, w = _as_float(x, "x"), _as_float(w, "w")
    _check_ndim(x, "x", 4, "(N, C, H, W)")
    _check_ndim(w, "w", 4, "(F, C, kh, kw)")
    if x.shape[1] != w.shape[1]:
        raise ValueError(f"channel mismatch: x has C={x.shape[1]} channels (shape {x.shape}) but w "
                         f"expects C={w.shape[1]} (shape {w.shape})")
    b = _bias(b, w.shape[0], w, "(F,)")
    dtype = np.result_type(x, w) if b is None else np.result_type(x, w, b)
    geo = WindowGeometry.of(x.shape, w.shape[2:], stride, padding, pool=False)
    return x.astype(dtype, copy=False), w.astype(dtype, copy=False), b, geo


def conv2d_forward_naive(x, w, b=None, stride=1, padding=0):
    """Convolution, one loop step per output cell (Chapter 5):
    ``out[n, f, i, j] = sum_{c,r,s} x_pad[n, c, i*sh + r, j*sw + s] * w[f, c, r, s] + b[f]``."""
    x, w, b, geo = _conv_input(x, w, b, stride, padding)
    (kh, kw), (sh, sw) = geo.kernel_size, geo.stride
    xp = _pad(x, geo, 0)
    out = np.zeros((x.shape[0], w.shape[0]) + geo.out_size, dtype=x.dtype)
    for n, f, i, j in np.ndindex(*out.shape):
        window = xp[n, :, i * sh:i * sh + kh, j * sw:j * sw + kw]
        out[n, f, i, j] = np.sum(window * w[f]) + (b[f] if b is not None else 0)
    return out, ConvCache(geo, x, w, b is not None)


def conv2d_backward_naive(dout, cache):
    """Gradients of the convolution, one output cell at a time (Chapter 5): every product
    ``x * w`` that made ``out[n, f, i, j]`` sends ``dout[n, f, i, j]`` back to both factors
    (a scatter-add, ``+=``).  Returns ``dx, dw, db``."""
    _check_cache(cache, ConvCache, "conv2d_forward")
    dout = _check_dout(dout, cache.out_shape, cache.x.dtype)
    geo, x, w = cache.geometry, cache.x, cache.w
    (kh, kw), (sh, sw) = geo.kernel_size, geo.stride
    xp = _pad(x, geo, 0)
    dxp, dw = np.zeros(xp.shape, dtype=dout.dtype), np.zeros(w.shape, dtype=dout.dtype)
    for n, f, i, j in np.ndindex(*dout.shape):
        g = dout[n, f, i, j]
        dxp[n, :, i * sh:i * sh + kh, j * sw:j * sw + kw] += g * w[f]
        dw[f] += g * xp[n, :, i * sh:i * sh + kh, j * sw:j * sw + kw]
    return _crop(dxp, geo), dw, dout.sum(axis=(0, 2, 3))


def _im2col(win: np.ndarray) -> np.ndarray:
    """The windows ``(n, C, Ho, Wo, kh, kw)`` copied out as columns ``(C*kh*kw, n*Ho*Wo)``: row
    ``c*kh*kw + a*kw + b`` holds channel ``c`` at window offset ``(a, b)`` of every window."""
    n, C, Ho, Wo, kh, kw = win.shape
    return win.transpose(1, 4, 5, 0, 2, 3).reshape(C * kh * kw, n * Ho * Wo)


def im2col(x, kernel_size, stride=1, padding=0):
    """Lay every receptive field out as a column (Chapter 7).

    ``x (N, C, H, W)`` -> ``cols (N, C*kh*kw, Ho*Wo)``; row ``c*kh*kw + r*kw + s`` of the
    columns holds input channel ``c`` at window offset ``(r, s)``.  The convolution is then
    one matrix product per sample: ``out[n] = w.reshape(F, -1) @ cols[n]``.
    """
    x = _as_float(x, "x")
    _check_ndim(x, "x", 4, "(N, C, H, W)")
    geo = WindowGeometry.of(x.shape, kernel_size, stride, padding, pool=False)
    win = _windows(np.ascontiguousarray(_pad(x, geo, 0)), geo)  # (N, C, Ho, Wo, kh, kw)
    return np.ascontiguousarray(win.transpose(0, 1, 4, 5, 2, 3)).reshape(x.shape[0], -1, math.prod(geo.out_size))


def col2im(cols, x_shape, kernel_size, stride=1, padding=0):
    """The adjoint of :func:`im2col` (Chapter 7): add every column entry back onto the input cell
    it was copied from (cells shared by overlapping windows *accumulate*).

    ``cols (N, C*kh*kw, Ho*Wo)`` -> ``(N, C, H, W)``.
    """
    N, C, H, W = x_shape
    geo = WindowGeometry.of(tuple(x_shape), kernel_size, stride, padding, pool=False)
    (kh, kw), (Ho, Wo) = geo.kernel_size, geo.out_size
    cols = _as_float(cols, "cols")
    if cols.shape != (N, C * kh * kw, Ho * Wo):
        raise ValueError(f"cols must have shape {(N, C * kh * kw, Ho * Wo)} for x_shape {tuple(x_shape)}, "
                         f"got {cols.shape}")
    parts = cols.reshape(N, C, kh, kw, Ho, Wo).transpose(0, 1, 4, 5, 2, 3)
    return _crop(_add_windows(_zeros_padded((N, C), geo, cols.dtype), geo, parts), geo)


def _chunks(geo: WindowGeometry, x: np.ndarray, budget: int = 4 << 20):
    """Sample ranges whose im2col columns take about ``budget`` bytes, so they stay in cache."""
    (kh, kw), (Ho, Wo) = geo.kernel_size, geo.out_size
    step = max(1, budget // (x.shape[1] * kh * kw * Ho * Wo * x.itemsize))
    return [slice(n, n + step) for n in range(0, x.shape[0], step)]


def conv2d_forward(x, w, b=None, stride=1, padding=0):
    """2-D convolution (cross-correlation, no kernel flip), vectorised with im2col (Chapters 5 and 7).

    Parameters
    ----------
    x : ``(N, C, H, W)``;  w : ``(F, C, kh, kw)``;  b : ``(F,)`` or ``None``.
    stride, padding : int or ``(h, w)``; zero padding.

    Returns
    -------
    out : ``(N, F, Ho, Wo)``, ``Ho = floor((H + 2p - kh) / s) + 1``;
    cache : :class:`ConvCache`.

    Each sample is one matrix product ``(F, C*kh*kw) @ (C*kh*kw, Ho*Wo)``, done for a few samples
    at a time so that their columns stay in the processor's cache.
    """
    x, w, b, geo = _conv_input(x, w, b, stride, padding)
    N, F, (Ho, Wo) = x.shape[0], w.shape[0], geo.out_size
    win, w2 = _windows(np.ascontiguousarray(_pad(x, geo, 0)), geo), w.reshape(F, -1)
    out = np.empty((N, F, Ho * Wo), dtype=x.dtype)
    for s in _chunks(geo, x):  # (F, C*kh*kw) @ (C*kh*kw, n*Ho*Wo) -> (F, n, Ho*Wo)
        out[s] = (w2 @ _im2col(win[s])).reshape(F, -1, Ho * Wo).transpose(1, 0, 2)
    if b is not None:
        out += b.astype(x.dtype, copy=False)[:, None]
    return out.reshape(N, F, Ho, Wo), ConvCache(geo, x, w, b is not None)


def conv2d_backward(dout, cache):
    """Gradients of :func:`conv2d_forward` (Chapters 5 and 7).

    ``dout (N, F, Ho, Wo)`` -> ``dx (N, C, H, W)``, ``dw (F, C, kh, kw)``, ``db (F,)``
    (``db`` is returned even when the forward pass had no bias).

    * ``dw[f] = sum_n  dout[n, f] (correlated with) x[n]``  -- ``dout @ cols.T``
    * ``dx = col2im(w.T @ dout)``, which equals the *full* correlation of the (stride-dilated)
      upstream gradient with the kernel rotated by 180 degrees, cropped by the padding
      (:func:`conv2d_input_grad_rotated` computes it that way).
    """
    _check_cache(cache, ConvCache, "conv2d_forward")
    dout = _check_dout(dout, cache.out_shape, cache.x.dtype)
    geo, x, w = cache.geometry, cache.x, cache.w.astype(dout.dtype, copy=False)
    (C, F), (kh, kw), (Ho, Wo) = w.shape[1::-1], geo.kernel_size, geo.out_size
    win = _windows(np.ascontiguousarray(_pad(x, geo, 0), dtype=dout.dtype), geo)
    dxp, wT = _zeros_padded(x.shape[:2], geo, dout.dtype), np.ascontiguousarray(w.reshape(F, -1).T)
    dw = np.zeros((F, C * kh * kw), dtype=dout.dtype)
    for s in _chunks(geo, x):  # recompute the columns chunk by chunk rather than keep them all
        g = dout[s].transpose(1, 0, 2, 3).reshape(F, -1)  # (F, n*Ho*Wo)
        dw += g @ _im2col(win[s]).T
        dcols = (wT @ g).reshape(C, kh, kw, -1, Ho, Wo).transpose(3, 0, 4, 5, 1, 2)  # (n, C, Ho, Wo, kh, kw)
        _add_windows(dxp[s], geo, dcols)  # col2im
    return _crop(dxp, geo), dw.reshape(w.shape), dout.sum(axis=(0, 2, 3))


def rot180(w):
    """The kernel rotated by 180 degrees (flipped in both spatial axes): ``w[..., ::-1, ::-1]`` (Chapter 7)."""
    w = _as_float(w, "w")
    if w.ndim < 2:
        raise ValueError(f"w must have at least 2 dimensions (..., kh, kw), got shape {w.shape}")
    return w[..., ::-1, ::-1].copy()


def dilate(d, stride):
    """Insert ``stride - 1`` zeros between neighbouring cells of the last two axes (Chapter 7).

    ``(..., Ho, Wo)`` -> ``(..., (Ho-1)*sh + 1, (Wo-1)*sw + 1)``.  This undoes the stride so that
    the input gradient becomes a stride-1 correlation.
    """
    d = _as_float(d, "d")
    if d.ndim < 2:
        raise ValueError(f"d must have at least 2 dimensions (..., Ho, Wo), got shape {d.shape}")
    sh, sw = _pair(stride, "stride")
    if min(sh, sw) <= 0:
        raise ValueError(f"stride must be positive, got {(sh, sw)}")
    Ho, Wo = d.shape[-2:]
    out = np.zeros(d.shape[:-2] + ((Ho - 1) * sh + 1, (Wo - 1) * sw + 1), dtype=d.dtype)
    out[..., ::sh, ::sw] = d
    return out


def conv2d_input_grad_rotated(dout, w, x_shape, stride=1, padding=0):
    """dX computed the textbook way (Chapter 7): dilate ``dout`` by the stride, pad it by ``k - 1``
    on every side (a *full* correlation), correlate with the 180-degree-rotated kernel (channels
    swapped), then crop the padding and restore the rows/columns the stride never reached.

    ``dout (N, F, Ho, Wo)``, ``w (F, C, kh, kw)`` -> ``dx`` of shape ``x_shape = (N, C, H, W)``.
    Same result as :func:`conv2d_backward`'s ``dx``; this version exists to show *why*.
    """
    dout, w = _as_float(dout, "dout"), _as_float(w, "w")
    _check_ndim(dout, "dout", 4, "(N, F, Ho, Wo)")
    _check_ndim(w, "w", 4, "(F, C, kh, kw)")
    N, C, H, W = x_shape
    F, Cw, kh, kw = w.shape
    if Cw != C or dout.shape[:2] != (N, F):
        raise ValueError(f"shapes do not fit: dout {dout.shape}, w {w.shape}, x_shape {tuple(x_shape)}")
    (sh, sw), (ph, pw) = _pair(stride, "stride"), _pair(padding, "padding")
    Ho, Wo = pool_output_size(H, kh, sh, ph), pool_output_size(W, kw, sw, pw)
    if dout.shape[2:] != (Ho, Wo):
        raise ValueError(f"dout must have spatial shape {(Ho, Wo)} for x_shape {tuple(x_shape)}, got {dout.shape[2:]}")
    extra_h = H + 2 * ph - ((Ho - 1) * sh + kh)  # rows of the padded input no window reached
    extra_w = W + 2 * pw - ((Wo - 1) * sw + kw)
    d = np.pad(dilate(dout, (sh, sw)), ((0, 0), (0, 0), (kh - 1, kh - 1 + extra_h), (kw - 1, kw - 1 + extra_w)))
    dxp, _ = conv2d_forward(d, rot180(w).transpose(1, 0, 2, 3))  # (C, F, kh, kw): channels swap roles
    return dxp[:, :, ph:ph + H, pw:pw + W].copy()


# ---------------------------------------------------------------------------
# ReLU (Chapter 4), flatten and dense (Chapter 6)
# ---------------------------------------------------------------------------

@dataclass(repr=False)
class ReluCache(_Cache):
    """ReLU's cache: ``mask = x > 0``, the 0/1 derivative (ReLU'(0) = 0)."""
    mask: np.ndarray
    dtype: np.dtype = np.dtype(np.float64)
    _shown = ("mask",)


def relu_forward(x):
    """``out = max(x, 0)`` elementwise, NaN stays NaN (Chapter 4).  Any shape.  Returns ``(out, ReluCache)``."""
    x = _as_float(x, "x")
    return np.maximum(x, x.dtype.type(0)), ReluCache(x > 0, x.dtype)


def relu_backward(dout, cache):
    """``dx = dout * (x > 0)`` (Chapter 4): the derivative at exactly 0 is 0, as in PyTorch."""
    _check_cache(cache, ReluCache, "relu_forward")
    dout = _check_dout(dout, cache.mask.shape, cache.dtype)
    if not np.isfinite(dout).all():
        return np.where(cache.mask, dout, dout.dtype.type(0))  # never inf * 0 = NaN (np.where is slower)
    dx = dout * cache.mask
    dx += dx.dtype.type(0)  # -0.0 (a negative gradient times False) becomes 0.0, as in PyTorch
    return dx


@dataclass(repr=False)
class FlattenCache(_Cache):
    """Flatten's cache: the shape to restore."""
    x_shape: Tuple[int, ...]
    _shown = ("x_shape",)


def flatten_forward(x):
    """``(N, d1, d2, ...)`` -> ``(N, d1*d2*...)`` in row-major order (Chapter 6).  Returns ``(out, FlattenCache)``."""
    x = _as_float(x, "x")
    if x.ndim < 2:
        raise ValueError(f"x must have a batch axis and at least one more, (N, ...), got shape {x.shape}")
    return x.reshape(x.shape[0], -1).copy(), FlattenCache(x.shape)


def flatten_backward(dout, cache):
    """Reshape ``dout (N, D)`` back to the input's shape: flattening only moves values (Chapter 6)."""
    _check_cache(cache, FlattenCache, "flatten_forward")
    n, d = cache.x_shape[0], math.prod(cache.x_shape[1:])
    dout = _as_float(dout, "dout")
    if dout.shape != (n, d):
        raise ValueError(f"dout must have shape {(n, d)} (the flattened {cache.x_shape}), got {dout.shape}")
    return dout.reshape(cache.x_shape).copy()


@dataclass(repr=False)
class DenseCache(_Cache):
    """The dense layer's cache: its input and weights."""
    x: np.ndarray
    w: np.ndarray
    has_bias: bool = True
    _shown = ("x", "w", "has_bias")


def dense_forward(x, w, b=None):
    """Fully connected layer ``out = x @ w + b`` (Chapter 6): ``x (N, D)``, ``w (D, M)``, ``b (M,)`` -> ``(N, M)``."""
    x, w = _as_float(x, "x"), _as_float(w, "w")
    _check_ndim(x, "x", 2, "(N, D)")
    _check_ndim(w, "w", 2, "(D, M)")
    if x.shape[1] != w.shape[0]:
        raise ValueError(f"x (N, D) = {x.shape} and w (D, M) = {w.shape} disagree on D")
    b = _bias(b, w.shape[1], w, "(M,)")
    dtype = np.result_type(x, w) if b is None else np.result_type(x, w, b)  # the same promotion as conv2d_forward
    x, w = x.astype(dtype, copy=False), w.astype(dtype, copy=False)
    out = x @ w
    if b is not None:
        out += b.astype(dtype, copy=False)
    return out, DenseCache(x, w, b is not None)


def dense_backward(dout, cache):
    """``dx = dout @ w.T (N, D)``, ``dw = x.T @ dout (D, M)``, ``db = dout.sum(0) (M,)`` (Chapter 6)."""
    _check_cache(cache, DenseCache, "dense_forward")
    dout = _check_dout(dout, (cache.x.shape[0], cache.w.shape[1]), cache.x.dtype)
    return dout @ cache.w.T, cache.x.T @ dout, dout.sum(axis=0)


# ---------------------------------------------------------------------------
# Losses (Chapters 5 and 6) and numerical gradients (every chapter)
# ---------------------------------------------------------------------------

def _check_finite(a: np.ndarray, name: str) -> None:
    if not np.all(np.isfinite(a)):
        bad = "NaN" if np.isnan(a).any() else "inf"
        raise ValueError(f"{name} contains {bad} (shape {a.shape}); the loss would be meaningless")


def softmax(logits):
    """Row-wise softmax of ``(N, K)`` logits, shifted by each row's max so ``exp`` never overflows (Chapter 6)."""
    z = _as_float(logits, "logits")
    _check_ndim(z, "logits", 2, "(N, K)")
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def softmax_cross_entropy(logits, labels):
    """Mean cross-entropy of softmax(logits) against integer labels (Chapter 6).

    ``logits (N, K)``, ``labels (N,)`` ints in ``[0, K)``.  Returns ``(loss, dlogits)`` with
    ``dlogits = (softmax(logits) - one_hot(labels)) / N`` of shape ``(N, K)``.
    """
    z = _as_float(logits, "logits")
    _check_ndim(z, "logits", 2, "(N, K)")
    _check_finite(z, "logits")
    y = np.asarray(labels)
    if y.dtype.kind not in "iu":
        raise TypeError(f"labels must be integers, got dtype {y.dtype} (shape {y.shape})")
    if y.shape != (z.shape[0],):
        raise ValueError(f"labels must have shape (N,) = {(z.shape[0],)} to match logits {z.shape}, got {y.shape}")
    if y.size and (y.min() < 0 or y.max() >= z.shape[1]):
        raise ValueError(f"labels must lie in [0, {z.shape[1]}) for logits {z.shape}, got values "
                         f"from {y.min()} to {y.max()}")
    N, rows = z.shape[0], np.arange(z.shape[0])
    shifted = z - z.max(axis=1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    dlogits = np.exp(log_p)
    dlogits[rows, y] -= 1
    dlogits /= N
    return z.dtype.type(-log_p[rows, y].mean()), dlogits


def l2_loss(pred, target):
    """The source article's cost ``loss = 0.5 * sum((pred - target)**2)``; ``dpred = pred - target``
    (Chapter 5).  ``pred`` and ``target`` must have the same shape (nothing is broadcast)."""
    p, t = _as_float(pred, "pred"), _as_float(target, "target")
    if p.shape != t.shape:
        raise ValueError(f"pred {p.shape} and target {t.shape} must have the same shape")
    diff = p - t
    if not np.isfinite(diff).all():  # finite inputs give a finite difference, barring overflow
        _check_finite(p, "pred")
        _check_finite(t, "target")
    return diff.dtype.type(0.5 * np.sum(diff * diff)), diff


def numerical_gradient(f: Callable[[np.ndarray], float], x, eps: float = 1e-6) -> np.ndarray:
    """Central-difference gradient of a scalar function, ``(f(x + eps e_i) - f(x - eps e_i)) / (2 eps)``
    (Chapter 2 introduces it; every chapter checks its gradients with it).

    ``x`` is copied to float64 and never modified; returns an array of ``x``'s shape.
    """
    if not (isinstance(eps, numbers.Real) and eps > 0):
        raise ValueError(f"eps must be a positive number, got {eps!r}")
    x = np.array(_as_float(x, "x"), dtype=np.float64, copy=True)
    grad = np.zeros_like(x)
    flat, g = x.reshape(-1), grad.reshape(-1)
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + eps
        fp = float(f(x))
        flat[i] = old - eps
        fm = float(f(x))
        flat[i] = old
        g[i] = (fp - fm) / (2 * eps)
    return grad
