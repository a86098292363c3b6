"""Chapter 07 (the convolution's backward pass): the input-cell explorable and the chapter's figures.

:class:`ConvInputCell` is CNN Explainer's interaction turned around: instead of hovering an output
to see the window that feeds it, you hover an *input* cell and see every window that read it, the
kernel weight each one used, and ``∂L/∂X[u, v]`` as the sum of those ``∂L/∂Y[i, j] · K[α, β]``
terms.  Listed from the first window to the last, the weights run backwards: the kernel rotated
by 180 degrees, which the same explorable shows as rot180(K) lying over the dilated, padded
upstream gradient.  Hovering a weight shows every output and input cell it connects; hovering a
cell of the padded gradient shows which cells of ∂L/∂X it reaches.  :func:`input_cell_state`
computes everything it draws (a pure function).

The chapter's static figures are states drawn by the same view: :func:`full_correlation_state`
(the stride-dilated, padded upstream gradient with the rotated kernel over the cells that make
chosen cells of ∂L/∂X) and :func:`conv_matrix_state` (the explicit matrix A of a tiny convolution,
its transpose, and the rotated kernel in a row of Aᵀ).  All the numbers come from
:mod:`mlp_cnn_core`.
"""
from __future__ import annotations

from typing import Sequence, Tuple

import numpy as np

import mlp_cnn_core as core

from .draw import SUBSCRIPT_DIGITS, factor, format_value, sub
from .explorable import Explorable, cell_id, control, link, panel, window

__all__ = ["influence", "input_cell_state", "ConvInputCell", "prepared_gradient", "full_correlation_state",
           "conv_matrix", "conv_matrix_state", "kernel_values", "upstream_values"]

#: subscript digits, for names in column and row labels (plain text there)
def kernel_values(k: int) -> np.ndarray:
    """The explorable's kernel: ``1, 2, ..., k*k`` in row-major order (``(k, k)``, not symmetric
    for k > 1, so a missing rotation is visible)."""
    return np.arange(1, k * k + 1, dtype=float).reshape(k, k)


def upstream_values(shape: Tuple[int, int], kind: str = "ones") -> np.ndarray:
    """The explorable's upstream gradient ∂L/∂Y: all ones, or small seeded random integers."""
    if kind == "ones":
        return np.ones(shape)
    rng = np.random.default_rng(1000 + 31 * shape[0] + shape[1])
    return rng.integers(-2, 3, size=shape).astype(float)


def influence(size: int, k: int, stride: int, padding: int, row: int, col: int):
    """Which outputs did input cell ``(row, col)`` influence, and through which weight?

    A square ``size x size`` input, a ``k x k`` kernel, the same stride and padding on both axes.
    Output ``(i, j)`` reads padded cell ``(i*stride + α, j*stride + β)`` with weight ``K[α, β]``,
    so input cell ``(u, v)`` (padded ``(u + p, v + p)``) meets it through
    ``(α, β) = (u - i*stride + p, v - j*stride + p)`` whenever both lie in ``[0, k)``.

    Returns ``(mask, index)``: ``mask`` bool ``(Ho, Wo)``; ``index`` int ``(Ho, Wo, 2)`` with the
    weight index ``(α, β)`` at influenced outputs and ``-1`` elsewhere.
    """
    geo = core.WindowGeometry.of((size, size), k, stride, padding, pool=False)
    mask = np.zeros(geo.out_size, dtype=bool)
    index = np.full(geo.out_size + (2,), -1, dtype=int)
    for i, j in geo.windows_of(row, col):
        r0, c0 = geo.input_cell(i, j, 0, 0)  # the window's corner: the weight is the offset from it
        mask[i, j], index[i, j] = True, (row - r0, col - c0)
    return mask, index


# ---------------------------------------------------------------------------------------------
# The chapter's figures (states drawn by the explorables' view)
# ---------------------------------------------------------------------------------------------

