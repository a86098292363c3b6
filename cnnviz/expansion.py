"""Chapter 03 (gradient expansion): the ties/overlap explorer widget and the chapter's figures.

The source article's "expansion" repeats every cell of the upstream gradient ``dY`` over its
pooling window and multiplies the result by the 0/1 mask of the maxima.  That is exact for
non-overlapping windows without ties, and wrong otherwise.  ``ExpansionExplorer`` lets a reader
create ties (small value ranges) and overlaps (stride < window) and compare the three tie
policies of :func:`mlp_cnn_core.maxpool2d_forward` (``"first"``, ``"all"``, ``"split"``) by
their gradient mass ``sum(dX)`` against ``sum(dY)``.

All the gradients come from :mod:`mlp_cnn_core`; this module only arranges and draws them.
"""
from __future__ import annotations

import html
import textwrap
from typing import Dict, Optional

import numpy as np
from matplotlib import pyplot as plt

import mlp_cnn_core as core

from .draw import ACCENT, HIGHLIGHT, WINDOW, draw_matrix, outline_cells, outline_window, show_figure

__all__ = ["POLICIES", "POLICY_LABELS", "window_max_counts", "winner_cells", "naive_expansion",
           "naive_defined", "policy_gradients", "explorer_values", "explorer_upstream",
           "ExpansionExplorer", "expansion_figure", "overlap_figure", "ties_figure"]

POLICIES = core.TIES_POLICIES  # ("first", "all", "split")
POLICY_LABELS = {"first": "first (PyTorch)", "all": "all (naive mask)", "split": "split",
                 "naive": "naive expansion"}


# ---------------------------------------------------------------------------
# Small helpers (bookkeeping for the figures; the gradients come from the core)
# ---------------------------------------------------------------------------

def _windows(x: np.ndarray, k: int, s: int) -> np.ndarray:
    """``(Ho, Wo, k, k)`` view of the pooling windows of a 2-D ``x`` (no padding)."""
    return np.lib.stride_tricks.sliding_window_view(x, (k, k))[::s, ::s]


def window_max_counts(x, k: int, s: int) -> np.ndarray:
    """How many cells of each window equal that window's maximum: an int array ``(Ho, Wo)``.

    A count above 1 is a tie.
    """
    x = np.asarray(x, dtype=float)
    out, _ = core.maxpool2d_forward(x, k, s)
    return (_windows(x, k, s) == out[:, :, None, None]).sum(axis=(2, 3))


def winner_cells(x, k: int, s: int):
    """``(unique, tied)``: bool masks of ``x``'s shape.

    ``tied`` marks the cells that are one of several equal maxima of at least one window;
    ``unique`` marks the other cells that win some window.
    """
    x = np.asarray(x, dtype=float)
    out, cache_all = core.maxpool2d_forward(x, k, s, ties="all")
    wins = core.maxpool2d_mask(cache_all) > 0
    counts = window_max_counts(x, k, s)
    tied = np.zeros(x.shape, dtype=bool)
    wv = _windows(x, k, s)
    for i, j in zip(*np.nonzero(counts > 1)):
        r, c = np.nonzero(wv[i, j] == out[i, j])
        tied[i * s + r, j * s + c] = True
    return wins & ~tied, tied


def naive_defined(size: int, k: int, s: int) -> bool:
    """The expansion has the input's shape only when the windows tile it exactly."""
    return s == k and size % k == 0


def naive_expansion(x, dout, k: int):
    """The article's recipe: ``expand(dY) * (x == expand(Y))`` (the naive mask of the maxima).

    Returns ``(expanded, mask, dx)``; raises ``ValueError`` when the expansion does not have
    ``x``'s shape (overlapping windows, or a size not divisible by ``k``).
    """
    x = np.asarray(x, dtype=float)
    out, _ = core.maxpool2d_forward(x, k, k)
    expanded = core.expand_gradient(dout, k)
    if expanded.shape != x.shape:
        raise ValueError(f"expand(dY) has shape {expanded.shape} but x has shape {x.shape}")
    mask = (x == core.expand_gradient(out, k)).astype(int)
    return expanded, mask, expanded * mask


