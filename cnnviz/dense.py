"""Chapter 06 (flatten, dense layer, softmax and cross-entropy): the figures and the explorable.

The chapter follows the network of the Stack Exchange question "Back propagation through a
simple convolutional neural network": a 5×5 image X, one 2×2 kernel K, ReLU, 2×2 max pooling,
flatten, a dense layer V to M classes, softmax and cross-entropy.  The chapter's names:

    X (5×5) → Y = X ⋆ K + b^conv (4×4) → A = max(Y, 0) → Q = maxpool(A) (2×2)
      → h = flatten(Q) (1×D) → z = hV + b (1×M, the logits) → p = softmax(z) → L = −log p_t

* :func:`tiny_network` runs that network forward and backward with :mod:`mlp_cnn_core` and
  returns every intermediate array (nothing is re-implemented here).
* :func:`forward_state`, :func:`backward_state` and :func:`flatten_state` are the chapter's
  figures, states drawn by the explorables' view (``cnnviz.figure(cnnviz.call(...))``).
* :class:`SoftmaxGradient` is an explorable: pick the label t, move the dense biases (each bias
  shifts one logit) and watch ``p − 𝟙_t`` and the gradient of the flattened layer change; hover a
  logit, a weight or an entry of ∂L/∂h to follow it.  :func:`softmax_state` computes what it
  draws (a pure function).
"""
from __future__ import annotations

from typing import Dict, List

import numpy as np

import mlp_cnn_core as core
import mlp_cnn_train as train

from .draw import SUBSCRIPT_DIGITS, factor, format_value
from .explorable import Explorable, cell_id, control, link, panel, pool_windows

__all__ = ["tiny_network", "forward_state", "backward_state", "flatten_state", "softmax_state",
           "SoftmaxGradient", "BIAS_STEPS", "CHAPTER_IMAGE_SEED", "chapter_values"]

#: the seed of the chapter's 5x5 image (``default_rng(15).integers(0, 5, (5, 5))``)
CHAPTER_IMAGE_SEED = 15

#: subscript digits, for names in control labels and column labels (plain text there)
def chapter_values() -> Dict[str, np.ndarray]:
    """The chapter's concrete numbers: image X, kernel K, conv bias, dense weights V and bias b,
    label t.

    Chosen so that no ReLU input is 0 and no pooling window has a tie (the notebook asserts it).
    """
    rng = np.random.default_rng(CHAPTER_IMAGE_SEED)
    image = rng.integers(0, 5, size=(5, 5)).astype(float)
    kernel = np.array([[1.0, -0.5], [-1.0, 0.5]])
    conv_b = np.array([0.25])
    V = np.array([[0.2, -0.3, 0.1],
                  [-0.1, 0.4, -0.2],
                  [0.3, -0.2, -0.1],
                  [-0.2, 0.1, 0.3]])
    b = np.array([0.1, -0.1, 0.0])
    return {"image": image, "kernel": kernel, "conv_b": conv_b, "V": V, "b": b, "label": 2}