def prepared_gradient(dy: np.ndarray, k: int, size: int, stride: int, padding: int):
    """The upstream gradient ready for the full correlation (one channel, square).

    ``dy (Ho, Wo)`` is dilated by the stride (``core.dilate``), padded by ``k - 1`` on every
    side plus the rows/columns no window reached.  Returns ``(g, kind)``: ``g`` of shape
    ``(size + 2p + k - 1, ...)`` and ``kind`` an int array of the same shape: 0 = a real ∂L/∂Y
    entry, 1 = a zero inserted by the dilation, 2 = a zero of the ``k - 1`` (and leftover) padding.
    """
    d = core.dilate(dy, stride)
    kind_d = np.ones(d.shape, int)
    kind_d[::stride, ::stride] = 0
    Ho = dy.shape[0]
    extra = size + 2 * padding - ((Ho - 1) * stride + k)
    pads = ((k - 1, k - 1 + extra), (k - 1, k - 1 + extra))
    return np.pad(d, pads), np.pad(kind_d, pads, constant_values=2)


def _prepared_panel(dy, k, size, stride, padding, pid="g", **kw):
    """The panel of :func:`prepared_gradient`: real ∂L/∂Y entries with their values, the
    dilation's zeros muted (class ``zero``), the padding's zeros blank (class ``pad``)."""
    g, kind = prepared_gradient(dy, k, size, stride, padding)
    text = np.where(kind == 0, np.vectorize(format_value, otypes=[object])(g), np.where(kind == 1, "0", ""))
    classes = np.where(kind == 0, "", np.where(kind == 1, "zero", "pad"))
    title = "pad(∂L/∂Y)" if stride == 1 else "pad(dilate(∂L/∂Y))"
    return panel(pid, title, np.where(kind == 2, np.nan, g), text=text, classes=classes, scale="div", **kw), g, kind


def full_correlation_state(dy, kernel, size: int, stride: int = 1, padding: int = 0,
                           cells: Sequence[Tuple[int, int]] = ((0, 0),)) -> dict:
    """∂L/∂X of a one-channel, square convolution as a full correlation: the dilated, padded
    ∂L/∂Y (``dy``, ``(Ho, Ho)``) with rot180(``kernel``) placed over the cells that make
    ∂L/∂X<sub>uv</sub> for each ``(u, v)`` in ``cells`` (at most four, one outline colour each),
    rot180(K), and ∂L/∂X from ``core.conv2d_input_grad_rotated`` with those cells outlined."""
    dy, kernel = np.asarray(dy, float), np.asarray(kernel, float)
    k = kernel.shape[0]
    cells = [tuple(int(t) for t in c) for c in cells][:4]
    dx = core.conv2d_input_grad_rotated(dy[None, None], kernel[None, None], (1, 1, size, size),
                                        stride, padding)[0, 0]
    gp, g, kind = _prepared_panel(dy, k, size, stride, padding,
                                  windows=[window("g", u + padding, v + padding, k, k, f"c{n + 1}")
                                           for n, (u, v) in enumerate(cells)])
    lim = float(np.max(np.abs(dx))) or 1.0
    panels = [gp,
              panel("wr", "rot180(K)", core.rot180(kernel), op="⋆"),
              panel("dx", f"∂L/∂X ({size}×{size})", dx, scale="div", limit=lim, op="=",
                    windows=[window("dx", u, v, 1, 1, f"c{n + 1}") for n, (u, v) in enumerate(cells)])]
    Ho = dy.shape[0]
    extra = g.shape[0] - ((Ho - 1) * stride + 1) - 2 * (k - 1)
    frame = f"the k − 1 = {k - 1} zeros around it"
    if extra:
        frame += f" and the {extra} row{'s' if extra > 1 else ''} and column{'s' if extra > 1 else ''} " \
                 "no window read (bottom, right)"
    what = (f"∂L/∂Y ({Ho}×{Ho})" if stride == 1 else
            f"∂L/∂Y ({Ho}×{Ho}) dilated by the stride {stride} (muted zeros between its entries)")
    crop = (f" The correlation gives the gradient of the padded input, {size + 2 * padding}×{size + 2 * padding}; "
            f"cropping the padding p = {padding} leaves ∂L/∂X." if padding else "")
    caption = (f"{what}, with {frame} (blank). Each outlined {k}×{k} box holds rot180(K) and makes the cell "
               f"of ∂L/∂X outlined in the same colour.{crop}")
    legend = {f"window.c{n + 1}": f"rot180(K) making ∂L/∂X<sub>{u}{v}</sub>" for n, (u, v) in enumerate(cells)}
    legend.update({"pad": "zeros of the padding", "zero": "zeros of the dilation" if stride > 1 else None})
    return {"panels": panels, "caption": caption, "legend": legend}


