"""mlp_cnn_fast: the layers of ``mlp_cnn_core``, tuned for speed (Chapter 10).

The same public functions, signatures, caches, errors and gradient semantics as the
core -- the tests run one suite over both modules, and over this one's paths for large
arrays -- written for fewer passes over memory and fewer numpy calls rather than to be
read first:

* the window view is built from strides directly (``sliding_window_view`` alone costs
  more than a small layer), and window geometries and cell indices are remembered;
* max pooling's forward pass works a few maps at a time (they stay in the processor's
  cache), keeps the running maximum with ``np.maximum`` and the winning offset with
  ``np.maximum`` too (offsets only grow), then repairs the windows a NaN won; small
  inputs take ``np.argmax`` over each window in one call;
* max pooling's backward pass adds every window's gradient onto its winner with one
  ``np.bincount`` over the winners' flat indices;
* the other scatter-adds over windows (ties, average pooling) use one ``np.bincount``
  for small arrays and ``+=`` on strided planes for large ones;
* the convolution splits the padded input by stride phase, so that im2col is ``kh*kw``
  contiguous slices (memcpy) and col2im ``kh*kw`` contiguous ``+=``, about 1 MiB of
  columns at a time; small inputs take the core's im2col, and its numbers bit for bit
  (float32's dx is summed in float64 by ``np.bincount``, then rounded once);
* ReLU's backward pass multiplies by the mask instead of ``np.where`` (large arrays).

``mlp_cnn_train`` and ``benchmarks/bench_core.py`` use this module; the chapters read
the core.  What it does not speed up (flatten, dense, the losses, the forward passes of
ReLU and average pooling, the mask) is the core's, re-exported so that a network takes
every layer from here.
"""
from __future__ import annotations

import functools
import itertools
import math
from typing import NamedTuple, Optional, Tuple

import numpy as np
from numpy.typing import ArrayLike

from mlp_cnn_core import (
    TIES_POLICIES,
    AvgPoolCache,
    ConvCache,
    Grads,
    MaxPoolCache,
    Pair,
    ReluCache,
    WindowGeometry,
    _check_cache,
    _check_dout,
    _conv_input,
    _crop,
    _offsets,
    _pad,
    _pool_input,
    _shares,
    avgpool2d_forward,
    dense_backward,
    dense_forward,
    flatten_backward,
    flatten_forward,
    l2_loss,
    maxpool2d_mask,
    relu_forward,
    softmax,
    softmax_cross_entropy,
)

__all__ = [
    "conv2d_forward", "conv2d_backward",
    "relu_forward", "relu_backward",
    "maxpool2d_forward", "maxpool2d_backward", "maxpool2d_mask",
    "avgpool2d_forward", "avgpool2d_backward",
    "flatten_forward", "flatten_backward",
    "dense_forward", "dense_backward",
    "softmax", "softmax_cross_entropy", "l2_loss",
    "TIES_POLICIES",
]

_SMALL = 4096  # arrays this small take a path with fewer numpy calls (~1 µs each)
_COLUMN_BYTES = 1 << 20  # convolution columns per chunk: they stay in the cache
_MAPS_BYTES = 1 << 19  # max pooling's input, a few maps at a time, likewise


# ---------------------------------------------------------------------------
# Windows, and adding onto them
# ---------------------------------------------------------------------------

def _windows(xp: np.ndarray, geo: WindowGeometry) -> np.ndarray:
    """The core's window view ``(..., Ho, Wo, kh, kw)`` of a C-contiguous ``xp``, made
    from strides directly."""
    (sh, sw), (r, c) = geo.stride, xp.strides[-2:]
    return np.ndarray(xp.shape[:-2] + geo.out_size + geo.kernel_size, xp.dtype, xp, 0,
                      xp.strides[:-2] + (sh * r, sw * c, r, c))


