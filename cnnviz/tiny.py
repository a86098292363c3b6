"""Chapters 1, 4 and 5: the tiny network of the source article, with one set of numbers
for all three, the forward and backward pass chained from the core, the states of the
chapters' figures and chapter 5's explorable.

The network is Jae Duk Seo's (2018) example, with the article's names and our own
numbers::

    XX (6×6) --conv W (3×3), bias b--> L1 (4×4) --[ReLU]--> A1 (4×4)
        --max pool 2×2--> L1Max (2×2) --flatten--> flat (1×4) --times WW (4×1)-->
        L2 (1×1) --> loss L = ½ (L2 − t)²

Example (a) has no activation (the pool reads L1); example (b) puts the ReLU after the
convolution (the pool reads A1 = ReLU(L1)).  The image and the kernel are small integers
drawn with seed :data:`SEED`; the bias is 0, the dense weights are integers and halves,
the target an integer, so every number of both passes is exact.  The seed was chosen for
what chapter 4 needs: the pre-activation L1 has one entry exactly 0, the maximum of its
pooling window (ReLU′(0)), and one window that is entirely negative (a dead window);
every window's maximum beats its runner-up by at least 1 (no ties before the ReLU).

Every piece of math is a call to :mod:`mlp_cnn_core`; this module only chains the calls
and says what to draw.  The core works on ``(N, C, H, W)`` arrays: :func:`forward` adds
the two axes of length 1 on the way in and drops them on the way out, so everything here
is a plain 2-D matrix.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Optional, Tuple

import numpy as np
from matplotlib.patches import FancyArrowPatch, Rectangle

import mlp_cnn_core as core
import mlp_cnn_train as train

from . import mplfig
from .draw import format_value, sub
from .explorable import Explorable, cell_id, control, link, panel, pool_windows, window

__all__ = [
    "SEED",
    "XX",
    "W",
    "BIAS",
    "WW",
    "TARGET",
    "draw_values",
    "values",
    "TinyPass",
    "forward",
    "backward",
    "loss",
    "network_figure",
    "conv_state",
    "pool_state",
    "flatten_state",
    "route_state",
    "rotation_state",
    "tiny_state",
    "TinyNetworkRoute",
    "PIXEL_VALUES",
]

# ---------------------------------------------------------------------------
# The values (one definition for chapters 1, 4 and 5)
# ---------------------------------------------------------------------------

#: The seed of the image and the kernel (small integers: every number stays exact).
SEED = 3717


def draw_values(seed: int = SEED) -> Tuple[np.ndarray, np.ndarray]:
    """``(XX (6, 6), W (3, 3))``: seeded random integers, the image in [-2, 2], the
    kernel in [-1, 1].  ``draw_values(SEED)`` is the book's network; other seeds give
    chapter 4's explorable its new images and kernels."""
    rng = np.random.default_rng(int(seed))
    xx = rng.integers(-2, 3, size=(6, 6)).astype(np.float64)
    w = rng.integers(-1, 2, size=(3, 3)).astype(np.float64)
    return xx, w


def _frozen(a) -> np.ndarray:
    a = np.array(a, dtype=np.float64)
    a.setflags(write=False)  # shared by three chapters: nobody may change them by accident
    return a


_xx, _w = draw_values(SEED)
#: The 6x6 input image (integers from -2 to 2).
XX = _frozen(_xx)
#: The 3x3 kernel (integers from -1 to 1; it changes under a 180-degree rotation).
W = _frozen(_w)
#: The convolution's bias (the article has none; chapter 4 moves it).
BIAS = 0.0
#: The 4x1 weights of the dense layer (integers and halves: exact in floating point).
WW = _frozen([[1.0], [-1.0], [0.5], [-1.0]])
#: The target t of the single output, 1x1.
TARGET = _frozen([[3.0]])


def values() -> Dict[str, np.ndarray]:
    """Fresh, writable copies of ``XX, W, b, WW, target`` (for training, which updates
    them); ``b`` has shape ``(1,)``, one bias per filter."""
    return {
        "XX": XX.copy(),
        "W": W.copy(),
        "b": np.array([BIAS]),
        "WW": WW.copy(),
        "target": TARGET.copy(),
    }


# ---------------------------------------------------------------------------
# The forward and backward pass, chained from the core
# ---------------------------------------------------------------------------


