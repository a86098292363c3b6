"""Chapter 07 (the convolution's backward pass): the gradient explorer widget and figure helpers.

``ConvGradExplorer`` is CNN Explainer's interaction turned around: instead of hovering an output
to see the window that feeds it, you pick an *input* cell and see every output it fed, and which
kernel weight carried it there.  Laid out on the output grid, those weight indices are the kernel
rotated by 180 degrees.

The figure helpers draw the chapter's static pictures: the stride-dilated, padded upstream
gradient with the rotated kernel sliding over it, and the explicit matrix of a tiny convolution.
All the numbers come from :mod:`mlp_cnn_core`.
"""
from __future__ import annotations

import html
from typing import List, Sequence, Tuple

import numpy as np
from matplotlib import pyplot as plt
from matplotlib.patches import Rectangle

import mlp_cnn_core as core

from .draw import (ACCENT, HIGHLIGHT, WINDOW, draw_matrix, format_value, outline_cells, outline_window,
                   show_figure)

__all__ = ["influence", "ConvGradExplorer", "prepared_gradient", "full_correlation_figure",
           "conv_matrix", "kernel_values", "upstream_values"]

PAD_GREY = "0.85"
COLORS = (HIGHLIGHT, WINDOW, ACCENT, "#2ca02c", "#9467bd")


def kernel_values(k: int) -> np.ndarray:
    """The widget's kernel: ``1, 2, ..., k*k`` in row-major order (``(k, k)``, not symmetric
    for k > 1, so a missing rotation is visible)."""
    return np.arange(1, k * k + 1, dtype=float).reshape(k, k)


def upstream_values(shape: Tuple[int, int], kind: str = "ones") -> np.ndarray:
    """The widget's upstream gradient dL/dY: all ones, or small seeded random integers."""
    if kind == "ones":
        return np.ones(shape)
    rng = np.random.default_rng(1000 + 31 * shape[0] + shape[1])
    return rng.integers(-2, 3, size=shape).astype(float)


def influence(size: int, k: int, stride: int, padding: int, row: int, col: int):
    """Which outputs did input cell ``(row, col)`` influence, and through which weight?

    A square ``size x size`` input, a ``k x k`` kernel, the same stride and padding on both axes.
    Output ``(i, j)`` reads padded cell ``(i*stride + r, j*stride + s)`` with weight ``w[r, s]``,
    so input cell ``(u, v)`` (padded ``(u + p, v + p)``) meets it through
    ``(r, s) = (u - i*stride + p, v - j*stride + p)`` whenever both lie in ``[0, k)``.

    Returns ``(mask, index)``: ``mask`` bool ``(Ho, Wo)``; ``index`` int ``(Ho, Wo, 2)`` with the
    weight index ``(r, s)`` at influenced outputs and ``-1`` elsewhere.
    """
    Ho = core.pool_output_size(size, k, stride, padding)
    a, b = row + padding, col + padding
    i = np.arange(Ho)
    r = a - i * stride                      # kernel row used by output row i
    s = b - i * stride                      # kernel column used by output column j
    okr, oks = (r >= 0) & (r < k), (s >= 0) & (s < k)
    mask = okr[:, None] & oks[None, :]
    index = np.full((Ho, Ho, 2), -1, dtype=int)
    index[..., 0] = np.where(mask, r[:, None], -1)
    index[..., 1] = np.where(mask, s[None, :], -1)
    return mask, index


def _shade_padding(ax, size: int, padding: int) -> None:
    n = size + 2 * padding
    for a in range(n):
        for b in range(n):
            if not (padding <= a < padding + size and padding <= b < padding + size):
                ax.add_patch(Rectangle((b - 0.5, a - 0.5), 1, 1, facecolor=PAD_GREY, edgecolor="none",
                                       zorder=1))


