"""Chapter 10 (make it fast): timing calls fairly, and the chapter's figures.

* :func:`best_time` -- the best wall time of one call, over a few rounds (``timeit``).
* :func:`compare_times` -- several functions timed in interleaved rounds, each keeping
  its best: a machine that is busy for a moment slows every contender alike.
* :func:`format_seconds` -- ``0.00123`` -> ``"1.23 ms"``.
* :func:`window_planes` -- the ``k*k`` "window planes" of a map: plane ``(α, β)``
  holds the cell at offset ``(α, β)`` of every window, so the pooled output is the
  maximum over the planes.
* :func:`window_planes_state` -- the figure of the planes (a state drawn by the
  explorables' view): the map with its windows, the planes, their maximum.
* :func:`phase_split_state` -- the figure of the stride-phase split that
  ``mlp_cnn_fast``'s convolution uses: the padded map, its ``s*s`` phases, and where a
  window's cells land.
* :func:`timing_figure` -- grouped bars of measured times on a logarithmic axis, drawn
  for the column (show it with :func:`cnnviz.show_figure`).

The math is in :mod:`mlp_cnn_core` and :mod:`mlp_cnn_fast`; timings are shown in the
chapter, never asserted.
"""
from __future__ import annotations

import math
import timeit
from typing import Callable, Dict, Mapping, Optional, Sequence, Tuple

import numpy as np

import mlp_cnn_core as core

from . import mplfig
from .draw import sub
from .explorable import cell_id, link, panel, window
from .maxpool import window_class, window_legend

__all__ = ["best_time", "compare_times", "format_seconds", "window_planes",
           "window_planes_state", "phase_split_state", "timing_figure", "METHOD_COLORS"]


def _calls_per_round(timer: timeit.Timer, min_time: float) -> Tuple[int, float]:
    """One warm-up call, then how many calls make a round of at least ``min_time``
    seconds; returns that number and the time of the last trial round."""
    number, elapsed = 1, timer.timeit(1)
    while elapsed < min_time and number < 1_000_000:
        number *= 10 if elapsed < min_time / 10 else 2
        elapsed = timer.timeit(number)
    return number, elapsed


def best_time(fn: Callable[[], object], repeat: int = 3,
              min_time: float = 0.02) -> float:
    """Seconds per call of ``fn()``: the best of ``repeat`` rounds, each round calling
    ``fn`` often enough to last at least ``min_time`` seconds (one warm-up call first;
    with ``repeat=1, min_time=0`` that single call is the measurement).

    The best round, not the mean, is the number to compare: the others were slowed down
    by whatever else the machine was doing.
    """
    if repeat < 1:
        raise ValueError(f"repeat must be >= 1, got {repeat}")
    timer = timeit.Timer(fn)
    number, elapsed = _calls_per_round(timer, min_time)
    rounds = [elapsed] + timer.repeat(repeat - 1, number)
    return min(rounds) / number


def compare_times(fns: Mapping[str, Callable[[], object]], repeat: int = 5,
                  min_time: float = 0.02) -> Dict[str, float]:
    """Seconds per call of each ``fns[name]()``, timed in interleaved rounds: round 1 of
    every function, then round 2 of every function, ...; each keeps its best round.

    Each function is warmed up and given a number of calls per round lasting at least
    ``min_time``.  Interleaving makes the comparison fair on a shared machine: a moment
    of load slows one round of every contender, and the best rounds are compared.
    """
    if repeat < 1:
        raise ValueError(f"repeat must be >= 1, got {repeat}")
    if not fns:
        raise ValueError("fns must name at least one function to time")
    timers = {name: timeit.Timer(fn) for name, fn in fns.items()}
    numbers = {name: _calls_per_round(timer, min_time)[0]
               for name, timer in timers.items()}
    best = {name: math.inf for name in fns}
    for _ in range(repeat):
        for name, timer in timers.items():
            best[name] = min(best[name], timer.timeit(numbers[name]) / numbers[name])
    return best


def format_seconds(t: Optional[float]) -> str:
    """A time with three significant digits and a unit: ``"12.3 µs"``, ``"4.56 ms"``,
    ``"1.20 s"``.  ``None`` (not measured) reads ``"—"``."""
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


# ---------------------------------------------------------------------------
# The window planes (the chapter's first figure)
# ---------------------------------------------------------------------------

def window_planes(x, kernel: int, stride: int) -> np.ndarray:
    """``(kernel, kernel, Ho, Wo)``: ``planes[α, β, i, j]`` is the cell at offset
    ``(α, β)`` of window ``(i, j)`` of a 2-D map ``x`` (no padding), taken from a
    strided view of ``x``."""
    x = np.asarray(x, dtype=float)
    if x.ndim != 2:
        raise ValueError(f"x must be a 2-D map (H, W), got shape {x.shape}")
    windows = np.lib.stride_tricks.sliding_window_view(x, (kernel, kernel))
    windows = windows[::stride, ::stride]
    return np.moveaxis(windows, (2, 3), (0, 1))


