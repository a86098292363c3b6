"""Chapter 04 (the ReLU derivative): the chapter's values, the explorer widget and figure helpers.

The chapter runs the second example of Jae Duk Seo's article (the tiny network with a ReLU after
the convolution) on its own numbers::

    XX (6x6) --conv W (3x3), bias b--> L1 (4x4, pre-activation) --ReLU--> A1 (4x4)
        --max pool 2x2--> P (2x2) --flatten--> (1x4) --times WW (4x1)--> L2 (1x1)
        --> loss = 1/2 (L2 - target)^2

``ReluExplorer`` lets the reader shift the convolution bias and scale the image, and watch the
gradient die wherever a unit is off: the pre-activation, the ReLU' mask, the upstream gradient
routed through the max pool, and the product dL/dL1, in either order (ReLU then pool, or pool
then ReLU -- they give the same numbers).

All the math is a call to :mod:`mlp_cnn_core`; this module only chains the calls and draws.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Tuple

import numpy as np
from matplotlib import pyplot as plt

import mlp_cnn_core as core

from .draw import ACCENT, HIGHLIGHT, WINDOW, draw_matrix, format_value, outline_window, show_figure

__all__ = ["SEED", "XX", "W", "WW", "TARGET", "BIAS", "UPSTREAM", "ORDERS", "example_values",
           "preactivation", "ReluPoolPass", "relu_pool_pass", "network_upstream",
           "ReluExplorer", "green_box_figure", "relu_curve_figure"]

#: The seed the image and the kernel are drawn with (small integers: every number is exact).
SEED = 3717

ORDERS = (("conv → ReLU → pool (the article)", "relu-pool"),
          ("conv → pool → ReLU", "pool-relu"))


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
    loss with respect to ``L1``; ``winners`` the cells the pool routes to.
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
                        dL1=dL1, winners=winners)


def _window_maxima(L1: np.ndarray, k: int = 2) -> np.ndarray:
    return core.maxpool2d_forward(L1, k, k)[0]


def _outline_windows(ax, L1: np.ndarray, k: int = 2) -> None:
    """Outline every k x k window: solid blue if its maximum is > 0, dashed grey if it is dead."""
    maxima = _window_maxima(L1, k)
    for i, j in np.ndindex(*maxima.shape):
        alive = maxima[i, j] > 0
        outline_window(ax, i * k, j * k, k, k, color=WINDOW if alive else "0.45",
                       linewidth=2.2 if alive else 1.8, linestyle="-" if alive else "--", inset=0.04)


def _mask_panel(ax, mask, title):
    draw_matrix(ax, mask, cmap="Greens", vmin=0, vmax=1.7, highlight=mask > 0,
                highlight_color="#2ca02c")
    ax.set_title(title, fontsize=9)


# ---------------------------------------------------------------------------------------------
# Static figures
# ---------------------------------------------------------------------------------------------

def green_box_figure(L1, G, suptitle=None, cell_size: float = 0.55):
    """The article's "green box": pre-activation L1, its ReLU' mask, the upstream gradient G
    routed through the max pool (4x4), and their element-wise product dL/dL1."""
    p = relu_pool_pass(L1, G, "relu-pool")
    H, Wd = p.L1.shape
    Ho, Wo = p.G.shape
    widths = [Wd, Wd, Wo, Wd, Wd]
    fig, axes = plt.subplots(1, 5, figsize=(cell_size * sum(widths) + 5.0, cell_size * H + 1.6),
                             gridspec_kw={"width_ratios": widths})
    draw_matrix(axes[0], p.L1, diverging=True)
    _outline_windows(axes[0], p.L1)
    axes[0].set_title(f"pre-activation L1 ({H}×{Wd})\nblue: window max > 0", fontsize=9)
    _mask_panel(axes[1], p.mask, f"ReLU′(L1) = 1[L1 > 0] ({H}×{Wd})")
    draw_matrix(axes[2], p.G, diverging=True)
    axes[2].set_title(f"upstream dL/dP\n({Ho}×{Wo})", fontsize=9)
    draw_matrix(axes[3], p.routed, diverging=True, highlight=p.winners)
    axes[3].set_title(f"route(dL/dP) through the pool\n({H}×{Wd})", fontsize=9)
    draw_matrix(axes[4], p.dL1, diverging=True, highlight=p.dL1 != 0)
    axes[4].set_title(f"dL/dL1 = route ⊙ ReLU′\n({H}×{Wd})", fontsize=9)
    if suptitle:
        fig.suptitle(suptitle, fontsize=10)
    fig.tight_layout()
    return fig


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


# ---------------------------------------------------------------------------------------------
# The widget
# ---------------------------------------------------------------------------------------------

class ReluExplorer:
    """Shift the convolution bias or scale the image, and watch gradients die where ReLU is off.

    Controls (ipywidgets, attributes): ``bias`` (the convolution bias b, -6 to 6), ``scale``
    (the image is multiplied by s, -1.5 to 1.5), ``seed`` and the ``new_values`` button (a new
    random image and kernel; seed 3717 is the chapter's example) and ``order`` (ReLU then pool,
    or pool then ReLU).

    State recomputed on every change: ``XX`` and ``W`` (from the seed), ``L1`` (4x4
    pre-activation ``conv(s * XX, W) + b``), ``G`` (the fixed upstream dL/dP, 2x2,
    :data:`UPSTREAM`), ``result`` (the :class:`ReluPoolPass` of the chosen order) and
    ``other`` (of the other order), ``relu_mask`` (4x4 0/1, ``L1 > 0``), ``routed``, ``dL1``,
    ``alive`` (units with ``L1 > 0``), ``zeros`` (units exactly 0), ``window_max`` (2x2),
    ``open_windows`` (bool 2x2: maximum > 0), ``n_open`` (windows passing gradient) and
    ``orders_agree`` (the two orders give the same dL/dL1).
    """

    BIAS_RANGE = (-6.0, 6.0)
    SCALE_RANGE = (-1.5, 1.5)

    def __init__(self, bias: float = BIAS, scale: float = 1.0, seed: int = SEED,
                 order: str = "relu-pool", draw: bool = True):
        import ipywidgets as widgets
        self.draw = draw  # False: recompute state and summary only (fast sweeps in the tests)
        style = {"description_width": "initial"}
        self.bias = widgets.FloatSlider(value=bias, min=self.BIAS_RANGE[0], max=self.BIAS_RANGE[1],
                                        step=0.5, description="bias b", style=style,
                                        continuous_update=False)
        self.scale = widgets.FloatSlider(value=scale, min=self.SCALE_RANGE[0], max=self.SCALE_RANGE[1],
                                         step=0.25, description="image scale s", style=style,
                                         continuous_update=False)
        self.seed = widgets.BoundedIntText(value=seed, min=0, max=10**6, description="seed", style=style,
                                           layout=widgets.Layout(width="160px"))
        self.new_values = widgets.Button(description="new image and kernel", icon="refresh")
        self.order = widgets.ToggleButtons(options=ORDERS, value=order, description="order",
                                           style=style)
        self.summary = widgets.HTML()
        self.out = widgets.Output()
        for c in (self.bias, self.scale, self.seed, self.order):
            c.observe(self._on_change, names="value")
        self.new_values.on_click(self._on_new_values)
        controls = widgets.VBox([widgets.HBox([self.bias, self.scale]),
                                 widgets.HBox([self.seed, self.new_values]), self.order])
        self.widget = widgets.VBox([controls, self.summary, self.out])
        self.update()

    # -- events ------------------------------------------------------------------------------
    def _on_new_values(self, _button=None) -> None:
        self.seed.value = self.seed.value + 1 if self.seed.value < self.seed.max else 0

    def _on_change(self, _change=None) -> None:
        self.update()

    # -- state -------------------------------------------------------------------------------
    def _compute(self) -> None:
        self.XX, self.W = example_values(self.seed.value)
        b, s = float(self.bias.value), float(self.scale.value)
        self.L1 = preactivation(self.XX, self.W, b, s)                  # (4, 4)
        self.G = np.array(UPSTREAM)                                     # (2, 2)
        order = self.order.value
        other = "pool-relu" if order == "relu-pool" else "relu-pool"
        self.result = relu_pool_pass(self.L1, self.G, order)
        self.other = relu_pool_pass(self.L1, self.G, other)
        _, rcache = core.relu_forward(self.L1)
        self.relu_mask = rcache.mask.astype(np.float64)                 # (4, 4)
        self.routed = self.result.routed
        self.dL1 = self.result.dL1
        self.alive = int(np.count_nonzero(self.L1 > 0))
        self.zeros = int(np.count_nonzero(self.L1 == 0))
        self.window_max = _window_maxima(self.L1)                       # (2, 2)
        self.open_windows = self.window_max > 0
        self.n_open = int(self.open_windows.sum())
        self.orders_agree = bool(np.array_equal(self.result.dL1, self.other.dL1)
                                 and np.array_equal(self.result.P, self.other.P))

    def _summary_html(self) -> str:
        fv = format_value
        b, s = float(self.bias.value), float(self.scale.value)
        n = self.L1.size
        nw = self.window_max.size
        dead = [f"({i}, {j}) max {fv(self.window_max[i, j])}"
                for i, j in zip(*np.nonzero(~self.open_windows))]
        head = (f"<p>L1 = conv({fv(s)}·XX, W) + ({fv(b)}), seed {self.seed.value}. "
                f"<b>Alive units (L1 &gt; 0): {self.alive} of {n}</b>; "
                f"<b>windows passing gradient: {self.n_open} of {nw}</b>.</p>")
        body = ""
        if dead:
            body += (f"<p>Dead windows (maximum ≤ 0, no gradient at all): {', '.join(dead)}.</p>")
        if self.zeros:
            body += (f"<p>{self.zeros} unit{'s are' if self.zeros > 1 else ' is'} exactly 0: "
                     f"ReLU′(0) = 0 (as in PyTorch), so {'they are' if self.zeros > 1 else 'it is'} off.</p>")
        if self.alive == 0:
            body += "<p>Every unit is off: <b>every gradient is 0</b> (a dead ReLU layer).</p>"
        elif self.alive == n:
            body += "<p>Every unit is on: the ReLU′ mask is all ones and lets the routed gradient through unchanged.</p>"
        nz = int(np.count_nonzero(self.dL1))
        body += (f"<p>dL/dL1 has {nz} non-zero entr{'y' if nz == 1 else 'ies'}. "
                 f"The other order ({'pool → ReLU' if self.order.value == 'relu-pool' else 'ReLU → pool'}) "
                 f"gives {'the same' if self.orders_agree else '<b>a different</b>'} output and gradient.</p>")
        return head + body

    def update(self) -> None:
        """Recompute the state, the summary and the figure from the controls."""
        self._compute()
        self.summary.value = self._summary_html()
        if not self.draw:
            return
        show_figure(self.out, self.figure())

    # -- drawing -----------------------------------------------------------------------------
    def figure(self, cell_size: float = 0.55):
        """A new matplotlib Figure of the current state (five panels)."""
        p = self.result
        H, Wd = self.L1.shape
        Ho, Wo = self.G.shape
        relu_first = p.order == "relu-pool"
        widths = [Wd, Wd if relu_first else Wo, Wo, Wo if not relu_first else Wd, Wd]
        fig, axes = plt.subplots(1, 5, figsize=(cell_size * sum(widths) + 5.2, cell_size * H + 1.9),
                                 gridspec_kw={"width_ratios": widths})
        draw_matrix(axes[0], self.L1, diverging=True)
        _outline_windows(axes[0], self.L1)
        axes[0].set_title(f"pre-activation L1 ({H}×{Wd})\nblue: open window, grey: dead", fontsize=9)
        if relu_first:
            _mask_panel(axes[1], p.mask, f"ReLU′(L1) = 1[L1 > 0]\n({H}×{Wd})")
            draw_matrix(axes[2], p.G, diverging=True)
            axes[2].set_title(f"upstream dL/dP\n({Ho}×{Wo})", fontsize=9)
            draw_matrix(axes[3], p.routed, diverging=True, highlight=p.winners)
            axes[3].set_title(f"route(dL/dP) via pool of ReLU(L1)\n({H}×{Wd})", fontsize=9)
            draw_matrix(axes[4], p.dL1, diverging=True, highlight=p.dL1 != 0)
            axes[4].set_title(f"dL/dL1 = route ⊙ ReLU′\n({H}×{Wd})", fontsize=9)
        else:
            _mask_panel(axes[1], p.mask, f"ReLU′(M), M = maxpool(L1)\n({Ho}×{Wo})")
            draw_matrix(axes[2], p.G, diverging=True)
            axes[2].set_title(f"upstream dL/dP\n({Ho}×{Wo})", fontsize=9)
            draw_matrix(axes[3], p.dM, diverging=True, highlight=p.dM != 0)
            axes[3].set_title(f"dL/dM = dL/dP ⊙ ReLU′(M)\n({Ho}×{Wo})", fontsize=9)
            draw_matrix(axes[4], p.dL1, diverging=True, highlight=p.dL1 != 0)
            axes[4].set_title(f"dL/dL1 = route(dL/dM)\n({H}×{Wd})", fontsize=9)
        b, s = float(self.bias.value), float(self.scale.value)
        fig.suptitle(f"b = {format_value(b)}, s = {format_value(s)}: {self.alive} of {self.L1.size} units alive, "
                     f"{self.n_open} of {self.window_max.size} windows pass gradient", fontsize=10)
        fig.tight_layout()
        return fig
