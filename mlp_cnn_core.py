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

The fast functions are vectorised (the only Python loops run over the k*k
offsets inside a window, never over pixels).  The ``*_naive`` functions are the
teaching versions: plain loops over every output cell, kept as cross-checks.
"""
from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field, fields
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
# Argument checking
# ---------------------------------------------------------------------------

def _is_int(v: Any) -> bool:
    return isinstance(v, (numbers.Integral, np.integer)) and not isinstance(v, (bool, np.bool_))


def _pair(value: Any, name: str) -> Tuple[int, int]:
    """Return ``value`` as an ``(h, w)`` pair of Python ints, or raise TypeError."""
    if _is_int(value):
        return int(value), int(value)
    if isinstance(value, (tuple, list)) and len(value) == 2 and all(_is_int(v) for v in value):
        return int(value[0]), int(value[1])
    raise TypeError(f"{name} must be an int or a pair of ints (h, w), got {value!r}")


def _as_float_array(x: Any, name: str) -> np.ndarray:
    """Return ``x`` as a float ndarray (float dtypes kept, ints/bools -> float64).

    Never returns the caller's array for writing: the core only reads it.
    """
    if isinstance(x, np.ndarray):
        arr = x
    else:
        try:
            arr = np.asarray(x)
        except Exception as exc:  # pragma: no cover - numpy's own message is kept
            raise TypeError(f"{name} must be array-like, got {type(x).__name__}") from exc
    if arr.dtype.kind == "f":
        return arr
    if arr.dtype.kind in "iub":
        return arr.astype(np.float64)
    raise TypeError(f"{name} must hold real numbers, got dtype {arr.dtype} (shape {arr.shape})")


def _check_ndim(arr: np.ndarray, name: str, ndim: int, layout: str) -> None:
    if arr.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D {layout}, got shape {arr.shape}")


def _check_dout(dout: Any, expected_shape: Tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    d = _as_float_array(dout, "dout")
    if d.shape != tuple(expected_shape):
        raise ValueError(
            f"dout must have the shape of the forward output {tuple(expected_shape)}, got {d.shape}")
    return d.astype(np.result_type(dtype, d.dtype), copy=False)


def _check_cache(cache: Any, cls: type, fn: str) -> None:
    if not isinstance(cache, cls):
        raise TypeError(f"cache must be the {cls.__name__} returned by {fn}, got {type(cache).__name__}")


def _window_geometry(H: int, W: int, kernel_size: Any, stride: Any, padding: Any,
                     max_pad_half: bool, x_shape: Tuple[int, ...]):
    """Validate pooling/conv geometry and return (kh, kw, sh, sw, ph, pw, Ho, Wo)."""
    kh, kw = _pair(kernel_size, "kernel_size")
    if kh <= 0 or kw <= 0:
        raise ValueError(f"kernel_size must be positive, got {(kh, kw)}")
    sh, sw = (kh, kw) if stride is None else _pair(stride, "stride")
    if sh <= 0 or sw <= 0:
        raise ValueError(f"stride must be positive, got {(sh, sw)}")
    ph, pw = _pair(padding, "padding")
    if ph < 0 or pw < 0:
        raise ValueError(f"padding must be >= 0, got {(ph, pw)}")
    if max_pad_half and (2 * ph > kh or 2 * pw > kw):
        raise ValueError(
            f"padding must be at most half the kernel size (as in PyTorch): padding={(ph, pw)}, "
            f"kernel_size={(kh, kw)}")
    if kh > H + 2 * ph or kw > W + 2 * pw:
        raise ValueError(
            f"kernel_size {(kh, kw)} is larger than the padded input {(H + 2 * ph, W + 2 * pw)} "
            f"(input shape {x_shape}, padding {(ph, pw)})")
    Ho = (H + 2 * ph - kh) // sh + 1
    Wo = (W + 2 * pw - kw) // sw + 1
    return kh, kw, sh, sw, ph, pw, Ho, Wo


def pool_output_size(size: int, kernel: int, stride: Optional[int] = None, padding: int = 0) -> int:
    """Output length of a window sliding over ``size`` cells: floor((size + 2p - k) / s) + 1."""
    stride = kernel if stride is None else stride
    return (size + 2 * padding - kernel) // stride + 1


def _short_repr(value: Any) -> str:
    if isinstance(value, np.ndarray):
        if value.size <= 64:
            return "array(" + np.array2string(value, separator=", ", threshold=64).replace("\n", "\n      ") + ")"
        return f"<array shape={value.shape} dtype={value.dtype}>"
    return repr(value)


class _Cache:
    """Readable repr for the caches: small arrays in full, large ones as shapes."""

    def __repr__(self) -> str:
        parts = [f"{f.name}={_short_repr(getattr(self, f.name))}" for f in fields(self) if f.repr]
        return f"{type(self).__name__}(" + ", ".join(parts) + ")"


def _offset_slice(start: int, step: int, count: int) -> slice:
    return slice(start, start + step * (count - 1) + 1, step)


@dataclass(frozen=True)
class WindowGeometry:
    """Where the windows of a pooling or convolution layer sit (Chapter 3 draws them).

    ``kernel_size``, ``stride``, ``padding`` are ``(h, w)`` pairs, ``in_size`` is the unpadded
    input ``(H, W)`` and ``out_size`` the output ``(Ho, Wo)``.
    """
    kernel_size: Tuple[int, int]
    stride: Tuple[int, int]
    padding: Tuple[int, int]
    in_size: Tuple[int, int]
    out_size: Tuple[int, int]

    def input_cell(self, i: int, j: int, a: int, b: int) -> Tuple[int, int]:
        """The input cell ``(row, col)`` at offset ``(a, b)`` of window ``(i, j)``; it lies
        outside ``[0, H) x [0, W)`` when it is a padded cell."""
        return (i * self.stride[0] - self.padding[0] + a, j * self.stride[1] - self.padding[1] + b)

    def is_real(self, i: int, j: int, a: int, b: int) -> bool:
        """True when offset ``(a, b)`` of window ``(i, j)`` is a cell of the input (not padding)."""
        r, c = self.input_cell(i, j, a, b)
        return 0 <= r < self.in_size[0] and 0 <= c < self.in_size[1]


# ---------------------------------------------------------------------------
# Max pooling
# ---------------------------------------------------------------------------

@dataclass(repr=False)
class MaxPoolCache(_Cache):
    """What max pooling remembers for its backward pass.

    ``argmax[..., i, j]`` is the flat index ``row * W + col`` (in the unpadded input) of the
    cell that won window ``(i, j)`` -- the "coordinates of the maxima" of the source article;
    ``rows`` and ``cols`` are the same thing split in two.  Internally the winner is stored as
    ``offset = r0 * kw + c0``, its position inside the window.  ``x`` is the input, kept for the
    ``"all"``/``"split"`` policies; ``out`` is the forward output.
    """
    x_shape: Tuple[int, ...]
    kernel_size: Tuple[int, int]
    stride: Tuple[int, int]
    padding: Tuple[int, int]
    ties: str
    offset: np.ndarray = field(repr=False)
    out: np.ndarray = field(repr=False)
    x: np.ndarray = field(repr=False)

    @property
    def geometry(self) -> WindowGeometry:
        return WindowGeometry(self.kernel_size, self.stride, self.padding, tuple(self.x_shape[-2:]),
                              tuple(self.out.shape[-2:]))

    @property
    def rows(self) -> np.ndarray:
        Ho = self.offset.shape[-2]
        start = np.arange(Ho) * self.stride[0] - self.padding[0]
        return start[:, None] + (self.offset // self.kernel_size[1]).astype(np.int64)

    @property
    def cols(self) -> np.ndarray:
        Wo = self.offset.shape[-1]
        start = np.arange(Wo) * self.stride[1] - self.padding[1]
        return start[None, :] + (self.offset % self.kernel_size[1]).astype(np.int64)

    @property
    def argmax(self) -> np.ndarray:
        return self.rows * self.x_shape[-1] + self.cols

    def __repr__(self) -> str:
        return (f"MaxPoolCache(x_shape={self.x_shape}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, padding={self.padding}, ties={self.ties!r}, "
                f"argmax={_short_repr(self.argmax)})")


def _pool_prepare(x: Any, kernel_size: Any, stride: Any, padding: Any, fn: str):
    x = _as_float_array(x, "x")
    if x.ndim < 2:
        raise ValueError(f"x must have at least 2 dimensions (..., H, W) for {fn}, got shape {x.shape}")
    H, W = x.shape[-2:]
    geo = _window_geometry(H, W, kernel_size, stride, padding, True, x.shape)
    return x, geo


def _pad_last2(x: np.ndarray, ph: int, pw: int, value: float) -> np.ndarray:
    if not (ph or pw):
        return x
    H, W = x.shape[-2:]
    xp = np.full(x.shape[:-2] + (H + 2 * ph, W + 2 * pw), value, dtype=x.dtype)
    xp[..., ph:ph + H, pw:pw + W] = x
    return xp


def _tiles(geo) -> bool:
    """True when the windows tile the input: stride == kernel and no padding."""
    kh, kw, sh, sw, ph, pw, _, _ = geo
    return (sh, sw) == (kh, kw) and not (ph or pw)


def _window_planes(xp: np.ndarray, geo) -> np.ndarray:
    """``(kh*kw, ..., Ho, Wo)``: plane ``r0*kw + c0`` holds every window's cell at offset (r0, c0).

    Contiguous planes make the per-offset work below fast, vectorised numpy.
    """
    kh, kw, sh, sw, ph, pw, Ho, Wo = geo
    lead = xp.shape[:-2]
    if _tiles(geo):
        v = xp[..., :Ho * kh, :Wo * kw].reshape(lead + (Ho, kh, Wo, kw))
        nd = len(lead)
        return np.ascontiguousarray(np.moveaxis(v, (nd + 1, nd + 3), (0, 1))).reshape((kh * kw,) + lead + (Ho, Wo))
    planes = np.empty((kh * kw,) + lead + (Ho, Wo), dtype=xp.dtype)
    for r0 in range(kh):
        for c0 in range(kw):
            planes[r0 * kw + c0] = xp[..., _offset_slice(r0, sh, Ho), _offset_slice(c0, sw, Wo)]
    return planes


def _scatter_windows(plane: Callable[[int], np.ndarray], geo, x_shape, dtype) -> np.ndarray:
    """The adjoint of :func:`_window_planes`: add ``plane(o)`` back onto the cells at window
    offset ``o`` of every window.  Cells shared by overlapping windows *accumulate* (``+=``)."""
    kh, kw, sh, sw, ph, pw, Ho, Wo = geo
    lead, (H, W) = tuple(x_shape[:-2]), x_shape[-2:]
    zero = np.dtype(dtype).type(0)
    if _tiles(geo):
        d6 = np.empty(lead + (Ho, kh, Wo, kw), dtype=dtype)
        for r0 in range(kh):
            for c0 in range(kw):  # "+ 0" turns the -0.0 of (negative * False) into 0.0
                np.add(plane(r0 * kw + c0), zero, out=d6[..., :, r0, :, c0])
        if (Ho * kh, Wo * kw) == (H, W):
            return d6.reshape(lead + (H, W))
        dx = np.zeros(lead + (H, W), dtype=dtype)
        dx[..., :Ho * kh, :Wo * kw] = d6.reshape(lead + (Ho * kh, Wo * kw))
        return dx
    dxp = np.zeros(lead + (H + 2 * ph, W + 2 * pw), dtype=dtype)
    disjoint = sh >= kh and sw >= kw
    for r0 in range(kh):
        for c0 in range(kw):
            target = dxp[..., _offset_slice(r0, sh, Ho), _offset_slice(c0, sw, Wo)]
            if disjoint:
                np.add(plane(r0 * kw + c0), zero, out=target)
            else:
                target += plane(r0 * kw + c0)  # overlapping windows add up
    return dxp[..., ph:ph + H, pw:pw + W].copy() if (ph or pw) else dxp


def _valid_plane(geo, H: int, W: int):
    """``valid(o)`` -> bool ``(Ho, Wo)``: does offset ``o`` of each window land on a real cell?"""
    kh, kw, sh, sw, ph, pw, Ho, Wo = geo
    rows = np.arange(Ho)[None, :] * sh + np.arange(kh)[:, None] - ph
    cols = np.arange(Wo)[None, :] * sw + np.arange(kw)[:, None] - pw
    vr, vc = (rows >= 0) & (rows < H), (cols >= 0) & (cols < W)
    return lambda o: vr[o // kw][:, None] & vc[o % kw][None, :]


def _winner_masks(planes: np.ndarray, out: np.ndarray, geo, H: int, W: int):
    """Yield, for each window offset, the bool mask of windows whose cell there ties the max
    (a NaN ties a NaN maximum; padded cells never win)."""
    kh, kw, _, _, ph, pw, _, _ = geo
    valid = _valid_plane(geo, H, W) if (ph or pw) else None
    out_nan = np.isnan(out)
    has_nan = out_nan.any()
    for o in range(kh * kw):
        eq = planes[o] == out
        if has_nan:
            eq |= np.isnan(planes[o]) & out_nan
        if valid is not None:
            eq &= valid(o)
        yield eq


def maxpool2d_forward(x, kernel_size, stride=None, padding=0, ties="first"):
    """Max pooling over the last two axes.

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
    """
    if ties not in TIES_POLICIES:
        raise ValueError(f"ties must be one of {TIES_POLICIES}, got {ties!r}")
    x, geo = _pool_prepare(x, kernel_size, stride, padding, "maxpool2d_forward")
    kh, kw, sh, sw, ph, pw, Ho, Wo = geo
    H, W = x.shape[-2:]
    planes = _window_planes(_pad_last2(x, ph, pw, -np.inf), geo)
    out = planes.max(axis=0)  # a NaN anywhere in a window makes its maximum NaN
    # The winner is the first offset (row-major) whose value equals the max: PyTorch's strict ">".
    odtype = np.uint8 if kh * kw <= 256 else np.int32
    offset = np.zeros(out.shape, dtype=odtype)
    found = np.zeros(out.shape, dtype=bool)
    for o, eq in enumerate(_winner_masks(planes, out, geo, H, W)):
        np.greater(eq, found, out=eq)  # eq and not yet found
        if o:
            offset += eq * odtype(o)
        found |= eq
    nan_windows = np.isnan(out)
    if nan_windows.any():  # PyTorch's kernel takes every NaN it meets: the last NaN wins
        for o in range(kh * kw):
            offset[np.isnan(planes[o]) & nan_windows] = o
    cache = MaxPoolCache(x_shape=x.shape, kernel_size=(kh, kw), stride=(sh, sw), padding=(ph, pw),
                         ties=ties, offset=offset, out=out.copy(), x=x)  # a caller may edit `out`
    return out, cache


def _cache_geometry(cache):
    (kh, kw), (sh, sw), (ph, pw) = cache.kernel_size, cache.stride, cache.padding
    Ho, Wo = cache.out.shape[-2:]
    return kh, kw, sh, sw, ph, pw, Ho, Wo


def maxpool2d_backward(dout, cache):
    """Gradient of max pooling.

    ``dout`` has the forward output's shape ``(..., Ho, Wo)``; returns ``dx`` of shape ``(..., H, W)``.
    Each window's gradient goes to its winner(s) according to ``cache.ties``; a cell that wins
    several overlapping windows receives the *sum* of their gradients.
    """
    _check_cache(cache, MaxPoolCache, "maxpool2d_forward")
    dout = _check_dout(dout, cache.out.shape, cache.x.dtype)
    return _maxpool_route(dout, cache, cache.ties)


def _maxpool_route(dout, cache, ties):
    geo = _cache_geometry(cache)
    H, W = cache.x_shape[-2:]
    zero = dout.dtype.type(0)
    if ties == "first":
        finite = np.isfinite(dout).all()
        offset = cache.offset

        def plane(o):
            hit = offset == o
            return dout * hit if finite else np.where(hit, dout, zero)
    else:
        planes = _window_planes(_pad_last2(cache.x, geo[4], geo[5], -np.inf), geo)
        masks = list(_winner_masks(planes, cache.out, geo, H, W))
        share = dout if ties == "all" else dout / sum(m.astype(np.int64) for m in masks)

        def plane(o):
            return np.where(masks[o], share, zero)
    return _scatter_windows(plane, geo, cache.x_shape, dout.dtype)


def maxpool2d_mask(cache):
    """How many windows each input cell won (an int array of the input's shape).

    With non-overlapping windows and ``ties="first"`` this is the 0/1 mask of the source
    articles; with overlapping windows a cell can win several windows (2, 3, ...); with
    ``ties="all"`` or ``"split"`` every tied maximum is counted.
    """
    _check_cache(cache, MaxPoolCache, "maxpool2d_forward")
    ones = np.ones(cache.out.shape, dtype=np.float64)
    counts = _maxpool_route(ones, cache, "first" if cache.ties == "first" else "all")
    return np.rint(counts).astype(np.int64)


def maxpool2d_winners(x, kernel_size, stride=None, padding=0, ties="first"):
    """Which cells of each window receive its gradient, and what share (Chapters 2 and 3).

    Returns an array of shape ``x.shape[:-2] + (Ho, Wo, kh, kw)``: entry ``[..., i, j, a, b]`` is
    the share of window ``(i, j)``'s upstream gradient that goes to the input cell
    ``WindowGeometry.input_cell(i, j, a, b)``: 1 for the first maximum (``"first"``; a NaN wins,
    the last NaN as in PyTorch), 1 for every tied maximum (``"all"``), ``1/t`` for each of ``t``
    tied maxima (``"split"``); 0 elsewhere and on padded cells.  Summing ``winners * dout`` onto
    those cells gives :func:`maxpool2d_backward`'s ``dx``.
    """
    out, cache = maxpool2d_forward(x, kernel_size, stride, padding, ties)
    (kh, kw), (sh, sw), (ph, pw) = cache.kernel_size, cache.stride, cache.padding
    H, W = cache.x_shape[-2:]
    Ho, Wo = out.shape[-2:]
    win = np.zeros(out.shape + (kh, kw), dtype=cache.x.dtype)
    if ties == "first":
        np.put_along_axis(win.reshape(out.shape + (kh * kw,)), cache.offset[..., None].astype(np.intp),
                          1, axis=-1)
        return win
    xp = _pad_last2(cache.x, ph, pw, -np.inf)
    rows = np.arange(Ho) * sh - ph
    cols = np.arange(Wo) * sw - pw
    for a in range(kh):
        for b in range(kw):
            v = xp[..., _offset_slice(a, sh, Ho), _offset_slice(b, sw, Wo)]
            real = ((rows + a >= 0) & (rows + a < H))[:, None] & ((cols + b >= 0) & (cols + b < W))[None, :]
            win[..., a, b] = ((v == out) | (np.isnan(v) & np.isnan(out))) & real
    if ties == "split":
        win /= win.sum(axis=(-2, -1), keepdims=True)
    return win


def expand_gradient(dout, kernel_size):
    """Repeat each gradient cell over its k x k window (the source article's "expansion").

    ``(..., Ho, Wo)`` -> ``(..., Ho*kh, Wo*kw)``.  Multiplied by the 0/1 mask this is the
    max-pool gradient -- but only for non-overlapping windows (stride == kernel) without ties.
    """
    d = _as_float_array(dout, "dout")
    if d.ndim < 2:
        raise ValueError(f"dout must have at least 2 dimensions (..., Ho, Wo), got shape {d.shape}")
    kh, kw = _pair(kernel_size, "kernel_size")
    if kh <= 0 or kw <= 0:
        raise ValueError(f"kernel_size must be positive, got {(kh, kw)}")
    return np.repeat(np.repeat(d, kh, axis=-2), kw, axis=-1)


def maxpool2d_forward_naive(x, kernel_size, stride=None, padding=0, ties="first"):
    """Teaching version of :func:`maxpool2d_forward`: one Python loop step per output cell.

    Returns the same ``(out, cache)`` as the fast version.
    """
    if ties not in TIES_POLICIES:
        raise ValueError(f"ties must be one of {TIES_POLICIES}, got {ties!r}")
    x, geo = _pool_prepare(x, kernel_size, stride, padding, "maxpool2d_forward_naive")
    kh, kw, sh, sw, ph, pw, Ho, Wo = geo
    H, W = x.shape[-2:]
    lead = x.shape[:-2]
    out = np.empty(lead + (Ho, Wo), dtype=x.dtype)
    offset = np.empty(lead + (Ho, Wo), dtype=np.int32)
    for idx in np.ndindex(*lead):
        for i in range(Ho):
            for j in range(Wo):
                best, best_rc = -np.inf, None
                for r in range(i * sh - ph, i * sh - ph + kh):
                    for c in range(j * sw - pw, j * sw - pw + kw):
                        if not (0 <= r < H and 0 <= c < W):
                            continue  # padding is never the maximum
                        v = x[idx + (r, c)]
                        if best_rc is None or v > best or np.isnan(v):
                            best, best_rc = v, (r, c)
                out[idx + (i, j)] = best
                offset[idx + (i, j)] = (best_rc[0] - (i * sh - ph)) * kw + (best_rc[1] - (j * sw - pw))
    cache = MaxPoolCache(x_shape=x.shape, kernel_size=(kh, kw), stride=(sh, sw), padding=(ph, pw),
                         ties=ties, offset=offset, out=out.copy(), x=x)
    return out, cache


def maxpool2d_backward_naive(dout, cache):
    """Teaching version of :func:`maxpool2d_backward`: visit every window, find its maximum
    (or maxima) again, and ``+=`` the window's gradient onto it."""
    _check_cache(cache, MaxPoolCache, "maxpool2d_forward")
    kh, kw = cache.kernel_size
    sh, sw = cache.stride
    ph, pw = cache.padding
    H, W = cache.x_shape[-2:]
    lead = cache.x_shape[:-2]
    Ho, Wo = cache.out.shape[-2:]
    dout = _check_dout(dout, lead + (Ho, Wo), cache.x.dtype)
    x = cache.x
    dx = np.zeros(cache.x_shape, dtype=dout.dtype)
    for idx in np.ndindex(*lead):
        for i in range(Ho):
            for j in range(Wo):
                cells = [(r, c) for r in range(i * sh - ph, i * sh - ph + kh)
                         for c in range(j * sw - pw, j * sw - pw + kw) if 0 <= r < H and 0 <= c < W]
                values = [x[idx + rc] for rc in cells]
                if cache.ties == "first":
                    best = 0
                    for n, v in enumerate(values):
                        if v > values[best] or (np.isnan(v) and n > 0):
                            best = n
                    winners = [cells[best]]
                else:
                    top = max(values) if not any(np.isnan(values)) else np.nan
                    winners = [rc for rc, v in zip(cells, values)
                               if v == top or (np.isnan(v) and np.isnan(top))]
                g = dout[idx + (i, j)]
                share = g if cache.ties != "split" else g / len(winners)
                for rc in (winners if cache.ties != "first" else winners[:1]):
                    dx[idx + rc] += share  # += : overlapping windows add up
    return dx


# ---------------------------------------------------------------------------
# Average pooling
# ---------------------------------------------------------------------------

@dataclass(repr=False)
class AvgPoolCache(_Cache):
    """Average pooling's cache: only the geometry (the gradient does not depend on x)."""
    x_shape: Tuple[int, ...]
    kernel_size: Tuple[int, int]
    stride: Tuple[int, int]
    padding: Tuple[int, int]
    out_shape: Tuple[int, ...]
    dtype: np.dtype = field(repr=False)


def avgpool2d_forward(x, kernel_size, stride=None, padding=0):
    """Average pooling over the last two axes, PyTorch's ``count_include_pad=True``.

    ``x (..., H, W)`` -> ``out (..., Ho, Wo)``; every window divides by ``kh*kw``, padded
    zeros included.  Returns ``(out, AvgPoolCache)``.
    """
    x, geo = _pool_prepare(x, kernel_size, stride, padding, "avgpool2d_forward")
    kh, kw, sh, sw, ph, pw, Ho, Wo = geo
    out = _window_planes(_pad_last2(x, ph, pw, 0), geo).sum(axis=0) / x.dtype.type(kh * kw)
    cache = AvgPoolCache(x_shape=x.shape, kernel_size=(kh, kw), stride=(sh, sw), padding=(ph, pw),
                         out_shape=out.shape, dtype=x.dtype)
    return out, cache


def avgpool2d_backward(dout, cache):
    """Gradient of average pooling: every cell of a window receives ``dout / (kh*kw)``,
    summed over the windows that contain it.  ``dout (..., Ho, Wo)`` -> ``dx (..., H, W)``."""
    _check_cache(cache, AvgPoolCache, "avgpool2d_forward")
    (kh, kw), (sh, sw), (ph, pw) = cache.kernel_size, cache.stride, cache.padding
    Ho, Wo = cache.out_shape[-2:]
    dout = _check_dout(dout, cache.out_shape, cache.dtype)
    share = dout / dout.dtype.type(kh * kw)
    return _scatter_windows(lambda o: share, (kh, kw, sh, sw, ph, pw, Ho, Wo), cache.x_shape, dout.dtype)


# ---------------------------------------------------------------------------
# Convolution (cross-correlation, as in every deep-learning framework)
# ---------------------------------------------------------------------------

@dataclass(repr=False)
class ConvCache(_Cache):
    """Convolution's cache: the input, the kernel, the geometry (and the im2col columns)."""
    x_shape: Tuple[int, ...]
    w_shape: Tuple[int, ...]
    stride: Tuple[int, int]
    padding: Tuple[int, int]
    out_shape: Tuple[int, ...]
    x: np.ndarray = field(repr=False)
    w: np.ndarray = field(repr=False)
    has_bias: bool = True
    cols: Optional[np.ndarray] = field(repr=False, default=None)
    cols_width: int = field(repr=False, default=0)


def _conv_prepare(x, w, b, stride, padding):
    x = _as_float_array(x, "x")
    w = _as_float_array(w, "w")
    _check_ndim(x, "x", 4, "(N, C, H, W)")
    _check_ndim(w, "w", 4, "(F, C, kh, kw)")
    if x.shape[1] != w.shape[1]:
        raise ValueError(
            f"channel mismatch: x has C={x.shape[1]} channels (shape {x.shape}) but w expects "
            f"C={w.shape[1]} (shape {w.shape})")
    dtype = np.result_type(x.dtype, w.dtype)
    if b is not None:
        b = _as_float_array(b, "b")
        if b.shape != (w.shape[0],):
            raise ValueError(f"b must have shape (F,) = {(w.shape[0],)} to match w {w.shape}, got {b.shape}")
        dtype = np.result_type(dtype, b.dtype)
    geo = _window_geometry(x.shape[2], x.shape[3], w.shape[2:], stride, padding, False, x.shape)
    return x.astype(dtype, copy=False), w.astype(dtype, copy=False), b, geo


def _im2col_rows(x: np.ndarray, geo) -> Tuple[np.ndarray, int]:
    """Columns laid out for one big matrix product: ``(C*kh*kw, N*Ho*width)`` and ``width``.

    Row ``c*kh*kw + r*kw + s`` holds input channel ``c`` at window offset ``(r, s)``; column
    ``(n*Ho + i)*width + j`` is the receptive field of output cell ``(n, i, j)``.

    With stride 1, ``width`` is the padded input width ``Wp`` and the last ``kw - 1`` columns of
    every output row are junk: each (channel, offset) row of the columns is then one *contiguous*
    slice of the flattened padded input, which makes the copy (and :func:`_col2im_rows`) fast.
    Otherwise ``width = Wo`` and there is no junk.
    """
    kh, kw, sh, sw, ph, pw, Ho, Wo = geo
    N, C, H, W = x.shape
    Hp, Wp = H + 2 * ph, W + 2 * pw
    if (sh, sw) == (1, 1):
        flat = np.zeros((C, N, Hp * Wp + kw - 1), dtype=x.dtype)
        flat[:, :, :Hp * Wp].reshape(C, N, Hp, Wp)[:, :, ph:ph + H, pw:pw + W] = x.transpose(1, 0, 2, 3)
        M = Ho * Wp
        cols = np.empty((C, kh, kw, N, M), dtype=x.dtype)
        for r in range(kh):
            for s in range(kw):
                cols[:, r, s] = flat[:, :, r * Wp + s:r * Wp + s + M]
        return cols.reshape(C * kh * kw, N * M), Wp
    xt = _pad_last2(x, ph, pw, 0).transpose(1, 0, 2, 3)  # (C, N, Hp, Wp), a view
    cols = np.empty((C, kh, kw, N, Ho, Wo), dtype=x.dtype)
    for r in range(kh):
        for s in range(kw):
            cols[:, r, s] = xt[:, :, _offset_slice(r, sh, Ho), _offset_slice(s, sw, Wo)]
    return cols.reshape(C * kh * kw, N * Ho * Wo), Wo


def _col2im_rows(cols: np.ndarray, x_shape, geo, width: int) -> np.ndarray:
    """The adjoint of :func:`_im2col_rows`: ``(C*kh*kw, N*Ho*width)`` -> ``(N, C, H, W)``,
    every entry added back onto the input cell it was copied from (``+=``: overlaps accumulate).
    Junk columns (stride 1) must hold zeros."""
    kh, kw, sh, sw, ph, pw, Ho, Wo = geo
    N, C, H, W = x_shape
    Hp, Wp = H + 2 * ph, W + 2 * pw
    if (sh, sw) == (1, 1):
        M = Ho * Wp
        c5 = cols.reshape(C, kh, kw, N, M)
        flat = np.zeros((C, N, Hp * Wp + kw - 1), dtype=cols.dtype)
        for r in range(kh):
            for s in range(kw):
                flat[:, :, r * Wp + s:r * Wp + s + M] += c5[:, r, s]
        dxt = flat[:, :, :Hp * Wp].reshape(C, N, Hp, Wp)
    else:
        c6 = cols.reshape(C, kh, kw, N, Ho, Wo)
        dxt = np.zeros((C, N, Hp, Wp), dtype=cols.dtype)
        for r in range(kh):
            for s in range(kw):
                dxt[:, :, _offset_slice(r, sh, Ho), _offset_slice(s, sw, Wo)] += c6[:, r, s]
    return np.ascontiguousarray(dxt[:, :, ph:ph + H, pw:pw + W].transpose(1, 0, 2, 3))


def im2col(x, kernel_size, stride=1, padding=0):
    """Lay every receptive field out as a column.

    ``x (N, C, H, W)`` -> ``cols (N, C*kh*kw, Ho*Wo)``; row ``c*kh*kw + r*kw + s`` of the
    columns holds input channel ``c`` at window offset ``(r, s)``.  The convolution is then
    one matrix product per sample: ``out[n] = w.reshape(F, -1) @ cols[n]``.
    """
    x = _as_float_array(x, "x")
    _check_ndim(x, "x", 4, "(N, C, H, W)")
    geo = _window_geometry(x.shape[2], x.shape[3], kernel_size, stride, padding, False, x.shape)
    N, Ho, Wo = x.shape[0], geo[6], geo[7]
    rows, width = _im2col_rows(x, geo)
    rows = rows.reshape(-1, N, Ho, width)[..., :Wo]  # drop the junk columns, if any
    return np.ascontiguousarray(rows.reshape(-1, N, Ho * Wo).transpose(1, 0, 2))


def col2im(cols, x_shape, kernel_size, stride=1, padding=0):
    """The adjoint of :func:`im2col`: add every column entry back onto the input cell it
    was copied from (cells shared by overlapping windows *accumulate*).

    ``cols (N, C*kh*kw, Ho*Wo)`` -> ``(N, C, H, W)``.
    """
    N, C, H, W = x_shape
    geo = _window_geometry(H, W, kernel_size, stride, padding, False, tuple(x_shape))
    kh, kw, Ho, Wo = geo[0], geo[1], geo[6], geo[7]
    cols = _as_float_array(cols, "cols")
    if cols.shape != (N, C * kh * kw, Ho * Wo):
        raise ValueError(f"cols must have shape {(N, C * kh * kw, Ho * Wo)} for x_shape {tuple(x_shape)}, "
                         f"got {cols.shape}")
    width = W + 2 * geo[5] if geo[2:4] == (1, 1) else Wo
    rows = np.zeros((C * kh * kw, N, Ho, width), dtype=cols.dtype)
    rows[..., :Wo] = cols.reshape(N, C * kh * kw, Ho, Wo).transpose(1, 0, 2, 3)
    return _col2im_rows(rows.reshape(C * kh * kw, -1), x_shape, geo, width)


def conv2d_forward(x, w, b=None, stride=1, padding=0):
    """2-D convolution (cross-correlation, no kernel flip), vectorised with im2col.

    Parameters
    ----------
    x : ``(N, C, H, W)``;  w : ``(F, C, kh, kw)``;  b : ``(F,)`` or ``None``.
    stride, padding : int or ``(h, w)``; zero padding.

    Returns
    -------
    out : ``(N, F, Ho, Wo)``, ``Ho = floor((H + 2p - kh) / s) + 1``;
    cache : :class:`ConvCache` (it keeps the im2col columns for the backward pass).

    The whole batch is one matrix product ``(F, C*kh*kw) @ (C*kh*kw, N*Ho*Wo)``.
    """
    x, w, b, geo = _conv_prepare(x, w, b, stride, padding)
    kh, kw, sh, sw, ph, pw, Ho, Wo = geo
    N = x.shape[0]
    F = w.shape[0]
    cols, width = _im2col_rows(x, geo)
    out = (w.reshape(F, -1) @ cols).reshape(F, N, Ho, width)[..., :Wo]  # (F, N, Ho, Wo)
    out = np.ascontiguousarray(out.transpose(1, 0, 2, 3))
    if b is not None:
        out += b.astype(out.dtype, copy=False)[None, :, None, None]
    cache = ConvCache(x_shape=x.shape, w_shape=w.shape, stride=(sh, sw), padding=(ph, pw),
                      out_shape=out.shape, x=x, w=w, has_bias=b is not None, cols=cols, cols_width=width)
    return out, cache


def conv2d_backward(dout, cache):
    """Gradients of :func:`conv2d_forward`.

    ``dout (N, F, Ho, Wo)`` -> ``dx (N, C, H, W)``, ``dw (F, C, kh, kw)``, ``db (F,)``
    (``db`` is returned even when the forward pass had no bias).

    * ``dw[f] = sum_n  dout[n, f] (correlated with) x[n]``  -- ``dout @ cols.T``
    * ``dx = col2im(w.T @ dout)``, which equals the *full* correlation of the (stride-dilated)
      upstream gradient with the kernel rotated by 180 degrees, cropped by the padding.
    """
    _check_cache(cache, ConvCache, "conv2d_forward")
    N, C, H, W = cache.x_shape
    F, _, kh, kw = cache.w_shape
    (sh, sw), (ph, pw) = cache.stride, cache.padding
    _, _, Ho, Wo = cache.out_shape
    dout = _check_dout(dout, cache.out_shape, cache.x.dtype)
    geo = (kh, kw, sh, sw, ph, pw, Ho, Wo)
    cols, width = cache.cols, cache.cols_width
    if cols is None:  # a cache built by the naive forward pass
        cols, width = _im2col_rows(cache.x, geo)
    db = dout.sum(axis=(0, 2, 3))
    d2 = np.zeros((F, N, Ho, width), dtype=dout.dtype)  # junk columns (if any) stay 0
    d2[..., :Wo] = dout.transpose(1, 0, 2, 3)
    d2 = d2.reshape(F, -1)
    dw = (d2 @ cols.T.astype(d2.dtype, copy=False)).reshape(F, C, kh, kw)
    dcols = cache.w.reshape(F, -1).T.astype(d2.dtype, copy=False) @ d2  # (C*kh*kw, N*Ho*width)
    dx = _col2im_rows(dcols, cache.x_shape, geo, width)
    return dx, dw, db


def rot180(w):
    """The kernel rotated by 180 degrees (flipped in both spatial axes): ``w[..., ::-1, ::-1]``."""
    w = _as_float_array(w, "w")
    if w.ndim < 2:
        raise ValueError(f"w must have at least 2 dimensions (..., kh, kw), got shape {w.shape}")
    return w[..., ::-1, ::-1].copy()


def dilate(d, stride):
    """Insert ``stride - 1`` zeros between neighbouring cells of the last two axes.

    ``(..., Ho, Wo)`` -> ``(..., (Ho-1)*sh + 1, (Wo-1)*sw + 1)``.  This undoes the stride so that
    the input gradient becomes a stride-1 correlation.
    """
    d = _as_float_array(d, "d")
    if d.ndim < 2:
        raise ValueError(f"d must have at least 2 dimensions (..., Ho, Wo), got shape {d.shape}")
    sh, sw = _pair(stride, "stride")
    if sh <= 0 or sw <= 0:
        raise ValueError(f"stride must be positive, got {(sh, sw)}")
    Ho, Wo = d.shape[-2:]
    out = np.zeros(d.shape[:-2] + ((Ho - 1) * sh + 1, (Wo - 1) * sw + 1), dtype=d.dtype)
    out[..., ::sh, ::sw] = d
    return out


def conv2d_input_grad_rotated(dout, w, x_shape, stride=1, padding=0):
    """dX computed the textbook way: dilate ``dout`` by the stride, pad it by ``k - 1`` on every
    side (a *full* correlation), correlate with the 180-degree-rotated kernel (channels
    swapped), then crop the padding and restore the rows/columns the stride never reached.

    ``dout (N, F, Ho, Wo)``, ``w (F, C, kh, kw)`` -> ``dx`` of shape ``x_shape = (N, C, H, W)``.
    Same result as :func:`conv2d_backward`'s ``dx``; this version exists to show *why*.
    """
    dout = _as_float_array(dout, "dout")
    w = _as_float_array(w, "w")
    _check_ndim(dout, "dout", 4, "(N, F, Ho, Wo)")
    _check_ndim(w, "w", 4, "(F, C, kh, kw)")
    N, C, H, W = x_shape
    F, Cw, kh, kw = w.shape
    if Cw != C or dout.shape[:2] != (N, F):
        raise ValueError(f"shapes do not fit: dout {dout.shape}, w {w.shape}, x_shape {tuple(x_shape)}")
    sh, sw = _pair(stride, "stride")
    ph, pw = _pair(padding, "padding")
    Ho, Wo = pool_output_size(H, kh, sh, ph), pool_output_size(W, kw, sw, pw)
    if dout.shape[2:] != (Ho, Wo):
        raise ValueError(f"dout must have spatial shape {(Ho, Wo)} for x_shape {tuple(x_shape)}, got {dout.shape[2:]}")
    d = dilate(dout, (sh, sw))
    # rows of the padded input that no window reached (when the stride does not divide)
    extra_h = H + 2 * ph - ((Ho - 1) * sh + kh)
    extra_w = W + 2 * pw - ((Wo - 1) * sw + kw)
    d = np.pad(d, ((0, 0), (0, 0), (kh - 1, kh - 1 + extra_h), (kw - 1, kw - 1 + extra_w)))
    w_rot = rot180(w).transpose(1, 0, 2, 3)  # (C, F, kh, kw): the channels swap roles
    dxp, _ = conv2d_forward(d, w_rot)
    return dxp[:, :, ph:ph + H, pw:pw + W].copy()


def conv2d_forward_naive(x, w, b=None, stride=1, padding=0):
    """Teaching version of :func:`conv2d_forward`: loops over every output cell,
    ``out[n, f, i, j] = sum_{c,r,s} x_pad[n, c, i*sh + r, j*sw + s] * w[f, c, r, s] + b[f]``."""
    x, w, b, geo = _conv_prepare(x, w, b, stride, padding)
    kh, kw, sh, sw, ph, pw, Ho, Wo = geo
    N, C, H, W = x.shape
    F = w.shape[0]
    xp = _pad_last2(x, ph, pw, 0)
    out = np.zeros((N, F, Ho, Wo), dtype=x.dtype)
    for n in range(N):
        for f in range(F):
            for i in range(Ho):
                for j in range(Wo):
                    window = xp[n, :, i * sh:i * sh + kh, j * sw:j * sw + kw]
                    out[n, f, i, j] = np.sum(window * w[f]) + (b[f] if b is not None else 0)
    cache = ConvCache(x_shape=x.shape, w_shape=w.shape, stride=(sh, sw), padding=(ph, pw),
                      out_shape=out.shape, x=x, w=w, has_bias=b is not None)
    return out, cache


def conv2d_backward_naive(dout, cache):
    """Teaching version of :func:`conv2d_backward`: the forward loops run again, and every
    product ``x * w`` that made ``out[n, f, i, j]`` sends ``dout[n, f, i, j]`` back to both
    factors (a scatter-add: ``+=``)."""
    _check_cache(cache, ConvCache, "conv2d_forward")
    x, w = cache.x, cache.w
    N, C, H, W = cache.x_shape
    F, _, kh, kw = cache.w_shape
    sh, sw = cache.stride
    ph, pw = cache.padding
    _, _, Ho, Wo = cache.out_shape
    dout = _check_dout(dout, cache.out_shape, x.dtype)
    xp = _pad_last2(x, ph, pw, 0)
    dxp = np.zeros(xp.shape, dtype=dout.dtype)
    dw = np.zeros(w.shape, dtype=dout.dtype)
    db = np.zeros(F, dtype=dout.dtype)
    for n in range(N):
        for f in range(F):
            for i in range(Ho):
                for j in range(Wo):
                    g = dout[n, f, i, j]
                    dxp[n, :, i * sh:i * sh + kh, j * sw:j * sw + kw] += g * w[f]
                    dw[f] += g * xp[n, :, i * sh:i * sh + kh, j * sw:j * sw + kw]
                    db[f] += g
    return dxp[:, :, ph:ph + H, pw:pw + W].copy(), dw, db


# ---------------------------------------------------------------------------
# ReLU, flatten, dense
# ---------------------------------------------------------------------------

@dataclass(repr=False)
class ReluCache(_Cache):
    """ReLU's cache: ``mask = x > 0``, the 0/1 derivative (ReLU'(0) = 0)."""
    mask: np.ndarray
    dtype: np.dtype = field(repr=False, default=np.dtype(np.float64))


def relu_forward(x):
    """``out = max(x, 0)`` elementwise (NaN stays NaN).  Any shape.  Returns ``(out, ReluCache)``."""
    x = _as_float_array(x, "x")
    return np.maximum(x, x.dtype.type(0)), ReluCache(mask=x > 0, dtype=x.dtype)


def relu_backward(dout, cache):
    """``dx = dout * (x > 0)`` -- the derivative at exactly 0 is 0, as in PyTorch."""
    _check_cache(cache, ReluCache, "relu_forward")
    dout = _check_dout(dout, cache.mask.shape, cache.dtype)
    if np.isfinite(dout).all():  # fast path; the same values as np.where when dout is finite
        dx = dout * cache.mask
        dx += dout.dtype.type(0)  # -0.0 (negative * False) becomes 0.0, as in PyTorch
        return dx
    return np.where(cache.mask, dout, dout.dtype.type(0))  # never inf * 0 = NaN


@dataclass(repr=False)
class FlattenCache(_Cache):
    """Flatten's cache: the shape to restore."""
    x_shape: Tuple[int, ...]


def flatten_forward(x):
    """``(N, d1, d2, ...)`` -> ``(N, d1*d2*...)`` in row-major (C) order.  Returns ``(out, FlattenCache)``."""
    x = _as_float_array(x, "x")
    if x.ndim < 2:
        raise ValueError(f"x must have a batch axis and at least one more, (N, ...), got shape {x.shape}")
    return x.reshape(x.shape[0], -1).copy(), FlattenCache(x_shape=x.shape)


def flatten_backward(dout, cache):
    """Reshape ``dout (N, D)`` back to the input's shape: flattening only moves values."""
    _check_cache(cache, FlattenCache, "flatten_forward")
    n = cache.x_shape[0]
    d = int(np.prod(cache.x_shape[1:], dtype=np.int64))
    dout = _as_float_array(dout, "dout")
    if dout.shape != (n, d):
        raise ValueError(f"dout must have shape {(n, d)} (the flattened {cache.x_shape}), got {dout.shape}")
    return dout.reshape(cache.x_shape).copy()


@dataclass(repr=False)
class DenseCache(_Cache):
    """The dense layer's cache: its input and weights."""
    x: np.ndarray
    w: np.ndarray
    has_bias: bool = True


def dense_forward(x, w, b=None):
    """Fully connected layer ``out = x @ w + b``: ``x (N, D)``, ``w (D, M)``, ``b (M,)`` -> ``(N, M)``."""
    x = _as_float_array(x, "x")
    w = _as_float_array(w, "w")
    _check_ndim(x, "x", 2, "(N, D)")
    _check_ndim(w, "w", 2, "(D, M)")
    if x.shape[1] != w.shape[0]:
        raise ValueError(f"x (N, D) = {x.shape} and w (D, M) = {w.shape} disagree on D")
    dtype = np.result_type(x.dtype, w.dtype)
    if b is not None:
        b = _as_float_array(b, "b")
        if b.shape != (w.shape[1],):
            raise ValueError(f"b must have shape (M,) = {(w.shape[1],)} to match w {w.shape}, got {b.shape}")
        dtype = np.result_type(dtype, b.dtype)  # the same promotion as conv2d_forward
    out = x.astype(dtype, copy=False) @ w.astype(dtype, copy=False)
    if b is not None:
        out += b.astype(dtype, copy=False)
    return out, DenseCache(x=x.astype(dtype, copy=False), w=w.astype(dtype, copy=False), has_bias=b is not None)


def dense_backward(dout, cache):
    """``dx = dout @ w.T (N, D)``, ``dw = x.T @ dout (D, M)``, ``db = dout.sum(0) (M,)``."""
    _check_cache(cache, DenseCache, "dense_forward")
    dout = _check_dout(dout, (cache.x.shape[0], cache.w.shape[1]), cache.x.dtype)
    return dout @ cache.w.T, cache.x.T @ dout, dout.sum(axis=0)


# ---------------------------------------------------------------------------
# Losses and numerical gradients
# ---------------------------------------------------------------------------

def _check_finite(a: np.ndarray, name: str) -> None:
    if not np.all(np.isfinite(a)):
        bad = "NaN" if np.isnan(a).any() else "inf"
        raise ValueError(f"{name} contains {bad} (shape {a.shape}); the loss would be meaningless")


def softmax(logits):
    """Row-wise softmax of ``(N, K)`` logits, shifted by each row's max so ``exp`` never overflows."""
    z = _as_float_array(logits, "logits")
    _check_ndim(z, "logits", 2, "(N, K)")
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def softmax_cross_entropy(logits, labels):
    """Mean cross-entropy of softmax(logits) against integer labels.

    ``logits (N, K)``, ``labels (N,)`` ints in ``[0, K)``.  Returns ``(loss, dlogits)`` with
    ``dlogits = (softmax(logits) - one_hot(labels)) / N`` of shape ``(N, K)``.
    """
    z = _as_float_array(logits, "logits")
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
    N = z.shape[0]
    shifted = z - z.max(axis=1, keepdims=True)
    log_sum = np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    log_p = shifted - log_sum
    rows = np.arange(N)
    loss = -log_p[rows, y].mean()
    dlogits = np.exp(log_p)
    dlogits[rows, y] -= 1
    dlogits /= N
    return z.dtype.type(loss), dlogits


def l2_loss(pred, target):
    """The source article's cost ``loss = 0.5 * sum((pred - target)**2)``; ``dpred = pred - target``.

    ``pred`` and ``target`` must have the same shape (nothing is broadcast).
    """
    p = _as_float_array(pred, "pred")
    t = _as_float_array(target, "target")
    if p.shape != t.shape:
        raise ValueError(f"pred {p.shape} and target {t.shape} must have the same shape")
    _check_finite(p, "pred")
    _check_finite(t, "target")
    diff = p - t
    return diff.dtype.type(0.5 * np.sum(diff * diff)), diff


def numerical_gradient(f: Callable[[np.ndarray], float], x, eps: float = 1e-6) -> np.ndarray:
    """Central-difference gradient of a scalar function: ``(f(x + eps e_i) - f(x - eps e_i)) / (2 eps)``.

    ``x`` is copied to float64 and never modified; returns an array of ``x``'s shape.
    """
    if not (isinstance(eps, numbers.Real) and eps > 0):
        raise ValueError(f"eps must be a positive number, got {eps!r}")
    x = np.array(_as_float_array(x, "x"), dtype=np.float64, copy=True)
    grad = np.zeros_like(x)
    flat = x.reshape(-1)
    g = grad.reshape(-1)
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + eps
        fp = float(f(x))
        flat[i] = old - eps
        fm = float(f(x))
        flat[i] = old
        g[i] = (fp - fm) / (2 * eps)
    return grad
