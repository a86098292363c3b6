"""Chapter 02 (max pooling backward: the mask): the explorer widget and the figure helpers.

``MaxPoolExplorer`` lets the reader pick one output cell of a max pooling layer and watch where
its gradient goes: the input with the cell's window outlined and its winner highlighted, the
pooled output, the upstream gradient, how many windows each input cell won
(``core.maxpool2d_mask``), the gradient routed from the chosen cell alone and the total routed
gradient ``core.maxpool2d_backward(dL/dy)``.

The figure helpers draw the chapter's static pictures (every window of a small example outlined,
winners in red, the mask and the routed gradient beside it).  All numbers come from
:mod:`mlp_cnn_core`; nothing here re-implements the pooling math.
"""
from __future__ import annotations

import html
import re
from typing import List, Optional, Sequence, Tuple

import numpy as np
from matplotlib import pyplot as plt

import mlp_cnn_core as core

from .draw import (ACCENT, HIGHLIGHT, WINDOW, draw_matrix, format_value, outline_cells, outline_window,
                   show_figure)

__all__ = ["random_input", "random_upstream", "parse_matrix", "matrix_text", "window_cells",
           "coverage", "MaxPoolExplorer", "routing_figure"]

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


def matrix_text(x: np.ndarray) -> str:
    """The text-box form of a matrix: one row per line, numbers separated by spaces."""
    return "\n".join(" ".join(format_value(v).replace("−", "-").replace("∞", "inf") for v in row)
                     for row in np.asarray(x))


def _grey_limits(x: np.ndarray) -> Tuple[float, float]:
    """Colour limits that keep a grey map light enough for black numbers (finite values only)."""
    f = np.asarray(x, dtype=float)
    f = f[np.isfinite(f)]
    if not f.size:
        return 0.0, 1.0
    lo, hi = float(f.min()), float(f.max())
    span = max(hi - lo, 1.0)
    return lo - 0.2 * span, hi + 0.8 * span


def window_cells(i: int, j: int, kernel: int, stride: int, shape: Tuple[int, int]):
    """The input cells ``[(r, c), ...]`` of window ``(i, j)`` (no padding), row-major."""
    H, W = shape
    return [(r, c) for r in range(i * stride, min(i * stride + kernel, H))
            for c in range(j * stride, min(j * stride + kernel, W))]


def coverage(shape: Tuple[int, int], kernel: int, stride: int) -> np.ndarray:
    """How many windows contain each input cell (an int array of ``shape``).

    Average pooling's backward pass of an all-ones gradient gives each cell ``(number of
    windows containing it) / k²``; multiplying by ``k²`` gives the count.
    """
    _, cache = core.avgpool2d_forward(np.zeros(shape), kernel, stride)
    ones = np.ones(cache.out_shape)
    return np.rint(core.avgpool2d_backward(ones, cache) * kernel * kernel).astype(int)


# ---------------------------------------------------------------------------------------------
# The widget
# ---------------------------------------------------------------------------------------------

UPSTREAM_MODES = (("g at the chosen cell, 0 elsewhere", "zeros"),
                  ("g at the chosen cell, random elsewhere", "random"),
                  ("random everywhere", "all-random"))