@dataclass
class TinyPass:
    """Everything one forward pass computed (2-D arrays) and the caches the backward
    pass needs."""

    XX: np.ndarray
    W: np.ndarray
    b: np.ndarray  # (1,) the convolution's bias
    WW: np.ndarray
    target: np.ndarray
    relu: bool
    L1: (
        np.ndarray
    )  # (4, 4) the convolution's output (the pre-activation when relu=True)
    A1: (
        np.ndarray
    )  # (4, 4) what the pool reads: ReLU(L1), or L1 itself without the ReLU
    L1Max: np.ndarray  # (2, 2)
    flat: np.ndarray  # (1, 4) L1Max "vectorised" in row-major order
    L2: np.ndarray  # (1, 1)
    loss: float
    conv_cache: core.ConvCache
    relu_cache: Optional[core.ReluCache]
    pool_cache: core.MaxPoolCache
    flat_cache: core.FlattenCache
    dense_cache: core.DenseCache


def forward(XX=XX, W=W, WW=WW, target=TARGET, relu: bool = False, b=BIAS) -> TinyPass:
    """The tiny network's forward pass (example (a) ``relu=False``, example (b)
    ``relu=True``).

    ``XX (6, 6)``, ``W (3, 3)``, ``WW (4, 1)``, ``target (1, 1)``, ``b`` a number or
    ``(1,)``; any image at least 4x4 whose convolution output has even sides works too.
    """
    XX, W, WW, target = (np.asarray(a, dtype=np.float64) for a in (XX, W, WW, target))
    b = np.asarray(b, dtype=np.float64).reshape(1)
    v = train.small_cnn_forward(XX[None, None], W[None, None], WW, conv_b=b, relu=relu,
                                layers=core)
    value, _ = core.l2_loss(v["out"], target)
    return TinyPass(XX=XX, W=W, b=b, WW=WW, target=target, relu=relu, L1=v["conv"][0, 0],
                    A1=v["act"][0, 0], L1Max=v["pool"][0, 0], flat=v["flat"], L2=v["out"],
                    loss=float(value), conv_cache=v["conv_cache"], relu_cache=v["relu_cache"],
                    pool_cache=v["pool_cache"], flat_cache=v["flat_cache"],
                    dense_cache=v["dense_cache"])


def backward(p: TinyPass) -> Dict[str, np.ndarray]:
    """Every gradient of the tiny network, from the loss down to the image (2-D arrays;
    ``dX`` holds ∂L/∂X).

    Keys: ``dL2 (1,1)``, ``dWW (4,1)``, ``dflat (1,4)``, ``dL1Max (2,2)``, ``dA1 (4,4)``
    (out of the max pool), ``dL1 (4,4)`` (after the ReLU mask; equal to ``dA1`` without
    ReLU), ``dW (3,3)``, ``db (1,)``, ``dXX (6,6)``.
    """
    _, dL2 = core.l2_loss(p.L2, p.target)
    g = train.small_cnn_backward(dL2, vars(p), layers=core)
    return {"dL2": dL2, "dWW": g["ddense_w"], "dflat": g["dflat"], "dL1Max": g["dpool"][0, 0],
            "dA1": g["dact"][0, 0], "dL1": g["dconv"][0, 0], "dW": g["dw"][0, 0],
            "db": g["dconv_b"], "dXX": g["dx"][0, 0]}


def loss(XX=XX, W=W, WW=WW, target=TARGET, relu: bool = False, b=BIAS) -> float:
    """The loss alone (a scalar function to hand to ``core.numerical_gradient``)."""
    return forward(XX, W, WW, target, relu, b).loss


# ---------------------------------------------------------------------------
# The network diagram (matplotlib, drawn for the column)
# ---------------------------------------------------------------------------


def _grid(
    ax, x0: float, y0: float, h: int, w: int, cell: float, face: str
) -> Dict[str, float]:
    """An ``h x w`` grid of empty cells centred vertically on ``y0``, left edge at
    ``x0``."""
    top = y0 + h * cell / 2
    for r in range(h):
        for c in range(w):
            ax.add_patch(
                Rectangle(
                    (x0 + c * cell, top - (r + 1) * cell),
                    cell,
                    cell,
                    facecolor=face,
                    edgecolor=mplfig.FG,
                    linewidth=0.6,
                    alpha=0.9,
                )
            )
    return {
        "left": x0,
        "right": x0 + w * cell,
        "top": top,
        "bottom": top - h * cell,
        "mid": x0 + w * cell / 2,
    }


