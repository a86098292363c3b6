"""Chapter 10 (make it fast): timing a call fairly, and the chapter's two figures.

* :func:`best_time` -- the best wall time of one call, over a few rounds (``timeit``).
* :func:`format_seconds` -- ``0.00123`` -> ``"1.23 ms"``.
* :func:`window_planes_figure` -- a small map, its pooling windows, and the ``k*k`` "window
  planes": plane ``(r0, c0)`` holds the cell at offset ``(r0, c0)`` of every window, so the pooled
  output is the maximum over the planes.
* :func:`timing_figure` -- grouped bars of measured times on a logarithmic axis.

The math is in :mod:`mlp_cnn_core`; timings are shown in the chapter, never asserted.
"""
from __future__ import annotations

import timeit
from typing import Callable, Mapping, Optional, Sequence, Tuple

import numpy as np
from matplotlib import pyplot as plt

from .draw import ACCENT, HIGHLIGHT, WINDOW, draw_matrix, outline_window

__all__ = ["best_time", "format_seconds", "window_planes", "window_planes_figure", "timing_figure"]


def best_time(fn: Callable[[], object], repeat: int = 3, min_time: float = 0.02) -> float:
    """Seconds per call of ``fn()``: the best of ``repeat`` rounds, each round calling ``fn``
    often enough to last at least ``min_time`` seconds (one warm-up call first).

    The best round, not the mean, is the number to compare: the others were slowed down by
    whatever else the machine was doing.
    """
    if repeat < 1:
        raise ValueError(f"repeat must be >= 1, got {repeat}")
    timer = timeit.Timer(fn)
    number, elapsed = 1, timer.timeit(1)  # warm-up, and a first guess of the cost
    while elapsed < min_time and number < 1_000_000:
        number *= 10 if elapsed < min_time / 10 else 2
        elapsed = timer.timeit(number)
    rounds = [elapsed] + timer.repeat(repeat - 1, number)
    return min(rounds) / number


def format_seconds(t: Optional[float]) -> str:
    """A time with three significant digits and a unit: ``"12.3 µs"``, ``"4.56 ms"``, ``"1.20 s"``.
    ``None`` (not measured) reads ``"—"``."""
    if t is None:
        return "—"
    t = float(t)
    if not np.isfinite(t) or t < 0:
        raise ValueError(f"t must be a finite, non-negative number of seconds, got {t}")
    for scale, unit in ((1.0, "s"), (1e-3, "ms"), (1e-6, "µs")):
        if t >= scale:
            break
    else:
        scale, unit = 1e-9, "ns"
    value = t / scale
    digits = 0 if value >= 100 else 1 if value >= 10 else 2
    return f"{value:.{digits}f} {unit}"


def window_planes(x, kernel: int, stride: int) -> np.ndarray:
    """``(kernel, kernel, Ho, Wo)``: ``planes[r0, c0, i, j]`` is the cell at offset ``(r0, c0)``
    of window ``(i, j)`` of a 2-D map ``x`` (no padding), taken from a strided view of ``x``."""
    x = np.asarray(x, dtype=float)
    if x.ndim != 2:
        raise ValueError(f"x must be a 2-D map (H, W), got shape {x.shape}")
    windows = np.lib.stride_tricks.sliding_window_view(x, (kernel, kernel))[::stride, ::stride]
    return np.moveaxis(windows, (2, 3), (0, 1))


