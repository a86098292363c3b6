"""Chapter 07 (the convolution's backward pass): the input-cell explorable and figure helpers.

:class:`ConvInputCell` is CNN Explainer's interaction turned around: instead of hovering an output
to see the window that feeds it, you hover an *input* cell and see every window that read it, the
kernel weight each one used, and ``dX[u, v]`` as the sum of those ``dY[i, j] * W[r, s]`` terms.
Listed from the first window to the last, the weights run backwards: the kernel rotated by 180
degrees, which the same explorable shows as the rotated kernel lying over the dilated, padded
upstream gradient.  :func:`input_cell_state` computes everything it draws (a pure function).

The figure helpers draw the chapter's static pictures: the stride-dilated, padded upstream
gradient with the rotated kernel sliding over it, a state of the explorable with one cell
followed, and the explicit matrix of a tiny convolution.  All the numbers come from
:mod:`mlp_cnn_core`.
"""
from __future__ import annotations

from typing import Sequence, Tuple

import numpy as np
from matplotlib import pyplot as plt
from matplotlib.patches import Rectangle

import mlp_cnn_core as core

from .draw import HIGHLIGHT, WINDOW, ACCENT, draw_matrix, format_value, outline_cells, outline_window
from .explorable import Explorable, cell_id, control, link, panel, window

__all__ = ["influence", "input_cell_state", "ConvInputCell", "prepared_gradient",
           "full_correlation_figure", "conv_matrix", "kernel_values", "upstream_values"]

PAD_GREY = "0.85"
COLORS = (HIGHLIGHT, WINDOW, ACCENT, "#2ca02c", "#9467bd")


def kernel_values(k: int) -> np.ndarray:
    """The explorable's kernel: ``1, 2, ..., k*k`` in row-major order (``(k, k)``, not symmetric
    for k > 1, so a missing rotation is visible)."""
    return np.arange(1, k * k + 1, dtype=float).reshape(k, k)