def policy_gradients(x, dout, k: int, s: int) -> Dict[str, np.ndarray]:
    """``{"first": dX, "all": dX, "split": dX}`` from :func:`mlp_cnn_core.maxpool2d_backward`."""
    grads = {}
    for p in POLICIES:
        _, cache = core.maxpool2d_forward(x, k, s, ties=p)
        grads[p] = core.maxpool2d_backward(dout, cache)
    return grads


def explorer_values(size: int, vmax: int, seed: int) -> np.ndarray:
    """The widget's input: integers drawn uniformly from {0, ..., vmax} (exact, so ties are real)."""
    rng = np.random.default_rng(seed)
    return rng.integers(0, vmax + 1, size=(size, size)).astype(float)


def explorer_upstream(shape, kind: str, seed: int) -> np.ndarray:
    """The widget's upstream gradient dY: all ones, or integers from {1, 2, 3}."""
    if kind == "ones":
        return np.ones(shape)
    rng = np.random.default_rng(10_000 + seed)
    return rng.integers(1, 4, size=shape).astype(float)


def _fmt(v: float) -> str:
    v = float(v)
    if v == int(v):
        return str(int(v))
    return f"{v:.4g}"


def _compare(a: float, b: float) -> str:
    """'= sum(dY)', '> sum(dY)' or '< sum(dY)' (equal up to rounding: split divides by 3)."""
    if np.isclose(a, b, rtol=1e-12, atol=1e-12):
        return "= sum(dY)"
    return "> sum(dY)" if a > b else "< sum(dY)"


def _draw_windows(ax, Ho: int, Wo: int, k: int, s: int) -> None:
    """Outline the pooling windows: all of them when they do not overlap, otherwise the first
    two of the top row (solid, dashed) to show the overlap."""
    if s >= k:
        for i in range(Ho):
            for j in range(Wo):
                outline_window(ax, i * s, j * s, k, k, color=WINDOW, linewidth=1.2, inset=0.06)
    else:
        outline_window(ax, 0, 0, k, k, color=WINDOW, linewidth=1.6, inset=0.06)
        if Wo > 1:
            outline_window(ax, 0, s, k, k, color=WINDOW, linewidth=1.6, linestyle="--", inset=0.14)


def _draw_grad(ax, m, title: str, lim: float) -> None:
    """A gradient panel on a red/blue scale shared by its neighbours (``[-lim, lim]``), with
    white text only on strongly coloured cells."""
    m = np.asarray(m, dtype=float)
    draw_matrix(ax, m, title=title, cmap="RdBu_r", vmin=-lim, vmax=lim)
    for t, v in zip(ax.texts, m.ravel()):
        t.set_color("white" if abs(v) > 0.6 * lim else "black")


def _text_panel(ax, text: str, width: int = 30) -> None:
    ax.axis("off")
    ax.text(0.5, 0.5, textwrap.fill(text, width), ha="center", va="center", fontsize=9,
            transform=ax.transAxes)


def _row_figure(widths, height, cell_size=0.5, extra_height=1.3):
    widths = [max(int(w), 1) for w in widths]
    fig, axes = plt.subplots(1, len(widths), squeeze=False,
                             figsize=(cell_size * sum(widths) + 1.0 * len(widths), cell_size * height + extra_height),
                             gridspec_kw={"width_ratios": widths})
    return fig, list(axes[0])


# ---------------------------------------------------------------------------
# The widget
# ---------------------------------------------------------------------------