def network_figure(relu: bool = False, backward: bool = False):
    """A diagram of the tiny network, drawn for the book's column
    (:mod:`cnnviz.mplfig`): each array as a grid of its shape with its name above, the
    operations on the arrows. ``relu=True`` adds the ReLU of example (b);
    ``backward=True`` adds, under each array, the gradient that the backward pass brings
    into it (arrows right to left), and the parameters' gradients collected on the way.
    Returns the figure (show it with ``show_figure``)."""
    cell = 0.14
    stages = [("XX", 6, 6, "#9ecae1"), ("L1", 4, 4, "#9ecae1")]
    ops = [("conv W", "+ b")]
    if relu:
        stages.append(("A1", 4, 4, "#a1d99b"))
        ops.append(("ReLU", ""))
    stages += [
        ("L1Max", 2, 2, "#fdae6b"),
        ("flat", 1, 4, "#fdae6b"),
        ("L2", 1, 1, "#d8b5de"),
    ]
    ops += [("max pool", "2×2"), ("flatten", ""), ("· WW", "")]
    gap = 0.74 if relu else 0.8
    width_in = sum(w for _, _, w, _ in stages) * cell + gap * len(stages) + 0.9
    height = 190 if backward else 130
    fig, ax = mplfig.subplots(height=height)
    y = 0.0
    boxes = []
    x = 0.05
    for name, h, w, face in stages:
        boxes.append(_grid(ax, x, y, h, w, cell, face))
        ax.text(
            boxes[-1]["mid"],
            6 * cell / 2 + 0.06,
            name,
            ha="center",
            va="bottom",
            fontsize=10,
            fontweight="bold",
            color=mplfig.FG,
        )
        x = boxes[-1]["right"] + gap
    arrow = dict(arrowstyle="-|>", mutation_scale=11, color=mplfig.FG, linewidth=1.1)
    for a, b, (op1, op2) in zip(boxes[:-1], boxes[1:], ops):
        ax.add_patch(
            FancyArrowPatch((a["right"] + 0.05, y), (b["left"] - 0.05, y), **arrow)
        )
        mid = (a["right"] + b["left"]) / 2
        ax.text(
            mid, y + 0.07, op1, ha="center", va="bottom", fontsize=9, color=mplfig.FG
        )
        if op2:
            ax.text(
                mid, y - 0.07, op2, ha="center", va="top", fontsize=9, color=mplfig.FG
            )
    last = boxes[-1]
    loss_x = last["right"] + 0.35
    ax.add_patch(
        FancyArrowPatch((last["right"] + 0.05, y), (loss_x - 0.02, y), **arrow)
    )
    ax.text(
        loss_x,
        y,
        "L = ½(L2 − t)²",
        ha="left",
        va="center",
        fontsize=9.5,
        color=mplfig.FG,
    )
    bottom = -6 * cell / 2 - 0.1
    if backward:
        red = "#c0392b"
        y_back = bottom - 0.22
        grads = {
            "XX": "∂L/∂XX",
            "L1": "∂L/∂L1",
            "A1": "∂L/∂A1",
            "L1Max": "∂L/∂L1Max",
            "flat": "∂L/∂flat",
            "L2": "∂L/∂L2",
        }
        for bx, (name, *_rest) in zip(boxes, stages):
            ax.text(
                bx["mid"],
                y_back - 0.04,
                grads[name],
                ha="center",
                va="top",
                fontsize=9,
                color=mplfig.FG,
            )  # text in the page's colour: no red reads on both themes
        back = dict(arrowstyle="-|>", mutation_scale=10, color=red, linewidth=1.0)
        for a, b, (op1, _) in zip(boxes[:-1], boxes[1:], ops):
            ax.add_patch(
                FancyArrowPatch(
                    (b["left"] - 0.04, y_back), (a["right"] + 0.04, y_back), **back
                )
            )
            param = (
                "∂L/∂W, ∂L/∂b"
                if op1 == "conv W"
                else "∂L/∂WW"
                if op1 == "· WW"
                else None
            )
            if param:  # the parameters' gradients are collected on the way
                ax.text(
                    (a["right"] + b["left"]) / 2,
                    y_back - 0.26,
                    param,
                    ha="center",
                    va="top",
                    fontsize=9,
                    color=mplfig.FG,
                    fontweight="bold",
                )
        ax.add_patch(
            FancyArrowPatch(
                (loss_x + 0.3, y_back), (last["right"] + 0.04, y_back), **back
            )
        )
        ax.text(
            loss_x + 0.35,
            y_back,
            "backward",
            ha="left",
            va="center",
            fontsize=9,
            color=mplfig.FG,
        )
        bottom = y_back - 0.5
    ax.set_xlim(0, max(width_in, loss_x + 1.1))
    ax.set_ylim(bottom, 6 * cell / 2 + 0.3)
    ax.set_aspect("equal")
    ax.axis("off")
    return fig


