"""Chapters 01 and 05 (the tiny CNN of the source article): shared values, the chained
forward/backward pass, and the figure helpers.

The network is Jae Duk Seo's (2018) example, with our own numbers::

    XX (6x6) --conv W (3x3)--> L1 (4x4) --[ReLU]--> --max pool 2x2--> L1Max (2x2)
        --flatten--> (1x4) --times WW (4x1)--> L2 (1x1) --> loss = 1/2 (L2 - target)^2

Both chapters import the values from here, so they talk about the same numbers.  Every piece
of math is a call to :mod:`mlp_cnn_core`; this module only chains the calls and draws.
The core works on ``(N, C, H, W)`` arrays: :func:`forward` adds the two axes of length 1 on the
way in and drops them on the way out, so everything here is a plain 2-D matrix.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Optional, Sequence

import numpy as np
from matplotlib import pyplot as plt
from matplotlib.patches import Circle, FancyArrowPatch, Rectangle

import mlp_cnn_core as core
import mlp_cnn_train as train

from .draw import ACCENT, HIGHLIGHT, WINDOW, draw_matrix, format_value, outline_window
from .explorable import Explorable, cell_id, control, link, panel, window

__all__ = ["SEED", "XX", "W", "WW", "TARGET", "values", "TinyPass", "forward", "backward", "loss",
           "circle_cells", "network_figure", "conv_window_figure", "pool_figure", "flatten_figure",
           "route_figure", "tiny_state", "TinyNetworkRoute", "PIXEL_VALUES", "MAX_COLOR"]

MAX_COLOR = "#1f5fbf"   # the article's "blue circles" around the maxima

# ---------------------------------------------------------------------------
# The values (one definition for both chapters)
# ---------------------------------------------------------------------------

#: The seed the image and the kernel were drawn with (small integers, so every number stays exact).
SEED = 8067


def _draw_values():
    rng = np.random.default_rng(SEED)
    xx = rng.integers(-2, 3, size=(6, 6)).astype(np.float64)
    w = rng.integers(-1, 2, size=(3, 3)).astype(np.float64)
    return xx, w


def _frozen(a: np.ndarray) -> np.ndarray:
    a = np.array(a, dtype=np.float64)
    a.setflags(write=False)  # shared by two chapters: nobody may change them by accident
    return a


_xx, _w = _draw_values()
#: The 6x6 input image (integers from -2 to 2).
XX = _frozen(_xx)
#: The 3x3 kernel (integers from -1 to 1; not symmetric under a 180-degree rotation).
W = _frozen(_w)
#: The 4x1 weights of the dense layer (quarters and halves: exact in binary floating point).
WW = _frozen([[0.5], [-0.25], [0.75], [0.25]])
#: The target of the single output, 1x1.
TARGET = _frozen([[1.0]])


def values() -> Dict[str, np.ndarray]:
    """Fresh, writable copies of ``XX, W, WW, target`` (for training, which updates them)."""
    return {"XX": XX.copy(), "W": W.copy(), "WW": WW.copy(), "target": TARGET.copy()}


# ---------------------------------------------------------------------------
# The forward and backward pass, chained from the core
# ---------------------------------------------------------------------------

@dataclass
class TinyPass:
    """Everything one forward pass computed (2-D arrays) and the caches the backward pass needs."""
    XX: np.ndarray
    W: np.ndarray
    WW: np.ndarray
    target: np.ndarray
    relu: bool
    L1: np.ndarray          # (4, 4) the convolution's output (the pre-activation when relu=True)
    A: np.ndarray           # (4, 4) what the pool sees: relu(L1) or L1 itself
    L1Max: np.ndarray       # (2, 2)
    flat: np.ndarray        # (1, 4) L1Max "vectorised" in row-major order
    L2: np.ndarray          # (1, 1)
    loss: float
    conv_cache: core.ConvCache
    relu_cache: Optional[core.ReluCache]
    pool_cache: core.MaxPoolCache
    flat_cache: core.FlattenCache
    dense_cache: core.DenseCache


def forward(XX=XX, W=W, WW=WW, target=TARGET, relu: bool = False) -> TinyPass:
    """The tiny network's forward pass (example (a) ``relu=False``, example (b) ``relu=True``).

    ``XX (6, 6)``, ``W (3, 3)``, ``WW (4, 1)``, ``target (1, 1)``; any image at least 4x4 whose
    convolution output has even sides works too.
    """
    XX, W, WW, target = (np.asarray(a, dtype=np.float64) for a in (XX, W, WW, target))
    v = train.small_cnn_forward(XX[None, None], W[None, None], WW, relu=relu, layers=core)
    value, _ = core.l2_loss(v["out"], target)
    return TinyPass(XX=XX, W=W, WW=WW, target=target, relu=relu, L1=v["conv"][0, 0], A=v["act"][0, 0],
                    L1Max=v["pool"][0, 0], flat=v["flat"], L2=v["out"], loss=float(value),
                    conv_cache=v["conv_cache"], relu_cache=v["relu_cache"], pool_cache=v["pool_cache"],
                    flat_cache=v["flat_cache"], dense_cache=v["dense_cache"])


def backward(p: TinyPass) -> Dict[str, np.ndarray]:
    """Every gradient of the tiny network, from the loss down to the image (2-D arrays).

    Keys: ``dL2 (1,1)``, ``dWW (4,1)``, ``dflat (1,4)``, ``dL1Max (2,2)``, ``dA (4,4)`` (after
    the max pool), ``dL1 (4,4)`` (after the ReLU mask; equal to ``dA`` without ReLU),
    ``dW (3,3)``, ``dXX (6,6)``.
    """
    _, dL2 = core.l2_loss(p.L2, p.target)
    g = train.small_cnn_backward(dL2, vars(p), layers=core)
    return {"dL2": dL2, "dWW": g["ddense_w"], "dflat": g["dflat"], "dL1Max": g["dpool"][0, 0],
            "dA": g["dact"][0, 0], "dL1": g["dconv"][0, 0], "dW": g["dw"][0, 0], "dXX": g["dx"][0, 0]}


def loss(XX=XX, W=W, WW=WW, target=TARGET, relu: bool = False) -> float:
    """The loss alone (a scalar function to hand to ``core.numerical_gradient``)."""
    return forward(XX, W, WW, target, relu).loss


# ---------------------------------------------------------------------------
# Figures
# ---------------------------------------------------------------------------

def circle_cells(ax, rows: Sequence[int], cols: Sequence[int], color: str = MAX_COLOR,
                 radius: float = 0.42, linewidth: float = 2.5):
    """Draw a circle around each cell ``(rows[n], cols[n])`` (the article's blue circles).
    Returns the list of patches."""
    patches = []
    for r, c in zip(np.ravel(rows), np.ravel(cols)):
        patch = Circle((int(c), int(r)), radius, fill=False, edgecolor=color, linewidth=linewidth, zorder=5)
        ax.add_patch(patch)
        patches.append(patch)
    return patches


def _grid(ax, x0: float, y0: float, h: int, w: int, cell: float, face: str, label: str,
          sublabel: str) -> Dict[str, float]:
    """An ``h x w`` grid of empty cells whose top-left corner is ``(x0, y0)`` (y grows upwards)."""
    for r in range(h):
        for c in range(w):
            ax.add_patch(Rectangle((x0 + c * cell, y0 - (r + 1) * cell), cell, cell, facecolor=face,
                                   edgecolor="0.3", linewidth=0.8))
    ax.text(x0 + w * cell / 2, y0 + 0.18, label, ha="center", va="bottom", fontsize=11, fontweight="bold")
    ax.text(x0 + w * cell / 2, y0 - h * cell - 0.15, sublabel, ha="center", va="top", fontsize=9,
            color="0.25")
    return {"left": x0, "right": x0 + w * cell, "mid": y0 - h * cell / 2, "bottom": y0 - h * cell}


def network_figure(relu: bool = False, backward: bool = False):
    """A diagram of the tiny network: each array drawn as a grid of its shape, the operations
    on the arrows.  ``relu=True`` adds the ReLU of example (b); ``backward=True`` writes, under
    each array, the name of the gradient that flows back into it (red arrows, right to left).
    Returns the figure."""
    cell = 0.22
    stages = [("XX", 6, 6, "#dbe9f6", "image 6×6"),
              ("L1", 4, 4, "#dbe9f6", "4×4")]
    ops = ["∗ W (3×3)\nconv"]
    if relu:
        stages.append(("ReLU(L1)", 4, 4, "#e5f5e0", "4×4"))
        ops.append("ReLU")
    stages += [("L1Max", 2, 2, "#fde0c5", "2×2"),
               ("flat", 1, 4, "#fde0c5", "1×4"),
               ("L2", 1, 1, "#f2d7ee", "1×1")]
    ops += ["max pool\n2×2, stride 2", "flatten\n(row-major)", "· WW (4×1)\ndense"]
    grads = {"XX": "dL/dXX", "L1": "dL/dL1", "ReLU(L1)": "dL/dReLU(L1)", "L1Max": "dL/dL1Max",
             "flat": "dL/dflat", "L2": "dL/dL2\n= L2 − target"}
    gap = 1.3
    fig_w = sum(w for _, _, w, _, _ in stages) * cell + gap * len(stages) + 2.6
    scale = min(0.8, 9.4 / fig_w)        # at most 9.4 in (940 px) wide: it fits the page's output area
    fig, ax = plt.subplots(figsize=(scale * fig_w, (2.9 if backward else 2.2) * scale / 0.8))
    x, top = 0.2, 1.0
    boxes = []
    for name, h, w, face, sub in stages:
        boxes.append(_grid(ax, x, top, h, w, cell, face, name, sub))
        x = boxes[-1]["right"] + gap
    y_arrow = top - cell * 0.5
    for a, b, op in zip(boxes[:-1], boxes[1:], ops):
        ax.add_patch(FancyArrowPatch((a["right"] + 0.08, y_arrow), (b["left"] - 0.08, y_arrow),
                                     arrowstyle="-|>", mutation_scale=14, color="0.2", linewidth=1.4))
        ax.text((a["right"] + b["left"]) / 2, y_arrow + 0.12, op, ha="center", va="bottom", fontsize=7.5)
    last = boxes[-1]
    loss_x = last["right"] + gap
    ax.add_patch(FancyArrowPatch((last["right"] + 0.08, y_arrow), (loss_x - 0.08, y_arrow),
                                 arrowstyle="-|>", mutation_scale=14, color="0.2", linewidth=1.4))
    ax.text((last["right"] + loss_x) / 2, y_arrow + 0.12, "cost", ha="center", va="bottom", fontsize=8.5)
    ax.text(loss_x, y_arrow, "loss = ½(L2 − target)²", ha="left", va="center", fontsize=10,
            bbox=dict(boxstyle="round", facecolor="#fff7bc", edgecolor="0.4"))
    right = loss_x + 2.4
    bottom = min(b["bottom"] for b in boxes) - 0.5
    if backward:
        y_back = bottom - 0.35
        names = [s[0] for s in stages]
        for b, name in zip(boxes, names):
            ax.text((b["left"] + b["right"]) / 2, y_back - 0.1, grads[name], ha="center", va="top",
                    fontsize=8, color=HIGHLIGHT)
        for a, b, op in zip(boxes[:-1], boxes[1:], ops):
            ax.add_patch(FancyArrowPatch((b["left"] - 0.1, y_back), (a["right"] + 0.1, y_back),
                                         arrowstyle="-|>", mutation_scale=12, color=HIGHLIGHT,
                                         linewidth=1.2))
            param = "dL/dW (3×3)" if op.startswith("∗ W") else "dL/dWW (4×1)" if op.startswith("· WW") else None
            if param:  # the parameters' gradients are collected on the way
                ax.text((a["right"] + b["left"]) / 2, y_back + 0.12, param, ha="center", va="bottom",
                        fontsize=8, color=HIGHLIGHT, fontweight="bold")
        ax.add_patch(FancyArrowPatch((loss_x + 0.3, y_back), (last["right"] + 0.1, y_back),
                                     arrowstyle="-|>", mutation_scale=12, color=HIGHLIGHT, linewidth=1.2))
        ax.text(loss_x + 0.4, y_back, "backward pass", ha="left", va="center", fontsize=9, color=HIGHLIGHT)
        bottom = y_back - 0.75
    ax.set_xlim(0, right)
    ax.set_ylim(bottom, top + 0.75)
    ax.set_aspect("equal")
    ax.axis("off")
    fig.tight_layout()
    return fig


def conv_window_figure(XX, W, L1, i: int, j: int):
    """Three panels: the image with the 3x3 window read by output cell ``(i, j)``, the kernel,
    and L1 with cell ``(i, j)`` outlined; the title spells out the sum of products.
    Returns the figure."""
    XX, W, L1 = (np.asarray(a, dtype=float) for a in (XX, W, L1))
    kh, kw = W.shape
    fig, axes = plt.subplots(1, 3, figsize=(9.2, 3.4), gridspec_kw={"width_ratios": [XX.shape[1], kw + 1, L1.shape[1]]})
    draw_matrix(axes[0], XX, title="XX (6×6)", diverging=True)
    outline_window(axes[0], i, j, kh, kw, color=WINDOW)
    draw_matrix(axes[1], W, title="W (3×3)", diverging=True)
    draw_matrix(axes[2], L1, title="L1 (4×4)", diverging=True)
    outline_window(axes[2], i, j, 1, 1, color=WINDOW)
    terms = [f"({XX[i + r, j + s]:g})({W[r, s]:g})" for r in range(kh) for s in range(kw)
             if XX[i + r, j + s] != 0 and W[r, s] != 0]
    fig.suptitle(f"L1[{i},{j}] = Σ XX[{i}+r, {j}+s]·W[r,s] = " + " + ".join(terms)
                 + f" = {L1[i, j]:g}", fontsize=9.5)
    fig.tight_layout()
    return fig


def _window_grid(ax, H: int, W: int, k: int, color: str = ACCENT):
    for r in range(0, H - k + 1, k):
        for c in range(0, W - k + 1, k):
            outline_window(ax, r, c, k, k, color=color, linewidth=2.0, linestyle="--", inset=0.04)


def pool_figure(A, cache: core.MaxPoolCache, pooled, left_title: str = "L1 (4×4)",
                right_title: str = "L1Max (2×2)"):
    """Max pooling drawn the article's way: the 4x4 map with its 2x2 windows (dashed) and the
    maximum of each window circled, read from the cache (``cache.rows``, ``cache.cols``);
    next to it the pooled 2x2 map.  Returns the figure."""
    A = np.asarray(A, dtype=float)
    pooled = np.asarray(pooled, dtype=float)
    k = cache.kernel_size[0]
    fig, axes = plt.subplots(1, 2, figsize=(6.4, 3.3), gridspec_kw={"width_ratios": [A.shape[1], pooled.shape[1] + 1]})
    draw_matrix(axes[0], A, title=left_title, diverging=True)
    _window_grid(axes[0], A.shape[0], A.shape[1], k)
    circle_cells(axes[0], cache.rows.reshape(-1), cache.cols.reshape(-1))
    draw_matrix(axes[1], pooled, title=right_title, diverging=True)
    circle_cells(axes[1], *np.nonzero(np.ones(pooled.shape, bool)))
    fig.tight_layout()
    return fig


def flatten_figure(M):
    """The 2x2 map and its row-major "vectorised" 1x4 version, each cell tagged with its
    flat index.  Returns the figure."""
    M = np.asarray(M, dtype=float)
    flat = M.reshape(1, -1)
    fig, axes = plt.subplots(1, 2, figsize=(6.4, 2.4), gridspec_kw={"width_ratios": [M.shape[1] + 1, flat.shape[1]]})
    lim = 3 * float(np.max(np.abs(M))) or 1.0  # pale colours: the index tags stay readable
    draw_matrix(axes[0], M, title=f"L1Max {M.shape[0]}×{M.shape[1]}", cmap="RdBu_r", vmin=-lim, vmax=lim)
    draw_matrix(axes[1], flat, title=f"flattened 1×{flat.shape[1]}", cmap="RdBu_r", vmin=-lim, vmax=lim)
    for ax in axes:
        for t in ax.texts:
            t.set_color("black")
    for n in range(M.size):
        r, c = divmod(n, M.shape[1])
        for ax, (rr, cc) in ((axes[0], (r, c)), (axes[1], (0, n))):
            ax.text(cc + 0.44, rr - 0.4, f"#{n}", ha="right", va="top", fontsize=8, color="0.15",
                    fontweight="bold")
    fig.tight_layout()
    return fig


def route_figure(dpooled, cache: core.MaxPoolCache, dA, relu_mask=None, dL1=None, fmt: Optional[str] = "{:g}"):
    """The gradient through the max pool (and the ReLU): dL/dL1Max (2x2), the gradient expanded
    over the windows (4x4), the 0/1 mask of the maxima (circled), their product dL/dA; with
    ``relu_mask`` and ``dL1`` two more panels, ReLU' and dL/dL1 = dL/dA * ReLU' (two rows of
    three).  The maxima are circled (read from the cache).  Returns the figure."""
    dpooled = np.asarray(dpooled, dtype=float)
    k = cache.kernel_size
    expanded = core.expand_gradient(dpooled, k)
    mask = core.maxpool2d_mask(cache).reshape(cache.x_shape[-2:])
    rows, cols = cache.rows.reshape(-1), cache.cols.reshape(-1)
    mats = [dpooled, expanded, mask, np.asarray(dA, dtype=float)]
    titles = ["dL/dL1Max (2×2)", "expanded (4×4)", "mask of the maxima",
              "dL/dL1" if relu_mask is None else "dL/dReLU(L1)"]
    if relu_mask is not None:
        mats += [np.asarray(relu_mask, dtype=float), np.asarray(dL1, dtype=float)]
        titles += ["ReLU′(L1) = [L1 > 0]", "dL/dL1"]
    ncols = 3 if len(mats) == 6 else len(mats)
    nrows = len(mats) // ncols
    fig, axes = plt.subplots(nrows, ncols, figsize=(2.3 * ncols, 2.45 * nrows), squeeze=False)
    for n, (ax, m, t) in enumerate(zip(axes.ravel(), mats, titles)):
        m = m + 0.0  # -0.0 (a negative gradient times a 0 of the mask) is shown as 0
        is_mask = t.startswith("mask") or t.startswith("ReLU")
        draw_matrix(ax, m, title=t, diverging=not is_mask, cmap="Greys" if is_mask else "Blues",
                    vmin=0 if is_mask else None, vmax=3 if is_mask else None, fmt=fmt)
        if m.shape == tuple(cache.x_shape[-2:]):
            _window_grid(ax, m.shape[0], m.shape[1], k[0])
            if n >= 2:
                circle_cells(ax, rows, cols)
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------------------
# The explorable: change one pixel, follow the gradient back to the image
# ---------------------------------------------------------------------------

#: The values the explorable offers for the chosen pixel ("as drawn" keeps the image's own value).
PIXEL_VALUES = ("as drawn", -6, 6)


def tiny_state(XX=XX, relu: bool = False, pixel=None) -> dict:
    """What the explorable draws for image ``XX`` (6x6) with or without the ReLU: the image
    (``pixel`` = ``(row, col)`` marked ``sel``), what the pool sees (its maxima ``win``, a tie of a
    window ``tie``), the gradient G_L1 that the pool routes back, and G_XX.  Links: hover a cell of
    G_XX to see which cells of L1 read that pixel and which of them carry gradient (the sum of
    G_L1[i, j] * W[u - i, v - j]); hover a cell of L1 to see its 3x3 patch of the image.  Every
    number comes from :func:`forward` and :func:`backward` (the core)."""
    def fmt(v):  # the tiny network's numbers are exact binary fractions: print them in full
        return format_value(v, "{:g}") if v != 0 else "0"

    p = forward(XX, W, WW, TARGET, relu=relu)
    g = backward(p)
    XX = p.XX
    kh, kw = W.shape
    Ho, Wo = p.A.shape
    won = core.maxpool2d_mask(p.pool_cache)[0, 0] > 0
    shares = core.maxpool2d_winners(p.A, 2, 2)                      # (2, 2, 2, 2); ties: who else
    A_cls = np.where(won, "win", "").astype(object)
    for i, j in np.ndindex(2, 2):
        win = p.A[2 * i:2 * i + 2, 2 * j:2 * j + 2]
        tied = (win == win.max()) & (shares[i, j] == 0)
        for a, b in zip(*np.nonzero(tied)):
            A_cls[2 * i + a, 2 * j + b] = "tie"
    x_cls = np.full(XX.shape, "", dtype=object)
    if pixel is not None:
        x_cls[pixel] = "sel"
    name = "ReLU(L1)" if relu else "L1"
    dA, dXX = g["dL1"] + 0.0, g["dXX"] + 0.0
    lim = float(np.max(np.abs(dXX))) or 1.0
    panels = [
        panel("XX", "image XX", XX, scale="div", classes=x_cls),
        panel("A", f"{name}, maxima marked", p.A, scale="div", classes=A_cls,
              windows=[window("A", 2 * i, 2 * j, 2, 2) for i in range(Ho // 2) for j in range(Wo // 2)]),
        panel("G", "G_L1 = dL/dL1", dA, scale="div", text=[[fmt(v) for v in row] for row in dA]),
        panel("dXX", "G_XX = dL/dXX", dXX, scale="div", limit=lim, text=[[fmt(v) for v in row] for row in dXX]),
    ]
    links = {}
    for i, j in np.ndindex(Ho, Wo):
        state = ("a maximum: G_L1 = " + fmt(dA[i, j]) if won[i, j] else "not a maximum: G_L1 = 0")
        text = f"{name}[{i},{j}] = {fmt(p.A[i, j])} reads the 3×3 patch of XX outlined; {state}."
        cells = [cell_id("A", i, j), cell_id("G", i, j)]
        if dA[i, j] != 0:
            cells += [cell_id("dXX", i + a, j + b) for a in range(kh) for b in range(kw)]
        lk = link(cells, [window("XX", i, j, kh, kw)], text)
        links[cell_id("A", i, j)] = links[cell_id("G", i, j)] = lk
    for u, v in np.ndindex(*XX.shape):
        readers = [(i, j) for i in range(max(0, u - kh + 1), min(Ho, u + 1))
                   for j in range(max(0, v - kw + 1), min(Wo, v + 1))]
        carry = [(i, j) for i, j in readers if dA[i, j] != 0]
        if carry:
            terms = " + ".join(f"({fmt(dA[i, j])})({fmt(W[u - i, v - j])})" for i, j in carry)
            text = (f"XX[{u},{v}] is read by {len(readers)} cells of L1; {len(carry)} carry gradient: "
                    f"G_XX[{u},{v}] = {terms} = {fmt(dXX[u, v])}.")
        else:
            text = (f"XX[{u},{v}] is read by {len(readers)} cells of L1, none of them a maximum "
                    f"that passes gradient: G_XX[{u},{v}] = 0.")
        cells = [cell_id("XX", u, v), cell_id("dXX", u, v)] + [cell_id(q, i, j) for i, j in carry for q in ("A", "G")]
        lk = link(cells, [window("XX", i, j, kh, kw) for i, j in carry], text)
        links[cell_id("XX", u, v)] = links[cell_id("dXX", u, v)] = lk
    maxima = ", ".join(f"({int(r)},{int(c)})" for r, c in zip(p.pool_cache.rows.ravel(), p.pool_cache.cols.ravel()))
    caption = f"L2 = {p.L2[0, 0]:g}, loss = {p.loss:g}; maxima of {name} at {maxima}."
    ties = [f"({i},{j})" for i, j in np.ndindex(2, 2) if (A_cls[2 * i:2 * i + 2, 2 * j:2 * j + 2] == "tie").any()]
    if ties:
        caption += f" Tie in window {', '.join(ties)}: the first maximum (row-major) gets the gradient."
    return {"panels": panels, "links": links, "caption": caption, "focus": cell_id("dXX", 0, 0)}


class TinyNetworkRoute(Explorable):
    """Chapter 5: change one pixel of the image, with or without the ReLU, and watch the maxima
    and the whole route of the gradient back to the image follow.

    Controls: the pixel's row and column, its value (:data:`PIXEL_VALUES`; "as drawn" keeps the
    image's own value), the ReLU after the convolution (example (b))."""

    TITLE = "The tiny network backwards: the route is decided by the forward pass"

    def __init__(self, **kw):
        super().__init__(**kw)

    def make_controls(self):
        return [control("row", "pixel row", list(range(6)), default=1),
                control("col", "pixel column", list(range(6)), default=1),
                control("value", "its value", list(PIXEL_VALUES), default="as drawn",
                        labels=["as drawn", "−6", "6"]),
                control("relu", "ReLU after the convolution", [False, True], kind="toggle")]

    def state(self, row, col, value, relu):
        xx = XX.copy()
        if value != "as drawn":
            xx[row, col] = float(value)
        return tiny_state(xx, relu=relu, pixel=(row, col))