def tiny_network(image, kernel, conv_b, V, b, label) -> Dict[str, object]:
    """Forward and backward pass of image -> conv -> ReLU -> maxpool -> flatten -> dense -> CE.

    ``image (H, W)`` (one channel, one example), ``kernel (kh, kw)``, ``conv_b`` scalar or
    ``(1,)``, ``V (D, M)``, ``b (M,)``, ``label`` an int in ``[0, M)``.  Every array in the
    returned dict keeps the core's ``(N, C, H, W)`` / ``(N, D)`` shapes (``N = C = 1``); the keys
    name the layers (``conv``, ``relu``, ``pool``, ``flat``, ``logits``) and their gradients
    (``dconv`` is ∂L/∂Y, ``dflat`` is ∂L/∂h, ``dlogits`` is ∂L/∂z = p − 𝟙_t, ``dV``, ``db``, ``dw``
    is ∂L/∂K, ``dx`` is ∂L/∂X); ``onehot`` is 𝟙[m = t].
    """
    x = np.asarray(image, dtype=float)[None, None]
    w = np.asarray(kernel, dtype=float)[None, None]
    cb = np.asarray(conv_b, dtype=float).reshape(1)
    V = np.asarray(V, dtype=float)
    b = np.asarray(b, dtype=float)
    labels = np.array([int(label)])
    v: Dict[str, object] = {"x": x, "w": w, "conv_b": cb, "V": V, "b": b, "labels": labels}
    net = train.small_cnn_forward(x, w, V, cb, b, layers=core)
    v.update(conv=net["conv"], relu=net["act"], pool=net["pool"], flat=net["flat"], logits=net["out"])
    v["p"] = core.softmax(v["logits"])
    v["loss"], v["dlogits"] = core.softmax_cross_entropy(v["logits"], labels)
    v["onehot"] = np.eye(V.shape[1])[labels]
    g = train.small_cnn_backward(v["dlogits"], net, layers=core)
    v.update(dflat=g["dflat"], dV=g["ddense_w"], db=g["ddense_b"], dpool=g["dpool"], drelu=g["dact"],
             dconv=g["dconv"], dx=g["dx"], dw=g["dw"], dconv_b=g["dconv_b"])
    v["pool_mask"] = core.maxpool2d_mask(net["pool_cache"])
    v["relu_mask"] = net["relu_cache"].mask
    return v


# ---------------------------------------------------------------------------------------------
# The chapter's figures (states drawn by the explorables' view)
# ---------------------------------------------------------------------------------------------


def _classes(M: int) -> list:
    return [str(m) for m in range(M)]


def _subscripted(letter: str, n: int) -> List[str]:
    """``letter`` with the subscripts 0 … n − 1 (h₀, h₁, …): the labels of a row or a column."""
    return [f"{letter}{i}".translate(SUBSCRIPT_DIGITS) for i in range(n)]


def _at_label(t: int, M: int, cls: str) -> List[List[str]]:
    """The classes of a 1×M row: ``cls`` at the label t, nothing elsewhere."""
    return [[cls if m == t else "" for m in range(M)]]


def forward_state(values: Dict[str, object]) -> dict:
    """The forward pass, stage by stage, for the chapter's numbers ``values`` (as
    :func:`chapter_values`): X, Y = X ⋆ K + b<sup>conv</sup>, A = max(Y, 0) with the pooling windows
    and their maxima, Q, h = flatten(Q), the logits z and p = softmax(z) (the label marked)."""
    v = tiny_network(**values)
    t = int(v["labels"][0])
    D, M = v["V"].shape
    q = v["pool"][0, 0]
    n_out = q.shape[0]
    H, W = v["x"].shape[-2:]
    Ho, Wo = v["conv"].shape[-2:]
    panels = [
        panel("X", f"image X ({H}×{W})", v["x"][0, 0]),
        panel("Y", f"Y = X ⋆ K + b<sup>conv</sup> ({Ho}×{Wo})", v["conv"][0, 0], scale="div", op="→"),
        panel("A", "A = max(Y, 0)", v["relu"][0, 0], op="→",
              classes=np.where(v["pool_mask"][0, 0] > 0, "win", ""), windows=pool_windows("A", n_out)),
        panel("Q", f"Q = maxpool(A) ({n_out}×{n_out})", q, op="→", new_row=True),
        panel("h", f"h = flatten(Q) (1×{D})", v["flat"], op="→", col_labels=_subscripted("h", D)),
        panel("z", f"z = hV + b (1×{M})", v["logits"], scale="div", op="→", col_labels=_classes(M)),
        panel("p", f"p = softmax(z) (1×{M})", v["p"], op="→", col_labels=_classes(M),
              classes=_at_label(t, M, "sel")),
    ]
    caption = (f"The label is t = {t} (marked); the loss is L = −log p<sub>{t}</sub> = {float(v['loss']):.4f}. "
               "Each 2×2 window of A gives its maximum to the cell of Q in the same place.")
    return {"panels": panels, "caption": caption,
            "legend": {"win": "maximum of its window", "sel": f"the label t = {t}", "window": "a pooling window"}}