class ExpansionExplorer:
    """Create ties and overlaps in a max-pooling layer and compare the gradient policies.

    Controls (attributes): ``size`` (4-8), ``window`` (2-3), ``stride`` (1-3), ``vmax`` (values
    are drawn from {0..vmax}: a small vmax makes many ties), ``seed`` and the ``new_values``
    button, ``upstream`` ("ones" or "random" integers 1-3), ``policy`` ("first", "all", "split"
    or "naive" -- the expansion trick, defined only when the windows tile the input) and
    ``show_all`` (draw the three policies side by side).

    State recomputed on every change: ``x``, ``y`` (the pooled output), ``dout``, ``grads`` (dict policy -> dX),
    ``dx`` (the chosen policy's dX, or ``None`` when the naive expansion is undefined),
    ``mass`` (dict policy -> sum(dX), plus ``"dY"``), ``counts`` (maxima per window),
    ``unique``/``tied`` (bool masks of the winners), ``overlap``, ``naive_ok``, ``message``.
    """

    def __init__(self, size: int = 4, window: int = 2, stride: int = 2, vmax: int = 3, seed: int = 3,
                 upstream: str = "random", policy: str = "first", show_all: bool = True, render: bool = True):
        import ipywidgets as widgets

        style = {"description_width": "initial"}
        self.size = widgets.IntSlider(value=size, min=4, max=8, description="input size", style=style)
        self.window = widgets.IntSlider(value=window, min=2, max=3, description="window k", style=style)
        self.stride = widgets.IntSlider(value=stride, min=1, max=3, description="stride s", style=style)
        self.vmax = widgets.IntSlider(value=vmax, min=1, max=20,
                                      description="values 0..v_max (small = many ties)", style=style)
        self.seed = widgets.BoundedIntText(value=seed, min=0, max=99_999, description="seed", style=style,
                                           layout=widgets.Layout(width="150px"))
        self.new_values = widgets.Button(description="new values", icon="refresh")
        self.upstream = widgets.ToggleButtons(options=[("dY = ones", "ones"), ("dY random 1-3", "random")],
                                              value=upstream, description="upstream", style=style)
        self.policy = widgets.ToggleButtons(options=[(POLICY_LABELS[p], p) for p in POLICIES + ("naive",)],
                                            value=policy, description="ties policy", style=style)
        self.show_all = widgets.Checkbox(value=show_all, description="show all three policies")
        self.summary = widgets.HTML()
        self.out = widgets.Output()
        self.render = render  # tests switch the drawing off while sweeping the controls
        for c in (self.size, self.window, self.stride, self.vmax, self.seed, self.upstream, self.policy,
                  self.show_all):
            c.observe(self._on_change, names="value")
        self.new_values.on_click(self._on_new_values)
        controls = widgets.VBox([
            widgets.HBox([widgets.VBox([self.size, self.window, self.stride]),
                          widgets.VBox([self.vmax, widgets.HBox([self.seed, self.new_values]), self.show_all])]),
            self.upstream, self.policy])
        self.widget = widgets.VBox([controls, self.out, self.summary])
        self.update()

    # -- events -------------------------------------------------------------
    def _on_change(self, change) -> None:
        self.update()

    def _on_new_values(self, button=None) -> None:
        self.seed.value = (self.seed.value + 1) % (self.seed.max + 1)

    # -- state --------------------------------------------------------------
    def _compute(self) -> None:
        n, k, s = self.size.value, self.window.value, self.stride.value
        self.k, self.s = k, s
        self.x = explorer_values(n, self.vmax.value, self.seed.value)
        self.y, _ = core.maxpool2d_forward(self.x, k, s)
        self.dout = explorer_upstream(self.y.shape, self.upstream.value, self.seed.value)
        self.grads = policy_gradients(self.x, self.dout, k, s)
        self.mass = {p: float(self.grads[p].sum()) for p in POLICIES}
        self.mass["dY"] = float(self.dout.sum())
        self.counts = window_max_counts(self.x, k, s)
        self.unique, self.tied = winner_cells(self.x, k, s)
        _, cache = core.maxpool2d_forward(self.x, k, s)
        self.wins = core.maxpool2d_mask(cache)  # windows won per cell under "first"
        self.overlap = s < k
        self.naive_ok = naive_defined(n, k, s)
        self.message = ""
        self.naive = None
        if self.naive_ok:
            self.naive = naive_expansion(self.x, self.dout, k)
            self.mass["naive"] = float(self.naive[2].sum())
        else:
            Ho, Wo = self.y.shape
            if s != k:
                why = f"the windows {'overlap' if s < k else 'skip cells'} (stride {s} ≠ window {k})"
            else:
                why = f"the size {n} is not divisible by the window {k}"
            self.message = (f"The naive expansion is undefined here: {why}, so expand(dY) has shape "
                            f"{Ho * k}×{Wo * k} but the input is {n}×{n}.")
        p = self.policy.value
        if p == "naive":
            self.dx = self.naive[2] if self.naive_ok else None
        else:
            self.dx = self.grads[p]

    def _summary_html(self) -> str:
        n, k, s = self.size.value, self.k, self.s
        Ho, Wo = self.y.shape
        ntied = int((self.counts > 1).sum())
        kind = "overlap" if s < k else ("tile the input" if (s == k and n % k == 0) else
                                         ("skip cells" if s > k else "leave the last row/column out"))
        lines = [f"<b>input</b> {n}×{n}, window {k}×{k}, stride {s} → output {Ho}×{Wo} "
                 f"(the windows {kind}).",
                 f"<b>ties</b>: {ntied} of {Ho * Wo} windows have a tied maximum"
                 + (f" (largest tie: {int(self.counts.max())}-way)" if ntied else "") + "; "
                 f"<b>overlap</b>: {int((self.wins > 1).sum())} cells win more than one window."]
        rows = "".join(
            f"<tr><td>{html.escape(POLICY_LABELS[p])}</td><td>{_fmt(self.mass[p])}</td>"
            f"<td>{html.escape(_compare(self.mass[p], self.mass['dY']))}</td></tr>"
            for p in POLICIES + (("naive",) if self.naive_ok else ()))
        table = ("<table><tr><th>policy</th><th>sum(dX)</th><th>vs sum(dY) = "
                 f"{_fmt(self.mass['dY'])}</th></tr>{rows}</table>")
        msg = f"<p style='color:#b35900'>{html.escape(self.message)}</p>" if self.message else ""
        if self.policy.value == "naive" and not self.naive_ok:
            msg += "<p>Pick first, all or split: only the core's policies are defined for this geometry.</p>"
        return "<p>" + "<br>".join(lines) + "</p>" + table + msg

    def update(self) -> None:
        self._compute()
        self.summary.value = self._summary_html()
        if not self.render:
            return
        show_figure(self.out, self.figure())

    def show(self):
        """Switch the drawing on, draw the current state and return the widget to display."""
        self.render = True
        self.update()
        return self.widget

    # -- drawing ------------------------------------------------------------
    def panels(self):
        """The list of ``(kind, matrix_or_text, title)`` the figure draws, left to right."""
        items = [("x", self.x, f"input x {self.x.shape[0]}×{self.x.shape[1]}\n(red: max, orange: tied max)"),
                 ("dY", self.dout, f"dY {self.dout.shape[0]}×{self.dout.shape[1]}\nsum = {_fmt(self.mass['dY'])}")]
        if self.policy.value == "naive":
            if self.naive_ok:
                expanded, mask, dx = self.naive
                items += [("expand", expanded, f"expand(dY) {expanded.shape[0]}×{expanded.shape[1]}"),
                          ("mask", mask, "mask x == max"),
                          ("dX", dx, f"dX naive\nsum = {_fmt(self.mass['naive'])}")]
            else:
                items.append(("text", self.message, "naive expansion"))
            return items
        shown = POLICIES if self.show_all.value else (self.policy.value,)
        for p in shown:
            items.append(("dX", self.grads[p], f"dX {p}\nsum = {_fmt(self.mass[p])}"))
        return items

    def figure(self, cell_size: float = 0.5):
        """A new matplotlib Figure of the current state."""
        items = self.panels()
        n = self.x.shape[0]
        widths = [n if kind == "text" else np.asarray(m).shape[1] for kind, m, _ in items]
        fig, axes = _row_figure(widths, n, cell_size)
        Ho, Wo = self.y.shape
        lim = max([float(np.max(np.abs(m))) for kind, m, _ in items if kind == "dX"] + [1.0])
        for ax, (kind, m, title) in zip(axes, items):
            if kind == "text":
                _text_panel(ax, m)
                ax.set_title(title, fontsize=9)
                continue
            if kind == "dX":  # one colour scale for every dX panel, so they compare at a glance
                _draw_grad(ax, m, title, lim)
            else:
                draw_matrix(ax, m, title=title, cmap="Greys" if kind == "mask" else "Blues", vmin=0,
                            vmax=max(float(np.max(m)), 1.0) * (1.0 if kind == "mask" else 1.8))
            ax.title.set_fontsize(9)
            if kind == "x":
                _draw_windows(ax, Ho, Wo, self.k, self.s)
                outline_cells(ax, self.unique, color=HIGHLIGHT)
                outline_cells(ax, self.tied, color=ACCENT)
            elif kind == "dY":
                outline_cells(ax, self.counts > 1, color=ACCENT)
        geo = "overlapping windows" if self.overlap else ("windows skip cells" if self.s > self.k else "windows tile")
        fig.suptitle(f"max pool {self.k}×{self.k}, stride {self.s} ({geo})", fontsize=10)
        fig.tight_layout(rect=(0, 0, 1, 0.93))
        return fig