def conv_matrix_state(kernel, size: int = 3, follow: Tuple[int, int] = (1, 1)) -> dict:
    """The matrix A of a one-channel convolution of a ``size × size`` input (stride 1, no padding):
    K, A (each row one window), Aᵀ (each row one input cell) with the input cell ``follow``
    marked in both, and its row of Aᵀ laid out on the output grid: rot180(K)."""
    kernel = np.asarray(kernel, float)
    A = conv_matrix(size, size, kernel)
    Ho, Wo = size - kernel.shape[0] + 1, size - kernel.shape[1] + 1
    u, v = follow
    q = u * size + v
    xs = [f"X{a}{b}".translate(SUBSCRIPT_DIGITS) for a in range(size) for b in range(size)]
    ys = [f"Y{i}{j}".translate(SUBSCRIPT_DIGITS) for i in range(Ho) for j in range(Wo)]
    col = np.zeros(A.shape, bool)
    col[:, q] = True
    name = f"X<sub>{u}{v}</sub>"
    panels = [
        panel("K", "K", kernel),
        panel("A", f"A ({A.shape[0]}×{A.shape[1]}): Y = A X, a row per window", A, row_labels=ys, col_labels=xs,
              classes=np.where(col, "hl", "")),
        panel("At", f"A<sup>⊤</sup> ({A.shape[1]}×{A.shape[0]}): ∂L/∂X = A<sup>⊤</sup> ∂L/∂Y", A.T, row_labels=xs,
              col_labels=ys, classes=np.where(col.T, "hl", ""), new_row=True),
        panel("r", f"row {name} of A<sup>⊤</sup> on the output grid", A.T[q].reshape(Ho, Wo), op="→",
              classes=np.full((Ho, Wo), "hl")),
    ]
    caption = (f"Column {name} of A lists the weights that input cell meets, one per window; as a row of "
               f"A<sup>⊤</sup>, laid out on the {Ho}×{Wo} output grid, it is rot180(K), not K<sup>⊤</sup>.")
    return {"panels": panels, "caption": caption, "legend": {"hl": f"the entries of {name}"}}


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
    K = ``kernel_values(k)``, a stride, a padding and an upstream gradient (``"ones"`` or
    ``"random"``, see :func:`upstream_values`).

    Panels: the padded input X (each cell: how many windows read it), the kernel K, the upstream
    gradient ∂L/∂Y, ∂L/∂X from ``core.conv2d_backward``, the upstream gradient dilated and padded
    for the full correlation (pad(∂L/∂Y)), and rot180(K).  Every cell is linked:

    * an input cell (on X or on ∂L/∂X): the windows that read it, the k×k block of pad(∂L/∂Y)
      under the rotated kernel, the weights and upstream cells involved, and ∂L/∂X<sub>uv</sub>
      written as the sum of its ∂L/∂Y<sub>ij</sub>·K<sub>αβ</sub> terms;
    * an upstream cell (on ∂L/∂Y, or its place in pad(∂L/∂Y)): its window on X and the cells of
      ∂L/∂X it sends a term to;
    * a weight (on K, or its place in rot180(K)): every output cell it multiplies and every cell
      of ∂L/∂X it carries a gradient to;
    * a zero of pad(∂L/∂Y) (dilation or padding) and a padding cell of X: what it is for.
    """
    n, p, s = int(size), int(padding), int(stride)
    if k > n + 2 * p:
        return {"message": f"The kernel ({k}×{k}) is larger than the padded input ({n} + 2·{p} = {n + 2 * p}): "
                           "there is no output at all. Make the kernel smaller or the padding larger."}
    K = kernel_values(k)
    Ho = core.pool_output_size(n, k, s, p)
    dy = upstream_values((Ho, Ho), upstream)
    _, cache = core.conv2d_forward(np.zeros((1, 1, n, n)), K[None, None], None, s, p)
    dx = core.conv2d_backward(dy[None, None], cache)[0][0, 0]
    fmt = format_value
    npad = n + 2 * p
    reads = {(u, v): influence(n, k, s, p, u, v) for u in range(n) for v in range(n)}
    count = np.full((npad, npad), np.nan)
    pad_cls = np.full((npad, npad), "pad", dtype=object)
    for (u, v), (mask, _) in reads.items():
        count[u + p, v + p] = mask.sum()
        pad_cls[u + p, v + p] = ""
    count_text = [["" if np.isnan(c) else fmt(c) for c in row] for row in count]
    lim = float(np.max(np.abs(dx))) or 1.0
    labels = [str(a - p) for a in range(npad)]
    gp, g, kind = _prepared_panel(dy, k, n, s, p, subtitle="rot180(K) slides over it (stride 1)")
    panels = [
        panel("x", "X: windows reading each cell", count, text=count_text, classes=pad_cls,
              row_labels=labels, col_labels=labels),
        panel("w", f"K ({k}×{k})", K),
        panel("dy", f"∂L/∂Y ({Ho}×{Ho})", dy, scale="div"),
        panel("dx", "∂L/∂X (core)", dx, scale="div", limit=lim),
        gp,
        panel("wr", "rot180(K)", core.rot180(K)),
    ]
    links = {}
    inside = lambda a, b: p <= a < p + n and p <= b < p + n          # noqa: E731 (padded coordinates)
    g_at = lambda i, j: (k - 1 + i * s, k - 1 + j * s)               # noqa: E731 (∂L/∂Y_ij in pad(∂L/∂Y))
    # an upstream cell: its window on X and the cells of ∂L/∂X it sends a term to
    for i in range(Ho):
        for j in range(Ho):
            reached = [(i * s + a, j * s + b) for a in range(k) for b in range(k) if inside(i * s + a, j * s + b)]
            cells = [cell_id("dy", i, j), cell_id("g", *g_at(i, j))]
            cells += [cell_id("dx", a - p, b - p) for a, b in reached]
            text = (f"{sub('Y', i, j)} reads the outlined window of X. Backwards, ∂L/∂{sub('Y', i, j)} = "
                    f"{fmt(dy[i, j])} times the weight over each cell is added to ∂L/∂X there: "
                    f"{len(reached)} input cell{'s' if len(reached) != 1 else ''}"
                    + (f" ({k * k - len(reached)} of the window's cells are padding, cropped away)"
                       if len(reached) < k * k else "")
                    + f". In pad(∂L/∂Y) it sits at ({g_at(i, j)[0]}, {g_at(i, j)[1]}); every placement of "
                    "rot180(K) that covers it makes one of those cells.")
            lk = link(cells, [window("x", i * s, j * s, k, k)], text)
            links[cell_id("dy", i, j)] = links[cell_id("g", *g_at(i, j))] = lk
    # an input cell: the windows that read it, the weights they used, the sum
    for (u, v), (mask, index) in reads.items():
        pairs = [((int(i), int(j)), (int(index[i, j, 0]), int(index[i, j, 1]))) for i, j in zip(*np.nonzero(mask))]
        cells = [cell_id("x", u + p, v + p), cell_id("dx", u, v)]
        if not pairs:
            text = (f"{sub('X', u, v)} is read by no window (the stride skips it): "
                    f"∂L/∂{sub('X', u, v)} = 0.")
            links[cell_id("x", u + p, v + p)] = links[cell_id("dx", u, v)] = link(cells, [], text)
            continue
        boxes = [window("x", i * s, j * s, k, k) for (i, j), _ in pairs]
        boxes.append(window("g", u + p, v + p, k, k))
        for (i, j), (a, b) in pairs:
            cells += [cell_id("dy", i, j), cell_id("w", a, b), cell_id("wr", k - 1 - a, k - 1 - b)]
        names = " + ".join(f"∂L/∂{sub('Y', i, j)}·{sub('K', a, b)}" for (i, j), (a, b) in pairs)
        terms = " + ".join(f"{factor(dy[i, j])}·{factor(K[a, b])}" for (i, j), (a, b) in pairs)
        text = (f"{sub('X', u, v)} is read by {len(pairs)} window{'s' if len(pairs) != 1 else ''}: "
                f"∂L/∂{sub('X', u, v)} = {names} = {terms} = <b>{fmt(dx[u, v])}</b>.")
        links[cell_id("x", u + p, v + p)] = links[cell_id("dx", u, v)] = link(cells, boxes, text)
    # a weight: every output it multiplies, every cell of ∂L/∂X it carries a gradient to
    for a in range(k):
        for b in range(k):
            outs = [(i, j) for i in range(Ho) for j in range(Ho)]
            hits = [(i, j) for i, j in outs if inside(i * s + a, j * s + b)]
            cells = [cell_id("w", a, b), cell_id("wr", k - 1 - a, k - 1 - b)]
            cells += [cell_id("dx", i * s + a - p, j * s + b - p) for i, j in hits]
            missed = len(outs) - len(hits)
            text = (f"{sub('K', a, b)} = {fmt(K[a, b])} is used by all {len(outs)} windows: in the window of "
                    f"Y<sub>ij</sub> it multiplies the cell at offset ({a}, {b}). "
                    f"Backwards it carries ∂L/∂Y<sub>ij</sub>·{sub('K', a, b)} to {len(hits)} cell"
                    f"{'s' if len(hits) != 1 else ''} of ∂L/∂X"
                    + (f" ({missed} of its products fall on padding and are cropped away)" if missed else "")
                    + f". In rot180(K) it sits at ({k - 1 - a}, {k - 1 - b}).")
            links[cell_id("w", a, b)] = links[cell_id("wr", k - 1 - a, k - 1 - b)] = link(cells, [], text)
    # the zeros of pad(∂L/∂Y) and the padding of X
    zero_text = (f"A zero put in by the dilation: with stride {s} the outputs' gradients sit {s} cells apart, "
                 "so rot180(K) meets no output here and this cell adds nothing to ∂L/∂X.")
    extra = g.shape[0] - ((Ho - 1) * s + 1) - 2 * (k - 1)
    pad_text = (f"A zero of the padding: k − 1 = {k - 1} rows and columns around ∂L/∂Y"
                + (f", and {extra} more at the bottom and right for the input rows and columns no window "
                   "reached" if extra else "")
                + ", so that every cell of ∂L/∂X gets a whole k×k placement of rot180(K).")
    zero_link, pad_link = link([], [], zero_text), link([], [], pad_text)
    for a, b in zip(*np.nonzero(kind)):
        links[cell_id("g", a, b)] = zero_link if kind[a, b] == 1 else pad_link
    if p:
        x_pad_link = link([], [], f"Padding (p = {p}): a constant 0, not an input. Windows read it, but the "
                                  "gradient that lands here is cropped away.")
        for a, b in zip(*np.nonzero(pad_cls == "pad")):
            links[cell_id("x", a, b)] = x_pad_link
    caption = (f"Input {n}×{n}, kernel {k}×{k} holding 1…{k * k} (every weight recognisable), stride {s}, "
               f"padding {p} → output {Ho}×{Ho}. The weights a cell meets run backwards "
               f"({sub('K', k - 1, k - 1)} first): rot180(K) over pad(∂L/∂Y) (the outlined box there) gives "
               "the same sum. Hover a weight or a cell of ∂L/∂Y to see where it goes.")
    c = n // 2
    return {"panels": panels, "links": links, "caption": caption, "focus": cell_id("dx", c, c),
            "legend": {"pad": "padding", "zero": "zeros of the dilation" if s > 1 else None}}


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