def _geometry(x_shape: Tuple[int, ...], kernel_size: Pair, stride: Optional[Pair],
              padding: Pair, pool: bool) -> WindowGeometry:
    """:meth:`WindowGeometry.of`, remembered for arguments that are plain ints (a float,
    a bool or a list is checked, and refused, every time)."""
    plain = all(type(v) is int or (type(v) is tuple and all(type(u) is int for u in v))
                for v in (kernel_size, stride if stride is not None else 1, padding))
    if plain:
        return _known_geometry(tuple(x_shape), kernel_size, stride, padding, pool)
    return WindowGeometry.of(x_shape, kernel_size, stride, padding, pool)


@functools.lru_cache(maxsize=256)
def _known_geometry(x_shape: Tuple[int, ...], kernel_size: Pair, stride: Optional[Pair],
                    padding: Pair, pool: bool) -> WindowGeometry:
    return WindowGeometry.of(x_shape, kernel_size, stride, padding, pool)


@functools.lru_cache(maxsize=64)
def _cell_index(geo: WindowGeometry, shape: Tuple[int, ...]) -> np.ndarray:
    """The flat index of every cell of :func:`_windows` in a padded ``shape``."""
    return _windows(np.arange(math.prod(shape)).reshape(shape), geo)


@functools.lru_cache(maxsize=64)
def _window_starts(geo: WindowGeometry) -> Tuple[np.ndarray, np.ndarray]:
    """Flat index ``row * W + col`` of offset ``(0, 0)`` of each window ``(Ho, Wo)``,
    and how far offset ``a * kw + b`` lies from it (``a * W + b`` cells)."""
    (kh, kw), (Ho, Wo), W = geo.kernel_size, geo.out_size, geo.in_size[1]
    r0, c0 = geo.input_cell(np.arange(Ho)[:, None], np.arange(Wo), 0, 0)
    return r0 * W + c0, (np.arange(kh)[:, None] * W + np.arange(kw)).ravel()


def _sum_windows(parts: np.ndarray, x_shape: Tuple[int, ...],
                 geo: WindowGeometry) -> np.ndarray:
    """:func:`mlp_cnn_core._sum_windows`, ``dx`` of shape ``x_shape (..., H, W)``: a small
    array in one ``np.bincount`` over every cell's flat index, a large one an offset at a
    time."""
    (ph, pw), (H, W) = geo.padding, geo.in_size
    shape = tuple(x_shape[:-2]) + (H + 2 * ph, W + 2 * pw)
    if parts.size <= _SMALL:
        index = _cell_index(geo, shape).ravel()
        sums = np.bincount(index, parts.ravel(), minlength=math.prod(shape))
        dxp = sums.reshape(shape).astype(parts.dtype, copy=False)
    else:
        dxp = np.zeros(shape, parts.dtype)
        win = _windows(dxp, geo)
        for a, b in _offsets(geo):
            win[..., a, b] += parts[..., a, b]
    return _crop(dxp, geo)


# ---------------------------------------------------------------------------
# Max pooling
# ---------------------------------------------------------------------------