# ---------------------------------------------------------------------------
# States of the chapters' figures, drawn by the explorables' view:
# cnnviz.figure(cnnviz.call(state_function, ...))
# ---------------------------------------------------------------------------


def _panel(*args, **kwargs) -> dict:
    """:func:`~cnnviz.explorable.panel` with every number in full: the tiny network's
    numbers are exact binary fractions (−13.75, not −13.8)."""
    return panel(*args, fmt="{:g}", **kwargs)


def _gradient_panel(pid: str, title: str, grad: np.ndarray, limit: float, **kwargs) -> dict:
    """A gradient on the diverging scale (``limit`` fixes its range), its zero cells muted."""
    return _panel(pid, title, grad, scale="div", limit=limit, classes=np.where(grad == 0, "zero", ""), **kwargs)


def _fmt(v) -> str:
    """The tiny network's numbers are exact binary fractions: write them in full."""
    return format_value(float(v) + 0.0, "{:g}")


def conv_state(XX=XX, W=W, i: int = 1, j: int = 2, b: float = BIAS) -> dict:
    """One cell of the convolution: the image with the 3x3 patch that output cell ``(i,
    j)`` reads, the kernel, and L1 = XX ⋆ W + b with that cell marked.  Links: each cell
    of L1 shows its patch and its sum of products."""
    XX, W = np.asarray(XX, float), np.asarray(W, float)
    out, _ = core.conv2d_forward(XX[None, None], W[None, None], np.array([float(b)]))
    L1 = out[0, 0]
    kh, kw = W.shape
    links = {}
    for u, v in np.ndindex(*L1.shape):
        terms = [
            f"({_fmt(XX[u + a, v + c])})({_fmt(W[a, c])})"
            for a in range(kh)
            for c in range(kw)
            if XX[u + a, v + c] != 0 and W[a, c] != 0
        ]
        bias = f" + {_fmt(b)}" if b else ""
        text = (
            f"{sub('L1', u, v)} = the outlined patch of XX times W, cell by cell, "
            f"summed{' (zero products left out)' if len(terms) < kh * kw else ''}: "
            f"{' + '.join(terms) or '0'}{bias} = {_fmt(L1[u, v])}."
        )
        links[cell_id("L1", u, v)] = link([], [window("XX", u, v, kh, kw)], text)
    return {
        "panels": [
            _panel("XX", "XX (6×6)", XX, scale="div"),
            _panel("W", "W (3×3)", W, scale="div", op="⋆"),
            _panel("L1", "L1 (4×4)", L1, scale="div", op="="),
        ],
        "links": links,
        "caption": "Each cell of L1 sums the products of W with the 3×3 patch of XX "
        "under it.",
        "legend": {
            "follow.cell": "the cell of L1 followed",
            "follow.windows": "the patch it reads",
        },
        "focus": cell_id("L1", i, j),
    }


def _winner_classes(A: np.ndarray, k: int = 2) -> np.ndarray:
    """``win`` on each window's first maximum (row-major, as the core), ``tie`` on the
    other maxima of a window that has several; ties found with the core's ``ties="all"``
    winners."""
    won = core.maxpool2d_winners(A, k, k)  # (Ho, Wo, k, k): 1 for the first maximum
    every = core.maxpool2d_winners(A, k, k, ties="all")  # 1 for every tied maximum
    cls = np.full(A.shape, "", dtype=object)
    for i, j, a, c in zip(*np.nonzero(every)):
        cls[k * i + a, k * j + c] = "win" if won[i, j, a, c] else "tie"
    return cls