def backward_state(values: Dict[str, object]) -> dict:
    """The gradient flowing backwards for the chapter's numbers ``values``: ∂L/∂z = p − 𝟙<sub>t</sub>,
    ∂L/∂V, ∂L/∂h, ∂L/∂Q (a reshape), ∂L/∂A (routed to the window maxima), ∂L/∂Y (the ReLU mask),
    ∂L/∂K and ∂L/∂X; ∂L/∂b<sup>conv</sup> in the caption."""
    v = tiny_network(**values)
    t = int(v["labels"][0])
    D, M = v["V"].shape
    dq = v["dpool"][0, 0]
    hs, zs = _subscripted("h", D), _subscripted("z", M)
    dead = np.where(v["relu_mask"][0, 0], "", "dead")
    panels = [
        panel("dz", "∂L/∂z = p − 𝟙<sub>t</sub>", v["dlogits"], scale="div", col_labels=_classes(M),
              classes=_at_label(t, M, "sel")),
        panel("dV", "∂L/∂V = h<sup>⊤</sup> ∂L/∂z", v["dV"], scale="div", row_labels=hs, col_labels=zs),
        panel("dh", "∂L/∂h = ∂L/∂z V<sup>⊤</sup>", v["dflat"], scale="div", col_labels=hs),
        panel("dQ", "∂L/∂Q (reshaped)", dq, scale="div", op="→", new_row=True),
        panel("dA", "∂L/∂A (to the maxima)", v["drelu"][0, 0], scale="div", op="→",
              classes=np.where(v["pool_mask"][0, 0] > 0, "win", ""), windows=pool_windows("dA", dq.shape[0])),
        panel("dY", "∂L/∂Y = ∂L/∂A ⊙ 𝟙[Y > 0]", v["dconv"][0, 0], scale="div", op="→", classes=dead),
        panel("dK", "∂L/∂K", v["dw"][0, 0], scale="div", new_row=True),
        panel("dX", "∂L/∂X", v["dx"][0, 0], scale="div"),
    ]
    caption = (f"From the loss back to the kernel and the image; ∂L/∂b<sup>conv</sup> = "
               f"{format_value(float(v['dconv_b'][0]), digits=4)} (the sum of ∂L/∂Y).")
    return {"panels": panels, "caption": caption,
            "legend": {"win": "maximum of its window", "sel": f"the label t = {t}",
                       "dead": "Y ≤ 0: the ReLU passes nothing", "window": "a pooling window"}}


def flatten_state(q, dh) -> dict:
    """Flatten forwards and backwards: the pooled map ``q`` (2×2) laid out as the row
    h = (h<sub>0</sub>, …, h<sub>3</sub>) in row-major order, and the gradient ``dh`` (1×4) put back
    into a 2×2 map ∂L/∂Q in the same order.  Each entry is linked to its place in the other
    three panels (a figure follows one of them)."""
    q = np.asarray(q, dtype=float).reshape(2, 2)
    dh = np.asarray(dh, dtype=float).reshape(1, 4)
    fmt = format_value
    hs = _subscripted("h", 4)
    idx = ["0", "1"]
    panels = [
        panel("Q", "Q (2×2)", q, row_labels=idx, col_labels=idx),
        panel("h", "h = flatten(Q) (1×4)", q.reshape(1, 4), op="→", col_labels=hs),
        panel("dh", "∂L/∂h (1×4)", dh, scale="div", col_labels=hs, new_row=True),
        panel("dQ", "∂L/∂Q (2×2)", dh.reshape(2, 2), scale="div", op="→", row_labels=idx, col_labels=idx),
    ]
    links = {}
    for d, (i, j) in enumerate(np.ndindex(2, 2)):
        text = (f"h<sub>{d}</sub> = Q<sub>{i}{j}</sub> = {fmt(q[i, j])}: flatten reads Q row by row "
                f"(d = 2i + j). Backwards, ∂L/∂h<sub>{d}</sub> = {fmt(dh[0, d])} goes back to the same place: "
                f"∂L/∂Q<sub>{i}{j}</sub> = ∂L/∂h<sub>{d}</sub>.")
        lk = link([cell_id("Q", i, j), cell_id("h", 0, d), cell_id("dh", 0, d), cell_id("dQ", i, j)], [], text)
        for cid in (cell_id("Q", i, j), cell_id("h", 0, d), cell_id("dh", 0, d), cell_id("dQ", i, j)):
            links[cid] = lk
    caption = ("Flatten only moves values: forwards, Q is read row by row into h; backwards, "
               "∂L/∂h goes back to the same places.")
    return {"panels": panels, "links": links, "caption": caption}


