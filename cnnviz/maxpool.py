"""Chapter 02 (max pooling backward: the mask): the explorable and the figure helpers.

``MaxPoolRouting`` is the chapter's explorable (drawn in the browser from precomputed states, see
:mod:`cnnviz.explorable`): a small integer map pooled with the window and stride the reader picks;
hovering an output cell shows its window and the one input cell its gradient reaches, hovering an
input cell shows the windows it lies in, the ones it wins and the sum it receives.
:func:`routing_state` is the pure function that computes one state.

:func:`routing_figure` draws the chapter's static pictures (every window of a small example
outlined, winners in red, the mask and the routed gradient beside it).  All numbers come from
:mod:`mlp_cnn_core`; nothing here re-implements the pooling math.
"""
from __future__ import annotations

import re
from typing import Optional, Sequence, Tuple

import numpy as np
from matplotlib import pyplot as plt

import mlp_cnn_core as core

from .draw import ACCENT, HIGHLIGHT, WINDOW, draw_matrix, format_value, outline_cells, outline_window
from .explorable import Explorable, action, cell_id, control, link, panel, window

__all__ = ["random_input", "random_upstream", "parse_matrix", "coverage", "routing_figure",
           "routing_state", "MaxPoolRouting"]

WINDOW_COLORS = (WINDOW, "#2ca02c", "#9467bd", ACCENT, "#8c564b", "#e377c2", "#17becf", "#7f7f7f")


# ---------------------------------------------------------------------------------------------
# Small helpers (inputs, the text box, window geometry)
# ---------------------------------------------------------------------------------------------

def random_input(n: int, seed: int, low: int = 0, high: int = 9) -> np.ndarray:
    """An ``(n, n)`` float array of seeded random integers in ``[low, high]`` (ties are frequent)."""
    rng = np.random.default_rng([int(seed), int(n)])
    return rng.integers(low, high + 1, size=(n, n)).astype(float)


def random_upstream(shape: Tuple[int, int], seed: int) -> np.ndarray:
    """A seeded random upstream gradient dL/dy of small nonzero integers in ``{-3..-1, 1..3}``."""
    rng = np.random.default_rng([int(seed), 7, int(shape[0]), int(shape[1])])
    mag = rng.integers(1, 4, size=shape)
    sign = rng.choice([-1, 1], size=shape)
    return (mag * sign).astype(float)


def parse_matrix(text: str) -> np.ndarray:
    """Read a matrix typed as rows of numbers (rows on lines or separated by ``;``, numbers by
    spaces or commas).  Raises ``ValueError`` with a readable message when it is not a
    rectangular matrix of numbers."""
    rows = [r for r in re.split(r"[;\n]", text) if r.strip()]
    if not rows:
        raise ValueError("the box is empty")
    values = []
    for n, r in enumerate(rows):
        items = [t for t in re.split(r"[,\s]+", r.strip().strip("[]").strip()) if t]
        try:
            values.append([float(t) for t in items])
        except ValueError:
            raise ValueError(f"row {n} ({r.strip()!r}) is not a list of numbers") from None
    lengths = {len(v) for v in values}
    if len(lengths) != 1:
        raise ValueError(f"the rows have different lengths {sorted(lengths)}")
    return np.array(values, dtype=float)


def _grey_limits(x: np.ndarray) -> Tuple[float, float]:
    """Colour limits that keep a grey map light enough for black numbers (finite values only)."""
    f = np.asarray(x, dtype=float)
    f = f[np.isfinite(f)]
    if not f.size:
        return 0.0, 1.0
    lo, hi = float(f.min()), float(f.max())
    span = max(hi - lo, 1.0)
    return lo - 0.2 * span, hi + 0.8 * span


def coverage(shape: Tuple[int, int], kernel: int, stride: int) -> np.ndarray:
    """How many windows contain each input cell (an int array of ``shape``).

    Average pooling's backward pass of an all-ones gradient gives each cell ``(number of
    windows containing it) / k²``; multiplying by ``k²`` gives the count.
    """
    _, cache = core.avgpool2d_forward(np.zeros(shape), kernel, stride)
    ones = np.ones(cache.out_shape)
    return np.rint(core.avgpool2d_backward(ones, cache) * kernel * kernel).astype(int)