def window_planes_figure(x, kernel: int, stride: int, offset: Tuple[int, int] = (1, 1),
                         cell_size: float = 0.42):
    """The map ``x`` with its windows (blue) and, in red, the cells that window offset ``offset``
    reads; the ``kernel x kernel`` planes (the one of ``offset`` framed in red); the pooled output,
    the maximum over the planes.  Returns the figure."""
    x = np.asarray(x, dtype=float)
    planes = window_planes(x, kernel, stride)
    r0, c0 = offset
    if not (0 <= r0 < kernel and 0 <= c0 < kernel):
        raise ValueError(f"offset must lie inside the {kernel}x{kernel} window, got {offset}")
    H, W = x.shape
    Ho, Wo = planes.shape[2:]
    k = kernel
    plane_w = Wo + 0.8
    fig = plt.figure(figsize=(cell_size * (W + k * plane_w + Wo) + 2.6,
                              max(cell_size * H, k * cell_size * (Ho + 1.2)) + 1.2))
    grid = fig.add_gridspec(k, k + 2, width_ratios=[W + 1] + [plane_w] * k + [Wo + 1])
    lo, hi = float(x.min()), float(x.max())
    ax_x = fig.add_subplot(grid[:, 0])
    read = np.zeros(x.shape, dtype=bool)
    read[r0:r0 + stride * (Ho - 1) + 1:stride, c0:c0 + stride * (Wo - 1) + 1:stride] = True
    draw_matrix(ax_x, x, title=f"x ({H}×{W}): {Ho * Wo} windows {k}×{k},\nstride {stride}",
                cmap="Greys", vmin=lo, vmax=hi, highlight=read)
    for n, (i, j) in enumerate(np.ndindex(Ho, Wo)):
        outline_window(ax_x, i * stride, j * stride, k, k, color=WINDOW, linewidth=1.6,
                       inset=0.06 + 0.05 * (n % 3))
    for a in range(k):
        for b in range(k):
            ax = fig.add_subplot(grid[a, 1 + b])
            chosen = (a, b) == (r0, c0)
            draw_matrix(ax, planes[a, b], cmap="Greys", vmin=lo, vmax=hi,
                        highlight=np.ones((Ho, Wo), bool) if chosen else None)
            ax.set_title(f"offset ({a}, {b})", fontsize=8, color=HIGHLIGHT if chosen else "black")
            ax.tick_params(labelsize=6)
    ax_y = fig.add_subplot(grid[:, k + 1])
    draw_matrix(ax_y, planes.max(axis=(0, 1)), title=f"max over the\n{k * k} planes ({Ho}×{Wo})",
                cmap="Greys", vmin=lo, vmax=hi)
    fig.suptitle(f"x[{r0}::{stride}, {c0}::{stride}] (red) is plane ({r0}, {c0}): one strided slice, "
                 f"no loop over the windows", fontsize=10)
    fig.tight_layout()
    return fig


def timing_figure(cases: Sequence[str], times: Mapping[str, Sequence[Optional[float]]],
                  title: Optional[str] = None):
    """Horizontal bars, one group per case and one bar per method (``times[method][case]``,
    ``None`` for a method that was not measured), on a logarithmic time axis.  Returns the figure."""
    methods = list(times)
    for m in methods:
        if len(times[m]) != len(cases):
            raise ValueError(f"times[{m!r}] has {len(times[m])} entries for {len(cases)} cases")
    colors = [ACCENT, WINDOW, HIGHLIGHT, "0.4", "#2ca02c"]
    height = 0.8 / max(len(methods), 1)
    fig, ax = plt.subplots(figsize=(8, 0.9 + 0.32 * len(cases) * len(methods)))
    for n, m in enumerate(methods):
        ys = [c + n * height for c in range(len(cases))]
        vals = [np.nan if t is None else t for t in times[m]]
        bars = ax.barh(ys, vals, height=height, color=colors[n % len(colors)], label=m)
        for bar, t in zip(bars, times[m]):
            if t is not None:
                ax.text(bar.get_width() * 1.08, bar.get_y() + bar.get_height() / 2, format_seconds(t),
                        va="center", fontsize=8)
    ax.set_xscale("log")
    ax.set_yticks([c + height * (len(methods) - 1) / 2 for c in range(len(cases))])
    ax.set_yticklabels(cases, fontsize=9)
    ax.invert_yaxis()
    finite = [t for m in methods for t in times[m] if t is not None]
    if finite:
        ax.set_xlim(min(finite) / 2, max(finite) * 8)
    ax.set_xlabel("seconds per forward + backward (log scale)")
    ax.legend(fontsize=8, loc="lower right")
    if title:
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return fig
