"""Chapter 04 (the ReLU derivative): the chapter's values, the explorer widget and figure helpers.

The chapter runs the second example of Jae Duk Seo's article (the tiny network with a ReLU after
the convolution) on its own numbers::

    XX (6x6) --conv W (3x3), bias b--> L1 (4x4, pre-activation) --ReLU--> A1 (4x4)
        --max pool 2x2--> P (2x2) --flatten--> (1x4) --times WW (4x1)--> L2 (1x1)
        --> loss = 1/2 (L2 - target)^2

``ReluRouting`` (an explorable, see :mod:`cnnviz.explorable`) lets the reader shift the
convolution bias and scale the image, and watch the gradient die wherever a unit is off: the
pre-activation, the ReLU' mask, the upstream gradient routed through the max pool, and the
product dL/dL1, in either order (ReLU then pool, or pool then ReLU -- they give the same
numbers).  :func:`relu_state` computes what it draws; :func:`cnnviz.statefig.state_figure`
draws the same states for the static page.

All the math is a call to :mod:`mlp_cnn_core`; this module only chains the calls and draws.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Tuple

import numpy as np
from matplotlib import pyplot as plt

import mlp_cnn_core as core

from .draw import ACCENT, HIGHLIGHT, WINDOW, format_value
from .explorable import SeededExplorable, cell_id, control, link, panel, window

__all__ = ["SEED", "XX", "W", "WW", "TARGET", "BIAS", "UPSTREAM", "ORDERS", "example_values",
           "preactivation", "ReluPoolPass", "relu_pool_pass", "network_upstream",
           "relu_state", "ReluRouting", "BIASES", "SCALES", "relu_curve_figure"]

#: The seed the image and the kernel are drawn with (small integers: every number is exact).
SEED = 3717

#: The two orders of the layer, with the short labels the explorable shows.
ORDERS = (("ReLU → pool", "relu-pool"), ("pool → ReLU", "pool-relu"))
#: The explorable's bias and scale options (integer biases make some pre-activations exactly 0).
BIASES = (-6.0, -5.0, -4.0, -3.0, -2.0, -1.0, -0.5, 0.0, 0.5, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0)
SCALES = (-1.5, -1.0, -0.5, 0.0, 0.5, 1.0, 1.5)


def example_values(seed: int = SEED) -> Tuple[np.ndarray, np.ndarray]:
    """``(XX (6, 6), W (3, 3))``: seeded random integers, the image in [-2, 2], the kernel in [-1, 1]."""
    rng = np.random.default_rng(int(seed))
    xx = rng.integers(-2, 3, size=(6, 6)).astype(np.float64)
    w = rng.integers(-1, 2, size=(3, 3)).astype(np.float64)
    return xx, w


def _frozen(a) -> np.ndarray:
    a = np.array(a, dtype=np.float64)
    a.setflags(write=False)
    return a


_xx, _w = example_values(SEED)
#: The chapter's 6x6 image.
XX = _frozen(_xx)
#: The chapter's 3x3 kernel.
W = _frozen(_w)
#: The dense weights (4x1) and the target (1x1) of the chapter's network.
WW = _frozen([[1.0], [-0.5], [0.5], [-1.0]])
TARGET = _frozen([[3.0]])
#: The convolution bias of the chapter's example.
BIAS = 0.0


def preactivation(xx, w, bias: float = 0.0, scale: float = 1.0) -> np.ndarray:
    """``L1 = conv(scale * xx, w) + bias`` as a 2-D ``(H - 2, W - 2)`` array (``core.conv2d_forward``)."""
    x = scale * np.asarray(xx, dtype=np.float64)
    out, _ = core.conv2d_forward(x[None, None], np.asarray(w, dtype=np.float64)[None, None],
                                 np.array([float(bias)]))
    return out[0, 0]


def network_upstream(L1, WW=WW, target=TARGET) -> np.ndarray:
    """dL/dP (2x2) of the chapter's network for the pre-activation ``L1``: ReLU, pool, flatten,
    dense, loss forwards, then loss, dense and flatten backwards (all with the core)."""
    A1, _ = core.relu_forward(np.asarray(L1, dtype=np.float64)[None, None])
    P, _ = core.maxpool2d_forward(A1, 2, 2)
    flat, fcache = core.flatten_forward(P)
    L2, dcache = core.dense_forward(flat, WW)
    _, dL2 = core.l2_loss(L2, target)
    dflat, _, _ = core.dense_backward(dL2, dcache)
    return core.flatten_backward(dflat, fcache)[0, 0]


#: The upstream gradient dL/dP (2x2) of the chapter's example; the widget keeps it fixed.
UPSTREAM = _frozen(network_upstream(preactivation(XX, W, BIAS)))


@dataclass
class ReluPoolPass:
    """ReLU and max pooling, forwards and backwards, in one order (all 2-D arrays).

    ``L1`` the pre-activation ``(H, W)``; ``P`` the layer's output ``(Ho, Wo)`` (the same in
    both orders); ``G`` the upstream gradient dL/dP; ``mask`` the ReLU' mask as 0/1 floats, of
    ``L1`` ``(H, W)`` for ``"relu-pool"`` and of the pooled maxima ``(Ho, Wo)`` for
    ``"pool-relu"``; ``dM`` the gradient entering the pool's backward pass ``(Ho, Wo)``;
    ``routed`` what the pool's backward pass returns ``(H, W)``; ``dL1`` the gradient of the
    loss with respect to ``L1``; ``winners`` the cells the pool routes to; ``rows``, ``cols``
    ``(Ho, Wo)`` the cell each window routes to (the pool cache's winners).
    """
    order: str
    L1: np.ndarray
    A1: np.ndarray          # relu(L1) (H, W) ("relu-pool") or maxpool(L1) (Ho, Wo) ("pool-relu")
    P: np.ndarray           # (Ho, Wo) the layer's output, the same in both orders
    G: np.ndarray           # (Ho, Wo) upstream dL/dP
    mask: np.ndarray        # ReLU' as 0/1 floats: (H, W) or (Ho, Wo)
    dM: np.ndarray          # (Ho, Wo) gradient entering the pool's backward pass
    routed: np.ndarray      # (H, W) the pool's backward output
    dL1: np.ndarray         # (H, W)
    winners: np.ndarray     # bool (H, W): the cells the pool routes to (its cache's argmax)
    rows: np.ndarray        # (Ho, Wo) int: row of the cell each window routes to
    cols: np.ndarray        # (Ho, Wo) int: its column


def relu_pool_pass(L1, G, order: str = "relu-pool", kernel: int = 2, stride: int = 2) -> ReluPoolPass:
    """Run ReLU and max pooling in the given order with the core, and back again.

    ``"relu-pool"``: ``A1 = relu(L1)``, ``P = maxpool(A1)``; backwards ``routed = route(G)``
    (through the pool of ``A1``), ``dL1 = routed * (L1 > 0)``.

    ``"pool-relu"``: ``M = maxpool(L1)``, ``P = relu(M)``; backwards ``dM = G * (M > 0)``,
    ``dL1 = routed = route(dM)`` (through the pool of ``L1``).
    """
    L1 = np.asarray(L1, dtype=np.float64)
    G = np.asarray(G, dtype=np.float64)
    if order == "relu-pool":
        A1, rcache = core.relu_forward(L1)
        P, pcache = core.maxpool2d_forward(A1, kernel, stride)
        routed = core.maxpool2d_backward(G, pcache)
        dL1 = core.relu_backward(routed, rcache)
        mask = rcache.mask.astype(np.float64)
        dM = G.copy()
    elif order == "pool-relu":
        A1, pcache = core.maxpool2d_forward(L1, kernel, stride)
        P, rcache = core.relu_forward(A1)
        dM = core.relu_backward(G, rcache)
        routed = core.maxpool2d_backward(dM, pcache)
        dL1 = routed
        mask = rcache.mask.astype(np.float64)
    else:
        raise ValueError(f"order must be 'relu-pool' or 'pool-relu', got {order!r}")
    winners = core.maxpool2d_mask(pcache) > 0
    return ReluPoolPass(order=order, L1=L1, A1=A1, P=P, G=G, mask=mask, dM=dM, routed=routed,
                        dL1=dL1, winners=winners, rows=pcache.rows, cols=pcache.cols)


# ---------------------------------------------------------------------------------------------
# The explorable: its state function and its class
# ---------------------------------------------------------------------------------------------

def _unit(v: float) -> str:
    """What ReLU' says about a pre-activation ``v``."""
    if v > 0:
        return "ReLU′ = 1 (on)"
    if v == 0:
        return "ReLU′(0) = 0 (off: the book's choice at the corner, as PyTorch)"
    return "ReLU′ = 0 (off)"


def relu_state(L1, G, order: str = "relu-pool", label: str = "") -> dict:
    """What the explorable draws for the pre-activation ``L1`` (H, W), the upstream gradient
    ``G`` = dL/dP (Ho, Wo) and the ``order`` of the layer (2x2 windows, stride 2).

    Panels, ``"relu-pool"``: L1 (open windows outlined, dead ones ``dead``), ReLU'(L1), dL/dP,
    the routed gradient (winners ``win``), dL/dL1.  ``"pool-relu"``: L1 (winners ``win``),
    M = maxpool(L1), ReLU'(M), dL/dP, dL/dM, dL/dL1.  Links: every cell names its window, its
    mask value and what it receives.  All numbers come from :func:`relu_pool_pass` (the core).
    """
    fmt = format_value
    p = relu_pool_pass(L1, G, order)
    other = relu_pool_pass(L1, G, "pool-relu" if order == "relu-pool" else "relu-pool")
    L1, G = p.L1, p.G
    H, Wd = L1.shape
    Ho, Wo = G.shape
    M, _ = core.maxpool2d_forward(L1, 2, 2)            # window maxima of L1: > 0 means open
    is_open = M > 0
    relu_mask = (L1 > 0)
    lim = float(np.max(np.abs(G))) or 1.0
    dead_cells = np.repeat(np.repeat(~is_open, 2, axis=0), 2, axis=1)[:H, :Wd]
    boxes = {(i, j): window("L1", 2 * i, 2 * j, 2, 2, "" if is_open[i, j] else "dead")
             for i in range(Ho) for j in range(Wo)}
    win_cls = np.where(p.winners, "win", "")
    l1_cls = np.where(dead_cells, "dim", "")
    if order == "pool-relu":
        l1_cls = np.where(p.winners, "win", l1_cls)
    panels = [panel("L1", f"pre-activation L1 ({H}×{Wd})", L1, scale="div", classes=l1_cls,
                    windows=boxes.values())]
    if order == "relu-pool":
        panels += [
            panel("mask", "ReLU′(L1) = 1[L1 > 0]", p.mask, classes=np.where(p.mask > 0, "", "zero")),
            panel("dP", f"upstream dL/dP ({Ho}×{Wo})", G, scale="div", limit=lim),
            panel("routed", "routed through the pool", p.routed, scale="div", limit=lim, classes=win_cls),
            panel("dL1", "dL/dL1 = routed ⊙ ReLU′", p.dL1, scale="div", limit=lim,
                  classes=np.where(p.dL1 != 0, "win", "")),
        ]
    else:
        panels += [
            panel("M", "M = maxpool(L1)", M, scale="div", classes=np.where(is_open, "", "zero")),
            panel("mask", "ReLU′(M)", p.mask, classes=np.where(p.mask > 0, "", "zero")),
            panel("dP", "upstream dL/dP", G, scale="div", limit=lim),
            panel("dM", "dL/dM = dL/dP ⊙ ReLU′(M)", p.dM, scale="div", limit=lim),
            panel("dL1", "dL/dL1 = route(dL/dM)", p.dL1, scale="div", limit=lim, classes=win_cls),
        ]
    links = {}
    for i in range(Ho):
        for j in range(Wo):
            r, c = int(p.rows[i, j]), int(p.cols[i, j])
            g = G[i, j]
            cells = [cell_id("L1", r, c), cell_id("dL1", r, c), cell_id("dP", i, j)]
            if order == "relu-pool":
                cells += [cell_id("mask", r, c), cell_id("routed", r, c)]
                if is_open[i, j]:
                    text = (f"dL/dP[{i},{j}] = {fmt(g)} goes to the window's maximum L1[{r},{c}] = "
                            f"{fmt(L1[r, c])} > 0, where ReLU′ = 1: dL/dL1[{r},{c}] = {fmt(p.dL1[r, c])}.")
                else:
                    text = (f"Dead window: its maximum is {fmt(M[i, j])} ≤ 0, so after the ReLU it holds "
                            f"four tied zeros. The pool routes dL/dP[{i},{j}] = {fmt(g)} to the first, "
                            f"({r},{c}), where L1 = {fmt(L1[r, c])} and ReLU′ = 0: the gradient dies.")
                links[cell_id("dP", i, j)] = link(cells, [boxes[i, j]], text)
            else:
                cells += [cell_id(q, i, j) for q in ("M", "mask", "dM")]
                text = (f"M[{i},{j}] = {fmt(M[i, j])}, the maximum of window ({i},{j}) at L1[{r},{c}]: "
                        f"ReLU′(M) = {fmt(p.mask[i, j])}, so dL/dM = {fmt(g)} × {fmt(p.mask[i, j])} = "
                        f"{fmt(p.dM[i, j])}, routed to L1[{r},{c}]"
                        + ("." if is_open[i, j] else ": a dead window passes nothing."))
                for q in ("M", "mask", "dP", "dM"):
                    links[cell_id(q, i, j)] = link(cells, [boxes[i, j]], text)
    for r in range(H):
        for c in range(Wd):
            i, j = r // 2, c // 2
            wr, wc = int(p.rows[i, j]), int(p.cols[i, j])
            won = (wr, wc) == (r, c)
            if order == "relu-pool":
                got = (f"it wins window ({i},{j}): routed dL/dP[{i},{j}] = {fmt(G[i, j])}" if won else
                       f"window ({i},{j}) routes its gradient to ({wr},{wc}): routed 0")
                text = (f"L1[{r},{c}] = {fmt(L1[r, c])}: {_unit(L1[r, c])}; {got}; "
                        f"dL/dL1[{r},{c}] = {fmt(p.routed[r, c])} × {fmt(p.mask[r, c])} = {fmt(p.dL1[r, c])}.")
                cells = [cell_id(q, r, c) for q in ("L1", "mask", "routed", "dL1")] + [cell_id("dP", i, j)]
                keys = ("L1", "mask", "routed", "dL1")
            else:
                got = (f"the maximum of window ({i},{j}): it receives dL/dM[{i},{j}] = {fmt(p.dM[i, j])}" if won
                       else f"not the maximum of window ({i},{j}) (that is ({wr},{wc})): it receives 0")
                text = f"L1[{r},{c}] = {fmt(L1[r, c])}, {got}: dL/dL1[{r},{c}] = {fmt(p.dL1[r, c])}."
                cells = [cell_id("L1", r, c), cell_id("dL1", r, c)] + [cell_id(q, i, j) for q in ("M", "dM")]
                keys = ("L1", "dL1")
            for q in keys:
                links[cell_id(q, r, c)] = link(cells, [boxes[i, j]], text)
    n_open = int(is_open.sum())
    dead = [f"({i},{j})" for i, j in zip(*np.nonzero(~is_open))]
    zeros = int(np.count_nonzero(L1 == 0))
    parts = [f"{label}<b>{int(relu_mask.sum())} of {L1.size} units on</b>, "
             f"<b>{n_open} of {M.size} windows pass gradient</b>"]
    if dead:
        parts.append(f"dead windows (maximum ≤ 0): {', '.join(dead)}")
    if zeros:
        parts.append(f"{zeros} unit{'s' if zeros > 1 else ''} exactly 0 (ReLU′(0) = 0)")
    agree = np.array_equal(p.dL1, other.dL1) and np.array_equal(p.P, other.P)
    caption = "; ".join(parts) + ". " + ("The other order gives the same output and dL/dL1." if agree
                                         else "The other order gives <b>a different</b> dL/dL1.")
    return {"panels": panels, "links": links, "caption": caption, "focus": cell_id("dP", 0, 0)}


class ReluRouting(SeededExplorable):
    """Chapter 4: the ReLU' mask composed with the max pool's routing (2x2 windows, stride 2).

    Controls: the convolution bias b (:data:`BIASES`), the image scale s (:data:`SCALES`):
    ``L1 = conv(s * XX, W) + b``, and the order (ReLU then pool, or pool then ReLU).  The
    upstream gradient dL/dP stays the chapter's :data:`UPSTREAM`, so only the ReLU changes what
    gets through.  Action (kernel): a new random image and kernel (the next seed)."""

    TITLE = "ReLU′ and the pool's routing: where gradients die"
    NEW_LABEL = "new image and kernel"

    def __init__(self, seed: int = SEED, **kw):
        super().__init__(seed=int(seed), **kw)

    def make_controls(self):
        return [control("bias", "bias b", list(BIASES), default=BIAS),
                control("scale", "image scale s", list(SCALES), default=1.0),
                control("order", "order", [o for _, o in ORDERS], default="relu-pool", kind="select",
                        labels=[name for name, _ in ORDERS])]

    def state(self, bias, scale, order):
        xx, w = example_values(self.config["seed"])
        L1 = preactivation(xx, w, bias, scale)
        return relu_state(L1, UPSTREAM, order, label=f"b = {format_value(bias)}, s = {format_value(scale)}: ")


# ---------------------------------------------------------------------------------------------
# Static figure
# ---------------------------------------------------------------------------------------------

def relu_curve_figure():
    """ReLU and its derivative, with the value the book uses at 0 (filled dot) and the
    subgradient interval [0, 1] at 0."""
    z = np.linspace(-2, 2, 401)
    a, cache = core.relu_forward(z)
    d = core.relu_backward(np.ones_like(z), cache)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(8.5, 3.0))
    ax1.plot(z, a, color=WINDOW, linewidth=2)
    ax1.set_title("ReLU(z) = max(z, 0)", fontsize=10)
    ax2.plot(z[z < 0], d[z < 0], color=HIGHLIGHT, linewidth=2)
    ax2.plot(z[z > 0], d[z > 0], color=HIGHLIGHT, linewidth=2)
    ax2.plot([0, 0], [0, 1], color=ACCENT, linewidth=5, alpha=0.35, label="subgradients at 0: [0, 1]")
    ax2.plot([0], [0], "o", color=HIGHLIGHT, markersize=7, label="ReLU′(0) = 0 (the core)")
    ax2.plot([0], [1], "o", markerfacecolor="white", markeredgecolor=HIGHLIGHT, markersize=7)
    ax2.plot([0], [0.5], "s", color="0.3", markersize=6, label="central difference: 0.5")
    ax2.set_title("ReLU′(z) = 1[z > 0]", fontsize=10)
    ax2.set_ylim(-0.2, 1.3)
    ax2.legend(fontsize=7.5, loc="lower right", framealpha=0.95)
    for ax in (ax1, ax2):
        ax.axhline(0, color="0.7", linewidth=0.8)
        ax.axvline(0, color="0.7", linewidth=0.8)
        ax.set_xlabel("z")
    fig.tight_layout()
    return fig