class ConvGradExplorer:
    """Pick an input cell; see the outputs it influenced and the kernel weight behind each.

    Controls (attributes): ``size`` (input H = W), ``kernel`` (k), ``stride``, ``padding``,
    ``row``, ``col`` (the input cell) and ``upstream`` ("ones" or "random" dL/dY).

    State recomputed on every change: ``valid`` (False when the kernel is larger than the padded
    input), ``out_size`` (Ho = Wo), ``mask`` (bool ``(Ho, Wo)``: the influenced outputs),
    ``weight_index`` (``(Ho, Wo, 2)``, -1 outside the mask), ``pairs`` (list of
    ``((i, j), (r, s))``), ``w`` (the kernel, ``(k, k)``), ``dy`` (``(Ho, Wo)``), ``dx``
    (``(H, W)``, from ``core.conv2d_backward``), ``dx_cell`` (``dx[row, col]``) and
    ``dx_cell_sum`` (the same number as ``sum dy[i, j] * w[r, s]`` over ``pairs``).
    """

    def __init__(self, size: int = 5, kernel: int = 3, stride: int = 1, padding: int = 0,
                 row: int = 2, col: int = 2, upstream: str = "ones", draw: bool = True):
        import ipywidgets as widgets
        self.draw = draw  # False: recompute state and summary only (fast sweeps in the tests)
        style = {"description_width": "initial"}
        self.size = widgets.IntSlider(value=size, min=3, max=8, description="input size H=W", style=style)
        self.kernel = widgets.IntSlider(value=kernel, min=1, max=4, description="kernel k", style=style)
        self.stride = widgets.IntSlider(value=stride, min=1, max=3, description="stride s", style=style)
        self.padding = widgets.IntSlider(value=padding, min=0, max=2, description="padding p", style=style)
        self.row = widgets.IntSlider(value=min(row, size - 1), min=0, max=size - 1,
                                     description="input row u", style=style)
        self.col = widgets.IntSlider(value=min(col, size - 1), min=0, max=size - 1,
                                     description="input col v", style=style)
        self.upstream = widgets.Dropdown(options=["ones", "random"], value=upstream,
                                         description="upstream dL/dY", style=style)
        self.summary = widgets.HTML()
        self.out = widgets.Output()
        self._busy = False
        for c in (self.size, self.kernel, self.stride, self.padding, self.row, self.col, self.upstream):
            c.observe(self._on_change, names="value")
        controls = widgets.HBox([
            widgets.VBox([self.size, self.kernel, self.stride, self.padding]),
            widgets.VBox([self.row, self.col, self.upstream]),
        ])
        self.widget = widgets.VBox([controls, self.out, self.summary])
        self.update()

    # -- state -------------------------------------------------------------------------------
    def _on_change(self, change) -> None:
        if self._busy:
            return
        self._busy = True
        try:
            n = self.size.value
            for s in (self.row, self.col):  # keep the selected cell inside the input
                if s.value > n - 1:
                    s.value = n - 1
                s.max = n - 1
        finally:
            self._busy = False
        self.update()

    def _compute(self) -> None:
        n, k, st, p = self.size.value, self.kernel.value, self.stride.value, self.padding.value
        u, v = min(self.row.value, n - 1), min(self.col.value, n - 1)
        self.w = kernel_values(k)
        self.valid = k <= n + 2 * p
        if not self.valid:
            self.out_size = 0
            self.mask = np.zeros((0, 0), bool)
            self.weight_index = np.zeros((0, 0, 2), int)
            self.pairs: List[Tuple[Tuple[int, int], Tuple[int, int]]] = []
            self.dy = np.zeros((0, 0))
            self.dx = np.zeros((n, n))
            self.dx_cell = self.dx_cell_sum = 0.0
            self.message = (f"The kernel (k = {k}) is larger than the padded input "
                            f"({n} + 2·{p} = {n + 2 * p}): there is no output at all. "
                            f"Make the kernel smaller or the padding larger.")
            return
        self.mask, self.weight_index = influence(n, k, st, p, u, v)
        Ho = self.out_size = self.mask.shape[0]
        self.pairs = [((int(i), int(j)), (int(self.weight_index[i, j, 0]), int(self.weight_index[i, j, 1])))
                      for i, j in zip(*np.nonzero(self.mask))]
        self.dy = upstream_values((Ho, Ho), self.upstream.value)
        x = np.zeros((1, 1, n, n))
        _, cache = core.conv2d_forward(x, self.w[None, None], None, st, p)
        dx, _, _ = core.conv2d_backward(self.dy[None, None], cache)
        self.dx = dx[0, 0]
        self.dx_cell = float(self.dx[u, v])
        self.dx_cell_sum = float(sum(self.dy[i, j] * self.w[r, s] for (i, j), (r, s) in self.pairs))
        self.message = ""

    def _summary_html(self) -> str:
        n, k, st, p = self.size.value, self.kernel.value, self.stride.value, self.padding.value
        u, v = min(self.row.value, n - 1), min(self.col.value, n - 1)
        if not self.valid:
            return f"<p><b>No output.</b> {html.escape(self.message)}</p>"
        Ho = self.out_size
        head = (f"<p>Input {n}×{n}, kernel {k}×{k}, stride {st}, padding {p} → output {Ho}×{Ho} "
                f"(Ho = ⌊({n} + 2·{p} − {k}) / {st}⌋ + 1).</p>")
        if not self.pairs:
            return head + (f"<p>Input cell x[{u},{v}] influenced <b>no output</b>: no window reaches it "
                           f"(the stride skips it), so dX[{u},{v}] = 0.</p>")
        items = ", ".join(f"Y[{i},{j}] via w[{r},{s}]" for (i, j), (r, s) in self.pairs)
        terms = " + ".join(f"{format_value(self.dy[i, j])}·{format_value(self.w[r, s])}"
                           for (i, j), (r, s) in self.pairs)
        text = (f"<p>Input cell x[{u},{v}] influenced <b>{len(self.pairs)}</b> output(s): {items}.</p>"
                f"<p>With upstream gradient dL/dY = {self.upstream.value}: "
                f"dX[{u},{v}] = Σ dY[i,j]·w[u−i·s+p, v−j·s+p] = {terms} = "
                f"<b>{format_value(self.dx_cell_sum)}</b>; core.conv2d_backward gives "
                f"<b>{format_value(self.dx_cell)}</b>.</p>")
        if len(self.pairs) == k * k and st == 1:
            text += ("<p>The weight indices on the output grid run backwards in both directions: "
                     "they are the kernel <b>rotated by 180°</b>.</p>")
        elif st > 1:
            text += ("<p>With stride > 1 only some kernel positions land on this cell: the rotated "
                     "kernel is sampled every s cells (that is what dilating dY does).</p>")
        return head + text

    def update(self) -> None:
        """Recompute the state, the summary and the figure from the controls."""
        self._compute()
        self.summary.value = self._summary_html()
        if not self.draw:
            return
        show_figure(self.out, self.figure())

    # -- drawing -----------------------------------------------------------------------------
    def figure(self, cell_size: float = 0.42):
        """A new matplotlib Figure of the current state (four panels, or a message)."""
        n, k, st, p = self.size.value, self.kernel.value, self.stride.value, self.padding.value
        u, v = min(self.row.value, n - 1), min(self.col.value, n - 1)
        if not self.valid:
            fig, ax = plt.subplots(figsize=(7, 1.6))
            ax.axis("off")
            ax.text(0.5, 0.5, "\n".join(["No output:", f"kernel {k}×{k} > padded input {n + 2 * p}×{n + 2 * p}"]),
                    ha="center", va="center", fontsize=12, transform=ax.transAxes)
            return fig
        Ho, npad = self.out_size, n + 2 * p
        widths = [npad, k, Ho, n]
        height = max(widths)
        fig, axes = plt.subplots(1, 4, figsize=(cell_size * sum(widths) + 5.0, cell_size * height + 1.6),
                                 gridspec_kw={"width_ratios": widths})
        # 1. padded input: the selected cell and every window that covers it
        ax = axes[0]
        draw_matrix(ax, np.zeros((npad, npad)), annotate=False, cmap="Greys", vmin=0, vmax=1,
                    row_labels=[str(a - p) for a in range(npad)], col_labels=[str(b - p) for b in range(npad)])
        _shade_padding(ax, n, p)
        for idx, ((i, j), _) in enumerate(self.pairs):
            outline_window(ax, i * st, j * st, k, k, color=WINDOW, linewidth=1.0, linestyle="--",
                           inset=0.05 + 0.05 * (idx % 5))
        outline_cells(ax, np.eye(1, npad * npad, (u + p) * npad + (v + p), dtype=bool).reshape(npad, npad))
        ax.text(v + p, u + p, "x", ha="center", va="center", fontsize=11, color=HIGHLIGHT, zorder=5)
        ax.set_title(f"input x[{u},{v}] (grey: padding)\ndashed: windows that read it", fontsize=9)
        # 2. the kernel with its indices
        ax = axes[1]
        draw_matrix(ax, self.w, annotate=False, cmap="Blues", vmin=0, vmax=1.6 * k * k)
        used = np.zeros((k, k), bool)
        for _, (r, s) in self.pairs:
            used[r, s] = True
        for r in range(k):
            for s in range(k):
                ax.text(s, r, f"$w_{{{r}{s}}}$\n{format_value(self.w[r, s])}", ha="center", va="center",
                        fontsize=8, color=HIGHLIGHT if used[r, s] else "0.4")
        outline_cells(ax, used, color=HIGHLIGHT, linewidth=1.5)
        ax.set_title("kernel w\n(red: weights used)", fontsize=9)
        # 3. the output grid: which weight connected x[u, v] to each output
        ax = axes[2]
        draw_matrix(ax, self.mask.astype(float) * 0.35, annotate=False, cmap="Reds", vmin=0, vmax=1)
        outline_cells(ax, self.mask)
        for (i, j), (r, s) in self.pairs:
            ax.text(j, i, f"$w_{{{r}{s}}}$", ha="center", va="center", fontsize=10, color="black")
        for i in range(Ho):
            for j in range(Ho):
                ax.text(j + 0.42, i + 0.42, format_value(self.dy[i, j]), ha="right", va="bottom",
                        fontsize=6, color="0.35")
        ax.set_title(f"output Y {Ho}×{Ho}: outlined = influenced\nlabel = weight used (small: dY)",
                     fontsize=9)
        # 4. dX from the core
        ax = axes[3]
        sel = np.zeros((n, n), bool)
        sel[u, v] = True
        draw_matrix(ax, self.dx, diverging=True, highlight=sel, fontsize=8)
        ax.set_title(f"dX (core.conv2d_backward)\ndX[{u},{v}] = {format_value(self.dx_cell)}", fontsize=9)
        fig.suptitle(f"H = W = {n}, k = {k}, stride {st}, padding {p}; upstream dY = {self.upstream.value}",
                     fontsize=10)
        fig.subplots_adjust(left=0.04, right=0.98, bottom=0.06, top=0.82, wspace=0.3)
        return fig


