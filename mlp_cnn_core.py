"""mlp_cnn_core: the forward and backward math of a small CNN, in numpy only.

Every chapter of the book stands on this module.  Conventions:

* Images are ``(N, C, H, W)`` as in PyTorch; pooling also takes any leading
  dimensions before ``(H, W)`` (a plain matrix works).
* Every ``*_forward`` returns ``(out, cache)``; every ``*_backward`` takes
  ``(dout, cache)`` and returns the gradient(s) of the inputs.
* ``kernel_size``, ``stride`` and ``padding`` take an int or an ``(h, w)`` pair;
  ``stride=None`` means "equal to the kernel".
* Float inputs keep their dtype; integer and boolean inputs become float64.
* PyTorch's semantics: max pooling sends a window's gradient to its *first*
  maximum in row-major order (a NaN wins), its padding acts as -inf, overlapping
  windows *add* their gradients, average pooling counts padded zeros, ReLU'(0) = 0,
  convolution is cross-correlation, cross-entropy is a mean over the batch.
* Bad input raises ValueError or TypeError naming the argument and the shapes.
  Inputs are never modified.

Max pooling and convolution come twice: a ``*_naive`` version that loops over the
output cells (read it first), then the vectorised one.  The other layers are a numpy
expression or two.  The vectorised windowed layers share one idea: a view of the
padded input holds every window at once (:func:`_windows`, nothing copied); loop over
the ``kh * kw`` offsets ``(a, b)`` inside a window and handle *every* window at each
offset.  The backward passes add (``+=``) onto the same slices, so overlapping windows
accumulate (:func:`_sum_windows`).  The convolution copies the windows out as columns
(im2col) for one matrix product.

This module is written to be read; ``mlp_cnn_fast`` has the same functions tuned for
speed (Chapter 10), and the tests prove the two equal.
"""
from __future__ import annotations

import itertools
import math
import numbers
from dataclasses import dataclass
from typing import Any, Callable, Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from numpy.typing import ArrayLike

__all__ = [
    "conv2d_forward", "conv2d_backward",
    "conv2d_forward_naive", "conv2d_backward_naive",
    "relu_forward", "relu_backward",
    "maxpool2d_forward", "maxpool2d_backward",
    "maxpool2d_forward_naive", "maxpool2d_backward_naive",
    "maxpool2d_mask", "maxpool2d_winners", "WindowGeometry",
    "avgpool2d_forward", "avgpool2d_backward",
    "flatten_forward", "flatten_backward", "dense_forward", "dense_backward",
    "softmax", "softmax_cross_entropy", "l2_loss", "numerical_gradient",
    "pool_output_size", "expand_gradient",
    "im2col", "col2im", "dilate", "rot180", "conv2d_input_grad_rotated",
    "ConvCache", "ReluCache", "MaxPoolCache", "AvgPoolCache",
    "FlattenCache", "DenseCache",
    "TIES_POLICIES",
]

TIES_POLICIES = ("first", "all", "split")

Pair = Union[int, Tuple[int, int]]  # an int, or (h, w)
Grads = Tuple[np.ndarray, np.ndarray, np.ndarray]  # dx, dw, db


# ---------------------------------------------------------------------------
# Argument checks
# ---------------------------------------------------------------------------

def _pair(value: Any, name: str) -> Tuple[int, int]:
    """``value`` as an ``(h, w)`` pair of Python ints, or TypeError."""
    if type(value) is int:  # the common case first: every layer call comes here
        return value, value
    pair = tuple(value) if isinstance(value, (tuple, list)) else (value, value)
    ints = all(isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))
               for v in pair)
    if len(pair) != 2 or not ints:
        raise TypeError(f"{name} must be an int or a pair of ints (h, w), "
                        f"got {value!r}")
    return int(pair[0]), int(pair[1])


def _positive_pair(value: Any, name: str) -> Tuple[int, int]:
    pair = _pair(value, name)
    if min(pair) <= 0:
        raise ValueError(f"{name} must be positive, got {pair}")
    return pair


def _as_float(x: Any, name: str) -> np.ndarray:
    """``x`` as a float array: float dtypes kept, ints and bools -> float64."""
    arr = np.asarray(x)
    if arr.dtype.kind == "f":
        return arr
    if arr.dtype.kind in "iub":
        return arr.astype(np.float64)
    raise TypeError(f"{name} must hold real numbers, got dtype {arr.dtype} "
                    f"(shape {arr.shape})")


def _check_ndim(arr: np.ndarray, name: str, ndim: int, layout: str) -> None:
    if arr.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D {layout}, got shape {arr.shape}")


def _planes(a: Any, name: str, layout: str) -> np.ndarray:
    """``a`` as a float array with at least the two last axes of ``layout``."""
    a = _as_float(a, name)
    if a.ndim < 2:
        raise ValueError(f"{name} must have at least 2 dimensions {layout}, "
                         f"got shape {a.shape}")
    return a


