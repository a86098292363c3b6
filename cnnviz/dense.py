"""Chapter 06 (flatten, dense layer, softmax and cross-entropy): figure helpers and a widget.

The chapter follows the network of the Stack Exchange question "Back propagation through a
simple convolutional neural network": a 5x5 image, one 2x2 kernel, ReLU, 2x2 max pooling,
flatten, a dense layer to K classes, softmax and cross-entropy.

* :func:`tiny_network` runs that network forward and backward with :mod:`mlp_cnn_core` and
  returns every intermediate array (nothing is re-implemented here).
* :func:`forward_figure` and :func:`backward_figure` draw the forward values and the gradient
  flowing backwards, stage by stage.
* :class:`SoftmaxGradExplorer` is a small widget: pick the label, move the dense biases (each
  bias shifts one logit) and watch ``p - y`` and the gradient of the flattened layer change.
"""
from __future__ import annotations

import html
from typing import Dict, Optional, Sequence

import numpy as np
from matplotlib import pyplot as plt

import mlp_cnn_core as core

from .draw import ACCENT, HIGHLIGHT, WINDOW, draw_matrix, format_value, outline_window, show_figure

__all__ = ["tiny_network", "forward_figure", "backward_figure", "flatten_figure",
           "SoftmaxGradExplorer", "CHAPTER_IMAGE_SEED", "chapter_values"]

#: the seed of the chapter's 5x5 image (``default_rng(15).integers(0, 5, (5, 5))``)
CHAPTER_IMAGE_SEED = 15


def chapter_values() -> Dict[str, np.ndarray]:
    """The chapter's concrete numbers: image, kernel, conv bias, dense weights and bias, label.

    Chosen so that no ReLU input is 0 and no pooling window has a tie (the notebook asserts it).
    """
    rng = np.random.default_rng(CHAPTER_IMAGE_SEED)
    image = rng.integers(0, 5, size=(5, 5)).astype(float)
    kernel = np.array([[1.0, -0.5], [-1.0, 0.5]])
    conv_b = np.array([0.25])
    W = np.array([[0.2, -0.3, 0.1],
                  [-0.1, 0.4, -0.2],
                  [0.3, -0.2, -0.1],
                  [-0.2, 0.1, 0.3]])
    b = np.array([0.1, -0.1, 0.0])
    return {"image": image, "kernel": kernel, "conv_b": conv_b, "W": W, "b": b, "label": 2}


def tiny_network(image, kernel, conv_b, W, b, label) -> Dict[str, object]:
    """Forward and backward pass of image -> conv -> ReLU -> maxpool -> flatten -> dense -> CE.

    ``image (H, W)`` (one channel, one example), ``kernel (kh, kw)``, ``conv_b`` scalar or ``(1,)``,
    ``W (D, K)``, ``b (K,)``, ``label`` an int in ``[0, K)``.  Every array in the returned dict keeps
    the core's ``(N, C, H, W)`` / ``(N, D)`` shapes (``N = C = 1``).
    """
    x = np.asarray(image, dtype=float)[None, None]
    w = np.asarray(kernel, dtype=float)[None, None]
    cb = np.asarray(conv_b, dtype=float).reshape(1)
    W = np.asarray(W, dtype=float)
    b = np.asarray(b, dtype=float)
    labels = np.array([int(label)])
    v: Dict[str, object] = {"x": x, "w": w, "conv_b": cb, "W": W, "b": b, "labels": labels}
    v["conv"], c_conv = core.conv2d_forward(x, w, cb)
    v["relu"], c_relu = core.relu_forward(v["conv"])
    v["pool"], c_pool = core.maxpool2d_forward(v["relu"], 2)
    v["flat"], c_flat = core.flatten_forward(v["pool"])
    v["logits"], c_dense = core.dense_forward(v["flat"], W, b)
    v["p"] = core.softmax(v["logits"])
    v["loss"], v["dlogits"] = core.softmax_cross_entropy(v["logits"], labels)
    v["y"] = np.eye(W.shape[1])[labels]
    v["dflat"], v["dW"], v["db"] = core.dense_backward(v["dlogits"], c_dense)
    v["dpool"] = core.flatten_backward(v["dflat"], c_flat)
    v["drelu"] = core.maxpool2d_backward(v["dpool"], c_pool)
    v["dconv"] = core.relu_backward(v["drelu"], c_relu)
    v["dx"], v["dw"], v["dconv_b"] = core.conv2d_backward(v["dconv"], c_conv)
    v["pool_mask"] = core.maxpool2d_mask(c_pool)
    v["relu_mask"] = c_relu.mask
    return v