# ---------------------------------------------------------------------------------------------
# Static figures
# ---------------------------------------------------------------------------------------------

def routing_figure(x, kernel: int, stride: int, dout, titles: Optional[Sequence[str]] = None,
                   suptitle: Optional[str] = None, cell_size: float = 0.45,
                   channel_names: Optional[Sequence[str]] = None):
    """Every window of a max pooling outlined on its input, with the pooled output, the mask
    (windows won per cell), the upstream gradient and the routed gradient dx.

    ``x`` is ``(H, W)`` or ``(C, H, W)`` (one row of panels per channel); ``dout`` has the
    pooled output's shape.  Windows get distinct colours and small insets so overlapping
    windows stay visible; each window's winner is outlined in red.
    """
    x = np.asarray(x, dtype=float)
    dout = np.asarray(dout, dtype=float)
    x3 = x[None] if x.ndim == 2 else x
    d3 = dout[None] if dout.ndim == 2 else dout
    out, cache = core.maxpool2d_forward(x3, kernel, stride)
    dx = core.maxpool2d_backward(d3, cache)
    mask = core.maxpool2d_mask(cache)
    C, H, W = x3.shape
    Ho, Wo = out.shape[-2:]
    titles = list(titles) if titles is not None else [
        f"input x ({H}×{W})", "y = maxpool(x)", "mask: windows won", "dL/dy", f"dL/dx, routed ({H}×{W})"]
    widths = [W, Wo, W, Wo, W]
    fig_w = min(cell_size * sum(widths) + 2.4, 9.5)       # at most 950 px wide (dpi 100)
    fig, axes = plt.subplots(C, 5, figsize=(fig_w, C * (cell_size * H + 1.3)),
                             gridspec_kw={"width_ratios": widths}, squeeze=False)
    overlap = stride < kernel
    lo, hi = _grey_limits(x3)
    for ch in range(C):
        ax = axes[ch]
        draw_matrix(ax[0], x3[ch], cmap="Greys", vmin=lo, vmax=hi)
        draw_matrix(ax[1], out[ch], cmap="Greys", vmin=lo, vmax=hi)
        draw_matrix(ax[2], mask[ch], cmap="Oranges", vmin=0, vmax=max(2, int(mask.max())) * 1.5,
                    highlight=mask[ch] > 0)
        draw_matrix(ax[3], d3[ch], diverging=True)
        draw_matrix(ax[4], dx[ch], diverging=True, highlight=mask[ch] > 0)
        for idx, (a, b) in enumerate(np.ndindex(Ho, Wo)):
            color = WINDOW_COLORS[idx % len(WINDOW_COLORS)] if overlap else WINDOW
            inset = (0.04 + 0.07 * (idx % 4)) if overlap else 0.03
            outline_window(ax[0], a * stride, b * stride, kernel, kernel, color=color, linewidth=2.0,
                           inset=inset)
            if overlap:  # the same colour marks the window's output cell and its gradient
                for k_ax in (ax[1], ax[3]):
                    outline_window(k_ax, a, b, 1, 1, color=color, linewidth=2.0, inset=0.06)
        outline_cells(ax[0], mask[ch] > 0, color=HIGHLIGHT, linewidth=3)
        for a, t in zip(ax, titles):
            a.set_title(t, fontsize=9)
        if channel_names:
            ax[0].set_ylabel(channel_names[ch], fontsize=11)
    if suptitle:
        fig.suptitle(suptitle, fontsize=10)
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------------------------------------
# The explorable (drawn in the browser from precomputed states)
# ---------------------------------------------------------------------------------------------

