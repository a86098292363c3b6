"""Chapter 06 (flatten, dense layer, softmax and cross-entropy): figure helpers and an explorable.

The chapter follows the network of the Stack Exchange question "Back propagation through a
simple convolutional neural network": a 5x5 image, one 2x2 kernel, ReLU, 2x2 max pooling,
flatten, a dense layer to K classes, softmax and cross-entropy.

* :func:`tiny_network` runs that network forward and backward with :mod:`mlp_cnn_core` and
  returns every intermediate array (nothing is re-implemented here).
* :func:`forward_figure` and :func:`backward_figure` draw the forward values and the gradient
  flowing backwards, stage by stage.
* :class:`SoftmaxGradient` is an explorable: pick the label, move the dense biases (each bias
  shifts one logit) and watch ``p - y`` and the gradient of the flattened layer change; hover a
  logit to follow it.  :func:`softmax_state` computes what it draws (a pure function).
"""
from __future__ import annotations

from typing import Dict, Optional, Sequence

import numpy as np
from matplotlib import pyplot as plt

import mlp_cnn_core as core
import mlp_cnn_train as train

from .draw import ACCENT, HIGHLIGHT, WINDOW, draw_matrix, format_value, outline_window
from .explorable import Explorable, cell_id, control, link, panel

__all__ = ["tiny_network", "forward_figure", "backward_figure", "flatten_figure", "softmax_state",
           "SoftmaxGradient", "BIAS_STEPS", "CHAPTER_IMAGE_SEED", "chapter_values"]

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
    net = train.small_cnn_forward(x, w, W, cb, b, layers=core)
    v.update(conv=net["conv"], relu=net["act"], pool=net["pool"], flat=net["flat"], logits=net["out"])
    v["p"] = core.softmax(v["logits"])
    v["loss"], v["dlogits"] = core.softmax_cross_entropy(v["logits"], labels)
    v["y"] = np.eye(W.shape[1])[labels]
    g = train.small_cnn_backward(v["dlogits"], net, layers=core)
    v.update(dflat=g["dflat"], dW=g["ddense_w"], db=g["ddense_b"], dpool=g["dpool"], drelu=g["dact"],
             dconv=g["dconv"], dx=g["dx"], dw=g["dw"], dconv_b=g["dconv_b"])
    v["pool_mask"] = core.maxpool2d_mask(net["pool_cache"])
    v["relu_mask"] = net["relu_cache"].mask
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


def forward_figure(v: Dict[str, object], cell: float = 0.58):
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


# ---------------------------------------------------------------------------------------------
# The explorable (drawn in the browser from precomputed states)
# ---------------------------------------------------------------------------------------------

#: what each bias control adds to the chapter's bias (the reader sees the resulting bias)
BIAS_STEPS = (-2, -1, 0, 1, 2)