def _pool_windows(ax, size: int, k: int = 2) -> None:
    for r in range(0, size - k + 1, k):
        for c in range(0, size - k + 1, k):
            outline_window(ax, r, c, k, k, color=WINDOW, linewidth=1.5, linestyle="--", inset=0.04)


def _row_of_matrices(fig, gs_row, specs, cell_widths):
    axes = []
    sub = gs_row.subgridspec(1, len(specs), width_ratios=cell_widths, wspace=0.35)
    for i, spec in enumerate(specs):
        ax = fig.add_subplot(sub[0, i])
        draw_matrix(ax, spec["M"], title=spec["title"], highlight=spec.get("highlight"),
                    diverging=spec.get("diverging", False), fmt=spec.get("fmt"),
                    highlight_color=spec.get("color", HIGHLIGHT), fontsize=spec.get("fontsize", 9),
                    col_labels=spec.get("col_labels"), row_labels=spec.get("row_labels"))
        if spec.get("pool_windows"):
            _pool_windows(ax, np.asarray(spec["M"]).shape[0])
        axes.append(ax)
    return axes


def _rows_figure(rows: Sequence[Sequence[dict]], suptitle: Optional[str] = None, cell: float = 0.5):
    """Several rows of annotated matrices; each panel's width follows its number of columns."""
    widths = [[max(np.asarray(s["M"]).shape[1], 1) + 0.8 for s in row] for row in rows]
    heights = [max(np.asarray(s["M"]).shape[0] for s in row) + 1.2 for row in rows]
    total_w = max(sum(w) for w in widths)
    fig = plt.figure(figsize=(cell * total_w + 0.6, cell * sum(heights) + (0.4 if suptitle else 0)))
    gs = fig.add_gridspec(len(rows), 1, height_ratios=heights, hspace=0.35)
    for i, (row, w) in enumerate(zip(rows, widths)):
        pad = total_w - sum(w)  # keep cells the same size on every row: pad short rows on the right
        specs = list(row) + ([{"M": np.zeros((1, 1)), "title": "", "blank": True}] if pad > 0.5 else [])
        ws = list(w) + ([pad] if pad > 0.5 else [])
        axes = _row_of_matrices(fig, gs[i, 0], specs, ws)
        for ax, s in zip(axes, specs):
            if s.get("blank"):
                ax.remove()
    if suptitle:
        fig.suptitle(suptitle, fontsize=12)
    return fig


def forward_figure(v: Dict[str, object], cell: float = 0.62):
    """The forward pass, stage by stage: image, conv, ReLU (pool windows dashed, winners red),
    pooled map, flattened vector, logits and probabilities."""
    K = v["W"].shape[1]
    classes = [str(k) for k in range(K)]
    rows = [
        [{"M": v["x"][0, 0], "title": "image x (5×5)"},
         {"M": v["conv"][0, 0], "title": "conv z = x⋆w + b (4×4)", "diverging": True},
         {"M": v["relu"][0, 0], "title": "ReLU a (4×4)", "highlight": v["pool_mask"][0, 0] > 0,
          "pool_windows": True}],
        [{"M": v["pool"][0, 0], "title": "max pool m (2×2)"},
         {"M": v["flat"], "title": "flatten f (1×4)", "col_labels": list("abcd")},
         {"M": v["logits"], "title": "logits s (1×3)", "diverging": True, "col_labels": classes},
         {"M": v["p"], "title": "softmax p (1×3)", "col_labels": classes,
          "highlight": v["y"] > 0, "color": ACCENT}],
    ]
    fig = _rows_figure(rows, cell=cell,
                       suptitle=f"forward pass (label {int(v['labels'][0])} outlined in orange); "
                                f"loss = −log p[{int(v['labels'][0])}] = {float(v['loss']):.4f}")
    return fig