def routing_state(x: np.ndarray, k: int, s: int, dout: np.ndarray) -> dict:
    """Everything the routing picture shows for input ``x`` (H, W), window ``k``, stride ``s`` and
    upstream gradient ``dout`` (Ho, Wo): the pooled output, the winners and tied maxima, the mask
    (windows won per cell), the routed gradient, and for every cell what it is linked to.

    All numbers come from ``mlp_cnn_core``: the winners from the forward pass's cache
    (``rows``, ``cols``), the tied maxima from ``maxpool2d_winners(..., ties="all")``, the window
    positions and memberships from ``cache.geometry``.
    """
    x = np.asarray(x, dtype=float)
    dout = np.asarray(dout, dtype=float)
    H, W = x.shape
    y, cache = core.maxpool2d_forward(x, k, s)
    dx = core.maxpool2d_backward(dout, cache)
    won = core.maxpool2d_mask(cache)
    tied = core.maxpool2d_winners(x, k, s, ties="all")          # (Ho, Wo, k, k): 1 on every maximum
    geo = cache.geometry
    rows, cols = cache.rows, cache.cols
    Ho, Wo = y.shape
    fmt = format_value

    def box(i, j):
        r0, c0 = geo.input_cell(i, j, 0, 0)
        return window("x", r0, c0, k, k)

    # no padding here: every window's k*k cells are input cells, in row-major order like `tied`
    maxima = {(i, j): [rc for rc, t in zip(geo.cells(i, j), tied[i, j].ravel()) if t > 0]
              for i in range(Ho) for j in range(Wo)}
    tied_losers = {rc for m in maxima.values() if len(m) > 1 for rc in m} - {
        (int(r), int(c)) for r, c in zip(*np.nonzero(won))}
    x_cls = [["win" if won[r, c] else "tie" if (r, c) in tied_losers else "" if geo.windows_of(r, c) else "dim"
              for c in range(W)] for r in range(H)]
    lim = float(np.max(np.abs(dx))) or 1.0
    panels = [
        panel("x", f"input x ({H}×{W})", x, classes=x_cls),
        panel("y", f"y = maxpool(x) ({Ho}×{Wo})", y),
        panel("dy", "upstream dL/dy", dout, scale="div", limit=lim),
        panel("m", "mask: windows won", won, classes=np.where(won > 0, "win", "")),
        panel("dx", "dL/dx (routed)", dx, scale="div", limit=lim, classes=np.where(won > 0, "win", "")),
    ]
    links = {}
    for i in range(Ho):
        for j in range(Wo):
            r, c = int(rows[i, j]), int(cols[i, j])
            text = (f"y[{i},{j}] = {fmt(y[i, j])}, the maximum of its window, taken from x[{r},{c}]: "
                    f"dL/dy[{i},{j}] = {fmt(dout[i, j])} goes to dL/dx[{r},{c}] and nowhere else.")
            others = [rc for rc in maxima[(i, j)] if rc != (r, c)]
            if others:
                also = ", ".join(f"x[{a},{b}]" for a, b in others)
                text += (f" Tie: {also} also hold{'s' if len(others) == 1 else ''} {fmt(y[i, j])}; the first "
                         f"maximum in row-major order, x[{r},{c}], takes the gradient.")
            cells = [cell_id(p, r, c) for p in ("x", "m", "dx")] + [cell_id(p, i, j) for p in ("y", "dy")]
            links[cell_id("y", i, j)] = links[cell_id("dy", i, j)] = link(cells, [box(i, j)], text)
    for r in range(H):
        for c in range(W):
            ins = geo.windows_of(r, c)
            wins = [(i, j) for i, j in ins if (rows[i, j], cols[i, j]) == (r, c)]
            if not ins:
                text = f"x[{r},{c}] lies in no window: dL/dx[{r},{c}] = 0."
            elif not wins:
                why = " (a tied maximum, but not the first)" if (r, c) in tied_losers else ""
                text = (f"x[{r},{c}] = {fmt(x[r, c])} is in {len(ins)} window{'s' if len(ins) > 1 else ''} "
                        f"but wins none{why}: dL/dx[{r},{c}] = 0.")
            else:
                terms = " + ".join(fmt(dout[i, j]) for i, j in wins)
                total = f"{terms} = {fmt(dx[r, c])}" if len(wins) > 1 else fmt(dx[r, c])
                text = (f"x[{r},{c}] = {fmt(x[r, c])} wins {len(wins)} of the {len(ins)} window"
                        f"{'s' if len(ins) > 1 else ''} it is in: dL/dx[{r},{c}] = {total}.")
            cells = [cell_id(p, r, c) for p in ("x", "m", "dx")]
            cells += [cell_id(p, i, j) for i, j in wins for p in ("y", "dy")]
            lk = link(cells, [box(i, j) for i, j in ins], text)
            for p in ("x", "m", "dx"):
                links[cell_id(p, r, c)] = lk
    caption = (f"Sum of dL/dx = {fmt(dx.sum())} = sum of dL/dy = {fmt(dout.sum())}: each window passes "
               "its own gradient to one cell, its first maximum.")
    several = int((won > 1).sum())
    if several:
        caption += (f" {several} cell{'s win' if several > 1 else ' wins'} several windows and "
                    f"receive{'' if several > 1 else 's'} the sum of their gradients.")
    lonely = sum(1 for r in range(H) for c in range(W) if not geo.windows_of(r, c))
    if lonely:
        caption += f" {lonely} cell{'s lie' if lonely > 1 else ' lies'} in no window (greyed)."
    return {"panels": panels, "links": links, "caption": caption, "focus": cell_id("y", 0, 0)}