# ---------------------------------------------------------------------------------------------
# The rotated-kernel picture
# ---------------------------------------------------------------------------------------------

def prepared_gradient(dy: np.ndarray, k: int, size: int, stride: int, padding: int):
    """The upstream gradient ready for the full correlation (one channel, square).

    ``dy (Ho, Wo)`` is dilated by the stride (``core.dilate``), padded by ``k - 1`` on every
    side plus the rows/columns no window reached.  Returns ``(g, kind)``: ``g`` of shape
    ``(size + 2p + k - 1, ...)`` and ``kind`` an int array of the same shape: 0 = a real dY entry,
    1 = a zero inserted by the dilation, 2 = a zero of the ``k - 1`` (and leftover) padding.
    """
    d = core.dilate(dy, stride)
    kind_d = np.ones(d.shape, int)
    kind_d[::stride, ::stride] = 0
    Ho = dy.shape[0]
    extra = size + 2 * padding - ((Ho - 1) * stride + k)
    pads = ((k - 1, k - 1 + extra), (k - 1, k - 1 + extra))
    return np.pad(d, pads), np.pad(kind_d, pads, constant_values=2)


def full_correlation_figure(dy: np.ndarray, w: np.ndarray, size: int, stride: int = 1, padding: int = 0,
                            cells: Sequence[Tuple[int, int]] = ((0, 0),), cell_size: float = 0.42):
    """Three panels: the dilated + padded dY with the rotated kernel over the windows that make
    ``dX[u, v]`` for each ``(u, v)`` in ``cells``; the rotated kernel; dX (cells outlined).

    One channel, square input.  ``dy (Ho, Ho)``, ``w (k, k)``.  dX comes from
    ``core.conv2d_input_grad_rotated``.
    """
    dy, w = np.asarray(dy, float), np.asarray(w, float)
    k = w.shape[0]
    g, kind = prepared_gradient(dy, k, size, stride, padding)
    wr = core.rot180(w)
    dx = core.conv2d_input_grad_rotated(dy[None, None], w[None, None], (1, 1, size, size), stride, padding)[0, 0]
    widths = [g.shape[1], k, size]
    fig, axes = plt.subplots(1, 3, figsize=(cell_size * sum(widths) + 3.6, cell_size * g.shape[0] + 1.5),
                             gridspec_kw={"width_ratios": widths})
    ax = axes[0]
    draw_matrix(ax, g, annotate=False, diverging=True)
    lim = float(np.max(np.abs(g))) or 1.0
    for a in range(g.shape[0]):
        for b in range(g.shape[1]):
            if kind[a, b] == 0:
                ax.text(b, a, format_value(g[a, b]), ha="center", va="center", fontsize=8, fontweight="bold",
                        color="white" if abs(g[a, b]) > 0.6 * lim else "black")
            else:
                ax.add_patch(Rectangle((b - 0.5, a - 0.5), 1, 1, zorder=1, edgecolor="none",
                                       facecolor=PAD_GREY if kind[a, b] == 2 else "#fff3c4"))
                ax.text(b, a, "0", ha="center", va="center", fontsize=7, color="0.55")
    # the cells read by the windows that survive the crop (the padding's p cells are cut on each side)
    outline_window(ax, padding, padding, size + k - 1, size + k - 1, color="0.3", linewidth=1.0, linestyle=":")
    for idx, (u, v) in enumerate(cells):
        outline_window(ax, u + padding, v + padding, k, k, color=COLORS[idx % len(COLORS)], linewidth=2.2,
                       inset=0.05 * idx)
    what = "dY (stride 1: no dilation)" if stride == 1 else f"dY dilated by stride {stride} (yellow zeros)"
    ax.set_title(f"{what}, padded by k−1 = {k - 1} (grey)\n"
                 f"boxes: the rotated kernel over the cells that make dX[u,v]", fontsize=9)
    draw_matrix(axes[1], wr, title="rot180(w)")
    ax = axes[2]
    draw_matrix(ax, dx, diverging=True, fontsize=8)
    for idx, (u, v) in enumerate(cells):
        m = np.zeros((size, size), bool)
        m[u, v] = True
        outline_cells(ax, m, color=COLORS[idx % len(COLORS)])
    ax.set_title(f"dX {size}×{size}\n(after cropping padding {padding})", fontsize=9)
    fig.tight_layout()
    return fig


def conv_matrix(size_h: int, size_w: int, w: np.ndarray, stride: int = 1, padding: int = 0) -> np.ndarray:
    """The matrix ``A`` of a one-channel convolution (no bias): ``vec(Y) = A @ vec(X)``.

    Column ``q`` is the (flattened) output of ``core.conv2d_forward`` on the ``q``-th basis image,
    so ``A`` has shape ``(Ho*Wo, H*W)``.
    """
    w = np.asarray(w, float)
    basis = np.eye(size_h * size_w).reshape(size_h * size_w, 1, size_h, size_w)
    out, _ = core.conv2d_forward(basis, w[None, None], None, stride, padding)
    return out.reshape(size_h * size_w, -1).T