class MaxPoolExplorer:
    """Pick an output cell of a max pooling layer; see which input cell its gradient reaches.

    Controls (ipywidgets, attributes): ``size`` (input H = W, 2-8), ``window`` (k, 1-4),
    ``stride`` (1-4), ``seed`` and the ``new_values`` button (new random integers 0-9),
    ``cells`` (a text box holding the input, editable), ``row``/``col`` (the chosen output
    cell, clamped to the output), ``grad`` (its upstream gradient g) and ``upstream`` (what the
    other output cells' upstream gradient is).

    State recomputed on every change: ``x`` (``(H, W)``), ``valid`` (False when the window is
    larger than the input; ``message`` says why), ``y`` (the pooled output, ``(Ho, Wo)``) and ``cache`` from
    ``core.maxpool2d_forward``, ``selected`` ``(i, j)``, ``window_rc`` (top-left input cell of
    its window), ``winner`` ``(r, c)`` (from ``cache.rows``/``cache.cols``), ``ties`` (the other
    cells of the window equal to its maximum), ``g`` (the chosen cell's upstream gradient),
    ``dout`` (``(Ho, Wo)``), ``dx_cell`` (``(H, W)``: the chosen cell's gradient routed alone),
    ``dx`` (``(H, W)``: ``core.maxpool2d_backward(dout)``), ``mask`` (windows won per cell,
    ``core.maxpool2d_mask``), ``won`` (the windows the winner won) and ``uncovered`` (bool
    ``(H, W)``: cells in no window).
    """

    def __init__(self, size: int = 5, window: int = 3, stride: int = 2, seed: int = 12,
                 row: int = 0, col: int = 1, grad: float = 1.0, upstream: str = "random",
                 draw: bool = True):
        import ipywidgets as widgets
        self.draw = draw  # False: recompute state and summary only (fast sweeps in the tests)
        style = {"description_width": "initial"}
        self.size = widgets.IntSlider(value=size, min=2, max=8, description="input size H=W", style=style)
        self.window = widgets.IntSlider(value=window, min=1, max=4, description="window k", style=style)
        self.stride = widgets.IntSlider(value=stride, min=1, max=4, description="stride s", style=style)
        self.seed = widgets.BoundedIntText(value=seed, min=0, max=10**6, description="seed", style=style,
                                           layout=widgets.Layout(width="150px"))
        self.new_values = widgets.Button(description="new random values", icon="refresh")
        self.cells = widgets.Textarea(value="", description="input x", continuous_update=False,
                                      layout=widgets.Layout(width="260px", height="150px"), style=style)
        self.row = widgets.IntSlider(value=row, min=0, max=7, description="output row i", style=style)
        self.col = widgets.IntSlider(value=col, min=0, max=7, description="output col j", style=style)
        self.grad = widgets.FloatText(value=grad, description="upstream g at (i, j)", style=style,
                                      layout=widgets.Layout(width="220px"))
        self.upstream = widgets.Dropdown(options=UPSTREAM_MODES, value=upstream,
                                         description="upstream dL/dy", style=style)
        self.summary = widgets.HTML()
        self.out = widgets.Output()
        self._busy = False
        self.x = random_input(self.size.value, self.seed.value)
        self.parse_error = ""
        self._set_text()
        for c in (self.size, self.window, self.stride, self.seed, self.row, self.col, self.grad,
                  self.upstream):
            c.observe(self._on_change, names="value")
        self.cells.observe(self._on_text, names="value")
        self.new_values.on_click(self._on_new_values)
        controls = widgets.HBox([
            widgets.VBox([self.size, self.window, self.stride,
                          widgets.HBox([self.seed, self.new_values])]),
            widgets.VBox([self.row, self.col, self.grad, self.upstream]),
            self.cells,
        ])
        self._box = widgets.VBox([controls, self.summary, self.out])
        self._shown = False  # the live figure is drawn once the widget is displayed
        self.update()

    @property
    def widget(self):
        """The VBox to display (the live figure is drawn into its Output from now on)."""
        if not self._shown:
            self._shown = True
            self.update()
        return self._box

    # -- events ------------------------------------------------------------------------------
    def _set_text(self) -> None:
        busy, self._busy = self._busy, True
        try:
            self.cells.value = matrix_text(self.x)
        finally:
            self._busy = busy

    def _on_new_values(self, _button=None) -> None:
        self.seed.value = self.seed.value + 1 if self.seed.value < self.seed.max else 0

    def _on_change(self, change) -> None:
        if self._busy:
            return
        if change is not None and change.get("owner") in (self.size, self.seed):
            self.x = random_input(self.size.value, self.seed.value)
            self.parse_error = ""
            self._set_text()
        self.update()

    def _on_text(self, change) -> None:
        if self._busy:
            return
        try:
            x = parse_matrix(self.cells.value)
            H, W = x.shape
            if H != W or not (self.size.min <= H <= self.size.max):
                raise ValueError(f"the input must be square, from {self.size.min}×{self.size.min} "
                                 f"to {self.size.max}×{self.size.max}; got {H}×{W}")
        except ValueError as exc:
            self.parse_error = str(exc)  # keep the previous input
            self.update()
            return
        self.parse_error = ""
        self.x = x
        if self.size.value != H:
            busy, self._busy = self._busy, True
            try:
                self.size.value = H  # follow the typed matrix without drawing new values
            finally:
                self._busy = busy
        self.update()

    def set_input(self, x) -> None:
        """Set the input from Python (as typing it in the box does)."""
        self.cells.value = matrix_text(np.asarray(x, dtype=float))

    # -- state -------------------------------------------------------------------------------
    def _clamp_selection(self, Ho: int, Wo: int) -> None:
        busy, self._busy = self._busy, True
        try:
            for s, m in ((self.row, Ho), (self.col, Wo)):
                top = max(m - 1, 0)
                if s.value > top:
                    s.value = top
                s.max = top
                s.disabled = m <= 0
        finally:
            self._busy = busy

    def _compute(self) -> None:
        n, k, st = self.x.shape[0], self.window.value, self.stride.value
        self.valid = k <= n
        self.grad.disabled = self.upstream.value == "all-random"
        self.mask = np.zeros(self.x.shape, dtype=int)
        self.dx = np.zeros(self.x.shape)
        self.dx_cell = np.zeros(self.x.shape)
        self.uncovered = np.ones(self.x.shape, dtype=bool)
        if not self.valid:
            self._clamp_selection(0, 0)
            self.y = np.zeros((0, 0))
            self.cache = None
            self.dout = np.zeros((0, 0))
            self.selected = self.window_rc = self.winner = None
            self.ties: List[Tuple[int, int]] = []
            self.won: List[Tuple[int, int]] = []
            self.g = float("nan")
            self.message = (f"The window ({k}×{k}) is larger than the input ({n}×{n}): there is no "
                            f"output at all. Make the window smaller or the input larger.")
            return
        self.y, self.cache = core.maxpool2d_forward(self.x, k, st)
        Ho, Wo = self.y.shape
        self._clamp_selection(Ho, Wo)
        i, j = self.selected = (self.row.value, self.col.value)
        self.window_rc = (i * st, j * st)
        self.winner = (int(self.cache.rows[i, j]), int(self.cache.cols[i, j]))
        cells = window_cells(i, j, k, st, self.x.shape)
        top = self.y[i, j]
        self.ties = [rc for rc in cells if rc != self.winner
                     and (self.x[rc] == top or (np.isnan(self.x[rc]) and np.isnan(top)))]
        mode = self.upstream.value
        if mode == "zeros":
            self.dout = np.zeros((Ho, Wo))
        else:
            self.dout = random_upstream((Ho, Wo), self.seed.value)
        if mode != "all-random":
            self.dout[i, j] = float(self.grad.value)
        self.g = float(self.dout[i, j])
        one_hot = np.zeros((Ho, Wo))
        one_hot[i, j] = self.g
        self.dx_cell = core.maxpool2d_backward(one_hot, self.cache)
        self.dx = core.maxpool2d_backward(self.dout, self.cache)
        self.mask = core.maxpool2d_mask(self.cache)
        rows, cols = self.cache.rows, self.cache.cols
        self.won = [(int(a), int(b)) for a, b in zip(*np.nonzero((rows == self.winner[0]) & (cols == self.winner[1])))]
        self.uncovered = coverage(self.x.shape, k, st) == 0
        self.message = ""

    def _summary_html(self) -> str:
        n, k, st = self.x.shape[0], self.window.value, self.stride.value
        err = (f"<p style='color:{HIGHLIGHT}'>Could not read the input box: {html.escape(self.parse_error)}. "
               f"The previous input is kept.</p>") if self.parse_error else ""
        if not self.valid:
            return err + f"<p><b>No output.</b> {html.escape(self.message)}</p>"
        Ho, Wo = self.y.shape
        (i, j), (r, c), g = self.selected, self.winner, self.g
        fv = format_value
        head = (f"<p>Input {n}×{n}, window {k}×{k}, stride {st} → output {Ho}×{Wo} "
                f"(⌊({n} − {k}) / {st}⌋ + 1 = {Ho}).</p>")
        main = (f"<p><b>output ({i}, {j}) = {fv(self.y[i, j])}; its gradient {fv(g)} goes to "
                f"input ({r}, {c})</b>, the maximum of the window of rows {self.window_rc[0]}–"
                f"{self.window_rc[0] + k - 1}, columns {self.window_rc[1]}–{self.window_rc[1] + k - 1}. "
                f"The other {k * k - 1} cells of that window get 0 from it.</p>")
        if self.ties:
            tied = ", ".join(f"({a}, {b})" for a, b in self.ties)
            main += (f"<p>Tie: {tied} also hold{'s' if len(self.ties) == 1 else ''} {fv(self.y[i, j])}; "
                     f"as in PyTorch, the first maximum in row-major order, ({r}, {c}), takes the gradient.</p>")
        if len(self.won) > 1:
            terms = " + ".join(fv(self.dout[a, b]) for a, b in self.won)
            wins = ", ".join(f"({a}, {b})" for a, b in self.won)
            main += (f"<p>Windows overlap: input ({r}, {c}) won {len(self.won)} windows, outputs {wins}, "
                     f"so the total gradient adds them up: dx[{r}, {c}] = {terms} = "
                     f"<b>{fv(self.dx[r, c])}</b>.</p>")
        else:
            main += (f"<p>Input ({r}, {c}) won only this window: total dx[{r}, {c}] = "
                     f"<b>{fv(self.dx[r, c])}</b>.</p>")
        n_unc = int(self.uncovered.sum())
        if n_unc:
            main += (f"<p>{n_unc} input cell{'s are' if n_unc > 1 else ' is'} in no window at all "
                     f"(stride larger than the window, or the floor in the output size): "
                     f"their gradient is always 0.</p>")
        return err + head + main

    def update(self) -> None:
        """Recompute the state, the summary and the figure from the controls."""
        self._compute()
        self.summary.value = self._summary_html()
        if not (self.draw and self._shown):
            return
        show_figure(self.out, self.figure())

    # -- drawing -----------------------------------------------------------------------------
    def figure(self, cell_size: float = 0.5):
        """A new matplotlib Figure of the current state (six panels, or a message)."""
        n, k, st = self.x.shape[0], self.window.value, self.stride.value
        if not self.valid:
            fig, ax = plt.subplots(figsize=(7, 1.6))
            ax.axis("off")
            ax.text(0.5, 0.5, f"No output:\nwindow {k}×{k} > input {n}×{n}", ha="center", va="center",
                    fontsize=12, transform=ax.transAxes)
            return fig
        Ho, Wo = self.y.shape
        (i, j), (r, c) = self.selected, self.winner
        fig, axes = plt.subplots(2, 3, figsize=(3 * cell_size * n + 3.0, 2 * cell_size * n + 2.2))
        win = np.zeros(self.x.shape, bool)
        win[r, c] = True
        sel = np.zeros((Ho, Wo), bool)
        sel[i, j] = True
        # 1. input: the chosen window and its winner (tied maxima dashed orange)
        ax = axes[0, 0]
        lo, hi = _grey_limits(self.x)
        draw_matrix(ax, self.x, cmap="Greys", vmin=lo, vmax=hi)
        outline_window(ax, self.window_rc[0], self.window_rc[1], k, k, color=WINDOW, linewidth=2.5)
        outline_cells(ax, win, color=HIGHLIGHT, linewidth=3)
        for a, b in self.ties:
            outline_window(ax, a, b, 1, 1, color=ACCENT, linewidth=2, linestyle="--", inset=0.12)
        ax.set_title(f"input x ({n}×{n})\nblue: window of ({i}, {j}); red: its max", fontsize=9)
        # 2. output
        ax = axes[0, 1]
        draw_matrix(ax, self.y, cmap="Greys", vmin=lo, vmax=hi, highlight=sel)
        ax.set_title(f"output y = maxpool(x) ({Ho}×{Wo})\nred: chosen cell ({i}, {j})", fontsize=9)
        # 3. upstream gradient
        ax = axes[0, 2]
        draw_matrix(ax, self.dout, diverging=True, highlight=sel)
        ax.set_title(f"upstream dL/dy ({Ho}×{Wo})\ng = dL/dy[{i}, {j}] = {format_value(self.g)}", fontsize=9)
        # 4. windows won
        ax = axes[1, 0]
        draw_matrix(ax, self.mask, cmap="Oranges", vmin=0, vmax=max(2, int(self.mask.max())) * 1.5, highlight=win)
        ax.set_title("windows won by each cell\n(core.maxpool2d_mask)", fontsize=9)
        # 5. the chosen cell's gradient alone
        ax = axes[1, 1]
        draw_matrix(ax, self.dx_cell, diverging=True, highlight=win)
        ax.set_title(f"dx from output ({i}, {j}) alone\n{format_value(self.g)} → input ({r}, {c})", fontsize=9)
        # 6. total dx
        ax = axes[1, 2]
        draw_matrix(ax, self.dx, diverging=True, highlight=win)
        ax.set_title(f"total dx = maxpool2d_backward(dL/dy)\ndx[{r}, {c}] = {format_value(self.dx[r, c])}",
                     fontsize=9)
        fig.suptitle(f"H = W = {n}, window {k}, stride {st}: output ({i}, {j}) = {format_value(self.y[i, j])}; "
                     f"its gradient {format_value(self.g)} goes to input ({r}, {c})", fontsize=10)
        fig.subplots_adjust(left=0.04, right=0.98, bottom=0.05, top=0.88, wspace=0.25, hspace=0.35)
        return fig