def window_planes_state(x, kernel: int, stride: int,
                        offset: Tuple[int, int] = (1, 1)) -> dict:
    """The map ``x`` (H, W) with its windows outlined (each in its own colour) and the
    cells at ``offset`` = (α, β) of every window marked; the ``kernel × kernel`` planes,
    plane (α, β) holding offset (α, β) of every window in the window's place (the chosen
    plane marked); and Y, the maximum over the planes, which is
    ``core.maxpool2d_forward``'s output.  A plane cell links to its input cell, its
    output cell and its window."""
    x = np.asarray(x, dtype=float)
    planes = window_planes(x, kernel, stride)
    k, s = int(kernel), int(stride)
    a0, b0 = (int(v) for v in offset)
    if not (0 <= a0 < k and 0 <= b0 < k):
        raise ValueError(f"offset must lie inside the {k}×{k} window, got {offset}")
    H, W = x.shape
    Ho, Wo = planes.shape[2:]
    y = core.maxpool2d_forward(x, k, s)[0]
    drawn = [(i, j, window_class(i, j, overlap=s < k))
             for i in range(Ho) for j in range(Wo)]
    read = np.full(x.shape, "", dtype=object)
    read[a0:a0 + s * (Ho - 1) + 1:s, b0:b0 + s * (Wo - 1) + 1:s] = "hl"
    span = (float(x.min()), float(x.max()))
    boxes = [window("x", i * s, j * s, k, k, cls) for i, j, cls in drawn]
    panels = [panel("x", f"X ({H}×{W})", x, span=span, classes=read, windows=boxes,
                    subtitle=f"{Ho * Wo} windows {k}×{k}, stride {s}"),
              panel("y", f"Y ({Ho}×{Wo})", y, span=span,
                    subtitle=f"max over the {k * k} planes")]
    links = {}
    for a in range(k):
        for b in range(k):
            pid = f"p{a}{b}"
            mark = "hl" if (a, b) == (a0, b0) else ""
            chosen = np.full((Ho, Wo), mark, dtype=object)
            panels.append(panel(pid, f"offset ({a}, {b})", planes[a, b], span=span,
                                classes=chosen, new_row=b == 0))
            for i, j, _ in drawn:
                u, v = i * s + a, j * s + b
                links[cell_id(pid, i, j)] = link(
                    [cell_id("x", u, v), cell_id("y", i, j)],
                    [window("x", i * s, j * s, k, k)],
                    f"Offset ({a}, {b}) of window ({i}, {j}) is {sub('X', u, v)} = "
                    f"{x[u, v]:g}; {sub('Y', i, j)} = {y[i, j]:g} is the largest "
                    f"of the {k * k} planes' cells at ({i}, {j}).")
    legend = {"hl": f"offset ({a0}, {b0}) of every window: one strided slice, "
                    f"X[{a0}::{s}, {b0}::{s}]",
              **{f"window.{c}": f"window ({i}, {j}): cell ({i}, {j}) of every plane"
                 for i, j, c in drawn}}
    if len(drawn) > 4:
        legend.update(window_legend(drawn, s < k))
    caption = (f"Plane ({a0}, {b0}) is the slice X[{a0}::{s}, {b0}::{s}] cut to "
               f"{Ho}×{Wo}: the cell at offset ({a0}, {b0}) of every window, in the "
               f"windows' own places. The maximum over the {k * k} planes, taken cell "
               "by cell, is the pooled output: the loop runs over the offsets, never "
               "over the windows.")
    return {"panels": panels, "links": links, "legend": legend, "caption": caption}


# ---------------------------------------------------------------------------
# The stride-phase split (mlp_cnn_fast's convolution)
# ---------------------------------------------------------------------------

