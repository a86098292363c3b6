"""Chapters 08 and 09 (training a real CNN): data, the network, a training helper,
gradient checks and the plots of a training run.

Everything numerical is done elsewhere: the layers, optimizers and training loop by
:mod:`mlp_cnn_train` (on the tuned layers of :mod:`mlp_cnn_fast`), the loss and finite
differences by :mod:`mlp_cnn_core`; this module only loads the data, wires the layers together
the same way for both chapters and draws the results.

* :func:`load_digits_split` -- scikit-learn's bundled 8x8 digits, standardized, as
  ``(N, 1, 8, 8)`` float64 arrays with a stratified, seeded held-out split.
* :func:`make_digits_cnn` -- ``Conv(1->16) ReLU Pool Conv(16->32) ReLU Pool Flatten
  Dense(128->10)`` with max or average pooling, seeded.
* :func:`train_digits` -- :func:`mlp_cnn_train.train_classifier` called one epoch at a
  time, so the test loss can be recorded after every epoch too.
* :func:`network_gradient_check` -- backward pass against
  :func:`mlp_cnn_core.numerical_gradient` for a few entries of every parameter.
* figures drawn for the book's column (:mod:`cnnviz.mplfig`; show them with
  :func:`cnnviz.show_figure`): :func:`plot_history`, :func:`plot_comparison`,
  :func:`plot_digits`, :func:`plot_misclassified`, :func:`plot_kernels`,
  :func:`plot_feature_maps`; and :func:`confusion_state`, the confusion matrix in the
  book's picture language (``cnnviz.figure(cnnviz.call(confusion_state, C))``).
"""
from __future__ import annotations

import time
from typing import Dict, List, Mapping, NamedTuple, Optional, Sequence

import matplotlib
import numpy as np

import mlp_cnn_core as core
import mlp_cnn_train as train

from . import mplfig
from .explorable import panel

__all__ = ["DigitsSplit", "load_digits_split", "make_digits_cnn", "train_digits",
           "evaluate", "confusion_matrix", "confusion_state", "network_gradient_check",
           "limit_blas_threads", "plot_history", "plot_comparison", "plot_digits",
           "plot_misclassified", "plot_kernels", "plot_feature_maps", "CHANNELS",
           "EPOCHS", "BATCH_SIZE", "LEARNING_RATE", "DIVERGING", "DIGIT_CMAP"]

CHANNELS = (16, 32)     # filters of the two convolution layers
EPOCHS = 15
BATCH_SIZE = 32
LEARNING_RATE = 5e-3    # Adam

#: Colour map of kernels and feature maps: blue negative, black 0, red positive.  Its
#: dark centre reads on the light and the dark page alike (a white-centred map would be
#: a bright box in dark mode).  matplotlib before 3.10 has no "berlin": then RdBu_r.
DIVERGING = "berlin" if "berlin" in matplotlib.colormaps else "RdBu_r"
#: Colour map of digit images: white ink on black.
DIGIT_CMAP = "gray"


def limit_blas_threads(n: int = 1):
    """Let numpy's BLAS use ``n`` threads (returns threadpoolctl's limiter, or None).

    The matrices of this small network are tiny: on a shared machine, extra BLAS threads
    cost more in synchronisation than they gain, and one thread is several times faster.
    The results do not change (one thread or several, the same numbers come out here).
    """
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl comes with scikit-learn
        return None
    return threadpool_limits(limits=n, user_api="blas")


class DigitsSplit(NamedTuple):
    """A held-out split of the digits: images ``(N, 1, 8, 8)`` standardized with the
    training set's pixel mean and standard deviation; labels ``(N,)`` ints in 0..9."""
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    mean: float
    std: float