def pool_state(A, name: str = "L1") -> dict:
    """Max pooling drawn the article's way: the 4x4 map ``A`` (named ``name``: L1, or A1
    after the ReLU) with its 2x2 windows, each window's maximum marked (``win``; ``tie``
    for the other maxima of a tied window), and L1Max, each cell in its window's colour.
    """
    A = np.asarray(A, float)
    M_4d, cache = core.maxpool2d_forward(A[None, None], 2, 2)
    M = M_4d[0, 0]
    rows, cols = cache.rows[0, 0], cache.cols[0, 0]
    lim = float(np.abs(A).max()) or 1.0
    links = {}
    for i, j in np.ndindex(*M.shape):
        r, c = int(rows[i, j]), int(cols[i, j])
        text = (
            f"{sub('L1Max', i, j)} = the maximum of window ({i}, {j}) = "
            f"{_fmt(M[i, j])}, at {sub(name, r, c)}: the cell the backward pass will "
            "send its gradient to."
        )
        links[cell_id("M", i, j)] = link(
            [cell_id("M", i, j), cell_id("A", r, c)],
            [window("A", 2 * i, 2 * j, 2, 2)],
            text,
        )
    for u, v in np.ndindex(*A.shape):
        i, j = u // 2, v // 2
        r, c = int(rows[i, j]), int(cols[i, j])
        who = (
            "it is the maximum"
            if (r, c) == (u, v)
            else f"its maximum is {sub(name, r, c)}"
        )
        links[cell_id("A", u, v)] = link(
            [cell_id("A", u, v), cell_id("M", i, j)],
            [window("A", 2 * i, 2 * j, 2, 2)],
            f"{sub(name, u, v)} = {_fmt(A[u, v])} lies in window ({i}, {j}); {who}.",
        )
    cls = _winner_classes(A)
    caption = "Each 2×2 window of L1 keeps its maximum."
    if (cls == "tie").any():
        caption = (
            "Each 2×2 window keeps its maximum; of equal values the first (row by row)."
        )
    if name != "L1":
        caption = caption.replace("of L1 ", f"of {name} ")
    return {
        "panels": [
            _panel(
                "A",
                f"{name} (4×4)",
                A,
                scale="div",
                limit=lim,
                classes=cls,
                windows=pool_windows("A", 2),
            ),
            _panel("M", "L1Max (2×2)", M, scale="div", limit=lim, op="→"),
        ],
        "links": links,
        "caption": caption,
        "legend": {
            "window": "pooling window",
            "win": "maximum of its window (kept)",
            "tie": "equal to the maximum (not kept)",
        },
        "focus": cell_id("M", 0, 0),
    }


def flatten_state(M) -> dict:
    """The 2x2 map L1Max and its row-major "vectorised" 1x4 version flat:
    flat<sub>k</sub> = L1Max<sub>ij</sub> with k = 2i + j (each column of flat labelled
    with its (i, j))."""
    M = np.asarray(M, float)
    flat = M.reshape(1, -1)
    links = {}
    for k in range(flat.shape[1]):
        i, j = divmod(k, M.shape[1])
        lk = link(
            [cell_id("M", i, j), cell_id("flat", 0, k)],
            [],
            f"{sub('flat', k)} = {sub('L1Max', i, j)} = {_fmt(M[i, j])}: "
            f"k = 2i + j = {k}.",
        )
        links[cell_id("M", i, j)] = links[cell_id("flat", 0, k)] = lk
    lim = float(np.abs(M).max()) or 1.0
    ij = [f"({i},{j})" for i, j in np.ndindex(*M.shape)]
    return {
        "panels": [
            _panel(
                "M",
                "L1Max (2×2)",
                M,
                scale="div",
                limit=lim,
                row_labels=["i=0", "i=1"],
                col_labels=["j=0", "j=1"],
            ),
            _panel(
                "flat",
                "flat (1×4)",
                flat,
                scale="div",
                limit=lim,
                op="→",
                col_labels=ij,
                subtitle="column k = 2i + j holds (i, j)",
            ),
        ],
        "links": links,
        "caption": "Row by row: the first row of L1Max, then the second.",
        "legend": {"follow.cell": "followed cell", "follow.cells": "the same number"},
        "focus": cell_id("flat", 0, 2),
    }