# ---------------------------------------------------------------------------------------------
# The explorable (drawn in the browser from precomputed states)
# ---------------------------------------------------------------------------------------------

#: what each bias control adds to the chapter's bias (the reader sees the resulting bias)
BIAS_STEPS = (-2, -1, 0, 1, 2)


def softmax_state(values: Dict[str, object]) -> dict:
    """Everything the softmax explorable draws for the chapter's network with the numbers
    ``values`` (as :func:`chapter_values`: image, kernel, conv_b, V, b, label): the logits z, p,
    the one-hot 𝟙[m = t], ∂L/∂z = p − 𝟙<sub>t</sub>, V, h, ∂L/∂V, ∂L/∂h and ∂L/∂Q, all from
    :func:`tiny_network` (the core), and what each cell is linked to (hover a logit, a weight or
    an entry of ∂L/∂h)."""
    v = tiny_network(**values)
    fmt = format_value
    V = v["V"]
    D, M = V.shape
    t = int(v["labels"][0])
    z, p, onehot, d = v["logits"][0], v["p"][0], v["onehot"][0], v["dlogits"][0]
    h, dh, dV = v["flat"][0], v["dflat"][0], v["dV"]
    dq = v["dpool"][0, 0]
    Hq, Wq = dq.shape
    hs, zs = _subscripted("h", D), _subscripted("z", M)
    classes = _classes(M)
    lim = float(np.max(np.abs(np.concatenate([dh, dV.ravel()])))) or 1.0
    label_cls = _at_label(t, M, "win")
    panels = [
        panel("z", "logits z = hV + b", [z], scale="div", col_labels=classes),
        panel("p", "p = softmax(z)", [p], col_labels=classes, classes=label_cls),
        panel("t", f"𝟙[m = t], t = {t}", [onehot], col_labels=classes, classes=label_cls),
        panel("dz", "∂L/∂z = p − 𝟙<sub>t</sub>", [d], scale="div", col_labels=classes, classes=label_cls),
        panel("V", f"V ({D}×{M})", V, scale="div", row_labels=hs, col_labels=zs, new_row=True),
        panel("dV", "∂L/∂V = h<sup>⊤</sup> ∂L/∂z", dV, scale="div", limit=lim, row_labels=hs, col_labels=zs),
        panel("h", f"h = flatten(Q) (1×{D})", [h], col_labels=hs, new_row=True),
        panel("dh", "∂L/∂h = ∂L/∂z V<sup>⊤</sup>", [dh], scale="div", limit=lim, col_labels=hs),
        panel("dQ", f"∂L/∂Q ({Hq}×{Wq}, reshaped)", dq, scale="div", limit=lim, op="→"),
    ]
    links = {}
    for m in range(M):
        cells = [cell_id(q, 0, m) for q in ("z", "p", "t", "dz")]
        cells += [cell_id(q, i, m) for q in ("V", "dV") for i in range(D)]
        cells += [cell_id("dh", 0, i) for i in range(D)] + [cell_id("dQ", r, c) for r in range(Hq) for c in range(Wq)]
        parts = ", ".join(f"{fmt(d[m] * V[i, m])}" for i in range(D))
        role = ("the label: p − 𝟙<sub>t</sub> is negative here" if m == t
                else "not the label: p − 𝟙<sub>t</sub> = p here")
        text = (f"Class {m} ({role}): z<sub>{m}</sub> = {fmt(z[m])}, p<sub>{m}</sub> = {fmt(p[m])}, "
                f"𝟙[{m} = t] = {fmt(onehot[m])}, ∂L/∂z<sub>{m}</sub> = {fmt(p[m])} − {fmt(onehot[m])} = "
                f"<b>{fmt(d[m])}</b>. Through column {m} of V it adds ∂L/∂z<sub>{m}</sub>·V<sub>:,{m}</sub> = "
                f"({parts}) to ∂L/∂h.")
        lk = link(cells, [], text)
        for q in ("z", "p", "t", "dz"):
            links[cell_id(q, 0, m)] = lk
    for i in range(D):
        r, c = divmod(i, Wq)
        cells = [cell_id("dh", 0, i), cell_id("h", 0, i), cell_id("dQ", r, c)]
        cells += [cell_id("V", i, m) for m in range(M)] + [cell_id("dz", 0, m) for m in range(M)]
        terms = " + ".join(f"{factor(V[i, m])}·{factor(d[m])}" for m in range(M))
        text = (f"∂L/∂h<sub>{i}</sub> = Σ<sub>m</sub> V<sub>{i}m</sub>·∂L/∂z<sub>m</sub> = {terms} = "
                f"<b>{fmt(dh[i])}</b>; un-flattened, it is ∂L/∂Q<sub>{r}{c}</sub> (flatten only moved the value).")
        lk = link(cells, [], text)
        links[cell_id("dh", 0, i)] = links[cell_id("dQ", r, c)] = links[cell_id("h", 0, i)] = lk
        for m in range(M):
            cells = [cell_id("V", i, m), cell_id("dV", i, m), cell_id("h", 0, i), cell_id("dz", 0, m),
                     cell_id("z", 0, m), cell_id("dh", 0, i)]
            text = (f"V<sub>{i}{m}</sub> = {fmt(V[i, m])} multiplies h<sub>{i}</sub> = {fmt(h[i])} into "
                    f"z<sub>{m}</sub>: ∂L/∂V<sub>{i}{m}</sub> = h<sub>{i}</sub>·∂L/∂z<sub>{m}</sub> = "
                    f"{factor(h[i])}·{factor(d[m])} = <b>{fmt(dV[i, m])}</b>, and it carries ∂L/∂z<sub>{m}</sub> "
                    f"back to ∂L/∂h<sub>{i}</sub>.")
            links[cell_id("V", i, m)] = links[cell_id("dV", i, m)] = link(cells, [], text)
    pred = int(np.argmax(p))
    verdict = "right" if pred == t else "wrong"
    caption = (f"b = ({', '.join(fmt(x) for x in v['b'])}); loss = −log p<sub>{t}</sub> = {float(v['loss']):.4f}; "
               f"the network predicts class {pred} ({verdict}). p − 𝟙<sub>t</sub> sums to "
               f"{fmt(round(float(d.sum()), 12) + 0.0)} and is negative only at the label.")
    return {"panels": panels, "links": links, "caption": caption, "focus": cell_id("dz", 0, t),
            "legend": {"win": "the label t"}}


class SoftmaxGradient(Explorable):
    """Chapter 6: the label t and the dense biases, and the gradient p − 𝟙_t they produce.

    Controls: the label (a select over the classes) and one slider per dense bias (each moves
    one logit; the options are the chapter's bias plus :data:`BIAS_STEPS`).  Hover a logit, a
    weight or an entry of ∂L/∂h to follow it."""

    TITLE = "Softmax + cross-entropy: p − 𝟙[m = t], and the gradient reaching the flattened layer"

    def make_controls(self):
        base = chapter_values()
        M = base["V"].shape[1]
        ctl = [control("label", "label t", list(range(M)), default=int(base["label"]), kind="select",
                       labels=[f"class {m}" for m in range(M)])]
        for m in range(M):
            ctl.append(control(f"b{m}", f"bias b{m}".translate(SUBSCRIPT_DIGITS), list(BIAS_STEPS), default=0,
                               labels=[format_value(base["b"][m] + s) for s in BIAS_STEPS]))
        return ctl

    def state(self, label, **steps):
        base = chapter_values()
        b = base["b"] + np.array([steps[f"b{m}"] for m in range(base["V"].shape[1])], dtype=float)
        return softmax_state({**base, "b": b, "label": label})