def maxpool2d_forward(x: ArrayLike, kernel_size: Pair, stride: Optional[Pair] = None,
                      padding: Pair = 0,
                      ties: str = "first") -> Tuple[np.ndarray, MaxPoolCache]:
    """:func:`mlp_cnn_core.maxpool2d_forward`, tuned: ``x (..., H, W)`` ->
    ``(..., Ho, Wo)``.  A few maps at a time, so that each offset's plane is read from
    the processor's cache; small inputs without padding take ``np.argmax`` instead."""
    x, geo = _pool_input(x, kernel_size, stride, padding, "maxpool2d_forward", ties,
                         _geometry)
    (kh, kw), (Ho, Wo) = geo.kernel_size, geo.out_size
    xp = np.ascontiguousarray(_pad(x, geo, -np.inf))
    win = _windows(xp, geo)
    if geo.padding == (0, 0) and win.size <= _SMALL:  # argmax: the first maximum
        cells = win.reshape(win.shape[:-2] + (kh * kw,))  # a copy, a window a row
        offset = cells.argmax(axis=-1).astype(np.int32)
        return _nan_wins(cells.max(axis=-1), offset, win, geo, ties, x)
    maps = xp.reshape((-1,) + xp.shape[-2:])
    out = np.empty((len(maps), Ho, Wo), x.dtype)
    offset = np.empty(out.shape, np.int32)
    step = max(1, _MAPS_BYTES // max(1, maps[0].nbytes))
    for m in range(0, len(maps), step):
        block = slice(m, m + step)
        _running_max(_windows(maps[block], geo), out[block], offset[block], geo)
    shape = x.shape[:-2] + (Ho, Wo)
    return _nan_wins(out.reshape(shape), offset.reshape(shape), win, geo, ties, x)


def _running_max(win: np.ndarray, out: np.ndarray, offset: np.ndarray,
                 geo: WindowGeometry) -> None:
    """Fill ``out`` with each window's maximum and ``offset`` with its first position
    (NaN aside), one offset at a time; ``win (M, Ho, Wo, kh, kw)``."""
    (ph, pw), (sh, sw) = geo.padding, geo.stride
    kw, (Ho, Wo) = geo.kernel_size[1], geo.out_size
    if ph or pw:  # start at each window's first real cell: padding never wins
        a0 = np.maximum(ph - sh * np.arange(Ho), 0)[:, None]
        b0 = np.maximum(pw - sw * np.arange(Wo), 0)
        out[...] = win[..., np.arange(Ho)[:, None], np.arange(Wo), a0, b0]
        offset[...] = a0 * kw + b0
    else:
        out[...], offset[...] = win[..., 0, 0], 0
    beats = np.empty(out.shape, dtype=bool)
    for a, b in itertools.islice(_offsets(geo), 1, None):
        v = win[..., a, b]
        np.greater(v, out, out=beats)  # strictly greater: the first maximum stays
        np.maximum(out, v, out=out)    # (np.maximum lets a NaN through)
        np.maximum(offset, beats * np.int32(a * kw + b), out=offset)  # they only grow


def _nan_wins(out: np.ndarray, offset: np.ndarray, win: np.ndarray, geo: WindowGeometry,
              ties: str, x: np.ndarray) -> Tuple[np.ndarray, MaxPoolCache]:
    """A NaN wins its window, and PyTorch keeps the last NaN it meets."""
    nan = np.isnan(out)
    if nan.any():
        for a, b in _offsets(geo):
            offset[nan & np.isnan(win[..., a, b])] = a * geo.kernel_size[1] + b
    return out, MaxPoolCache(geo, ties, offset, out.copy(), x)  # callers may edit out


def maxpool2d_backward(dout: ArrayLike, cache: MaxPoolCache) -> np.ndarray:
    """:func:`mlp_cnn_core.maxpool2d_backward`: ``(..., Ho, Wo)`` -> ``(..., H, W)``."""
    _check_cache(cache, MaxPoolCache, "maxpool2d_forward")
    dout = _check_dout(dout, cache.out.shape, cache.x.dtype)
    x, geo = cache.x, cache.geometry
    if cache.ties == "first":  # each window adds its gradient onto its winner
        lead, plane = x.shape[:-2], geo.in_size[0] * geo.in_size[1]
        maps = np.arange(0, math.prod(lead) * plane, plane).reshape(lead + (1, 1))
        start, step = _window_starts(geo)
        winner = start + maps + np.take(step, cache.offset)  # faster than step[offset]
        dx = np.bincount(winner.ravel(), weights=dout.ravel(), minlength=x.size)
        return dx.reshape(x.shape).astype(dout.dtype, copy=False)
    shares = _shares(cache)
    parts = np.multiply(dout[..., None, None], shares, where=shares != 0,
                        out=np.zeros(shares.shape, dout.dtype))  # never inf * 0 = NaN
    return _sum_windows(parts, x.shape, geo)


# ---------------------------------------------------------------------------
# Average pooling (its forward pass is the core's)
# ---------------------------------------------------------------------------

def avgpool2d_backward(dout: ArrayLike, cache: AvgPoolCache) -> np.ndarray:
    """:func:`mlp_cnn_core.avgpool2d_backward`: ``(..., Ho, Wo)`` -> ``(..., H, W)``."""
    _check_cache(cache, AvgPoolCache, "avgpool2d_forward")
    dout = _check_dout(dout, cache.out_shape, cache.dtype)
    kh, kw = cache.kernel_size
    share = (dout / dout.dtype.type(kh * kw))[..., None, None]
    share = np.broadcast_to(share, dout.shape + (kh, kw))
    return _sum_windows(share, cache.x_shape, cache.geometry)


# ---------------------------------------------------------------------------
# Convolution
# ---------------------------------------------------------------------------

def _small(x: np.ndarray, geo: WindowGeometry) -> bool:
    """Columns of at most ``_SMALL`` numbers: the core's im2col, fewer numpy calls."""
    (kh, kw), (Ho, Wo) = geo.kernel_size, geo.out_size
    return x.shape[0] * x.shape[1] * kh * kw * Ho * Wo <= _SMALL


def _im2col(x: np.ndarray, geo: WindowGeometry) -> np.ndarray:
    """:func:`mlp_cnn_core._im2col` on the strided view: ``(C*kh*kw, N*Ho*Wo)``."""
    win = _windows(np.ascontiguousarray(_pad(x, geo, 0)), geo)  # (N, C, Ho, Wo, kh, kw)
    N, C, Ho, Wo, kh, kw = win.shape
    return win.transpose(1, 4, 5, 0, 2, 3).reshape(C * kh * kw, N * Ho * Wo)


# Larger inputs: the padded input split by stride phase.  Phase (p, q) holds the padded
# cells (sh*u + p, sw*v + q) on a grid (Hq, Wq), channels first, the samples' grids one
# after the other in one flat row per channel.  Offset (a, b) of window (i, j) is then
# cell (i + a // sh, j + b // sw) of phase (a % sh, b % sw): the flat position of output
# (i, j), shifted by (a // sh) * Wq + b // sw.  So the im2col columns of a stretch of
# outputs are kh*kw contiguous slices (memcpy, not a gather) and col2im is kh*kw
# contiguous +=.  Grid cells with i >= Ho or j >= Wo are computed too, then dropped
# (about 15% more work for 28x28 with padding 1).


class _Shift(NamedTuple):
    grid: Tuple[int, int]                     # (Hq, Wq)
    length: int                               # outputs computed, along the flat grid
    step: int                                 # outputs per chunk (columns of ~1 MiB)
    shifts: Tuple[Tuple[Tuple[int, int], int], ...]  # offset -> (phase, shift)


@functools.lru_cache(maxsize=64)
def _shift_plan(geo: WindowGeometry, N: int, C: int, itemsize: int,
                budget: int) -> _Shift:
    (H, W), (kh, kw), (sh, sw), (ph, pw) = (geo.in_size, geo.kernel_size, geo.stride,
                                            geo.padding)
    Hq, Wq = -(-(H + 2 * ph) // sh), -(-(W + 2 * pw) // sw)
    shifts = tuple(((a % sh, b % sw), (a // sh) * Wq + b // sw)
                   for a in range(kh) for b in range(kw))
    length = N * Hq * Wq - shifts[-1][1]  # the last valid output reads the last cell
    step = max(16, budget // (kh * kw * C * itemsize))
    return _Shift((Hq, Wq), length, step, shifts)


def _phase_cells(geo: WindowGeometry):
    """For each phase ``(p, q)``: its first grid cell ``(i0, j0)`` holding an input
    cell, and that input cell ``(r0, c0)`` (None for a phase of padding only)."""
    (H, W), (sh, sw), (ph, pw) = geo.in_size, geo.stride, geo.padding
    for p, q in itertools.product(range(sh), range(sw)):
        i0, j0 = max(0, -(-(ph - p) // sh)), max(0, -(-(pw - q) // sw))
        r0, c0 = i0 * sh + p - ph, j0 * sw + q - pw
        yield (p, q), (i0, j0), ((r0, c0) if r0 < H and c0 < W else None)


def _phases(x: np.ndarray, geo: WindowGeometry, plan: _Shift) -> np.ndarray:
    """``x (N, C, H, W)`` -> its padded phases ``(sh, sw, C, N*Hq*Wq)``."""
    N, C = x.shape[:2]
    (sh, sw), (Hq, Wq) = geo.stride, plan.grid
    xq = np.zeros((sh, sw, C, N, Hq, Wq), x.dtype)
    xt = x.transpose(1, 0, 2, 3)
    for (p, q), (i0, j0), rc in _phase_cells(geo):
        if rc is not None:
            src = xt[:, :, rc[0]::sh, rc[1]::sw]
            xq[p, q, :, :, i0:i0 + src.shape[2], j0:j0 + src.shape[3]] = src
    return xq.reshape(sh, sw, C, N * Hq * Wq)


def _unphase(dxq: np.ndarray, geo: WindowGeometry, plan: _Shift,
             x_shape: Tuple[int, ...]) -> np.ndarray:
    """The inverse of :func:`_phases` on the input's cells: ``(N, C, H, W)``."""
    N, C = x_shape[:2]
    sh, sw = geo.stride
    grid = dxq.reshape((sh, sw, C, N) + plan.grid)
    dx = np.empty(x_shape, dxq.dtype)
    dxt = dx.transpose(1, 0, 2, 3)
    for (p, q), (i0, j0), rc in _phase_cells(geo):  # every input cell is in one phase
        if rc is not None:
            dst = dxt[:, :, rc[0]::sh, rc[1]::sw]
            dst[...] = grid[p, q, :, :, i0:i0 + dst.shape[2], j0:j0 + dst.shape[3]]
    return dx


def _columns(xq: np.ndarray, plan: _Shift, start: int, stop: int,
             buf: np.ndarray) -> np.ndarray:
    """im2col of the outputs ``start:stop`` of the flat grid, ``(kh*kw*C, stop-start)``:
    row ``(a*kw + b)*C + c`` holds channel ``c`` at window offset ``(a, b)``."""
    C = xq.shape[2]
    for o, (phase, shift) in enumerate(plan.shifts):
        buf[o * C:(o + 1) * C, :stop - start] = xq[phase][:, start + shift:stop + shift]
    return buf[:, :stop - start]


def conv2d_forward(x: ArrayLike, w: ArrayLike, b: Optional[ArrayLike] = None,
                   stride: Pair = 1, padding: Pair = 0) -> Tuple[np.ndarray, ConvCache]:
    """:func:`mlp_cnn_core.conv2d_forward` on shifted slices, ~1 MiB of columns at a
    time: ``x (N, C, H, W)``, ``w (F, C, kh, kw)``, ``b (F,)`` -> ``(N, F, Ho, Wo)``."""
    x, w, b, geo = _conv_input(x, w, b, stride, padding, _geometry)
    (N, C), F, (Ho, Wo) = x.shape[:2], w.shape[0], geo.out_size
    if _small(x, geo):  # the core's im2col and matrix product: its numbers, bit for bit
        out = w.reshape(F, -1) @ _im2col(x, geo)
        out = out.reshape(F, N, Ho, Wo).transpose(1, 0, 2, 3)
        return _with_bias(out, b), ConvCache(geo, x, w, b is not None)
    plan = _shift_plan(geo, N, C, x.itemsize, _COLUMN_BYTES)
    xq = _phases(x, geo, plan)
    w2 = w.transpose(0, 2, 3, 1).reshape(F, -1)           # (a, b, c) as in _columns
    outq = np.empty((F, N * math.prod(plan.grid)), x.dtype)  # past length: unused
    buf = np.empty((w2.shape[1], plan.step), x.dtype)
    for start in range(0, plan.length, plan.step):
        stop = min(start + plan.step, plan.length)
        np.matmul(w2, _columns(xq, plan, start, stop, buf), out=outq[:, start:stop])
    out = outq.reshape(F, N, *plan.grid)[:, :, :Ho, :Wo].transpose(1, 0, 2, 3)
    return _with_bias(out, b), ConvCache(geo, x, w, b is not None)


def _with_bias(out: np.ndarray, b: Optional[np.ndarray]) -> np.ndarray:
    """The view ``out (N, F, Ho, Wo)`` copied out, the bias added in the same pass."""
    if b is None:
        return np.ascontiguousarray(out)
    return np.add(out, b.astype(out.dtype, copy=False)[:, None, None])


def conv2d_backward(dout: ArrayLike, cache: ConvCache) -> Grads:
    """:func:`mlp_cnn_core.conv2d_backward` on shifted slices, a chunk at a time:
    ``dout (N, F, Ho, Wo)`` -> ``dx (N, C, H, W)``, ``dw (F, C, kh, kw)``,
    ``db (F,)``."""
    _check_cache(cache, ConvCache, "conv2d_forward")
    dout = _check_dout(dout, cache.out_shape, cache.x.dtype)
    geo, x, w = cache.geometry, cache.x, cache.w.astype(dout.dtype, copy=False)
    (N, C), F = x.shape[:2], w.shape[0]
    (kh, kw), (Ho, Wo) = geo.kernel_size, geo.out_size
    if _small(x, geo):  # the core's arithmetic: bit for bit in float64 (np.bincount
        # sums float32's dx in float64, then rounds once)
        g = dout.transpose(1, 0, 2, 3).reshape(F, -1)
        dw = (g @ _im2col(x.astype(dout.dtype, copy=False), geo).T).reshape(w.shape)
        dcols = (w.reshape(F, -1).T @ g).reshape(C, kh, kw, N, Ho, Wo)
        dx = _sum_windows(dcols.transpose(3, 0, 4, 5, 1, 2), x.shape, geo)
        return dx, dw, dout.sum(axis=(0, 2, 3))
    plan = _shift_plan(geo, N, C, dout.itemsize, _COLUMN_BYTES)
    xq = _phases(x.astype(dout.dtype, copy=False), geo, plan)  # cheaper than keeping
    g = np.zeros((F, N) + plan.grid, dout.dtype)          # dout on the flat grid
    g[:, :, :Ho, :Wo] = dout.transpose(1, 0, 2, 3)
    g = g.reshape(F, -1)
    w2T = np.ascontiguousarray(w.transpose(0, 2, 3, 1).reshape(F, -1).T)
    dw2T = np.zeros((kh * kw * C, F), dout.dtype)
    dxq = np.zeros(xq.shape, dout.dtype)
    buf = np.empty((kh * kw * C, plan.step), dout.dtype)
    dbuf = np.empty_like(buf)
    for start in range(0, plan.length, plan.step):
        stop = min(start + plan.step, plan.length)
        gs = g[:, start:stop]
        dw2T += _columns(xq, plan, start, stop, buf) @ gs.T
        dcols = np.matmul(w2T, gs, out=dbuf[:, :stop - start])
        for o, (phase, shift) in enumerate(plan.shifts):  # col2im: kh*kw slices, +=
            dxq[phase][:, start + shift:stop + shift] += dcols[o * C:(o + 1) * C]
    dw = dw2T.T.reshape(F, kh, kw, C).transpose(0, 3, 1, 2)
    dx = _unphase(dxq, geo, plan, x.shape)
    return dx, np.ascontiguousarray(dw), dout.sum(axis=(0, 2, 3))


# ---------------------------------------------------------------------------
# ReLU
# ---------------------------------------------------------------------------

def relu_backward(dout: ArrayLike, cache: ReluCache) -> np.ndarray:
    """:func:`mlp_cnn_core.relu_backward`, ``dx = dout * [x > 0]``, the input's shape:
    a product with the mask for large finite arrays (3x faster than ``np.where``)."""
    _check_cache(cache, ReluCache, "relu_forward")
    dout = _check_dout(dout, cache.mask.shape, cache.dtype)
    if dout.size <= _SMALL or not np.isfinite(dout).all():  # one call; never inf * 0
        return np.where(cache.mask, dout, dout.dtype.type(0))
    dx = dout * cache.mask
    dx += dx.dtype.type(0)  # -0.0 (a negative gradient times False) becomes 0.0
    return dx