def route_state(A1, dL1Max, L1=None) -> dict:
    """The gradient through the max pool the article's way, and through the ReLU when
    ``L1`` is given: ∂L/∂L1Max (2x2), expanded over the windows (4x4), times the 0/1
    mask of the maxima of ``A1`` (the map the pool read) gives ∂L/∂L1 (without ReLU) or
    ∂L/∂A1; with ``L1``, a second row: ∂L/∂A1 times ReLU′(L1) = 1[L1 > 0] gives ∂L/∂L1.
    All from the core."""
    A1, G = np.asarray(A1, float), np.asarray(dL1Max, float)
    _, cache = core.maxpool2d_forward(A1[None, None], 2, 2)
    expanded = core.expand_gradient(G, 2)
    mask = core.maxpool2d_mask(cache)[0, 0].astype(float)
    dA1 = core.maxpool2d_backward(G[None, None], cache)[0, 0] + 0.0
    lim = float(np.abs(G).max()) or 1.0
    won = mask > 0
    relu = L1 is not None
    out_name = "∂L/∂A1" if relu else "∂L/∂L1"
    panels = [
        _panel("dM", "∂L/∂L1Max", G, scale="div", limit=lim),
        _panel("exp", "expanded", expanded, scale="div", limit=lim, op="→", windows=pool_windows("exp", 2)),
        _panel("mask", "mask of the maxima", mask, scale="none", op="⊙", classes=np.where(won, "win", "zero")),
        _gradient_panel("dA", out_name, dA1, lim, op="="),
    ]
    links = {}
    name = "A1" if relu else "L1"
    for i, j in np.ndindex(*G.shape):
        r, c = int(cache.rows[0, 0, i, j]), int(cache.cols[0, 0, i, j])
        text = (
            f"{sub('∂L/∂L1Max', i, j)} = {_fmt(G[i, j])} is copied over window "
            f"({i}, {j}); the mask keeps it only at the window's maximum "
            f"{sub(name, r, c)}."
        )
        lk = link(
            [
                cell_id("dM", i, j),
                cell_id("exp", r, c),
                cell_id("mask", r, c),
                cell_id("dA", r, c),
            ],
            [window("exp", 2 * i, 2 * j, 2, 2), window("mask", 2 * i, 2 * j, 2, 2)],
            text,
        )
        links[cell_id("dM", i, j)] = lk
    if relu:
        L1 = np.asarray(L1, float)
        a1, rcache = core.relu_forward(L1)
        on = rcache.mask.astype(float)
        dL1 = core.relu_backward(dA1, rcache) + 0.0
        panels += [
            _gradient_panel("dA2", "∂L/∂A1", dA1, lim, new_row=True),
            _panel("relu", "ReLU′(L1) = 1[L1 > 0]", on, scale="none", op="⊙", classes=np.where(on > 0, "", "zero")),
            _gradient_panel("dL1", "∂L/∂L1", dL1, lim, op="="),
        ]
        for u, v in np.ndindex(*L1.shape):
            text = (
                f"{sub('L1', u, v)} = {_fmt(L1[u, v])}, ReLU′ = {_fmt(on[u, v])}: "
                f"{sub('∂L/∂L1', u, v)} = {_fmt(dA1[u, v])} × {_fmt(on[u, v])} = "
                f"{_fmt(dL1[u, v])}."
            )
            links[cell_id("dL1", u, v)] = link(
                [cell_id(q, u, v) for q in ("dA2", "relu", "dL1")], [], text
            )
    if relu and _ties(A1):
        caption = (
            "In a window of tied zeros the mask keeps the first (row by row), "
            "as the core does."
        )
    else:
        caption = (
            "The windows do not overlap and no window has a tie, so expanding "
            "and masking gives what the core's backward pass computes."
        )
    return {
        "panels": panels,
        "links": links,
        "caption": caption,
        "legend": {"window": "pooling window", "win": "maximum of its window"},
        "focus": cell_id("dM", 0, 0),
    }


def _ties(A: np.ndarray) -> bool:
    every = core.maxpool2d_winners(A, 2, 2, ties="all")
    return bool((every.sum(axis=(-2, -1)) > 1).any())