# ---------------------------------------------------------------------------------------------
# Static figures
# ---------------------------------------------------------------------------------------------

def routing_figure(x, kernel: int, stride: int, dout, titles: Optional[Sequence[str]] = None,
                   suptitle: Optional[str] = None, cell_size: float = 0.55,
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
        f"input x ({H}×{W})", f"y = maxpool(x) ({Ho}×{Wo})", "mask: windows won",
        f"dL/dy ({Ho}×{Wo})", f"dx, routed ({H}×{W})"]
    widths = [W, Wo, W, Wo, W]
    fig, axes = plt.subplots(C, 5, figsize=(cell_size * sum(widths) + 4.5, C * (cell_size * H + 1.3)),
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

from .explorable import Explorable, action, cell_id, control, link, panel, window  # noqa: E402


def routing_state(x: np.ndarray, k: int, s: int, dout: np.ndarray) -> dict:
    """Everything the routing picture shows for input ``x`` (H, W), window ``k``, stride ``s`` and
    upstream gradient ``dout``: the pooled output, the winners, the routed gradient, and for every
    cell what it is linked to.  All numbers come from ``mlp_cnn_core``."""
    H, W = x.shape
    y, cache = core.maxpool2d_forward(x, k, s)
    dx = core.maxpool2d_backward(dout, cache)
    won = core.maxpool2d_mask(cache)
    rows, cols = cache.rows, cache.cols
    Ho, Wo = y.shape
    fmt = format_value
    win_cls = np.where(won > 0, "win", "")
    lim = float(np.max(np.abs(dx))) or 1.0
    panels = [
        panel("x", f"input x ({H}×{W})", x, classes=win_cls),
        panel("y", f"output y = maxpool(x) ({Ho}×{Wo})", y),
        panel("dy", "upstream dL/dy", dout, scale="div", limit=lim),
        panel("dx", "dL/dx (routed)", dx, scale="div", limit=lim, classes=win_cls),
    ]
    links = {}
    for i in range(Ho):
        for j in range(Wo):
            r, c = int(rows[i, j]), int(cols[i, j])
            box = window("x", i * s, j * s, min(k, H - i * s), min(k, W - j * s))
            text = (f"y[{i},{j}] = {fmt(y[i, j])}, the maximum of its window, won by x[{r},{c}]: "
                    f"its gradient dL/dy[{i},{j}] = {fmt(dout[i, j])} goes to dL/dx[{r},{c}] and nowhere else.")
            lk = link([cell_id("x", r, c), cell_id("dx", r, c), cell_id("y", i, j), cell_id("dy", i, j)], [box], text)
            links[cell_id("y", i, j)] = links[cell_id("dy", i, j)] = lk
    for r in range(H):
        for c in range(W):
            wins = [(i, j) for i in range(Ho) for j in range(Wo) if rows[i, j] == r and cols[i, j] == c]
            inside = [(i, j) for i in range(Ho) for j in range(Wo)
                      if i * s <= r < i * s + k and j * s <= c < j * s + k]
            if not inside:
                text = f"x[{r},{c}] lies in no window (the stride skips it): dL/dx[{r},{c}] = 0."
            elif not wins:
                text = (f"x[{r},{c}] = {fmt(x[r, c])} is in {len(inside)} window(s) but wins none: "
                        f"dL/dx[{r},{c}] = 0.")
            else:
                terms = " + ".join(fmt(dout[i, j]) for i, j in wins)
                text = (f"x[{r},{c}] = {fmt(x[r, c])} wins {len(wins)} of the {len(inside)} window(s) it is in: "
                        f"dL/dx[{r},{c}] = {terms} = {fmt(dx[r, c])}.")
            cells = [cell_id("x", r, c), cell_id("dx", r, c)]
            cells += [cell_id(p, i, j) for i, j in wins for p in ("y", "dy")]
            boxes = [window("x", i * s, j * s, min(k, H - i * s), min(k, W - j * s)) for i, j in inside]
            links[cell_id("x", r, c)] = links[cell_id("dx", r, c)] = link(cells, boxes, text)
    caption = (f"Sum of dL/dx = {fmt(dx.sum())} = sum of dL/dy = {fmt(dout.sum())}: "
               "each window passes its gradient to exactly one cell (the first maximum).")
    return {"panels": panels, "links": links, "caption": caption, "focus": cell_id("y", 0, 0)}


class MaxPoolRouting(Explorable):
    """Chapter 2: where each output cell's gradient goes in max pooling.

    Controls: input size, window k, stride s, the upstream gradient (all ones or random small
    integers).  Actions (kernel): new random values, or a typed input matrix."""

    TITLE = "Max pooling backward: follow each gradient"

    def __init__(self, seed: int = 12, x=None, **kw):
        super().__init__(seed=int(seed), x=None if x is None else np.asarray(x, dtype=float).tolist(), **kw)

    def _x(self, size: int) -> np.ndarray:
        if self.config.get("x") is not None:
            return np.asarray(self.config["x"], dtype=float)
        return random_input(size, self.config["seed"])

    def make_controls(self):
        typed = self.config.get("x")
        sizes = [len(typed)] if typed is not None else list(range(2, 9))
        return [
            control("size", "input size", sizes, default=sizes[min(3, len(sizes) - 1)],
                    labels=[f"{n}×{n}" for n in sizes]),
            control("k", "window k", [1, 2, 3, 4], default=3),
            control("s", "stride s", [1, 2, 3, 4], default=2),
            control("upstream", "upstream dL/dy", ["ones", "random"], default="random", kind="select",
                    labels=["all ones", "random integers"]),
        ]

    def make_actions(self):
        return [action("new", "new random values"),
                action("matrix", "use this input", kind="text", placeholder="e.g. 1 2 3; 4 5 6; 7 8 9")]

    def act(self, name, value):
        if name == "new":
            self.config = {**self.config, "seed": int(self.config["seed"]) + 1, "x": None}
        elif name == "matrix":
            x = parse_matrix(str(value or ""))
            if x.shape[0] != x.shape[1] or not 2 <= x.shape[0] <= 8:
                raise ValueError(f"the input must be square, 2×2 to 8×8; got {x.shape[0]}×{x.shape[1]}")
            self.config = {**self.config, "x": x.tolist()}
            self.values = {**self.values, "size": x.shape[0]}
        else:
            super().act(name, value)

    def state(self, size, k, s, upstream):
        x = self._x(size)
        if k > size:
            return {"message": f"The window ({k}×{k}) is larger than the input ({size}×{size}): "
                               "there is no output. Make the window smaller or the input larger."}
        Ho = Wo = (size - k) // s + 1
        dout = np.ones((Ho, Wo)) if upstream == "ones" else random_upstream((Ho, Wo), self.config["seed"])
        return routing_state(x, k, s, dout)