def backward_figure(v: Dict[str, object], cell: float = 0.72):
    """The gradient flowing backwards: dL/ds = p − y, dL/dW (dense), dL/df, dL/dm, dL/da (routed to
    the pool winners, outlined), dL/dz (ReLU mask), dL/dw (kernel) and dL/dx (image)."""
    K = v["W"].shape[1]
    classes = [str(k) for k in range(K)]
    rows = [
        [{"M": v["dlogits"], "title": "① dL/ds = p − y", "diverging": True, "col_labels": classes},
         {"M": v["dW"], "title": "② dL/dW = fᵀ(p − y)", "diverging": True, "col_labels": classes,
          "row_labels": list("abcd")},
         {"M": v["dflat"], "title": "③ dL/df = (p − y)Wᵀ", "diverging": True, "col_labels": list("abcd")}],
        [{"M": v["dpool"][0, 0], "title": "④ dL/dm (reshape)", "diverging": True},
         {"M": v["drelu"][0, 0], "title": "⑤ dL/da (to the maxima)", "diverging": True,
          "highlight": v["pool_mask"][0, 0] > 0, "pool_windows": True},
         {"M": v["dconv"][0, 0], "title": "⑥ dL/dz = dL/da ⊙ [z>0]", "diverging": True,
          "highlight": v["relu_mask"][0, 0], "color": ACCENT}],
        [{"M": v["dw"][0, 0], "title": "⑦ dL/dw (kernel)", "diverging": True},
         {"M": v["dx"][0, 0], "title": "⑧ dL/dx (image)", "diverging": True}],
    ]
    return _rows_figure(rows, cell=cell, suptitle="backward pass: from the loss to the kernel and the image "
                        f"(dL/db_conv = {float(v['dconv_b'][0]):.4g})")


def flatten_figure(pool: np.ndarray, dflat: np.ndarray, cell: float = 0.6):
    """The flatten correspondence a, b, c, d <-> the 2x2 map, forward (values) and backward
    (gradients), each cell labelled with its letter."""
    pool = np.asarray(pool, dtype=float).reshape(2, 2)
    dflat = np.asarray(dflat, dtype=float).reshape(1, 4)
    letters = np.array(list("abcd")).reshape(2, 2)
    fig, axes = plt.subplots(1, 4, figsize=(cell * 14, cell * 4),
                             gridspec_kw={"width_ratios": [2.4, 4, 4, 2.4]})
    specs = [(pool, "m (2×2)", False), (pool.reshape(1, 4), "f = flatten(m) (1×4)", False),
             (dflat, "dL/df (1×4)", True), (dflat.reshape(2, 2), "dL/dm (2×2)", True)]
    for ax, (M, title, div) in zip(axes, specs):
        draw_matrix(ax, M, title=title, diverging=div, fontsize=11)
        labels = letters if M.shape == (2, 2) else letters.reshape(1, 4)
        for r in range(M.shape[0]):
            for c in range(M.shape[1]):
                ax.text(c - 0.42, r - 0.3, labels[r, c], fontsize=9, color=ACCENT, fontweight="bold",
                        ha="left", va="center")
        ax.set_xticks([])
        ax.set_yticks([])
    axes[0].annotate("", xy=(1.25, 0.5), xytext=(1.02, 0.5), xycoords="axes fraction",
                     arrowprops={"arrowstyle": "->", "color": "0.3"})
    axes[2].annotate("", xy=(1.2, 0.5), xytext=(1.02, 0.5), xycoords="axes fraction",
                     arrowprops={"arrowstyle": "->", "color": "0.3"})
    fig.tight_layout()
    return fig