def _check_dout(dout: Any, shape: Tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    d = _as_float(dout, "dout")
    if d.shape != tuple(shape):
        raise ValueError(f"dout must have the shape of the forward output "
                         f"{tuple(shape)}, got {d.shape}")
    if d.dtype != dtype:  # promote, e.g. a float64 dout for a float32 layer
        d = d.astype(np.promote_types(dtype, d.dtype), copy=False)
    return d


def _check_cache(cache: Any, cls: type, fn: str) -> None:
    if not isinstance(cache, cls):
        raise TypeError(f"cache must be the {cls.__name__} returned by {fn}, "
                        f"got {type(cache).__name__}")


def _bias(b: Any, n: int, w: np.ndarray, layout: str) -> Optional[np.ndarray]:
    """The bias as a float array of shape ``(n,)`` (or None), checked against ``w``."""
    if b is None:
        return None
    b = _as_float(b, "b")
    if b.shape != (n,):
        raise ValueError(f"b must have shape {layout} = {(n,)} to match w {w.shape}, "
                         f"got {b.shape}")
    return b


def pool_output_size(size: int, kernel: int, stride: Optional[int] = None,
                     padding: int = 0) -> int:
    """Output length of a window sliding over ``size`` cells (Chapter 3):
    ``floor((size + 2p - k) / s) + 1``; ``stride=None`` means ``stride = kernel``."""
    stride = kernel if stride is None else stride
    return (size + 2 * padding - kernel) // stride + 1


# ---------------------------------------------------------------------------
# Window geometry, shared by pooling and convolution (Chapter 3)
# ---------------------------------------------------------------------------

@dataclass(frozen=True)
class WindowGeometry:
    """Where the windows of a pooling or convolution layer sit (Chapter 3 draws them).

    ``kernel_size``, ``stride``, ``padding`` are ``(h, w)`` pairs, ``in_size`` is the
    unpadded input ``(H, W)``, ``out_size`` the output ``(Ho, Wo)``.  Window ``(i, j)``
    covers rows ``i*sh .. i*sh + kh - 1`` and columns ``j*sw .. j*sw + kw - 1`` of the
    padded input.
    """
    kernel_size: Tuple[int, int]
    stride: Tuple[int, int]
    padding: Tuple[int, int]
    in_size: Tuple[int, int]
    out_size: Tuple[int, int]

    @classmethod
    def of(cls, x_shape: Sequence[int], kernel_size: Pair, stride: Optional[Pair],
           padding: Pair, pool: bool) -> "WindowGeometry":
        """Check the arguments against an input ``(..., H, W)``; build the geometry."""
        (H, W), (kh, kw) = x_shape[-2:], _positive_pair(kernel_size, "kernel_size")
        (sh, sw) = (kh, kw) if stride is None else _positive_pair(stride, "stride")
        ph, pw = _pair(padding, "padding")
        if min(ph, pw) < 0:
            raise ValueError(f"padding must be >= 0, got {(ph, pw)}")
        if pool and (2 * ph > kh or 2 * pw > kw):
            raise ValueError(f"padding must be at most half the kernel size (as in "
                             f"PyTorch): padding={(ph, pw)}, kernel_size={(kh, kw)}")
        if kh > H + 2 * ph or kw > W + 2 * pw:
            raise ValueError(f"kernel_size {(kh, kw)} is larger than the padded input "
                             f"{(H + 2 * ph, W + 2 * pw)} (input shape "
                             f"{tuple(x_shape)}, padding {(ph, pw)})")
        out = ((H + 2 * ph - kh) // sh + 1, (W + 2 * pw - kw) // sw + 1)
        return cls((kh, kw), (sh, sw), (ph, pw), (H, W), out)

    def input_cell(self, i: Any, j: Any, a: Any, b: Any) -> Tuple[Any, Any]:
        """The input cell ``(row, col)`` at offset ``(a, b)`` of window ``(i, j)``
        (arrays work too); outside ``[0, H) x [0, W)`` where it is padding."""
        (sh, sw), (ph, pw) = self.stride, self.padding
        return i * sh - ph + a, j * sw - pw + b

    def cells(self, i: int, j: int) -> List[Tuple[int, int]]:
        """The input cells ``(row, col)`` of window ``(i, j)``, row-major, no pads."""
        (kh, kw), (H, W) = self.kernel_size, self.in_size
        at = (self.input_cell(i, j, a, b) for a in range(kh) for b in range(kw))
        return [(r, c) for r, c in at if 0 <= r < H and 0 <= c < W]

    def windows_of(self, r: int, c: int) -> List[Tuple[int, int]]:
        """The windows ``(i, j)`` that contain input cell ``(r, c)``, row-major."""
        (kh, kw), (sh, sw) = self.kernel_size, self.stride
        (ph, pw), (Ho, Wo) = self.padding, self.out_size
        rows = [i for i in range(Ho) if 0 <= r + ph - i * sh < kh]
        return [(i, j) for i in rows for j in range(Wo) if 0 <= c + pw - j * sw < kw]

    def is_real(self, i: Any, j: Any, a: Any, b: Any) -> Any:
        """True where offset ``(a, b)`` of window ``(i, j)`` is an input cell."""
        r, c = self.input_cell(i, j, a, b)
        return (0 <= r) & (r < self.in_size[0]) & (0 <= c) & (c < self.in_size[1])


def _pad(x: np.ndarray, geo: WindowGeometry, value: float) -> np.ndarray:
    """``x (..., H, W)`` with ``value`` around it: ``(..., H + 2ph, W + 2pw)``."""
    (ph, pw), (H, W) = geo.padding, geo.in_size
    if not (ph or pw):
        return x
    xp = np.full(x.shape[:-2] + (H + 2 * ph, W + 2 * pw), value, dtype=x.dtype)
    xp[..., ph:ph + H, pw:pw + W] = x
    return xp


def _crop(xp: np.ndarray, geo: WindowGeometry) -> np.ndarray:
    """Undo :func:`_pad`: the input's cells ``(..., H, W)`` (a copy)."""
    (ph, pw), (H, W) = geo.padding, geo.in_size
    return xp[..., ph:ph + H, pw:pw + W].copy() if (ph or pw) else xp


def _windows(xp: np.ndarray, geo: WindowGeometry,
             writeable: bool = False) -> np.ndarray:
    """Every window of the padded ``xp (..., Hp, Wp)`` at once, a view
    ``(..., Ho, Wo, kh, kw)``: ``[..., i, j, a, b]`` is ``xp[..., i*sh+a, j*sw+b]``."""
    (sh, sw) = geo.stride
    win = sliding_window_view(xp, geo.kernel_size, axis=(-2, -1), writeable=writeable)
    return win[..., ::sh, ::sw, :, :]


def _offsets(geo: WindowGeometry) -> Iterator[Tuple[int, int]]:
    """The offsets ``(a, b)`` inside a window, in row-major order."""
    return itertools.product(range(geo.kernel_size[0]), range(geo.kernel_size[1]))


def _sum_windows(parts: np.ndarray, x_shape: Tuple[int, ...],
                 geo: WindowGeometry) -> np.ndarray:
    """The backward of :func:`_windows`: ``dx`` of shape ``x_shape (..., H, W)``, each
    cell the sum of the ``parts (..., Ho, Wo, kh, kw)`` that were read from it.

    One offset at a time, ``+=``: within an offset no two windows share a cell; across
    offsets shared cells accumulate.  The last offset goes first, so every cell adds its
    windows in row-major order, as the loops do: the same sums, bit for bit.
    """
    (ph, pw), (H, W) = geo.padding, geo.in_size
    shape = tuple(x_shape[:-2]) + (H + 2 * ph, W + 2 * pw)
    dxp = np.zeros(shape, dtype=parts.dtype)  # +0.0: no gradient is ever -0.0
    win = _windows(dxp, geo, writeable=True)
    for a, b in reversed(list(_offsets(geo))):
        win[..., a, b] += parts[..., a, b]
    return _crop(dxp, geo)


class _Cache:
    """A readable, deterministic repr: the fields a chapter teaches, small arrays."""
    _shown: Tuple[str, ...] = ()

    def __repr__(self) -> str:
        def show(v):
            if not isinstance(v, np.ndarray):
                return repr(v)
            if v.size > 64:
                return f"<array shape={v.shape} dtype={v.dtype}>"
            text = np.array2string(v, separator=", ", threshold=64)
            return "array(" + text.replace("\n", "\n      ") + ")"
        shown = ", ".join(f"{k}={show(getattr(self, k))}" for k in self._shown)
        return f"{type(self).__name__}({shown})"


class _WindowCache(_Cache):
    """The cache of a windowed layer (pooling, convolution): its geometry, read back
    under the names the chapters use."""
    geometry: WindowGeometry

    kernel_size = property(lambda self: self.geometry.kernel_size)
    stride = property(lambda self: self.geometry.stride)
    padding = property(lambda self: self.geometry.padding)


# ---------------------------------------------------------------------------
# Max pooling (Chapters 1-3)
# ---------------------------------------------------------------------------

@dataclass(repr=False)
class MaxPoolCache(_WindowCache):
    """What max pooling remembers for its backward pass.

    ``offset[..., i, j]`` is the position ``a * kw + b`` inside window ``(i, j)`` of the
    cell that won it; ``rows``, ``cols`` are that cell's place in the unpadded input and
    ``argmax`` its flat index ``row * W + col`` (the source article's "coordinates of
    the maxima").  ``x`` is the input, ``out`` the output.
    """
    geometry: WindowGeometry
    ties: str
    offset: np.ndarray
    out: np.ndarray
    x: np.ndarray
    _shown = ("x_shape", "kernel_size", "stride", "padding", "ties", "argmax")

    x_shape = property(lambda self: self.x.shape)

    def _winner(self) -> Tuple[np.ndarray, np.ndarray]:
        (Ho, Wo), kw = self.geometry.out_size, self.geometry.kernel_size[1]
        i, j = np.arange(Ho)[:, None], np.arange(Wo)
        return self.geometry.input_cell(i, j, self.offset // kw, self.offset % kw)

    rows = property(lambda self: self._winner()[0])
    cols = property(lambda self: self._winner()[1])

    @property
    def argmax(self) -> np.ndarray:
        r, c = self._winner()
        return r * self.geometry.in_size[1] + c


def _pool_input(x: Any, kernel_size: Pair, stride: Optional[Pair], padding: Pair,
                fn: str, ties: str = "first",
                geometry: Callable[..., WindowGeometry] = WindowGeometry.of
                ) -> Tuple[np.ndarray, WindowGeometry]:
    if ties not in TIES_POLICIES:
        raise ValueError(f"ties must be one of {TIES_POLICIES}, got {ties!r}")
    x = _as_float(x, "x")
    if x.ndim < 2:
        raise ValueError(f"x must have at least 2 dimensions (..., H, W) for {fn}, "
                         f"got shape {x.shape}")
    return x, geometry(x.shape, kernel_size, stride, padding, True)


def _first_max(values: Sequence[float]) -> int:
    """Index of a window's winner: its first maximum; a NaN beats everything and a later
    NaN an earlier one (PyTorch's rule ``v > best or isnan(v)``)."""
    best = 0
    for n, v in enumerate(values):
        if v > values[best] or np.isnan(v):
            best = n
    return best


def maxpool2d_forward_naive(x: ArrayLike, kernel_size: Pair,
                            stride: Optional[Pair] = None, padding: Pair = 0,
                            ties: str = "first") -> Tuple[np.ndarray, MaxPoolCache]:
    """Max pooling, one loop step per output cell (Chapter 2 reads it line by line).

    Same arguments and result as :func:`maxpool2d_forward`: ``x (..., H, W)`` ->
    ``out (..., Ho, Wo)``.  A window's winner is its first maximum in row-major order;
    a NaN wins (the last one, as in PyTorch); padded cells never win.
    """
    name = "maxpool2d_forward_naive"
    x, geo = _pool_input(x, kernel_size, stride, padding, name, ties)
    kw = geo.kernel_size[1]
    out = np.empty(x.shape[:-2] + geo.out_size, dtype=x.dtype)
    offset = np.empty(out.shape, dtype=np.intp)
    for idx in np.ndindex(*out.shape):
        *lead, i, j = idx
        cells = [(a, b) for a, b in _offsets(geo) if geo.is_real(i, j, a, b)]
        values = [x[tuple(lead) + geo.input_cell(i, j, a, b)] for a, b in cells]
        best = _first_max(values)
        out[idx], offset[idx] = values[best], cells[best][0] * kw + cells[best][1]
    return out, MaxPoolCache(geo, ties, offset, out.copy(), x)


def maxpool2d_backward_naive(dout: ArrayLike, cache: MaxPoolCache) -> np.ndarray:
    """Gradient of max pooling, one window at a time (Chapter 2): find the window's
    winner(s) again and ``+=`` its gradient onto them (``+=``, not ``=``: Chapter 3's
    overlapping windows).  ``dout (..., Ho, Wo)`` -> ``dx (..., H, W)``."""
    _check_cache(cache, MaxPoolCache, "maxpool2d_forward")
    dout = _check_dout(dout, cache.out.shape, cache.x.dtype)
    geo = cache.geometry
    dx = np.zeros(cache.x.shape, dtype=dout.dtype)
    for idx in np.ndindex(*dout.shape):
        *lead, i, j = idx
        cells = [geo.input_cell(i, j, a, b) for a, b in _offsets(geo)
                 if geo.is_real(i, j, a, b)]
        values = [cache.x[tuple(lead) + rc] for rc in cells]
        best = _first_max(values)
        top = values[best]
        if cache.ties == "first":
            winners = [cells[best]]
        else:  # every cell equal to the maximum (a NaN equals a NaN maximum)
            winners = [rc for rc, v in zip(cells, values)
                       if v == top or (np.isnan(v) and np.isnan(top))]
        share = dout[idx] / len(winners) if cache.ties == "split" else dout[idx]
        for rc in winners:
            dx[tuple(lead) + rc] += share
    return dx


def maxpool2d_forward(x: ArrayLike, kernel_size: Pair, stride: Optional[Pair] = None,
                      padding: Pair = 0,
                      ties: str = "first") -> Tuple[np.ndarray, MaxPoolCache]:
    """Max pooling over the last two axes (Chapters 1, 2; overlap, padding: Chapter 3).

    ``x (..., H, W)``, any leading dimensions -> ``out (..., Ho, Wo)``,
    ``Ho = floor((H + 2p - k) / s) + 1``, and a :class:`MaxPoolCache`.  ``padding`` is
    at most half the kernel (PyTorch's rule); padded cells act as -inf.  ``ties``:
    ``"first"`` (PyTorch: the first maximum in row-major order gets the gradient),
    ``"all"`` (every tied maximum gets all of it: the ``x == max`` mask) or ``"split"``
    (tied maxima share it equally).

    Vectorised over the windows: loop over the ``kh * kw`` offsets and at each one
    compare every window's cell there with the best so far (strictly greater: the first
    maximum stays).
    """
    x, geo = _pool_input(x, kernel_size, stride, padding, "maxpool2d_forward", ties)
    (Ho, Wo) = geo.out_size
    win = _windows(_pad(x, geo, -np.inf), geo)           # (..., Ho, Wo, kh, kw), a view
    i, j = np.arange(Ho)[:, None], np.arange(Wo)          # every window (i, j)
    out = np.full(x.shape[:-2] + (Ho, Wo), -np.inf, dtype=x.dtype)
    offset = np.full(out.shape, -1)                       # no winner yet
    for o, (a, b) in enumerate(_offsets(geo)):
        v = win[..., a, b]                                # offset (a, b), every window
        # the first real cell starts; strictly greater keeps the first maximum; NaN wins
        take = geo.is_real(i, j, a, b) & ((offset < 0) | (v > out) | np.isnan(v))
        out = np.where(take, v, out)
        offset = np.where(take, o, offset)
    return out, MaxPoolCache(geo, ties, offset, out.copy(), x)  # a caller may edit out


def _shares(cache: MaxPoolCache) -> np.ndarray:
    """``(..., Ho, Wo, kh, kw)``: the share of each window's gradient at each offset."""
    geo, x = cache.geometry, cache.x
    (kh, kw), (Ho, Wo) = geo.kernel_size, geo.out_size
    if cache.ties == "first":  # one-hot: 1 at the winner's offset
        won = cache.offset[..., None] == np.arange(kh * kw)
        return won.reshape(cache.offset.shape + (kh, kw)).astype(x.dtype)
    win, top = _windows(_pad(x, geo, -np.inf), geo), cache.out[..., None, None]
    i, j, a, b = np.ogrid[:Ho, :Wo, :kh, :kw]
    tied = (win == top) | (np.isnan(win) & np.isnan(top))
    shares = (tied & geo.is_real(i, j, a, b)).astype(x.dtype)
    if cache.ties == "split":
        shares /= shares.sum(axis=(-2, -1), keepdims=True)
    return shares


def maxpool2d_backward(dout: ArrayLike, cache: MaxPoolCache) -> np.ndarray:
    """Gradient of max pooling (Chapter 2; ties and overlap in Chapter 3):
    ``dout (..., Ho, Wo)`` -> ``dx (..., H, W)``.  Each window's gradient goes to its
    winner(s) by ``cache.ties``; a cell that wins several windows gets the *sum*."""
    _check_cache(cache, MaxPoolCache, "maxpool2d_forward")
    dout = _check_dout(dout, cache.out.shape, cache.x.dtype)
    shares = _shares(cache)                               # (..., Ho, Wo, kh, kw)
    parts = np.multiply(dout[..., None, None], shares, where=shares != 0,
                        out=np.zeros(shares.shape, dout.dtype))  # never inf * 0 = NaN
    return _sum_windows(parts, cache.x.shape, cache.geometry)


def maxpool2d_winners(x: ArrayLike, kernel_size: Pair, stride: Optional[Pair] = None,
                      padding: Pair = 0, ties: str = "first") -> np.ndarray:
    """Which cells of each window receive its gradient, and what share (Chapters 2, 3).

    ``x (..., H, W)`` -> ``(..., Ho, Wo, kh, kw)``: entry ``[..., i, j, a, b]`` is the
    share of window ``(i, j)``'s gradient that goes to cell ``input_cell(i, j, a, b)``:
    1 for the first maximum (``"first"``; the last NaN wins, as in PyTorch), 1 for every
    tied maximum (``"all"``), ``1/t`` for each of ``t`` tied maxima (``"split"``), 0
    elsewhere and on padding.  Summing ``winners * dout`` onto the cells gives ``dx``.
    """
    return _shares(maxpool2d_forward(x, kernel_size, stride, padding, ties)[1])


def maxpool2d_mask(cache: MaxPoolCache) -> np.ndarray:
    """How many windows each input cell won: ints of the input's shape ``(..., H, W)``
    (Chapter 2's mask).  The 0/1 mask of the source articles for non-overlapping windows
    and ``ties="first"``; 2, 3, ... where windows overlap; every tied maximum counted
    under ``"all"`` and ``"split"`` (Chapter 3)."""
    _check_cache(cache, MaxPoolCache, "maxpool2d_forward")
    won = (_shares(cache) > 0).astype(np.int64)
    return _sum_windows(won, cache.x.shape, cache.geometry)


def expand_gradient(dout: ArrayLike, kernel_size: Pair) -> np.ndarray:
    """Repeat each gradient cell over its k x k window, the source article's "expansion"
    (Chapter 3): ``(..., Ho, Wo)`` -> ``(..., Ho*kh, Wo*kw)``.  Times the 0/1 mask this
    is the max-pool gradient, but only for stride == kernel and no ties."""
    d = _planes(dout, "dout", "(..., Ho, Wo)")
    kh, kw = _positive_pair(kernel_size, "kernel_size")
    return np.repeat(np.repeat(d, kh, axis=-2), kw, axis=-1)


# ---------------------------------------------------------------------------
# Average pooling (Chapter 9)
# ---------------------------------------------------------------------------

@dataclass(repr=False)
class AvgPoolCache(_WindowCache):
    """Average pooling's cache: geometry and shapes (its gradient does not need x)."""
    geometry: WindowGeometry
    x_shape: Tuple[int, ...]
    out_shape: Tuple[int, ...]
    dtype: np.dtype
    _shown = ("x_shape", "kernel_size", "stride", "padding", "out_shape")


def avgpool2d_forward(x: ArrayLike, kernel_size: Pair, stride: Optional[Pair] = None,
                      padding: Pair = 0) -> Tuple[np.ndarray, AvgPoolCache]:
    """Average pooling over the last two axes, ``count_include_pad=True`` (Chapter 9):
    ``x (..., H, W)`` -> ``out (..., Ho, Wo)``; every window divides by ``kh*kw``."""
    x, geo = _pool_input(x, kernel_size, stride, padding, "avgpool2d_forward")
    win = _windows(_pad(x, geo, 0), geo)
    out = np.zeros(x.shape[:-2] + geo.out_size, dtype=x.dtype)
    for a, b in _offsets(geo):
        out += win[..., a, b]
    out /= x.dtype.type(geo.kernel_size[0] * geo.kernel_size[1])
    return out, AvgPoolCache(geo, x.shape, out.shape, x.dtype)


def avgpool2d_backward(dout: ArrayLike, cache: AvgPoolCache) -> np.ndarray:
    """Gradient of average pooling (Chapter 9): ``dout (..., Ho, Wo)`` ->
    ``dx (..., H, W)``; every cell of a window receives ``dout / (kh*kw)``, summed over
    the windows that contain it."""
    _check_cache(cache, AvgPoolCache, "avgpool2d_forward")
    dout = _check_dout(dout, cache.out_shape, cache.dtype)
    kh, kw = cache.kernel_size
    share = (dout / dout.dtype.type(kh * kw))[..., None, None]
    parts = np.broadcast_to(share, dout.shape + (kh, kw))
    return _sum_windows(parts, cache.x_shape, cache.geometry)


# ---------------------------------------------------------------------------
# Convolution: cross-correlation, as in every framework (Chapters 5 and 7)
# ---------------------------------------------------------------------------

@dataclass(repr=False)
class ConvCache(_WindowCache):
    """Convolution's cache: the input, the kernel and the geometry."""
    geometry: WindowGeometry
    x: np.ndarray
    w: np.ndarray
    has_bias: bool = True
    _shown = ("x_shape", "w_shape", "stride", "padding", "out_shape", "has_bias")

    x_shape = property(lambda self: self.x.shape)
    w_shape = property(lambda self: self.w.shape)
    out_shape = property(lambda self: self.x.shape[:1] + self.w.shape[:1]
                         + self.geometry.out_size)


ConvInput = Tuple[np.ndarray, np.ndarray, Optional[np.ndarray], WindowGeometry]


def _conv_input(x: Any, w: Any, b: Any, stride: Optional[Pair], padding: Pair,
                geometry: Callable[..., WindowGeometry] = WindowGeometry.of
                ) -> ConvInput:
    x, w = _as_float(x, "x"), _as_float(w, "w")
    _check_ndim(x, "x", 4, "(N, C, H, W)")
    _check_ndim(w, "w", 4, "(F, C, kh, kw)")
    if x.shape[1] != w.shape[1]:
        raise ValueError(f"channel mismatch: x has C={x.shape[1]} channels (shape "
                         f"{x.shape}) but w expects C={w.shape[1]} (shape {w.shape})")
    b = _bias(b, w.shape[0], w, "(F,)")
    dtype = np.result_type(x, w) if b is None else np.result_type(x, w, b)
    geo = geometry(x.shape, w.shape[2:], stride, padding, False)
    return x.astype(dtype, copy=False), w.astype(dtype, copy=False), b, geo


def conv2d_forward_naive(x: ArrayLike, w: ArrayLike, b: Optional[ArrayLike] = None,
                         stride: Pair = 1,
                         padding: Pair = 0) -> Tuple[np.ndarray, ConvCache]:
    """Convolution, one loop step per output cell (Chapter 5): ``x (N, C, H, W)``,
    ``w (F, C, kh, kw)``, ``b (F,)`` -> ``out (N, F, Ho, Wo)`` with
    ``out[n, f, i, j] = b[f] + sum_{c,a,b} x_pad[n, c, i*sh+a, j*sw+b] w[f, c, a, b]``.
    """
    x, w, b, geo = _conv_input(x, w, b, stride, padding)
    (kh, kw), (sh, sw) = geo.kernel_size, geo.stride
    xp = _pad(x, geo, 0)
    out = np.zeros((x.shape[0], w.shape[0]) + geo.out_size, dtype=x.dtype)
    for n, f, i, j in np.ndindex(*out.shape):
        window = xp[n, :, i * sh:i * sh + kh, j * sw:j * sw + kw]
        out[n, f, i, j] = np.sum(window * w[f]) + (b[f] if b is not None else 0)
    return out, ConvCache(geo, x, w, b is not None)


def conv2d_backward_naive(dout: ArrayLike, cache: ConvCache) -> Grads:
    """Gradients of the convolution, one output cell at a time (Chapter 5): each product
    ``x * w`` that made ``out[n, f, i, j]`` sends ``dout[n, f, i, j]`` back to both
    factors (a scatter-add, ``+=``).  ``dout (N, F, Ho, Wo)`` -> ``dx (N, C, H, W)``,
    ``dw (F, C, kh, kw)``, ``db (F,)``."""
    _check_cache(cache, ConvCache, "conv2d_forward")
    dout = _check_dout(dout, cache.out_shape, cache.x.dtype)
    geo, x, w = cache.geometry, cache.x, cache.w
    (kh, kw), (sh, sw) = geo.kernel_size, geo.stride
    xp = _pad(x, geo, 0)
    dxp, dw = np.zeros(xp.shape, dout.dtype), np.zeros(w.shape, dout.dtype)
    for n, f, i, j in np.ndindex(*dout.shape):
        rows, cols = slice(i * sh, i * sh + kh), slice(j * sw, j * sw + kw)
        dxp[n, :, rows, cols] += dout[n, f, i, j] * w[f]
        dw[f] += dout[n, f, i, j] * xp[n, :, rows, cols]
    return _crop(dxp, geo), dw, dout.sum(axis=(0, 2, 3))


def _im2col(x: np.ndarray, geo: WindowGeometry) -> np.ndarray:
    """The windows of ``x (N, C, H, W)`` copied out as columns ``(C*kh*kw, N*Ho*Wo)``:
    row ``c*kh*kw + a*kw + b`` holds channel ``c`` at offset ``(a, b)`` of each
    window."""
    win = _windows(_pad(x, geo, 0), geo)                  # (N, C, Ho, Wo, kh, kw)
    N, C, Ho, Wo, kh, kw = win.shape
    cols = np.einsum("ncijab->cabnij", win)              # a view, axes renamed
    return cols.reshape(C * kh * kw, N * Ho * Wo)         # the one copy


def im2col(x: ArrayLike, kernel_size: Pair, stride: Pair = 1,
           padding: Pair = 0) -> np.ndarray:
    """Lay every receptive field out as a column (Chapter 7): ``x (N, C, H, W)`` ->
    ``cols (N, C*kh*kw, Ho*Wo)``; row ``c*kh*kw + a*kw + b`` holds channel ``c`` at
    window offset ``(a, b)``.  Then ``out[n] = w.reshape(F, -1) @ cols[n]``."""
    x = _as_float(x, "x")
    _check_ndim(x, "x", 4, "(N, C, H, W)")
    geo = WindowGeometry.of(x.shape, kernel_size, stride, padding, pool=False)
    cols = _im2col(x, geo)
    return cols.reshape(cols.shape[0], x.shape[0], -1).transpose(1, 0, 2).copy()


def col2im(cols: ArrayLike, x_shape: Sequence[int], kernel_size: Pair, stride: Pair = 1,
           padding: Pair = 0) -> np.ndarray:
    """The adjoint of :func:`im2col` (Chapter 7): ``cols (N, C*kh*kw, Ho*Wo)`` ->
    ``(N, C, H, W)``, every entry added back onto the cell it was copied from (cells
    shared by overlapping windows *accumulate*)."""
    N, C, H, W = x_shape
    geo = WindowGeometry.of(tuple(x_shape), kernel_size, stride, padding, pool=False)
    (kh, kw), (Ho, Wo) = geo.kernel_size, geo.out_size
    cols = _as_float(cols, "cols")
    if cols.shape != (N, C * kh * kw, Ho * Wo):
        raise ValueError(f"cols must have shape {(N, C * kh * kw, Ho * Wo)} for "
                         f"x_shape {tuple(x_shape)}, got {cols.shape}")
    parts = np.einsum("ncabij->ncijab", cols.reshape(N, C, kh, kw, Ho, Wo))
    return _sum_windows(parts, tuple(x_shape), geo)


def conv2d_forward(x: ArrayLike, w: ArrayLike, b: Optional[ArrayLike] = None,
                   stride: Pair = 1, padding: Pair = 0) -> Tuple[np.ndarray, ConvCache]:
    """2-D convolution (cross-correlation, no kernel flip) with im2col (Chapters 5, 7).

    ``x (N, C, H, W)``, ``w (F, C, kh, kw)``, ``b (F,)`` or None, zero ``padding`` ->
    ``out (N, F, Ho, Wo)``, ``Ho = floor((H + 2p - kh) / s) + 1``, and a
    :class:`ConvCache`.  The columns of every sample side by side make the whole batch
    one matrix product ``(F, C*kh*kw) @ (C*kh*kw, N*Ho*Wo)``.
    """
    x, w, b, geo = _conv_input(x, w, b, stride, padding)
    N, F, (Ho, Wo) = x.shape[0], w.shape[0], geo.out_size
    out = w.reshape(F, -1) @ _im2col(x, geo)              # (F, N*Ho*Wo)
    out = np.ascontiguousarray(out.reshape(F, N, Ho, Wo).transpose(1, 0, 2, 3))
    if b is not None:
        out += b.astype(x.dtype, copy=False)[:, None, None]
    return out, ConvCache(geo, x, w, b is not None)


def conv2d_backward(dout: ArrayLike, cache: ConvCache) -> Grads:
    """Gradients of :func:`conv2d_forward` (Chapters 5 and 7): ``dout (N, F, Ho, Wo)``
    -> ``dx (N, C, H, W)``, ``dw (F, C, kh, kw)``, ``db (F,)`` (even without a bias).

    With ``out = w2 @ cols``: ``dw = dout @ cols.T`` (each weight sums ``dout * x`` over
    the cells it met) and ``dx = col2im(w2.T @ dout)``, which equals the *full*
    correlation of the stride-dilated ``dout`` with the kernel rotated by 180 degrees
    (:func:`conv2d_input_grad_rotated` computes it that way).
    """
    _check_cache(cache, ConvCache, "conv2d_forward")
    dout = _check_dout(dout, cache.out_shape, cache.x.dtype)
    geo = cache.geometry
    x, w = (a.astype(dout.dtype, copy=False) for a in (cache.x, cache.w))
    (N, C), F = x.shape[:2], w.shape[0]
    (kh, kw), (Ho, Wo) = geo.kernel_size, geo.out_size
    g = dout.transpose(1, 0, 2, 3).reshape(F, N * Ho * Wo)  # laid out like w2 @ cols
    dw = (g @ _im2col(x, geo).T).reshape(w.shape)          # the columns again, not kept
    dcols = (w.reshape(F, -1).T @ g).reshape(C, kh, kw, N, Ho, Wo)
    dx = _sum_windows(np.einsum("cabnij->ncijab", dcols), x.shape, geo)  # col2im
    return dx, dw, dout.sum(axis=(0, 2, 3))


def rot180(w: ArrayLike) -> np.ndarray:
    """The kernel rotated by 180 degrees, ``w[..., ::-1, ::-1]``, any ``(..., kh, kw)``
    (Chapter 7)."""
    return _planes(w, "w", "(..., kh, kw)")[..., ::-1, ::-1].copy()


def dilate(d: ArrayLike, stride: Pair) -> np.ndarray:
    """Insert ``stride - 1`` zeros between neighbouring cells (Chapter 7):
    ``(..., Ho, Wo)`` -> ``(..., (Ho-1)*sh + 1, (Wo-1)*sw + 1)``.  It undoes the
    stride: the input gradient becomes a stride-1 correlation."""
    d = _planes(d, "d", "(..., Ho, Wo)")
    sh, sw = _positive_pair(stride, "stride")
    Ho, Wo = d.shape[-2:]
    out = np.zeros(d.shape[:-2] + ((Ho - 1) * sh + 1, (Wo - 1) * sw + 1), dtype=d.dtype)
    out[..., ::sh, ::sw] = d
    return out


def conv2d_input_grad_rotated(dout: ArrayLike, w: ArrayLike, x_shape: Sequence[int],
                              stride: Pair = 1, padding: Pair = 0) -> np.ndarray:
    """dX the textbook way (Chapter 7): dilate ``dout (N, F, Ho, Wo)`` by the stride,
    pad it by ``k - 1`` (a *full* correlation), correlate it with the rotated kernel
    ``w (F, C, kh, kw)``, channels swapped, and crop to ``x_shape = (N, C, H, W)``.
    The same ``dx`` as :func:`conv2d_backward`; this version shows *why*."""
    dout, w = _as_float(dout, "dout"), _as_float(w, "w")
    _check_ndim(dout, "dout", 4, "(N, F, Ho, Wo)")
    _check_ndim(w, "w", 4, "(F, C, kh, kw)")
    (N, C, H, W), (F, Cw, kh, kw) = x_shape, w.shape
    if Cw != C or dout.shape[:2] != (N, F):
        raise ValueError(f"shapes do not fit: dout {dout.shape}, w {w.shape}, "
                         f"x_shape {tuple(x_shape)}")
    (sh, sw), (ph, pw) = _pair(stride, "stride"), _pair(padding, "padding")
    Ho, Wo = pool_output_size(H, kh, sh, ph), pool_output_size(W, kw, sw, pw)
    if dout.shape[2:] != (Ho, Wo):
        raise ValueError(f"dout must have spatial shape {(Ho, Wo)} for x_shape "
                         f"{tuple(x_shape)}, got {dout.shape[2:]}")
    extra_h = H + 2 * ph - ((Ho - 1) * sh + kh)  # padded rows that no window read
    extra_w = W + 2 * pw - ((Wo - 1) * sw + kw)
    full = ((0, 0), (0, 0), (kh - 1, kh - 1 + extra_h), (kw - 1, kw - 1 + extra_w))
    d = np.pad(dilate(dout, (sh, sw)), full)
    dxp, _ = conv2d_forward(d, rot180(w).transpose(1, 0, 2, 3))  # (C, F, kh, kw)
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


def relu_forward(x: ArrayLike) -> Tuple[np.ndarray, ReluCache]:
    """``out = max(x, 0)`` elementwise, any shape, NaN stays NaN (Chapter 4)."""
    x = _as_float(x, "x")
    return np.maximum(x, x.dtype.type(0)), ReluCache(x > 0, x.dtype)


def relu_backward(dout: ArrayLike, cache: ReluCache) -> np.ndarray:
    """``dx = dout * [x > 0]`` (Chapter 4), the input's shape; the derivative at 0 is 0,
    as in PyTorch.  ``np.where``, so that an infinite ``dout`` times 0 is 0, not NaN."""
    _check_cache(cache, ReluCache, "relu_forward")
    dout = _check_dout(dout, cache.mask.shape, cache.dtype)
    return np.where(cache.mask, dout, dout.dtype.type(0))


@dataclass(repr=False)
class FlattenCache(_Cache):
    """Flatten's cache: the shape to restore."""
    x_shape: Tuple[int, ...]
    _shown = ("x_shape",)


def flatten_forward(x: ArrayLike) -> Tuple[np.ndarray, FlattenCache]:
    """``(N, d1, d2, ...)`` -> ``(N, d1*d2*...)``, row-major (Chapter 6)."""
    x = _as_float(x, "x")
    if x.ndim < 2:
        raise ValueError(f"x must have a batch axis and at least one more, (N, ...), "
                         f"got shape {x.shape}")
    return x.reshape(x.shape[0], -1).copy(), FlattenCache(x.shape)


def flatten_backward(dout: ArrayLike, cache: FlattenCache) -> np.ndarray:
    """``dout (N, D)`` back to the input's shape: flattening only moves values
    (Chapter 6)."""
    _check_cache(cache, FlattenCache, "flatten_forward")
    n, d = cache.x_shape[0], math.prod(cache.x_shape[1:])
    dout = _as_float(dout, "dout")
    if dout.shape != (n, d):
        raise ValueError(f"dout must have shape {(n, d)} (the flattened "
                         f"{cache.x_shape}), got {dout.shape}")
    return dout.reshape(cache.x_shape).copy()


@dataclass(repr=False)
class DenseCache(_Cache):
    """The dense layer's cache: its input and weights."""
    x: np.ndarray
    w: np.ndarray
    has_bias: bool = True
    _shown = ("x", "w", "has_bias")


def dense_forward(x: ArrayLike, w: ArrayLike,
                  b: Optional[ArrayLike] = None) -> Tuple[np.ndarray, DenseCache]:
    """Fully connected layer ``out = x @ w + b`` (Chapter 6): ``x (N, D)``,
    ``w (D, M)``, ``b (M,)`` -> ``(N, M)``."""
    x, w = _as_float(x, "x"), _as_float(w, "w")
    _check_ndim(x, "x", 2, "(N, D)")
    _check_ndim(w, "w", 2, "(D, M)")
    if x.shape[1] != w.shape[0]:
        raise ValueError(f"x (N, D) = {x.shape} and w (D, M) = {w.shape} disagree on D")
    b = _bias(b, w.shape[1], w, "(M,)")
    dtype = np.result_type(x, w) if b is None else np.result_type(x, w, b)  # as conv
    x, w = x.astype(dtype, copy=False), w.astype(dtype, copy=False)
    out = x @ w
    if b is not None:
        out += b.astype(dtype, copy=False)
    return out, DenseCache(x, w, b is not None)


def dense_backward(dout: ArrayLike, cache: DenseCache) -> Grads:
    """``dx = dout @ w.T (N, D)``, ``dw = x.T @ dout (D, M)``, ``db = dout.sum(0) (M,)``
    (Chapter 6)."""
    _check_cache(cache, DenseCache, "dense_forward")
    dout = _check_dout(dout, (cache.x.shape[0], cache.w.shape[1]), cache.x.dtype)
    return dout @ cache.w.T, cache.x.T @ dout, dout.sum(axis=0)


# ---------------------------------------------------------------------------
# Losses (Chapters 5 and 6) and numerical gradients (every chapter)
# ---------------------------------------------------------------------------

def _check_finite(a: np.ndarray, name: str) -> None:
    if not np.all(np.isfinite(a)):
        bad = "NaN" if np.isnan(a).any() else "inf"
        raise ValueError(f"{name} contains {bad} (shape {a.shape}); the loss would be "
                         f"meaningless")


def softmax(logits: ArrayLike) -> np.ndarray:
    """Row-wise softmax of ``(N, K)`` logits -> ``(N, K)`` probabilities, shifted by
    each row's max so that ``exp`` never overflows (Chapter 6)."""
    z = _as_float(logits, "logits")
    _check_ndim(z, "logits", 2, "(N, K)")
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def softmax_cross_entropy(logits: ArrayLike,
                          labels: ArrayLike) -> Tuple[np.floating, np.ndarray]:
    """Mean cross-entropy of softmax(logits) against integer labels (Chapter 6):
    ``logits (N, K)``, ``labels (N,)`` in ``[0, K)`` -> ``(loss, dlogits)``,
    ``dlogits = (softmax(logits) - one_hot(labels)) / N`` of shape ``(N, K)``."""
    z = _as_float(logits, "logits")
    _check_ndim(z, "logits", 2, "(N, K)")
    _check_finite(z, "logits")
    y = np.asarray(labels)
    if y.dtype.kind not in "iu":
        raise TypeError(f"labels must be integers, got dtype {y.dtype} "
                        f"(shape {y.shape})")
    if y.shape != (z.shape[0],):
        raise ValueError(f"labels must have shape (N,) = {(z.shape[0],)} to match "
                         f"logits {z.shape}, got {y.shape}")
    if y.size and (y.min() < 0 or y.max() >= z.shape[1]):
        raise ValueError(f"labels must lie in [0, {z.shape[1]}) for logits {z.shape}, "
                         f"got values from {y.min()} to {y.max()}")
    N, rows = z.shape[0], np.arange(z.shape[0])
    shifted = z - z.max(axis=1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    dlogits = np.exp(log_p)
    dlogits[rows, y] -= 1
    dlogits /= N
    return z.dtype.type(-log_p[rows, y].mean()), dlogits


def l2_loss(pred: ArrayLike, target: ArrayLike) -> Tuple[np.floating, np.ndarray]:
    """The source article's cost ``0.5 * sum((pred - target)**2)`` and
    ``dpred = pred - target`` (Chapter 5); ``pred``, ``target`` and ``dpred`` have one
    shape (nothing is broadcast)."""
    p, t = _as_float(pred, "pred"), _as_float(target, "target")
    if p.shape != t.shape:
        raise ValueError(f"pred {p.shape} and target {t.shape} must have the same "
                         f"shape")
    diff = p - t
    if not np.isfinite(diff).all():  # finite inputs, finite differences (or overflow)
        _check_finite(p, "pred")
        _check_finite(t, "target")
    return diff.dtype.type(0.5 * np.sum(diff * diff)), diff


def numerical_gradient(f: Callable[[np.ndarray], float], x: ArrayLike,
                       eps: float = 1e-6) -> np.ndarray:
    """Central differences ``(f(x + eps e_i) - f(x - eps e_i)) / (2 eps)`` of a scalar
    function (Chapter 2; every chapter checks its gradients with it): an array of
    ``x``'s shape.  ``x`` is copied to float64 and never modified."""
    if not (isinstance(eps, numbers.Real) and eps > 0):
        raise ValueError(f"eps must be a positive number, got {eps!r}")
    # a C-ordered copy: reshape(-1) must be a view of it, or the moves never reach f
    x = np.array(_as_float(x, "x"), dtype=np.float64, copy=True, order="C")
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