def load_digits_split(seed: int = 0, test_size: float = 0.25) -> DigitsSplit:
    """scikit-learn's 1797 handwritten digits (8x8 pixels, values 0..16), split with
    ``train_test_split(..., stratify=labels, random_state=seed)`` and standardized.

    The mean and standard deviation are those of the *training* pixels (one number each,
    not per pixel), so nothing about the test images leaks into training.
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    images = digits.images.astype(np.float64)          # (1797, 8, 8)
    labels = digits.target.astype(np.int64)            # (1797,)
    x_tr, x_te, y_tr, y_te = train_test_split(images, labels, test_size=test_size,
                                              stratify=labels, random_state=seed)
    mean, std = float(x_tr.mean()), float(x_tr.std())
    return DigitsSplit(((x_tr - mean) / std)[:, None], y_tr,
                       ((x_te - mean) / std)[:, None], y_te, mean, std)


def make_digits_cnn(pool: str = "max", seed: int = 0,
                    channels: Sequence[int] = CHANNELS,
                    padding: int = 1) -> train.Sequential:
    """The network of chapters 08 and 09 (shapes for N 8x8 digits, padding 1)::

        (N,1,8,8) Conv2D 3x3 -> (N,16,8,8) ReLU -> MaxPool2D/AvgPool2D 2 -> (N,16,4,4)
                  Conv2D 3x3 -> (N,32,4,4) ReLU -> pool 2 -> (N,32,2,2)
                  Flatten -> (N,128) Dense -> (N,10) logits

    ``pool`` is ``"max"`` or ``"avg"``; ``seed`` fixes the He initialisation, so two
    networks built with the same seed start from identical weights whatever their
    pooling.
    """
    if pool not in ("max", "avg"):
        raise ValueError(f"pool must be 'max' or 'avg', got {pool!r}")
    c1, c2 = channels
    rng = np.random.default_rng(seed)
    Pool = train.MaxPool2D if pool == "max" else train.AvgPool2D
    side = 8
    for name, k, s, p in [("first convolution", 3, 1, padding),
                          ("first pooling", 2, 2, 0),
                          ("second convolution", 3, 1, padding),
                          ("second pooling", 2, 2, 0)]:
        if k > side + 2 * p:
            raise ValueError(f"the {name} ({k}x{k} window, padding {p}) does not fit "
                             f"its {side}x{side} input: the network needs more padding")
        side = core.pool_output_size(side, k, s, p)
    return train.Sequential(
        train.Conv2D(1, c1, 3, padding=padding, rng=rng), train.ReLU(), Pool(2),
        train.Conv2D(c1, c2, 3, padding=padding, rng=rng), train.ReLU(), Pool(2),
        train.Flatten(), train.Dense(c2 * side * side, 10, rng=rng))


def evaluate(model: train.Sequential, x: np.ndarray, y: np.ndarray,
             batch_size: int = 512):
    """``(mean cross-entropy, accuracy)`` of ``model`` on ``x, y`` (no gradient is
    computed)."""
    total = 0.0
    for i in range(0, len(x), batch_size):
        xb, yb = x[i:i + batch_size], y[i:i + batch_size]
        loss, _ = core.softmax_cross_entropy(model.forward(xb), yb)
        total += float(loss) * len(xb)
    return total / len(x), train.accuracy(model, x, y)


def train_digits(model: train.Sequential, data: DigitsSplit, epochs: int = EPOCHS,
                 optimizer=None, batch_size: int = BATCH_SIZE,
                 seed: int = 0) -> Dict[str, List[float]]:
    """Train with :func:`mlp_cnn_train.train_classifier`, one epoch per call, and record
    after every epoch the training loss (mean over the epoch's mini-batches), the test
    loss and both accuracies.  ``optimizer`` defaults to Adam with ``LEARNING_RATE``;
    epoch ``e`` shuffles with seed ``1000 * seed + e``.  ``history["seconds"]`` is the
    wall-clock time (run-dependent: never print it in a compared output).
    """
    optimizer = optimizer or train.Adam(model, lr=LEARNING_RATE)
    history = {"loss": [], "test_loss": [], "train_acc": [], "test_acc": []}
    start = time.perf_counter()
    for epoch in range(epochs):
        h = train.train_classifier(model, data.x_train, data.y_train, epochs=1,
                                   batch_size=batch_size, optimizer=optimizer,
                                   x_val=data.x_test, y_val=data.y_test,
                                   rng=1000 * seed + epoch)
        history["loss"].append(h["loss"][0])
        history["train_acc"].append(h["train_acc"][0])
        history["test_acc"].append(h["val_acc"][0])
        history["test_loss"].append(evaluate(model, data.x_test, data.y_test)[0])
    history["seconds"] = time.perf_counter() - start
    return history


def confusion_matrix(y_true, y_pred, n_classes: int = 10) -> np.ndarray:
    """``C[t, m]``: how many samples of true class ``t`` were predicted as ``m``."""
    C = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(C, (np.asarray(y_true), np.asarray(y_pred)), 1)
    return C


def confusion_state(C) -> dict:
    """The confusion matrix ``C`` ``(K, K)`` (true class t in rows, predicted class m in
    columns) as a state of the book's picture language: counts shaded from 0 to the
    largest, zeros left blank, every mistake (a non-zero count off the diagonal)
    marked."""
    C = np.asarray(C)
    if C.ndim != 2 or C.shape[0] != C.shape[1]:
        raise ValueError(f"C must be a square matrix, got shape {C.shape}")
    K = C.shape[0]
    mistakes = (C > 0) & ~np.eye(K, dtype=bool)
    right, total = int(np.trace(C)), int(C.sum())
    labels = [str(k) for k in range(K)]
    grid = panel("c", "true digit (rows), predicted digit (columns)", C,
                 text=[["" if v == 0 else str(int(v)) for v in row] for row in C],
                 classes=np.where(mistakes, "hl", ""), row_labels=labels,
                 col_labels=labels)
    caption = (f"{right} of {total} test digits lie on the diagonal (classified "
               f"right); {total - right} off it, in {int(mistakes.sum())} cells.")
    legend = {"hl": "a mistake: true digit (row) predicted as another (column)"}
    return {"panels": [grid], "caption": caption, "legend": legend}


def _param_loss(model, x, y):
    loss, _ = core.softmax_cross_entropy(model.forward(x), y)
    return float(loss)


def network_gradient_check(model: train.Sequential, x: np.ndarray, y: np.ndarray,
                           n_entries: int = 3, seed: int = 0,
                           eps: float = 1e-6) -> List[dict]:
    """Compare the backward pass with central finite differences for ``n_entries``
    randomly chosen entries of every parameter of ``model`` (the loss is the mean
    cross-entropy on ``x, y``).  Returns one row per parameter: the layer, the parameter
    name, the chosen flat indices, both gradients and the largest relative error
    ``|a - d| / max(|a| + |d|, 1e-12)`` (a: backward pass, d: finite difference).  The
    parameters are restored exactly afterwards.
    """
    rng = np.random.default_rng(seed)
    logits = model.forward(x)
    _, dlogits = core.softmax_cross_entropy(logits, y)
    model.backward(dlogits)                          # fills every layer's grads
    rows = []
    for i, name, p in model.parameters():
        analytic_full = model.layers[i].grads[name].copy()
        idx = np.sort(rng.choice(p.size, size=min(n_entries, p.size), replace=False))
        flat = p.reshape(-1)                 # a view: writing it changes the model
        saved = flat[idx].copy()

        def loss_at(values, flat=flat, idx=idx):
            flat[idx] = values
            return _param_loss(model, x, y)

        numeric = core.numerical_gradient(loss_at, saved, eps=eps)
        flat[idx] = saved                            # restore the parameters exactly
        analytic = analytic_full.reshape(-1)[idx]
        scale = np.maximum(np.abs(analytic) + np.abs(numeric), 1e-12)
        rel = np.abs(analytic - numeric) / scale
        rows.append({"layer": i, "kind": type(model.layers[i]).__name__, "param": name,
                     "index": idx, "analytic": analytic, "numeric": numeric,
                     "rel_error": float(rel.max())})
    return rows


# ---------------------------------------------------------------------------
# Figures (matplotlib, drawn for the column: show them with cnnviz.show_figure)
# ---------------------------------------------------------------------------

_STYLES = ("o-", "s--", "^:", "d-.")


def _finish_epoch_panels(fig, loss_ax, acc_ax, n: int, title: Optional[str]):
    """The end of a loss panel and an accuracy panel over ``n`` epochs: their legends (the
    accuracy's at the lower right, where the curves are not), a light grid, a tick per epoch
    (every other one past 10) and the figure's ``title``."""
    loss_ax.legend()
    acc_ax.legend(loc="lower right")
    epochs = np.arange(1, n + 1)
    for ax in (loss_ax, acc_ax):
        ax.grid(alpha=0.3)
        ax.set_xticks(epochs[::2] if n > 10 else epochs)
    if title:
        fig.suptitle(title)
    return fig


def plot_history(history: Mapping[str, Sequence[float]], title: Optional[str] = None,
                 target: Optional[float] = 97):
    """Two panels for one training run: the loss (train and test, log scale) and the
    accuracy (train and test) per epoch; ``target`` (%) draws a dotted line."""
    n = len(history["loss"])
    epochs = np.arange(1, n + 1)
    fig, (a1, a2) = mplfig.subplots(1, 2, height=290)
    a1.plot(epochs, history["loss"], "o-", color="C0",
            label="train (mean over the epoch)")
    a1.plot(epochs, history["test_loss"], "s--", color="C3",
            label="test (after the epoch)")
    a1.set(xlabel="epoch", ylabel="cross-entropy", yscale="log", title="loss")
    a2.plot(epochs, 100 * np.asarray(history["train_acc"]), "o-", color="C0",
            label="train")
    a2.plot(epochs, 100 * np.asarray(history["test_acc"]), "s--", color="C3",
            label="test")
    a2.set(xlabel="epoch", ylabel="accuracy (%)", title="accuracy")
    if target is not None:
        a2.axhline(target, color=mplfig.FG, alpha=0.5, linewidth=0.8, linestyle=":")
    return _finish_epoch_panels(fig, a1, a2, n, title)


def plot_comparison(histories: Mapping[str, Mapping[str, Sequence[float]]],
                    title: Optional[str] = None):
    """Several training runs side by side (``{label: history}``, histories as returned
    by :func:`train_digits` or :func:`mlp_cnn_train.train_classifier`): the training
    loss (log scale) and the test accuracy per epoch."""
    fig, (a1, a2) = mplfig.subplots(1, 2, height=290)
    n = 0
    for k, (label, h) in enumerate(histories.items()):
        acc = h["test_acc"] if "test_acc" in h else h["val_acc"]
        epochs = np.arange(1, len(h["loss"]) + 1)
        n = max(n, len(epochs))
        style, color = _STYLES[k % len(_STYLES)], f"C{(0, 3, 2, 4)[k % 4]}"
        a1.semilogy(epochs, h["loss"], style, color=color, label=label)
        a2.plot(epochs, 100 * np.asarray(acc), style, color=color, label=label)
    a1.set(xlabel="epoch", ylabel="training loss", title="training loss")
    a2.set(xlabel="epoch", ylabel="test accuracy (%)", title="test accuracy")
    return _finish_epoch_panels(fig, a1, a2, n, title)


def _bare(ax) -> None:
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)


def plot_digits(images: np.ndarray, titles: Sequence[str], title: Optional[str] = None,
                height: Optional[float] = None):
    """A row of digit images ``(n, 1, 8, 8)`` or ``(n, 8, 8)``, white ink on black, each
    with its title (which may have two lines)."""
    images = np.asarray(images)
    images = images[:, 0] if images.ndim == 4 else images
    n = len(images)
    if n != len(titles):
        raise ValueError(f"{n} images but {len(titles)} titles")
    lines = max([str(t).count("\n") + 1 for t in titles] or [1])
    height = height or 96 + 17 * lines + (24 if title else 0)
    fig, axes = mplfig.subplots(1, max(n, 1), height=height, squeeze=False)
    for ax, img, t in zip(axes[0], images, titles):
        ax.imshow(img, cmap=DIGIT_CMAP, interpolation="nearest")
        ax.set_title(t)
    for ax in axes[0]:
        _bare(ax)
    if not n:
        axes[0, 0].text(0.5, 0.5, "no images", ha="center", va="center",
                        color=mplfig.FG)
    if title:
        fig.suptitle(title)
    return fig


def plot_misclassified(x: np.ndarray, y_true, y_pred, n: int = 8,
                       title: Optional[str] = None):
    """Up to ``n`` misclassified images ``(N, 1, 8, 8)``, each titled
    "predicted m / true t" (on two lines)."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    wrong = np.flatnonzero(y_true != y_pred)[:n]
    titles = [f"predicted {y_pred[i]}\ntrue {y_true[i]}" for i in wrong]
    fig = plot_digits(x[wrong], titles, title=title, height=None if len(wrong) else 80)
    if not len(wrong):
        fig.axes[0].texts[0].set_text("no mistakes")
    return fig


def plot_kernels(w: np.ndarray, title: str = "first-layer kernels", cols: int = 8):
    """The ``(F, 1, k, k)`` kernels of a convolution, one small image each on a shared,
    zero-centred colour scale (:data:`DIVERGING`: blue negative, red positive)."""
    w = np.asarray(w)
    F = w.shape[0]
    cols = min(F, cols)
    rows = int(np.ceil(F / cols))
    lim = float(np.abs(w).max()) or 1.0
    fig, axes = mplfig.subplots(rows, cols, height=100 * rows + 30, squeeze=False)
    for f, ax in enumerate(axes.flat):
        _bare(ax)
        if f < F:
            ax.imshow(w[f, 0], cmap=DIVERGING, vmin=-lim, vmax=lim,
                      interpolation="nearest")
            ax.set_title(f"kernel {f}")
        else:
            ax.axis("off")
    fig.suptitle(title)
    return fig


def plot_feature_maps(model: train.Sequential, image: np.ndarray, n_layers: int = 3,
                      max_maps: int = 8, label: Optional[str] = None):
    """The input digit ``(1, 8, 8)`` and the first ``max_maps`` channels after each of
    the first ``n_layers`` layers (by default convolution, ReLU, pooling), each map on
    its own zero-centred colour scale (:data:`DIVERGING`: black is 0, its strongest
    response the brightest red or blue)."""
    x = np.asarray(image)[None]                   # (1, 1, 8, 8)
    stages = []
    for layer in model.layers[:n_layers]:
        x = layer.forward(x)
        stages.append((type(layer).__name__, x[0]))
    fig, axes = mplfig.subplots(n_layers, max_maps + 1, height=78 * n_layers + 30,
                                squeeze=False)
    for r, (name, maps) in enumerate(stages):
        ax0 = axes[r, 0]
        _bare(ax0)
        if r == 0:
            ax0.imshow(np.asarray(image)[0], cmap=DIGIT_CMAP, interpolation="nearest")
            ax0.set_title("input" if label is None else label)
        else:
            ax0.axis("off")
        for c in range(max_maps):
            ax = axes[r, c + 1]
            lim = float(np.abs(maps[c]).max()) or 1.0
            ax.imshow(maps[c], cmap=DIVERGING, vmin=-lim, vmax=lim,
                      interpolation="nearest")
            _bare(ax)
            if c == 0:
                ax.set_ylabel(f"{name}\n{maps.shape[1]}×{maps.shape[2]}")
            if r == 0:
                ax.set_title(f"ch. {c}")
    return fig