def softmax_state(values: Dict[str, object]) -> dict:
    """Everything the softmax explorable draws for the chapter's network with the numbers
    ``values`` (as :func:`chapter_values`: image, kernel, conv_b, W, b, label): logits, p, y,
    p − y, W, f, dL/dW, dL/df and dL/dm, all from :func:`tiny_network` (the core), and what each
    cell is linked to (hover a logit, a weight or an entry of dL/df)."""
    v = tiny_network(**values)
    fmt = format_value
    W = v["W"]
    D, K = W.shape
    y = int(v["labels"][0])
    s, p, onehot, d = v["logits"][0], v["p"][0], v["y"][0], v["dlogits"][0]
    f, df, dW = v["flat"][0], v["dflat"][0], v["dW"]
    dm = v["dpool"][0, 0]
    Hm, Wm = dm.shape
    names = "abcdefghijklmnopqrstuvwxyz"[:D] if D <= 26 else [str(i) for i in range(D)]
    classes = [str(k) for k in range(K)]
    lim = float(np.max(np.abs(np.concatenate([df, dW.ravel()])))) or 1.0
    label_cls = [["win" if k == y else "" for k in range(K)]]
    panels = [
        panel("s", "logits s = fW + b", [s], scale="div", col_labels=classes),
        panel("p", "p = softmax(s)", [p], col_labels=classes, classes=label_cls),
        panel("y", f"one-hot y (label {y})", [onehot], col_labels=classes, classes=label_cls),
        panel("d", "dL/ds = p − y", [d], scale="div", col_labels=classes, classes=label_cls),
        panel("W", f"W ({D}×{K})", W, scale="div", row_labels=list(names), col_labels=classes),
        panel("f", f"f = flatten(m) (1×{D})", [f], col_labels=list(names)),
        panel("dW", "dL/dW = fᵀ(p − y)", dW, scale="div", limit=lim, row_labels=list(names), col_labels=classes),
        panel("df", "dL/df = (p − y)Wᵀ", [df], scale="div", limit=lim, col_labels=list(names)),
        panel("dm", f"dL/dm ({Hm}×{Wm}, reshaped)", dm, scale="div", limit=lim,
              text=[[f"{names[r * Wm + c]}: {fmt(dm[r, c])}" for c in range(Wm)] for r in range(Hm)]),
    ]
    links = {}
    for k in range(K):
        cells = [cell_id(q, 0, k) for q in ("s", "p", "y", "d")]
        cells += [cell_id(q, i, k) for q in ("W", "dW") for i in range(D)]
        cells += [cell_id("df", 0, i) for i in range(D)] + [cell_id("dm", r, c) for r in range(Hm) for c in range(Wm)]
        parts = ", ".join(f"{fmt(d[k] * W[i, k])}" for i in range(D))
        role = "the label: p − y is negative here" if k == y else "not the label: p − y = p here"
        text = (f"Class {k} ({role}): s{k} = {fmt(s[k])}, p{k} = {fmt(p[k])}, y{k} = {fmt(onehot[k])}, "
                f"dL/ds{k} = {fmt(p[k])} − {fmt(onehot[k])} = <b>{fmt(d[k])}</b>. Through column {k} of W it adds "
                f"dL/ds{k}·W[:,{k}] = ({parts}) to dL/df.")
        lk = link(cells, [], text)
        for q in ("s", "p", "y", "d"):
            links[cell_id(q, 0, k)] = lk
    for i in range(D):
        r, c = divmod(i, Wm)
        cells = [cell_id("df", 0, i), cell_id("f", 0, i), cell_id("dm", r, c)]
        cells += [cell_id("W", i, k) for k in range(K)] + [cell_id("d", 0, k) for k in range(K)]
        terms = " + ".join(f"{fmt(W[i, k])}·{fmt(d[k])}" for k in range(K))
        text = (f"dL/df_{names[i]} = Σ_k W[{names[i]},k]·dL/ds_k = {terms} = <b>{fmt(df[i])}</b>; "
                f"un-flattened, it is dL/dm[{r},{c}] (flatten only moved the value).")
        lk = link(cells, [], text)
        links[cell_id("df", 0, i)] = links[cell_id("dm", r, c)] = links[cell_id("f", 0, i)] = lk
        for k in range(K):
            cells = [cell_id("W", i, k), cell_id("dW", i, k), cell_id("f", 0, i), cell_id("d", 0, k),
                     cell_id("s", 0, k), cell_id("df", 0, i)]
            text = (f"W[{names[i]},{k}] = {fmt(W[i, k])} multiplies f_{names[i]} = {fmt(f[i])} into s{k}: "
                    f"dL/dW[{names[i]},{k}] = f_{names[i]}·dL/ds{k} = {fmt(f[i])}·{fmt(d[k])} = <b>{fmt(dW[i, k])}</b>, "
                    f"and it carries dL/ds{k} back to dL/df_{names[i]}.")
            links[cell_id("W", i, k)] = links[cell_id("dW", i, k)] = link(cells, [], text)
    pred = int(np.argmax(p))
    verdict = "right" if pred == y else "wrong"
    caption = (f"b = ({', '.join(fmt(t) for t in v['b'])}); loss = −log p{y} = {float(v['loss']):.4f}; "
               f"the network predicts class {pred} ({verdict}). p − y sums to {fmt(round(float(d.sum()), 12) + 0.0)} "
               "and is negative only at the label.")
    return {"panels": panels, "links": links, "caption": caption, "focus": cell_id("d", 0, y)}


class SoftmaxGradient(Explorable):
    """Chapter 6: the label and the dense biases, and the gradient p − y they produce.

    Controls: the label (a select over the classes) and one slider per dense bias (each moves
    one logit; the options are the chapter's bias plus :data:`BIAS_STEPS`).  Hover a logit, a
    weight or an entry of dL/df to follow it."""

    TITLE = "Softmax + cross-entropy: p − y, and the gradient reaching the flattened layer"

    def make_controls(self):
        base = chapter_values()
        K = base["W"].shape[1]
        ctl = [control("label", "label y", list(range(K)), default=int(base["label"]), kind="select",
                       labels=[f"class {k}" for k in range(K)])]
        for k in range(K):
            ctl.append(control(f"b{k}", f"bias b{k}", list(BIAS_STEPS), default=0,
                               labels=[format_value(base["b"][k] + t) for t in BIAS_STEPS]))
        return ctl

    def state(self, label, **steps):
        base = chapter_values()
        b = base["b"] + np.array([steps[f"b{k}"] for k in range(base["W"].shape[1])], dtype=float)
        return softmax_state({**base, "b": b, "label": label})