def rotation_state(dL1, W=W) -> dict:
    """∂L/∂XX as a full correlation: ∂L/∂L1 padded by k − 1 = 2 zeros on every side,
    correlated with the kernel rotated by 180° (``core.conv2d_input_grad_rotated``).
    Links: each cell of ∂L/∂XX shows the 3x3 patch of the padded gradient it reads and
    the products."""
    G, W = np.asarray(dL1, float), np.asarray(W, float)
    kh, kw = W.shape
    P = np.pad(G, ((kh - 1, kh - 1), (kw - 1, kw - 1)))
    K = core.rot180(W)
    H, Wd = G.shape[0] + kh - 1, G.shape[1] + kw - 1
    dXX = core.conv2d_input_grad_rotated(G[None, None], W[None, None], (1, 1, H, Wd))[0, 0] + 0.0
    pad = np.full(P.shape, "pad", dtype=object)
    pad[kh - 1 : kh - 1 + G.shape[0], kw - 1 : kw - 1 + G.shape[1]] = ""
    lim = float(max(np.abs(P).max(), np.abs(dXX).max())) or 1.0
    links = {}
    for u, v in np.ndindex(H, Wd):
        terms = [
            f"({_fmt(P[u + a, v + c])})({_fmt(K[a, c])})"
            for a in range(kh)
            for c in range(kw)
            if P[u + a, v + c] != 0 and K[a, c] != 0
        ]
        text = (
            f"{sub('∂L/∂XX', u, v)} = the outlined patch of pad(∂L/∂L1) times "
            "rot180(W), summed: "
            f"{' + '.join(terms) or '0'} = {_fmt(dXX[u, v])}."
        )
        links[cell_id("dXX", u, v)] = link(
            [cell_id("dXX", u, v)], [window("P", u, v, kh, kw)], text
        )
    return {
        "panels": [
            _panel("P", "pad(∂L/∂L1)", P + 0.0, scale="div", limit=lim, classes=pad),
            _panel("K", "rot180(W)", K, scale="div", op="⋆"),
            _gradient_panel("dXX", "∂L/∂XX", dXX, lim, op="="),
        ],
        "links": links,
        "caption": "Each cell of ∂L/∂XX reads a 3×3 patch of the padded gradient with "
        "the rotated kernel.",
        "legend": {"pad": "padding (zeros)"},
        "focus": cell_id("dXX", 0, 0),
    }


# ---------------------------------------------------------------------------
# The explorable: change one pixel, follow the gradient back to the image
# ---------------------------------------------------------------------------

#: What the explorable can set the chosen pixel to: the values the image holds, -2 to 2
#: ("as drawn" keeps the pixel's own value).
PIXEL_VALUES = ("as drawn", -2, -1, 0, 1, 2)