def upstream_values(shape: Tuple[int, int], kind: str = "ones") -> np.ndarray:
    """The explorable's upstream gradient dL/dY: all ones, or small seeded random integers."""
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
    geo = core.WindowGeometry.of((size, size), k, stride, padding, pool=False)
    mask = np.zeros(geo.out_size, dtype=bool)
    index = np.full(geo.out_size + (2,), -1, dtype=int)
    for i, j in geo.windows_of(row, col):
        r0, c0 = geo.input_cell(i, j, 0, 0)  # the window's corner: the weight is the offset from it
        mask[i, j], index[i, j] = True, (row - r0, col - c0)
    return mask, index


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
                            cells: Sequence[Tuple[int, int]] = ((0, 0),), cell_size: float = 0.34):
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
    cell_size = min(cell_size, 7.0 / sum(widths))          # at most ~940 px wide at 100 dpi
    fig, axes = plt.subplots(1, 3, figsize=(cell_size * sum(widths) + 2.4, cell_size * g.shape[0] + 1.5),
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
    extra = g.shape[0] - dy.shape[0] - (dy.shape[0] - 1) * (stride - 1) - 2 * (k - 1)
    frame = f"padded by k−1 = {k - 1} (grey)" + (f", {k - 1 + extra} at the bottom/right (rows no window read)"
                                                 if extra else "")
    ax.set_title(f"{what},\n{frame}\nboxes: the rotated kernel over the cells that make dX[u,v]", fontsize=9)
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


# ---------------------------------------------------------------------------------------------
# The input-cell explorable (drawn in the browser from precomputed states)
# ---------------------------------------------------------------------------------------------

def input_cell_state(size: int, k: int, stride: int, padding: int, upstream: str = "random") -> dict:
    """Everything the input-cell view shows for a one-channel ``size x size`` input, the kernel
    ``kernel_values(k)``, a stride, a padding and an upstream gradient (``"ones"`` or
    ``"random"``, see :func:`upstream_values`).

    Panels: the padded input (each cell: how many windows read it), the kernel W, the upstream
    gradient dL/dY, dL/dX from ``core.conv2d_backward``, the upstream gradient dilated and padded
    for the full correlation, and rot180(W).  Hovering an input cell (on x or on dL/dX) outlines
    the windows that read it and the k x k block of the prepared gradient under the rotated
    kernel, highlights the weights and upstream cells involved, and writes dL/dX[u, v] as the
    sum of its dY[i, j] * W[r, s] terms; hovering an upstream cell shows its window.
    """
    n, p, s = int(size), int(padding), int(stride)
    if k > n + 2 * p:
        return {"message": f"The kernel ({k}×{k}) is larger than the padded input ({n} + 2·{p} = {n + 2 * p}): "
                           "there is no output at all. Make the kernel smaller or the padding larger."}
    W = kernel_values(k)
    Ho = core.pool_output_size(n, k, s, p)
    dy = upstream_values((Ho, Ho), upstream)
    _, cache = core.conv2d_forward(np.zeros((1, 1, n, n)), W[None, None], None, s, p)
    dx = core.conv2d_backward(dy[None, None], cache)[0][0, 0]
    g, kind = prepared_gradient(dy, k, n, s, p)
    wr = core.rot180(W)
    fmt = format_value
    npad = n + 2 * p
    reads = {(u, v): influence(n, k, s, p, u, v) for u in range(n) for v in range(n)}
    count = np.full((npad, npad), np.nan)
    pad_cls = np.full((npad, npad), "pad", dtype=object)
    for (u, v), (mask, _) in reads.items():
        count[u + p, v + p] = mask.sum()
        pad_cls[u + p, v + p] = ""
    count_text = [["" if np.isnan(c) else fmt(c) for c in row] for row in count]
    g_cls = np.where(kind == 0, "", np.where(kind == 1, "zero", "pad"))
    g_text = np.where(kind == 0, np.vectorize(fmt, otypes=[object])(g), np.where(kind == 1, "0", ""))
    g_vals = np.where(kind == 2, np.nan, g)
    lim = float(np.max(np.abs(dx))) or 1.0
    labels = [str(a - p) for a in range(npad)]
    panels = [
        panel("x", "input x: windows reading each cell", count, text=count_text, classes=pad_cls,
              row_labels=labels, col_labels=labels),
        panel("w", f"kernel W ({k}×{k})", W),
        panel("dy", f"upstream dL/dY ({Ho}×{Ho})", dy, scale="div"),
        panel("dx", "dL/dX (core)", dx, scale="div", limit=lim),
        panel("g", "dL/dY " + ("dilated, " if s > 1 else "") + "padded", g_vals, text=g_text, classes=g_cls,
              scale="div"),
        panel("wr", "rot180(W)", wr),
    ]
    links = {}
    for i in range(Ho):
        for j in range(Ho):
            text = (f"Y[{i},{j}] reads this window; backwards it sends dL/dY[{i},{j}] = {fmt(dy[i, j])} "
                    f"times each weight to the cell under it.")
            links[cell_id("dy", i, j)] = link([cell_id("dy", i, j)], [window("x", i * s, j * s, k, k)], text)
    for (u, v), (mask, index) in reads.items():
        pairs = [((int(i), int(j)), (int(index[i, j, 0]), int(index[i, j, 1]))) for i, j in zip(*np.nonzero(mask))]
        cells = [cell_id("x", u + p, v + p), cell_id("dx", u, v)]
        if not pairs:
            text = f"x[{u},{v}] is read by no window (the stride skips it): dL/dX[{u},{v}] = 0."
            links[cell_id("x", u + p, v + p)] = links[cell_id("dx", u, v)] = link(cells, [], text)
            continue
        boxes = [window("x", i * s, j * s, k, k) for (i, j), _ in pairs]
        boxes.append(window("g", u + p, v + p, k, k))
        for (i, j), (r, c) in pairs:
            cells += [cell_id("dy", i, j), cell_id("w", r, c), cell_id("wr", k - 1 - r, k - 1 - c)]
        names = " + ".join(f"dY[{i},{j}]·W[{r},{c}]" for (i, j), (r, c) in pairs)
        terms = " + ".join(f"{fmt(dy[i, j])}·{fmt(W[r, c])}" for (i, j), (r, c) in pairs)
        text = (f"x[{u},{v}] is read by {len(pairs)} window(s): dL/dX[{u},{v}] = {names} = {terms} "
                f"= <b>{fmt(dx[u, v])}</b>.")
        links[cell_id("x", u + p, v + p)] = links[cell_id("dx", u, v)] = link(cells, boxes, text)
    caption = (f"Input {n}×{n}, kernel {k}×{k} holding 1…{k * k} (every weight recognisable), stride {s}, "
               f"padding {p} → output {Ho}×{Ho}. The weights a cell meets run backwards (W[{k - 1},{k - 1}] first): "
               f"rot180(W) over the prepared dL/dY (green box) gives the same sum.")
    c = n // 2
    return {"panels": panels, "links": links, "caption": caption, "focus": cell_id("dx", c, c)}


class ConvInputCell(Explorable):
    """Chapter 7: follow one input cell through the convolution's backward pass.

    Controls: input size, kernel size k, stride, padding (the upstream gradient is a fixed draw
    of small integers, :func:`upstream_values`).  The followed cell is chosen by hovering,
    tapping or the arrow keys."""

    TITLE = "Convolution backward: which weights carry each input cell's gradient"

    SIZES = (3, 4, 5, 6)

    def make_controls(self):
        return [
            control("size", "input size", list(self.SIZES), default=5, labels=[f"{n}×{n}" for n in self.SIZES]),
            control("k", "kernel k", [2, 3, 4], default=3),
            control("stride", "stride s", [1, 2, 3], default=1),
            control("padding", "padding p", [0, 1, 2], default=0),
        ]

    def state(self, size, k, stride, padding):
        return input_cell_state(size, k, stride, padding, "random")