# ---------------------------------------------------------------------------
# Static figures of the chapter
# ---------------------------------------------------------------------------

def expansion_figure(x, dout, k: int = 2, cell_size: float = 0.55):
    """x with its windows → dY → expand(dY) → mask M → dX = expand(dY) ⊙ M (non-overlapping)."""
    x = np.asarray(x, dtype=float)
    out, cache = core.maxpool2d_forward(x, k)
    expanded = core.expand_gradient(dout, k)
    mask = core.maxpool2d_mask(cache)
    dx = expanded * mask
    mats = [(x, f"x {x.shape[0]}×{x.shape[1]}"), (np.asarray(dout, float), f"dY {np.shape(dout)[0]}×{np.shape(dout)[1]}"),
            (expanded, f"expand(dY) {expanded.shape[0]}×{expanded.shape[1]}"),
            (mask, f"mask M {mask.shape[0]}×{mask.shape[1]}"), (dx, "dX = expand(dY) ⊙ M")]
    fig, axes = _row_figure([m.shape[1] for m, _ in mats], x.shape[0], cell_size, 1.2)
    Ho, Wo = out.shape
    for idx, (ax, (m, t)) in enumerate(zip(axes, mats)):
        if idx == 4:
            _draw_grad(ax, m, t, float(np.max(np.abs(m))) or 1.0)
        else:
            draw_matrix(ax, m, title=t, cmap="Greys" if idx == 3 else "Blues",
                        vmax=float(np.max(m)) * 1.8 if idx in (0, 1, 2) else None)
        if idx != 1:
            _draw_windows(ax, Ho, Wo, k, k)
        if idx in (0, 3, 4):
            outline_cells(ax, mask > 0, color=HIGHLIGHT)
    fig.tight_layout()
    # operators between the panels, placed after the layout is fixed
    for a, b, sym in ((axes[1], axes[2], "→"), (axes[2], axes[3], "⊙"), (axes[3], axes[4], "=")):
        pa, pb = a.get_position(), b.get_position()
        fig.text((pa.x1 + pb.x0) / 2, (pa.y0 + pa.y1) / 2, sym, ha="center", va="center", fontsize=16)
    return fig