def phase_split_state(x, kernel: int, stride: int, padding: int,
                      windows: Sequence[Tuple[int, int]] = ((0, 0), (1, 1))) -> dict:
    """The zero-padded map ``x`` (H, W) and its ``stride × stride`` phases: phase (p, q)
    holds the padded cells (s·u + p, s·v + q) on a grid of ⌈(H + 2·padding)/s⌉ rows
    and ⌈(W + 2·padding)/s⌉ columns (cells past the map blank).  Up to four ``windows``
    (i, j) of a ``kernel × kernel`` convolution are outlined on the padded map and, in
    every phase, on the cells of that window the phase holds: a block that starts at
    (i, j) itself, so each phase is read with stride 1."""
    x = np.asarray(x, dtype=float)
    if x.ndim != 2:
        raise ValueError(f"x must be a 2-D map (H, W), got shape {x.shape}")
    k, s, p = int(kernel), int(stride), int(padding)
    geo = core.WindowGeometry.of(x.shape, k, s, p, pool=False)
    Ho, Wo = geo.out_size
    chosen = [tuple(int(t) for t in w) for w in windows][:4]
    for i, j in chosen:
        if not (0 <= i < Ho and 0 <= j < Wo):
            raise ValueError(f"window {(i, j)} is not one of the {Ho}×{Wo} outputs")
    xp = np.pad(x, p)
    Hp, Wp = xp.shape
    Hq, Wq = -(-Hp // s), -(-Wp // s)
    real = np.zeros(xp.shape, bool)
    real[p:p + x.shape[0], p:p + x.shape[1]] = True
    labels = [str(u - p) if p <= u < p + x.shape[0] else "" for u in range(Hp)]
    col_labels = [str(v - p) if p <= v < p + x.shape[1] else "" for v in range(Wp)]
    cls = [f"c{n + 1}" for n in range(len(chosen))]
    boxes = [window("xp", i * s, j * s, k, k, c) for (i, j), c in zip(chosen, cls)]
    panels = [panel("xp", f"pad(X), {Hp}×{Wp}", xp, scale="seq", windows=boxes,
                    classes=np.where(real, "", "pad"), row_labels=labels,
                    col_labels=col_labels,
                    subtitle=f"{k}×{k} windows, stride {s}, padding {p}")]
    for a in range(s):
        for b in range(s):
            grid = np.full((Hq, Wq), np.nan)
            part = xp[a::s, b::s]
            grid[:part.shape[0], :part.shape[1]] = part
            inside = np.zeros((Hq, Wq), bool)
            inside[:part.shape[0], :part.shape[1]] = real[a::s, b::s]
            h, w = len(range(a, k, s)), len(range(b, k, s))  # α ≡ a, β ≡ b (mod s)
            boxes = [window(f"q{a}{b}", i, j, h, w, c)
                     for (i, j), c in zip(chosen, cls) if h and w]
            text = [["" if np.isnan(v) else f"{v:g}" for v in row] for row in grid]
            panels.append(panel(f"q{a}{b}", f"phase ({a}, {b})", grid, text=text,
                                scale="seq", span=(float(xp.min()), float(xp.max())),
                                classes=np.where(inside, "", "pad"), windows=boxes,
                                subtitle=f"pad(X)[{a}::{s}, {b}::{s}]", new_row=b == 0))
    legend = {f"window.{c}": f"window ({i}, {j}): {sub('Y', i, j)}"
              for (i, j), c in zip(chosen, cls)}
    legend["pad"] = "padding (zeros), or past the map"
    caption = (f"Offset (α, β) of window (i, j) is cell (i + ⌊α/{s}⌋, j + ⌊β/{s}⌋) "
               f"of phase (α mod {s}, β mod {s}): in every phase a window's cells form "
               "a block that starts at (i, j), as for a stride-1 convolution. Laid out "
               "row after row, an offset becomes a shift, and its row of im2col one "
               "contiguous slice.")
    return {"panels": panels, "legend": legend, "caption": caption}


# ---------------------------------------------------------------------------
# Timing charts
# ---------------------------------------------------------------------------

#: The bar colour of each contender (mid tones: 3:1 or more on both page backgrounds).
METHOD_COLORS = ("C0", "C2", "C3", "C4", "C7")


def timing_figure(cases: Sequence[str], times: Mapping[str, Sequence[Optional[float]]],
                  title: Optional[str] = None, height: Optional[float] = None):
    """Horizontal bars, one group per case and one bar per method
    (``times[method][case]``, ``None`` for a method that was not measured), on a
    logarithmic time axis, each bar labelled with its time; drawn for the column (720 px
    wide).  Returns the figure: show it with :func:`cnnviz.show_figure`."""
    methods = list(times)
    for m in methods:
        if len(times[m]) != len(cases):
            raise ValueError(f"times[{m!r}] has {len(times[m])} entries for "
                             f"{len(cases)} cases")
    finite = [t for m in methods for t in times[m] if t is not None]
    lo, hi = (min(finite) / 2, max(finite) * 12) if finite else (1e-6, 1.0)
    bar = 0.8 / max(len(methods), 1)
    rows = len(cases) * len(methods)
    fig, ax = mplfig.subplots(height=height or 70 + 24 * rows + 14 * len(cases))
    for n, m in enumerate(methods):
        ys = [c + n * bar for c in range(len(cases))]
        # the bars start at lo: a log axis has no 0
        widths = [np.nan if t is None else t - lo for t in times[m]]
        bars = ax.barh(ys, widths, left=lo, height=bar * 0.9, label=m,
                       color=METHOD_COLORS[n % len(METHOD_COLORS)])
        for b, t in zip(bars, times[m]):
            if t is not None:
                ax.text(t * 1.12, b.get_y() + b.get_height() / 2, format_seconds(t),
                        va="center", color=mplfig.FG)
    ax.set_xscale("log")
    ax.set_yticks([c + bar * (len(methods) - 1) / 2 for c in range(len(cases))])
    ax.set_yticklabels(cases)
    ax.invert_yaxis()
    ax.set_xlim(lo, hi)
    ax.set_xlabel("seconds per forward + backward pass (log scale)")
    fig.legend(loc="outside lower center", ncol=len(methods), frameon=False)
    if title:
        ax.set_title(title)
    return fig
