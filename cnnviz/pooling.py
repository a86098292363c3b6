"""Chapter 09 (mean pooling vs max pooling): where does the gradient go under each?

``PoolingCompare`` is the chapter's widget: on one input it runs max pooling and mean
(average) pooling with the same window, stride and padding, sends the same upstream gradient
dL/dY back through both, and shows the two input gradients side by side -- sparse (one winner
per window) against dense (every cell of every window).  The summary counts the input cells
that receive a non-zero gradient under each, and the gradient mass (sum dX against sum dY).

:func:`compare_figure` draws the same picture for any input (the chapter's static figures).
All the numbers come from :mod:`mlp_cnn_core` (``maxpool2d_*`` and ``avgpool2d_*``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np
from matplotlib import pyplot as plt
from matplotlib.patches import Rectangle

import mlp_cnn_core as core

from .draw import draw_matrix, format_value, show_figure

__all__ = ["input_values", "upstream_values", "PoolingState", "pooling_state", "compare_figure",
           "PoolingCompare", "KINDS"]

KINDS = {"both": ("max", "mean"), "max": ("max",), "mean": ("mean",)}
PAD_GREY = "0.88"


def input_values(size: int, seed: int) -> np.ndarray:
    """The widget's input: the numbers ``1 .. size*size`` shuffled with ``seed`` (``(size, size)``).

    All different, so every max-pool window has exactly one maximum (ties are chapter 03's topic).
    """
    rng = np.random.default_rng(seed)
    return (rng.permutation(size * size) + 1).reshape(size, size).astype(np.float64)


def upstream_values(shape, kind: str = "ones", seed: int = 0) -> np.ndarray:
    """The upstream gradient dL/dY: all ones, or random integers 1..4 (seeded).

    Positive on purpose: two contributions can never cancel, so "non-zero" means "reached".
    """
    if kind == "ones":
        return np.ones(shape)
    if kind != "random":
        raise ValueError(f"kind must be 'ones' or 'random', got {kind!r}")
    rng = np.random.default_rng(10_000 + seed)
    return rng.integers(1, 5, size=shape).astype(np.float64)


@dataclass
class PoolingState:
    """Everything the widget shows for one setting of the controls.

    ``x`` ``(H, W)``; ``dy`` ``(Ho, Wo)``; ``out_max``, ``out_mean`` ``(Ho, Wo)``; ``dx_max``,
    ``dx_mean`` ``(H, W)``; ``wins`` ``(H, W)`` ints: how many windows each cell won (max
    pooling); ``frac_max``, ``frac_mean``: the fraction of input cells with a non-zero gradient;
    ``mass_max``, ``mass_mean``, ``mass_dy``: ``dx_max.sum()``, ``dx_mean.sum()``, ``dy.sum()``.
    """
    window: int
    stride: int
    padding: int
    x: np.ndarray
    dy: np.ndarray
    out_max: np.ndarray
    out_mean: np.ndarray
    dx_max: np.ndarray
    dx_mean: np.ndarray
    wins: np.ndarray

    @property
    def frac_max(self) -> float:
        return float(np.count_nonzero(self.dx_max)) / self.x.size

    @property
    def frac_mean(self) -> float:
        return float(np.count_nonzero(self.dx_mean)) / self.x.size

    @property
    def mass_max(self) -> float:
        return float(self.dx_max.sum())

    @property
    def mass_mean(self) -> float:
        return float(self.dx_mean.sum())

    @property
    def mass_dy(self) -> float:
        return float(self.dy.sum())


def pooling_state(x: np.ndarray, window: int, stride: int, padding: int, dy=None,
                  upstream: str = "ones", seed: int = 0) -> PoolingState:
    """Max and mean pooling of ``x`` ``(H, W)`` forward and backward with the same geometry.

    ``dy`` defaults to :func:`upstream_values` of the output's shape.  Raises ``ValueError``
    (from the core) for an impossible geometry.
    """
    x = np.asarray(x, dtype=np.float64)
    out_max, cmax = core.maxpool2d_forward(x, window, stride, padding)
    out_mean, cmean = core.avgpool2d_forward(x, window, stride, padding)
    if dy is None:
        dy = upstream_values(out_max.shape, upstream, seed)
    dy = np.asarray(dy, dtype=np.float64)
    return PoolingState(window, stride, padding, x, dy, out_max, out_mean,
                        core.maxpool2d_backward(dy, cmax), core.avgpool2d_backward(dy, cmean),
                        core.maxpool2d_mask(cmax))


def _draw_padding(ax, H: int, W: int, p: int) -> None:
    """Grey ring of padded cells around an ``(H, W)`` matrix already drawn on ``ax``."""
    if not p:
        return
    for r in range(-p, H + p):
        for c in range(-p, W + p):
            if 0 <= r < H and 0 <= c < W:
                continue
            ax.add_patch(Rectangle((c - 0.5, r - 0.5), 1, 1, facecolor=PAD_GREY, edgecolor="0.7",
                                   linewidth=0.5, zorder=1))
            ax.text(c, r, "pad", ha="center", va="center", fontsize=6, color="0.45", zorder=2)
    ax.set_xlim(-p - 0.5, W + p - 0.5)
    ax.set_ylim(H + p - 0.5, -p - 0.5)


def compare_figure(state: PoolingState, kinds: Sequence[str] = ("max", "mean"),
                   title: Optional[str] = None, cell_size: float = 0.5):
    """Input (max-pool winners outlined in red), dL/dY, then the max-pool and/or mean-pool dX.

    The dX panels share one colour scale (white = 0), so their densities compare at a glance;
    cells with a non-zero gradient are outlined in red.
    """
    kinds = tuple(kinds)
    s = state
    H, W = s.x.shape
    p = s.padding
    Ho, Wo = s.dy.shape
    widths = [W + 2 * p, Wo] + [W] * len(kinds)
    fig, axes = plt.subplots(1, len(widths), squeeze=False,
                             figsize=(cell_size * sum(widths) + 1.3 * len(widths),
                                      cell_size * (H + 2 * p) + 1.5),
                             gridspec_kw={"width_ratios": widths})
    axes = axes[0]
    draw_matrix(axes[0], s.x, title=f"input x ({H}×{W})", cmap="Greys", vmin=0,
                vmax=2 * float(s.x.max()) or 1.0,
                highlight=(s.wins > 0) if "max" in kinds else None)
    _draw_padding(axes[0], H, W, p)
    draw_matrix(axes[1], s.dy, title=f"dL/dY ({Ho}×{Wo})", cmap="Greys", vmin=0,
                vmax=2 * float(np.abs(s.dy).max()) or 1.0)
    vmax = max(float(np.abs(s.dx_max).max()), float(np.abs(s.dx_mean).max())) or 1.0
    for ax, kind in zip(axes[2:], kinds):
        dx = s.dx_max if kind == "max" else s.dx_mean
        frac = s.frac_max if kind == "max" else s.frac_mean
        draw_matrix(ax, dx, title=f"{kind} pool dX: {np.count_nonzero(dx)}/{dx.size} cells "
                                  f"({100 * frac:.0f} %)",
                    cmap="Reds", vmin=0, vmax=vmax, highlight=dx != 0)
    fig.suptitle(title or (f"window {s.window}×{s.window}, stride {s.stride}, padding {p}: "
                           f"Σ dY = {format_value(s.mass_dy)}"), fontsize=10)
    fig.tight_layout()
    return fig


class PoolingCompare:
    """Max-pool dX and mean-pool dX side by side, for the same input and upstream gradient.

    Controls (attributes): ``kinds`` ("both", "max" or "mean"), ``window`` (1-4), ``stride``
    (1-3), ``padding`` (0 .. window // 2, its slider range follows the window), ``size``
    (input H = W, 4-8), ``seed`` (the shuffled input, and the random upstream gradient) and
    ``upstream`` ("ones" or "random").

    State recomputed on every change: ``state`` (a :class:`PoolingState`; its arrays ``x``,
    ``dy``, ``dx_max``, ``dx_mean``, ``wins`` and its fractions and masses), ``shown`` (the
    pooling types drawn), ``message`` (empty unless the geometry is impossible; then ``state``
    is None).
    """

    def __init__(self, kinds: str = "both", window: int = 2, stride: int = 2, padding: int = 0,
                 size: int = 6, seed: int = 0, upstream: str = "ones", draw: bool = True):
        import ipywidgets as widgets
        self.draw = draw  # False: recompute the state and the summary only (fast test sweeps)
        style = {"description_width": "initial"}
        self.kinds = widgets.ToggleButtons(options=[("max and mean", "both"), ("max", "max"),
                                                    ("mean", "mean")], value=kinds,
                                           description="pooling", style=style)
        self.window = widgets.IntSlider(value=window, min=1, max=4, description="window k", style=style)
        self.stride = widgets.IntSlider(value=stride, min=1, max=3, description="stride s", style=style)
        self.padding = widgets.IntSlider(value=min(padding, window // 2), min=0, max=window // 2,
                                         description="padding p", style=style)
        self.size = widgets.IntSlider(value=size, min=4, max=8, description="input size H=W", style=style)
        self.seed = widgets.IntSlider(value=seed, min=0, max=20, description="seed", style=style)
        self.upstream = widgets.ToggleButtons(options=["ones", "random"], value=upstream,
                                              description="dL/dY", style=style)
        self.summary = widgets.HTML()
        self.out = widgets.Output()
        self._busy = False
        for c in (self.kinds, self.window, self.stride, self.padding, self.size, self.seed, self.upstream):
            c.observe(self._on_change, names="value")
        controls = widgets.HBox([
            widgets.VBox([self.kinds, self.upstream, self.seed]),
            widgets.VBox([self.window, self.stride, self.padding, self.size]),
        ])
        self.widget = widgets.VBox([controls, self.out, self.summary])
        self.update()

    # -- state -------------------------------------------------------------------------------
    def _on_change(self, change) -> None:
        if self._busy:
            return
        self._busy = True
        try:  # PyTorch's rule: padding at most half the window
            pmax = self.window.value // 2
            if self.padding.value > pmax:
                self.padding.value = pmax
            self.padding.max = pmax
        finally:
            self._busy = False
        self.update()

    def _compute(self) -> None:
        n, k, s = self.size.value, self.window.value, self.stride.value
        p = min(self.padding.value, k // 2)
        self.shown = KINDS[self.kinds.value]
        x = input_values(n, self.seed.value)
        try:
            self.state: Optional[PoolingState] = pooling_state(x, k, s, p, upstream=self.upstream.value,
                                                               seed=self.seed.value)
            self.message = ""
        except ValueError as exc:  # cannot happen with the slider ranges, kept as a safety net
            self.state = None
            self.message = str(exc)

    def _summary_html(self) -> str:
        if self.state is None:
            return f"<p><b>No output.</b> {self.message}</p>"
        s = self.state
        n, k, st, p = s.x.shape[0], s.window, s.stride, s.padding
        Ho = s.dy.shape[0]
        parts = [f"<p>Input {n}×{n}, window {k}×{k}, stride {st}, padding {p} → output {Ho}×{Ho}; "
                 f"upstream dL/dY = {self.upstream.value}, Σ dY = {format_value(s.mass_dy)}.</p>"]
        if "max" in self.shown:
            parts.append(f"<p><b>max pool</b>: {np.count_nonzero(s.dx_max)} of {s.x.size} input cells "
                         f"({100 * s.frac_max:.1f} %) receive a non-zero gradient; "
                         f"gradient mass Σ dX = {format_value(s.mass_max)}.</p>")
        if "mean" in self.shown:
            parts.append(f"<p><b>mean pool</b>: {np.count_nonzero(s.dx_mean)} of {s.x.size} input cells "
                         f"({100 * s.frac_mean:.1f} %) receive a non-zero gradient; "
                         f"gradient mass Σ dX = {format_value(s.mass_mean)}.</p>")
        notes = []
        if st < k:
            notes.append("windows overlap (stride < window): a cell shared by several windows adds up "
                         "their gradients")
        if st > k:
            notes.append("stride > window: some cells lie in no window and get no gradient under "
                         "either pooling")
        if p and "mean" in self.shown:
            notes.append(f"padding: mean pooling divides by k·k = {k * k} even at the border "
                         f"(count_include_pad), so the share sent to padded cells is lost and "
                         f"Σ dX < Σ dY")
        if notes:
            parts.append("<p><i>" + "; ".join(notes) + ".</i></p>")
        return "".join(parts)

    def update(self) -> None:
        """Recompute the state, the summary and the figure from the controls."""
        self._compute()
        self.summary.value = self._summary_html()
        if self.draw:
            show_figure(self.out, self.figure())

    def figure(self):
        """A new matplotlib Figure of the current state (used for the static page)."""
        if self.state is None:
            fig, ax = plt.subplots(figsize=(6, 1.2))
            ax.axis("off")
            ax.text(0.5, 0.5, self.message, ha="center", va="center", wrap=True)
            return fig
        return compare_figure(self.state, self.shown)