def overlap_figure(x, dout, k: int, s: int, cell_size: float = 0.55):
    """Overlapping windows: x (winners), how many windows each cell wins, dY, the correct dX
    (sum over windows) and the dX of the ``dx[rows, cols] = dout`` bug, differences circled."""
    x = np.asarray(x, dtype=float)
    dout = np.asarray(dout, dtype=float)
    out, cache = core.maxpool2d_forward(x, k, s)
    counts = core.maxpool2d_mask(cache)
    dx = core.maxpool2d_backward(dout, cache)
    bug = np.zeros_like(x)
    bug[cache.rows, cache.cols] = dout  # the "=" bug: a cell keeps only one window's gradient
    wrong = ~np.isclose(bug, dx)
    mats = [(x, f"x {x.shape[0]}×{x.shape[1]}, windows {k}×{k}, stride {s}", "Blues", False),
            (counts, "windows won per cell", "Greys", False),
            (dout, f"dY {dout.shape[0]}×{dout.shape[1]}", "Blues", False),
            (dx, f"dX correct (+=)\nsum = {_fmt(dx.sum())}", None, True),
            (bug, f"dX with '=' bug\nsum = {_fmt(bug.sum())}", None, True)]
    fig, axes = _row_figure([m.shape[1] for m, *_ in mats], x.shape[0], cell_size, 1.3)
    Ho, Wo = out.shape
    lim = float(np.max(np.abs(dx))) or 1.0
    for idx, (ax, (m, t, cmap, div)) in enumerate(zip(axes, mats)):
        if div:
            _draw_grad(ax, m, t, lim)
        else:
            draw_matrix(ax, m, title=t, cmap=cmap, vmax=float(np.max(m)) * 1.8 if idx != 1 else None, vmin=0)
        ax.title.set_fontsize(9)
        if idx == 0:
            _draw_windows(ax, Ho, Wo, k, s)
            outline_cells(ax, counts > 0, color=HIGHLIGHT)
        if idx in (1, 3, 4):
            outline_cells(ax, counts > 1, color=ACCENT)
        if idx == 4:
            outline_cells(ax, wrong, color="black", linewidth=3.5)
    fig.tight_layout()
    return fig