class SoftmaxGradExplorer:
    """Pick the label and move the dense biases; watch ``p``, ``p − y`` and ``dL/df`` change.

    Controls (attributes): ``label`` (ToggleButtons over the classes) and ``biases`` (one
    FloatSlider per class; bias ``b_k`` adds to logit ``k`` only, so it moves one logit).
    State recomputed on every change: ``logits``, ``p``, ``y``, ``dlogits`` (= p − y for one
    example), ``dW``, ``dflat`` (= (p − y) Wᵀ, shape ``(1, D)``), ``dpool`` (the same numbers as the
    ``(2, 2)`` map) and ``loss``.
    """

    BIAS_RANGE = (-3.0, 3.0)

    def __init__(self, values: Optional[Dict[str, object]] = None):
        import ipywidgets as widgets

        v = chapter_values() if values is None else dict(values)
        self.image, self.kernel, self.conv_b = v["image"], v["kernel"], v["conv_b"]
        self.W = np.asarray(v["W"], dtype=float)
        self.K = self.W.shape[1]
        b0 = np.asarray(v["b"], dtype=float)
        lo, hi = self.BIAS_RANGE
        self.label = widgets.ToggleButtons(options=list(range(self.K)), value=int(v["label"]),
                                           description="label y")
        self.biases = [widgets.FloatSlider(value=float(np.clip(b0[k], lo, hi)), min=lo, max=hi, step=0.1,
                                           description=f"bias b{k}", continuous_update=False,
                                           readout_format=".1f")
                       for k in range(self.K)]
        self.out = widgets.Output()
        self.summary = widgets.HTML()
        self.label.observe(self._on_change, names="value")
        for s in self.biases:
            s.observe(self._on_change, names="value")
        self.widget = widgets.VBox([self.label, widgets.HBox(self.biases[:2]),
                                    widgets.HBox(self.biases[2:]), self.summary, self.out])
        self.update()

    # -- state -------------------------------------------------------------------------------
    def _on_change(self, change) -> None:
        self.update()

    def _compute(self) -> None:
        b = np.array([s.value for s in self.biases], dtype=float)
        self.values = tiny_network(self.image, self.kernel, self.conv_b, self.W, b, int(self.label.value))
        v = self.values
        self.b = b
        self.logits = v["logits"]
        self.p = v["p"]
        self.y = v["y"]
        self.dlogits = v["dlogits"]
        self.dW = v["dW"]
        self.dflat = v["dflat"]
        self.dpool = v["dpool"][0, 0]
        self.loss = float(v["loss"])
        self.prediction = int(np.argmax(self.p))

    def _summary_html(self) -> str:
        y = int(self.label.value)
        fmt = lambda a: ", ".join(f"{t:+.3f}" for t in np.ravel(a))  # noqa: E731
        verdict = ("the prediction is right" if self.prediction == y
                   else f"the network predicts class {self.prediction}")
        return (f"<b>loss</b> = −log p<sub>{y}</sub> = {self.loss:.4f} ({html.escape(verdict)})<br>"
                f"<b>p − y</b> = [{fmt(self.dlogits)}] (sums to {float(self.dlogits.sum()):+.1e}; "
                f"only entry {y} is negative)<br>"
                f"<b>dL/df</b> = (p − y) Wᵀ = [{fmt(self.dflat)}]")

    def update(self) -> None:
        """Recompute the state, the summary and the picture in the Output widget."""
        self._compute()
        self.summary.value = self._summary_html()
        show_figure(self.out, self.figure(), dpi=90)

    def figure(self, cell: float = 0.62):
        """A new figure of the current state: logits, p, y, p − y, dL/dW, dL/df, dL/dm."""
        classes = [str(k) for k in range(self.K)]
        rows = [[{"M": self.logits, "title": "logits s", "diverging": True, "col_labels": classes},
                 {"M": self.p, "title": "p = softmax(s)", "col_labels": classes, "fmt": "{:.3f}"},
                 {"M": self.y, "title": "one-hot y", "col_labels": classes},
                 {"M": self.dlogits, "title": "dL/ds = p − y", "diverging": True, "col_labels": classes,
                  "fmt": "{:+.3f}"}],
                [{"M": self.dW, "title": "dL/dW = fᵀ(p − y)", "diverging": True, "col_labels": classes,
                  "row_labels": list("abcd")},
                 {"M": self.dflat, "title": "dL/df = (p − y)Wᵀ", "diverging": True,
                  "col_labels": list("abcd")},
                 {"M": self.dpool, "title": "dL/dm (2×2)", "diverging": True}]]
        return _rows_figure(rows, cell=cell, suptitle=f"label y = {int(self.label.value)}, "
                            f"biases b = [{', '.join(format_value(t) for t in self.b)}], "
                            f"loss = {self.loss:.4f}")