def _cells(n: int, word: str = "cell") -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def tiny_state(XX=XX, relu: bool = False, pixel: Tuple[int, int] = (1, 1)) -> dict:
    """What chapter 5's explorable draws for image ``XX`` (6x6) with or without the ReLU
    (the book's W, b, WW and t): the image with the chosen ``pixel`` marked (``sel``),
    the map the pool reads with its maxima (``win``; ``tie`` for the other maxima of a
    tied window), ∂L/∂L1 and ∂L/∂XX.  The chosen pixel is followed: its read-out says
    which cells of L1 read it, which of them carry gradient, and the sum
    ∂L/∂XX<sub>uv</sub> = Σ ∂L/∂L1<sub>ij</sub> W<sub>u−i,v−j</sub>. Hover a cell of L1
    (or of ∂L/∂L1) to see the patch of the image it reads.  Every number comes from
    :func:`forward` and :func:`backward` (the core)."""
    p = forward(XX, W, WW, TARGET, relu=relu)
    g = backward(p)
    XX = p.XX
    kh, kw = W.shape
    Ho, Wo = p.A1.shape
    won = core.maxpool2d_mask(p.pool_cache)[0, 0] > 0
    A_cls = _winner_classes(p.A1)
    u, v = (int(pixel[0]), int(pixel[1]))
    x_cls = np.full(XX.shape, "", dtype=object)
    x_cls[u, v] = "sel"
    name = "A1" if relu else "L1"
    dL1, dXX = g["dL1"] + 0.0, g["dXX"] + 0.0
    lim = float(max(np.abs(dL1).max(), np.abs(dXX).max())) or 1.0
    panels = [
        _panel("XX", "XX", XX, scale="div", classes=x_cls),
        _panel("A", "A1 = ReLU(L1)" if relu else "L1", p.A1, scale="div", classes=A_cls,
               windows=[window("A", 2 * i, 2 * j, 2, 2) for i in range(Ho // 2) for j in range(Wo // 2)]),
        _gradient_panel("G", "∂L/∂L1", dL1, lim),
        _gradient_panel("dXX", "∂L/∂XX", dXX, lim),
    ]
    links = {}
    for i, j in np.ndindex(Ho, Wo):
        if won[i, j] and dL1[i, j] != 0:
            state = (
                f"a maximum that passes gradient: {sub('∂L/∂L1', i, j)} = "
                f"{_fmt(dL1[i, j])}"
            )
        elif won[i, j]:
            state = f"a maximum, but {sub('∂L/∂L1', i, j)} = 0 (ReLU′ = 0 there)"
        else:
            state = f"not a maximum: {sub('∂L/∂L1', i, j)} = 0"
        text = (
            f"{sub(name, i, j)} = {_fmt(p.A1[i, j])} reads the outlined 3×3 patch "
            f"of XX; {state}."
        )
        cells = [cell_id("A", i, j), cell_id("G", i, j)]
        if dL1[i, j] != 0:
            cells += [
                cell_id("dXX", i + a, j + b) for a in range(kh) for b in range(kw)
            ]
        lk = link(cells, [window("XX", i, j, kh, kw)], text)
        links[cell_id("A", i, j)] = links[cell_id("G", i, j)] = lk
    # Only the chosen pixel is followed in XX and ∂L/∂XX: when the sliders choose
    # another pixel, the view finds the old one no longer followable and follows the
    # new one (the state's focus).
    readers = [
        (i, j)
        for i in range(max(0, u - kh + 1), min(Ho, u + 1))
        for j in range(max(0, v - kw + 1), min(Wo, v + 1))
    ]
    carry = [(i, j) for i, j in readers if dL1[i, j] != 0]
    if carry:
        terms = " + ".join(
            f"({_fmt(dL1[i, j])})({_fmt(W[u - i, v - j])})" for i, j in carry
        )
        text = (
            f"XX<sub>{u}{v}</sub> = {_fmt(XX[u, v])} is read by "
            f"{_cells(len(readers))} of L1; "
            f"{len(carry)} carr{'ies' if len(carry) == 1 else 'y'} gradient: "
            f"{sub('∂L/∂XX', u, v)} = {terms} = {_fmt(dXX[u, v])}."
        )
    else:
        text = (
            f"XX<sub>{u}{v}</sub> = {_fmt(XX[u, v])} is read by "
            f"{_cells(len(readers))} of L1, "
            f"none of them a maximum that passes gradient: {sub('∂L/∂XX', u, v)} = 0."
        )
    cells = [cell_id("XX", u, v), cell_id("dXX", u, v)] + [
        cell_id(q, i, j) for i, j in carry for q in ("A", "G")
    ]
    lk = link(cells, [window("XX", i, j, kh, kw) for i, j in carry], text)
    links[cell_id("XX", u, v)] = links[cell_id("dXX", u, v)] = lk
    maxima = ", ".join(
        f"({int(r)},{int(c)})"
        for r, c in zip(p.pool_cache.rows.ravel(), p.pool_cache.cols.ravel())
    )
    caption = (
        f"L2 = {_fmt(p.L2[0, 0])}, L = {_fmt(p.loss)}; maxima of {name} at {maxima}."
    )
    ties = [
        f"({i},{j})"
        for i, j in np.ndindex(2, 2)
        if (A_cls[2 * i : 2 * i + 2, 2 * j : 2 * j + 2] == "tie").any()
    ]
    if ties:
        caption += (
            f" Tied window{'s' if len(ties) > 1 else ''} {', '.join(ties)}: "
            "the first maximum "
            "(row by row) gets the gradient."
        )
    return {
        "panels": panels,
        "links": links,
        "caption": caption,
        "focus": cell_id("dXX", u, v),
        "legend": {
            "sel": "the chosen pixel",
            "win": "maximum of its window",
            "tie": "equal to the maximum",
            "window": "pooling window",
        },
    }


class TinyNetworkRoute(Explorable):
    """Chapter 5: choose a pixel of the image, change it, with or without the ReLU, and
    watch the maxima and the whole route of the gradient back to the image follow.

    Controls: the pixel's row and column (the read-out follows that pixel), its value
    (:data:`PIXEL_VALUES`; "as drawn" keeps the image's own value), the ReLU after the
    convolution (example (b))."""

    TITLE = "The tiny network backwards: the route is decided by the forward pass"

    def make_controls(self):
        return [
            control("row", "pixel row u", list(range(6)), default=1),
            control("col", "pixel column v", list(range(6)), default=1),
            control(
                "value",
                "set it to",
                list(PIXEL_VALUES),
                default="as drawn",
                labels=[str(v).replace("-", "−") for v in PIXEL_VALUES],
            ),
            control("relu", "ReLU after the convolution", [False, True], kind="toggle"),
        ]

    def state(self, row, col, value, relu):
        xx = XX.copy()
        if value != "as drawn":
            xx[row, col] = float(value)
        return tiny_state(xx, relu=relu, pixel=(row, col))