def ties_figure(x, dout, k: int = 2, s: Optional[int] = None, numerical: Optional[np.ndarray] = None,
                cell_size: float = 0.55):
    """Ties: x with its tied maxima, dY, and dX under "first", "all", "split" (and, if given,
    the central-difference gradient), each titled with its mass sum(dX)."""
    s = k if s is None else s
    x = np.asarray(x, dtype=float)
    dout = np.asarray(dout, dtype=float)
    grads = policy_gradients(x, dout, k, s)
    unique, tied = winner_cells(x, k, s)
    counts = window_max_counts(x, k, s)
    mats = [("x", x, f"x {x.shape[0]}×{x.shape[1]}"), ("dY", dout, f"dY, sum = {_fmt(dout.sum())}")]
    mats += [("dX", grads[p], f"dX {p}\nsum = {_fmt(grads[p].sum())}") for p in POLICIES]
    if numerical is not None:
        mats.append(("dX", numerical, f"finite differences\nsum = {_fmt(np.round(numerical.sum(), 6))}"))
    fig, axes = _row_figure([m.shape[1] for _, m, _ in mats], x.shape[0], cell_size, 1.3)
    out = core.maxpool2d_forward(x, k, s)[0]
    lim = max(float(np.max(np.abs(m))) for kind, m, _ in mats if kind == "dX") or 1.0
    for ax, (kind, m, t) in zip(axes, mats):
        if kind == "dX":
            _draw_grad(ax, np.round(m, 6), t, lim)
            outline_cells(ax, tied, color=ACCENT)
        else:
            draw_matrix(ax, m, title=t, cmap="Blues", vmin=0, vmax=max(float(np.max(m)), 1.0) * 1.8)
        ax.title.set_fontsize(9)
        if kind == "x":
            _draw_windows(ax, *out.shape, k, s)
            outline_cells(ax, unique, color=HIGHLIGHT)
            outline_cells(ax, tied, color=ACCENT)
        if kind == "dY":
            outline_cells(ax, counts > 1, color=ACCENT)
    fig.tight_layout()
    return fig