SIZES = (4, 5, 6, 7, 8)


class MaxPoolRouting(Explorable):
    """Chapter 2: where each output cell's gradient goes in max pooling.

    Controls: input size (random integers 0-9 from ``seed``), window k, stride s, the upstream
    gradient (all ones or random small integers).  Actions (kernel): new random values, or a typed
    input matrix (2×2 to 8×8, rows separated by ``;`` or new lines)."""

    TITLE = "Max pooling backward: follow each gradient"

    def __init__(self, seed: int = 12, x=None, **kw):
        if x is not None:
            x = _checked_input(np.asarray(x, dtype=float)).tolist()
        super().__init__(seed=int(seed), x=x, **kw)

    def _x(self, size: int) -> np.ndarray:
        if self.config.get("x") is not None:
            return np.asarray(self.config["x"], dtype=float)
        return random_input(size, self.config["seed"])

    def make_controls(self):
        typed = self.config.get("x")
        if typed is not None:
            H, W = len(typed), len(typed[0])
            sizes, labels, default, kmax = [H], [f"{H}×{W}"], H, min(4, H, W)
        else:
            sizes, labels, default, kmax = list(SIZES), [f"{n}×{n}" for n in SIZES], 5, 4
        return [
            control("size", "input size", sizes, default=default, labels=labels),
            control("k", "window k", list(range(1, kmax + 1)), default=min(3, kmax)),
            control("s", "stride s", [1, 2, 3, 4], default=2),
            control("upstream", "upstream dL/dy", ["ones", "random"], default="random", kind="select",
                    labels=["all ones", "random integers"]),
        ]

    def make_actions(self):
        return [action("new", "new random values"),
                action("matrix", "use this input", kind="text", placeholder="e.g. 1 2 3; 4 5 6; 7 8 9")]

    def act(self, name, value):
        if name == "new":
            size = self.values.get("size")
            self.config = {**self.config, "seed": int(self.config["seed"]) + 1, "x": None}
            self.values = {**self.values, "size": size if size in SIZES else 5}
        elif name == "matrix":
            x = _checked_input(parse_matrix(str(value or "")))
            self.config = {**self.config, "x": x.tolist()}
            self.values = {**self.values, "size": x.shape[0], "k": min(self.values.get("k", 3), *x.shape, 4)}
        else:
            super().act(name, value)

    def state(self, size, k, s, upstream):
        x = self._x(size)
        H, W = x.shape
        Ho, Wo = core.pool_output_size(H, k, s), core.pool_output_size(W, k, s)
        dout = np.ones((Ho, Wo)) if upstream == "ones" else random_upstream((Ho, Wo), self.config["seed"])
        return routing_state(x, k, s, dout)


def _checked_input(x: np.ndarray) -> np.ndarray:
    """A typed input must be a 2-D matrix of 2×2 to 8×8 numbers (ValueError says what is wrong)."""
    if x.ndim != 2 or not (2 <= x.shape[0] <= 8 and 2 <= x.shape[1] <= 8):
        raise ValueError(f"the input must be a matrix with 2 to 8 rows and 2 to 8 columns; got shape {x.shape}")
    return x
