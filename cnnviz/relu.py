"""Chapter 4 (the ReLU derivative): the ReLU and the max pool, forwards and backwards in
either order, the chapter's explorable and its ReLU curve.

The chapter runs the tiny network of chapters 1 and 5 (:mod:`cnnviz.tiny`: the same
image, kernel, bias, dense weights and target) in its second version, with a ReLU after
the convolution::

    XX (6×6) --conv W (3×3), bias b--> L1 (4×4, pre-activation) --ReLU--> A1 (4×4)
        --max pool 2×2--> L1Max (2×2) --flatten--> flat (1×4) --times WW (4×1)-->
        L2 (1×1) --> loss L = ½ (L2 − t)²

``ReluRouting`` (an explorable, see :mod:`cnnviz.explorable`) lets the reader shift the
convolution's bias b and the image's contrast γ, and watch the gradient die wherever a
unit is off: the pre-activation, the ReLU′ mask, the upstream gradient ∂L/∂L1Max routed
through the max pool, and their product ∂L/∂L1, in either order (ReLU then pool, or pool
then ReLU -- they give the same numbers).  :func:`relu_state` computes what it draws,
and the chapter's figures are the same states (``cnnviz.figure(cnnviz.call(relu_state,
...))``).

All the math is a call to :mod:`mlp_cnn_core`; this module only chains the calls and
says what to draw.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

import mlp_cnn_core as core

from . import mplfig
from .draw import format_value, sub
from .explorable import SeededExplorable, cell_id, control, link, panel, window
from .tiny import BIAS, SEED, TARGET, WW, XX, W, _frozen, draw_values
from .tiny import backward as tiny_backward
from .tiny import forward as tiny_forward

__all__ = [
    # the tiny network of cnnviz.tiny, which this chapter's layer is part of
    "SEED", "XX", "W", "BIAS", "WW", "TARGET",
    # this chapter's
    "UPSTREAM",
    "ORDERS",
    "BIASES",
    "CONTRASTS",
    "preactivation",
    "ReluPoolPass",
    "relu_pool_pass",
    "relu_state",
    "ReluRouting",
    "relu_curve_figure",
]

#: The two orders of the layer, with the short labels the explorable shows.
ORDERS = (("ReLU → pool", "relu-pool"), ("pool → ReLU", "pool-relu"))
#: The explorable's bias options (integer biases make some pre-activations 0) ...
BIASES = (
    -6.0,
    -5.0,
    -4.0,
    -3.0,
    -2.0,
    -1.0,
    -0.5,
    0.0,
    0.5,
    1.0,
    2.0,
    3.0,
    4.0,
    5.0,
    6.0,
)
#: ... and its contrast options (the image is multiplied by γ before the convolution).
CONTRASTS = (-1.5, -1.0, -0.5, 0.0, 0.5, 1.0, 1.5)


def preactivation(xx, w, bias: float = BIAS, contrast: float = 1.0) -> np.ndarray:
    """``L1 = conv(γ·xx, w) + b`` as a 2-D ``(H - 2, W - 2)`` array
    (``core.conv2d_forward``), with ``γ = contrast`` and ``b = bias``."""
    x = contrast * np.asarray(xx, dtype=np.float64)
    out, _ = core.conv2d_forward(
        x[None, None],
        np.asarray(w, dtype=np.float64)[None, None],
        np.array([float(bias)]),
    )
    return out[0, 0]


#: The upstream gradient ∂L/∂L1Max (2x2) of the tiny network (the explorable's, fixed).
UPSTREAM = _frozen(tiny_backward(tiny_forward(relu=True))["dL1Max"])


@dataclass
class ReluPoolPass:
    """ReLU and max pooling, forwards and backwards, in one order (all 2-D arrays).

    ``L1`` the pre-activation ``(H, W)``; ``first`` what the first layer made of it:
    ReLU(L1) ``(H, W)`` for ``"relu-pool"``, maxpool(L1) ``(Ho, Wo)`` for
    ``"pool-relu"``; ``L1Max`` the output ``(Ho, Wo)`` (the same in both orders);
    ``dL1Max`` the upstream gradient; ``mask`` the ReLU′ mask as 0/1 floats, of ``L1``
    for ``"relu-pool"`` and of the pooled maxima for ``"pool-relu"``; ``dM`` the
    gradient entering the pool's backward pass ``(Ho, Wo)``; ``routed`` what the pool's
    backward pass returns ``(H, W)``; ``dL1`` = ∂L/∂L1; ``winners`` the cells the pool
    routes to; ``rows``, ``cols`` ``(Ho, Wo)`` the cell each window routes to (the pool
    cache's winners).
    """

    order: str
    L1: np.ndarray
    first: (
        np.ndarray
    )  # relu(L1) (H, W) ("relu-pool") or maxpool(L1) (Ho, Wo) ("pool-relu")
    L1Max: np.ndarray  # (Ho, Wo) the layer's output, the same in both orders
    dL1Max: np.ndarray  # (Ho, Wo) upstream ∂L/∂L1Max
    mask: np.ndarray  # ReLU′ as 0/1 floats: (H, W) or (Ho, Wo)
    dM: np.ndarray  # (Ho, Wo) gradient entering the pool's backward pass
    routed: np.ndarray  # (H, W) the pool's backward output
    dL1: np.ndarray  # (H, W)
    winners: (
        np.ndarray
    )  # bool (H, W): the cells the pool routes to (its cache's argmax)
    rows: np.ndarray  # (Ho, Wo) int: row of the cell each window routes to
    cols: np.ndarray  # (Ho, Wo) int: its column


def relu_pool_pass(
    L1, dL1Max, order: str = "relu-pool", kernel: int = 2, stride: int = 2
) -> ReluPoolPass:
    """Run ReLU and max pooling in the given order with the core, and back again.

    ``"relu-pool"``: ``A1 = relu(L1)``, ``L1Max = maxpool(A1)``; backwards ``routed =
    route(dL1Max)`` (through the pool of ``A1``), ``dL1 = routed * (L1 > 0)``.

    ``"pool-relu"``: ``M = maxpool(L1)``, ``L1Max = relu(M)``; backwards ``dM = dL1Max *
    (M > 0)``, ``dL1 = routed = route(dM)`` (through the pool of ``L1``).
    """
    L1 = np.asarray(L1, dtype=np.float64)
    G = np.asarray(dL1Max, dtype=np.float64)
    if order == "relu-pool":
        first, rcache = core.relu_forward(L1)
        out, pcache = core.maxpool2d_forward(first, kernel, stride)
        routed = core.maxpool2d_backward(G, pcache)
        dL1 = core.relu_backward(routed, rcache)
        dM = G.copy()
    elif order == "pool-relu":
        first, pcache = core.maxpool2d_forward(L1, kernel, stride)
        out, rcache = core.relu_forward(first)
        dM = core.relu_backward(G, rcache)
        routed = core.maxpool2d_backward(dM, pcache)
        dL1 = routed
    else:
        raise ValueError(f"order must be 'relu-pool' or 'pool-relu', got {order!r}")
    winners = core.maxpool2d_mask(pcache) > 0
    return ReluPoolPass(
        order=order,
        L1=L1,
        first=first,
        L1Max=out,
        dL1Max=G,
        mask=rcache.mask.astype(np.float64),
        dM=dM,
        routed=routed,
        dL1=dL1,
        winners=winners,
        rows=pcache.rows,
        cols=pcache.cols,
    )


# --------------------------------------------------------------------------------------
# The explorable: its state function and its class
# --------------------------------------------------------------------------------------


def _unit(v: float) -> str:
    """What ReLU′ says about a pre-activation ``v``."""
    if v > 0:
        return "ReLU′ = 1 (on)"
    if v == 0:
        return "ReLU′(0) = 0 (off: the book's choice at the corner, as PyTorch's)"
    return "ReLU′ = 0 (off)"


def relu_state(L1, dL1Max, order: str = "relu-pool", label: str = "") -> dict:
    """What the explorable draws for the pre-activation ``L1`` (H, W), the upstream
    gradient ``dL1Max`` = ∂L/∂L1Max (Ho, Wo) and the ``order`` of the layer (2x2
    windows, stride 2).

    Panels, ``"relu-pool"``: L1 (open windows outlined, dead ones ``dead``), ReLU′(L1),
    ∂L/∂L1Max, the routed gradient (winners ``win``), ∂L/∂L1.  ``"pool-relu"``: L1
    (winners ``win``), M = maxpool(L1), ReLU′(M), ∂L/∂L1Max, ∂L/∂M, ∂L/∂L1.  Links:
    every cell names its window, its mask value and what it receives.  All numbers come
    from :func:`relu_pool_pass` (the core).  ``label`` starts the caption.
    """
    fmt = format_value
    p = relu_pool_pass(L1, dL1Max, order)
    other = relu_pool_pass(
        L1, dL1Max, "pool-relu" if order == "relu-pool" else "relu-pool"
    )
    L1, G = p.L1, p.dL1Max
    H, Wd = L1.shape
    Ho, Wo = G.shape
    M, _ = core.maxpool2d_forward(L1, 2, 2)  # window maxima of L1: > 0 means open
    is_open = M > 0
    relu_mask = L1 > 0
    lim = float(np.max(np.abs(G))) or 1.0
    dead_cells = np.repeat(np.repeat(~is_open, 2, axis=0), 2, axis=1)[:H, :Wd]
    boxes = {
        (i, j): window("L1", 2 * i, 2 * j, 2, 2, "" if is_open[i, j] else "dead")
        for i in range(Ho)
        for j in range(Wo)
    }
    win_cls = np.where(p.winners, "win", "")
    l1_cls = np.where(dead_cells, "dead", "")
    if order == "pool-relu":
        l1_cls = np.where(p.winners, np.where(dead_cells, "win dead", "win"), l1_cls)
    panels = [panel("L1", f"L1 ({H}×{Wd})", L1, scale="div", classes=l1_cls, windows=boxes.values(),
                    subtitle="pre-activation")]
    def mask_panel(of: str) -> dict:  # ReLU′ of what the ReLU reads: L1, or M = maxpool(L1)
        return panel("mask", f"ReLU′({of})", p.mask, scale="none", subtitle=f"1[{of} > 0]",
                     classes=np.where(p.mask > 0, "", "zero"))

    if order == "relu-pool":
        panels += [
            mask_panel("L1"),
            panel("dL1Max", f"∂L/∂L1Max ({Ho}×{Wo})", G, scale="div", limit=lim, subtitle="upstream"),
            panel("routed", "routed", p.routed, scale="div", limit=lim, classes=win_cls, subtitle="through the pool"),
        ]
        dL1_from = "routed ⊙ ReLU′(L1)"
    else:
        panels += [
            panel("M", "M = maxpool(L1)", M, scale="div", classes=np.where(is_open, "", "dead")),
            mask_panel("M"),
            panel("dL1Max", "∂L/∂L1Max", G, scale="div", limit=lim, subtitle="upstream"),
            panel("dM", "∂L/∂M", p.dM, scale="div", limit=lim, subtitle="∂L/∂L1Max ⊙ ReLU′(M)",
                  classes=np.where(p.dM != 0, "", "zero")),
        ]
        dL1_from = "route(∂L/∂M)"
    panels.append(panel("dL1", "∂L/∂L1", p.dL1, scale="div", limit=lim, subtitle=dL1_from,
                        classes=np.where(p.dL1 != 0, "win", "zero")))
    links = {}
    for i in range(Ho):
        for j in range(Wo):
            r, c = int(p.rows[i, j]), int(p.cols[i, j])
            g = G[i, j]
            cells = [cell_id("L1", r, c), cell_id("dL1", r, c), cell_id("dL1Max", i, j)]
            if order == "relu-pool":
                cells += [cell_id("mask", r, c), cell_id("routed", r, c)]
                if is_open[i, j]:
                    text = (
                        f"{sub('∂L/∂L1Max', i, j)} = {fmt(g)} goes to the window's "
                        f"maximum {sub('L1', r, c)} = {fmt(L1[r, c])} > 0, where "
                        f"ReLU′ = 1: {sub('∂L/∂L1', r, c)} = {fmt(p.dL1[r, c])}."
                    )
                else:
                    text = (
                        f"Dead window: its maximum is {fmt(M[i, j])} ≤ 0, so after the "
                        "ReLU it holds four tied zeros. The pool routes "
                        f"{sub('∂L/∂L1Max', i, j)} = {fmt(g)} to the first, "
                        f"({r},{c}), where L1 = {fmt(L1[r, c])} and ReLU′ = 0: "
                        "the gradient dies."
                    )
                links[cell_id("dL1Max", i, j)] = link(cells, [boxes[i, j]], text)
            else:
                cells += [cell_id(q, i, j) for q in ("M", "mask", "dM")]
                text = (
                    f"{sub('M', i, j)} = {fmt(M[i, j])}, the maximum of window "
                    f"({i},{j}) at {sub('L1', r, c)}: ReLU′(M) = {fmt(p.mask[i, j])}, "
                    f"so {sub('∂L/∂M', i, j)} = {fmt(g)} × {fmt(p.mask[i, j])} = "
                    f"{fmt(p.dM[i, j])}, routed to {sub('L1', r, c)}"
                    + ("." if is_open[i, j] else ": a dead window passes nothing.")
                )
                for q in ("M", "mask", "dL1Max", "dM"):
                    links[cell_id(q, i, j)] = link(cells, [boxes[i, j]], text)
    for r in range(H):
        for c in range(Wd):
            i, j = r // 2, c // 2
            wr, wc = int(p.rows[i, j]), int(p.cols[i, j])
            won = (wr, wc) == (r, c)
            if order == "relu-pool":
                if won:
                    got = (
                        f"it wins window ({i},{j}): routed "
                        f"{sub('∂L/∂L1Max', i, j)} = {fmt(G[i, j])}"
                    )
                else:
                    got = (
                        f"window ({i},{j}) routes its gradient to ({wr},{wc}): routed 0"
                    )
                text = (
                    f"{sub('L1', r, c)} = {fmt(L1[r, c])}: {_unit(L1[r, c])}; {got}; "
                    f"{sub('∂L/∂L1', r, c)} = {fmt(p.routed[r, c])} × "
                    f"{fmt(p.mask[r, c])} = {fmt(p.dL1[r, c])}."
                )
                cells = [cell_id(q, r, c) for q in ("L1", "mask", "routed", "dL1")] + [
                    cell_id("dL1Max", i, j)
                ]
                keys = ("L1", "mask", "routed", "dL1")
            else:
                if won:
                    got = (
                        f"the maximum of window ({i},{j}): it receives "
                        f"{sub('∂L/∂M', i, j)} = {fmt(p.dM[i, j])}"
                    )
                else:
                    got = (
                        f"not the maximum of window ({i},{j}) (that is "
                        f"({wr},{wc})): it receives 0"
                    )
                text = (
                    f"{sub('L1', r, c)} = {fmt(L1[r, c])}, {got}: "
                    f"{sub('∂L/∂L1', r, c)} = {fmt(p.dL1[r, c])}."
                )
                cells = [cell_id("L1", r, c), cell_id("dL1", r, c)] + [
                    cell_id(q, i, j) for q in ("M", "dM")
                ]
                keys = ("L1", "dL1")
            for q in keys:
                links[cell_id(q, r, c)] = link(cells, [boxes[i, j]], text)
    n_open = int(is_open.sum())
    dead = [f"({i},{j})" for i, j in zip(*np.nonzero(~is_open))]
    zeros = int(np.count_nonzero(L1 == 0))
    parts = [
        f"{label}<b>{int(relu_mask.sum())} of {L1.size} units on</b>, "
        f"<b>{n_open} of {M.size} windows pass gradient</b>"
    ]
    if dead:
        parts.append(f"dead windows (maximum ≤ 0): {', '.join(dead)}")
    if zeros:
        parts.append(f"{zeros} unit{'s' if zeros > 1 else ''} exactly 0 (ReLU′(0) = 0)")
    agree = np.array_equal(p.dL1, other.dL1) and np.array_equal(p.L1Max, other.L1Max)
    caption = (
        "; ".join(parts)
        + ". "
        + (
            "The other order gives the same output and ∂L/∂L1."
            if agree
            else "The other order gives <b>a different</b> ∂L/∂L1."
        )
    )
    legend = {
        "dead": "in a dead window (maximum ≤ 0)",
        "window": "window that passes gradient",
        "window.dead": "dead window",
        "win": "receives the gradient",
    }
    return {
        "panels": panels,
        "links": links,
        "caption": caption,
        "focus": cell_id("dL1Max", 0, 0),
        "legend": legend,
    }


class ReluRouting(SeededExplorable):
    """Chapter 4: the ReLU′ mask composed with the max pool's routing (2x2 windows,
    stride 2).

    Controls: the convolution's bias b (:data:`BIASES`) and the image's contrast γ
    (:data:`CONTRASTS`): ``L1 = conv(γ·XX, W) + b``; the order (ReLU then pool, or pool
    then ReLU).  The upstream gradient ∂L/∂L1Max stays the tiny network's
    :data:`UPSTREAM`, so only the ReLU changes what gets through.  Action (kernel): a
    new random image and kernel (the next seed; :data:`SEED` is the book's network)."""

    TITLE = "ReLU′ and the pool's routing: where gradients die"
    NEW_LABEL = "new image and kernel"

    def __init__(self, seed: int = SEED, **kw):
        super().__init__(seed=int(seed), **kw)

    def make_controls(self):
        return [
            control("bias", "bias b", list(BIASES), default=BIAS),
            control("contrast", "image contrast γ", list(CONTRASTS), default=1.0),
            control(
                "order",
                "order",
                [o for _, o in ORDERS],
                default="relu-pool",
                kind="select",
                labels=[name for name, _ in ORDERS],
            ),
        ]

    def state(self, bias, contrast, order):
        xx, w = draw_values(self.config["seed"])
        L1 = preactivation(xx, w, bias, contrast)
        return relu_state(
            L1,
            UPSTREAM,
            order,
            label=f"b = {format_value(bias)}, γ = {format_value(contrast)}: ",
        )


# --------------------------------------------------------------------------------------
# The ReLU and its derivative (matplotlib, drawn for the column)
# --------------------------------------------------------------------------------------


def relu_curve_figure():
    """ReLU and its derivative, with the value the book uses at 0 (filled dot), the
    subgradient interval [0, 1] at 0 and the central difference there (½).  Returns the
    figure (show it with ``show_figure``)."""
    x = np.linspace(-2, 2, 401)
    a, cache = core.relu_forward(x)
    d = core.relu_backward(np.ones_like(x), cache)
    blue, red, grey = "#1f77b4", "#c0392b", "#7f7f7f"
    fig, (ax1, ax2) = mplfig.subplots(1, 2, height=260)
    ax1.plot(x, a, color=blue, linewidth=2)
    ax1.set_title("ReLU(x) = max(x, 0)")
    ax2.plot(x[x < 0], d[x < 0], color=red, linewidth=2)
    ax2.plot(x[x > 0], d[x > 0], color=red, linewidth=2)
    ax2.plot(
        [0, 0],
        [0, 1],
        color=grey,
        linewidth=5,
        alpha=0.45,
        label="subgradients at 0: [0, 1]",
    )
    ax2.plot([0], [0], "o", color=red, markersize=7, label="ReLU′(0) = 0 (the core)")
    ax2.plot([0], [1], "o", markerfacecolor="none", markeredgecolor=red, markersize=7)
    ax2.plot([0], [0.5], "s", color=blue, markersize=6, label="central difference: ½")
    ax2.set_title("ReLU′(x) = 1[x > 0]")
    ax2.set_ylim(-0.25, 1.9)
    ax2.legend(loc="upper left")
    for ax in (ax1, ax2):
        ax.axhline(0, color=grey, linewidth=0.8)
        ax.axvline(0, color=grey, linewidth=0.8)
        ax.set_xlabel("x")
    return fig
