"""Chapters 08 and 09 (training a real CNN): data, the network, a training helper, gradient
checks and the plots of a training run.

Everything numerical is done elsewhere: the layers, optimizers and training loop by
:mod:`mlp_cnn_train` (on the tuned layers of :mod:`mlp_cnn_fast`), the loss and finite
differences by :mod:`mlp_cnn_core`; this module only loads the data, wires the layers together
the same way for both chapters and draws the results.

* :func:`load_digits_split` -- scikit-learn's bundled 8x8 digits, standardized, as
  ``(N, 1, 8, 8)`` float64 arrays with a stratified, seeded held-out split.
* :func:`make_digits_cnn` -- ``Conv(1->16) ReLU Pool Conv(16->32) ReLU Pool Flatten Dense(128->10)``
  with max or average pooling, seeded.
* :func:`train_digits` -- :func:`mlp_cnn_train.train_classifier` called one epoch at a time, so
  the test loss can be recorded after every epoch too.
* :func:`network_gradient_check` -- backward pass against :func:`mlp_cnn_core.numerical_gradient`
  for a few entries of every parameter.
* plots: :func:`plot_history`, :func:`plot_confusion`, :func:`plot_kernels`,
  :func:`plot_feature_maps`, :func:`plot_misclassified`.
"""
from __future__ import annotations

import time
from typing import Dict, List, NamedTuple, Optional, Sequence

import numpy as np
from matplotlib import pyplot as plt

import mlp_cnn_core as core
import mlp_cnn_train as train

from .draw import HIGHLIGHT

__all__ = ["DigitsSplit", "load_digits_split", "make_digits_cnn", "train_digits", "evaluate",
           "confusion_matrix", "network_gradient_check", "limit_blas_threads",
           "plot_history", "plot_confusion", "plot_kernels", "plot_feature_maps", "plot_misclassified",
           "CHANNELS", "EPOCHS", "BATCH_SIZE", "LEARNING_RATE"]

CHANNELS = (16, 32)     # filters of the two convolution layers
EPOCHS = 15
BATCH_SIZE = 32
LEARNING_RATE = 5e-3    # Adam


def limit_blas_threads(n: int = 1):
    """Let numpy's BLAS use ``n`` threads (returns threadpoolctl's limiter, or None).

    The matrices of this small network are tiny: on a shared machine, extra BLAS threads cost
    more in synchronisation than they gain, and one thread is several times faster.  The
    results do not change (one thread or several, the same numbers come out here).
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

    The mean and standard deviation are those of the *training* pixels (one number each, not
    per pixel), so nothing about the test images leaks into training.
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    images = digits.images.astype(np.float64)          # (1797, 8, 8)
    labels = digits.target.astype(np.int64)            # (1797,)
    x_tr, x_te, y_tr, y_te = train_test_split(images, labels, test_size=test_size,
                                              stratify=labels, random_state=seed)
    mean, std = float(x_tr.mean()), float(x_tr.std())
    return DigitsSplit(((x_tr - mean) / std)[:, None], y_tr, ((x_te - mean) / std)[:, None], y_te,
                       mean, std)


def make_digits_cnn(pool: str = "max", seed: int = 0, channels: Sequence[int] = CHANNELS,
                    padding: int = 1) -> train.Sequential:
    """The network of chapters 08 and 09 (shapes for a batch of N 8x8 digits, padding 1)::

        (N,1,8,8) Conv2D 3x3 -> (N,16,8,8) ReLU -> MaxPool2D/AvgPool2D 2 -> (N,16,4,4)
                  Conv2D 3x3 -> (N,32,4,4) ReLU -> pool 2 -> (N,32,2,2) Flatten -> (N,128)
                  Dense -> (N,10) logits

    ``pool`` is ``"max"`` or ``"avg"``; ``seed`` fixes the He initialisation, so two networks
    built with the same seed start from identical weights whatever their pooling.
    """
    if pool not in ("max", "avg"):
        raise ValueError(f"pool must be 'max' or 'avg', got {pool!r}")
    c1, c2 = channels
    rng = np.random.default_rng(seed)
    Pool = train.MaxPool2D if pool == "max" else train.AvgPool2D
    side = 8
    for name, k, s, p in [("first convolution", 3, 1, padding), ("first pooling", 2, 2, 0),
                          ("second convolution", 3, 1, padding), ("second pooling", 2, 2, 0)]:
        if k > side + 2 * p:
            raise ValueError(f"the {name} ({k}x{k} window, padding {p}) does not fit its "
                             f"{side}x{side} input: the network needs more padding")
        side = core.pool_output_size(side, k, s, p)
    return train.Sequential(
        train.Conv2D(1, c1, 3, padding=padding, rng=rng), train.ReLU(), Pool(2),
        train.Conv2D(c1, c2, 3, padding=padding, rng=rng), train.ReLU(), Pool(2),
        train.Flatten(), train.Dense(c2 * side * side, 10, rng=rng))


def evaluate(model: train.Sequential, x: np.ndarray, y: np.ndarray, batch_size: int = 512):
    """``(mean cross-entropy, accuracy)`` of ``model`` on ``x, y`` (no gradient is computed)."""
    total = 0.0
    for i in range(0, len(x), batch_size):
        loss, _ = core.softmax_cross_entropy(model.forward(x[i:i + batch_size]), y[i:i + batch_size])
        total += float(loss) * len(x[i:i + batch_size])
    return total / len(x), train.accuracy(model, x, y)


def train_digits(model: train.Sequential, data: DigitsSplit, epochs: int = EPOCHS,
                 optimizer=None, batch_size: int = BATCH_SIZE, seed: int = 0) -> Dict[str, List[float]]:
    """Train with :func:`mlp_cnn_train.train_classifier`, one epoch per call, and record after
    every epoch the training loss (mean over the epoch's mini-batches), the test loss and both
    accuracies.  ``optimizer`` defaults to ``train.Adam(model, lr=LEARNING_RATE)``; epoch ``e``
    shuffles with seed ``1000 * seed + e``.  ``history["seconds"]`` is the wall-clock time
    (run-dependent: never print it in a compared output).
    """
    optimizer = optimizer or train.Adam(model, lr=LEARNING_RATE)
    history: Dict[str, List[float]] = {"loss": [], "test_loss": [], "train_acc": [], "test_acc": []}
    start = time.perf_counter()
    for epoch in range(epochs):
        h = train.train_classifier(model, data.x_train, data.y_train, epochs=1, batch_size=batch_size,
                                  optimizer=optimizer, x_val=data.x_test, y_val=data.y_test,
                                  rng=1000 * seed + epoch)
        history["loss"].append(h["loss"][0])
        history["train_acc"].append(h["train_acc"][0])
        history["test_acc"].append(h["val_acc"][0])
        history["test_loss"].append(evaluate(model, data.x_test, data.y_test)[0])
    history["seconds"] = time.perf_counter() - start
    return history


def confusion_matrix(y_true, y_pred, n_classes: int = 10) -> np.ndarray:
    """``C[t, p]`` = how many samples of true class ``t`` were predicted as ``p`` (ints)."""
    C = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(C, (np.asarray(y_true), np.asarray(y_pred)), 1)
    return C


def _param_loss(model, x, y):
    loss, _ = core.softmax_cross_entropy(model.forward(x), y)
    return float(loss)


def network_gradient_check(model: train.Sequential, x: np.ndarray, y: np.ndarray, n_entries: int = 3,
                           seed: int = 0, eps: float = 1e-6) -> List[dict]:
    """Compare the backward pass with central finite differences for ``n_entries`` randomly
    chosen entries of every parameter of ``model`` (the loss is the mean cross-entropy on
    ``x, y``).  Returns one row per parameter: the layer, the parameter name, the chosen flat
    indices, both gradients and the largest relative error
    ``|a - n| / max(|a| + |n|, 1e-12)``.  The parameters are restored exactly afterwards.
    """
    rng = np.random.default_rng(seed)
    logits = model.forward(x)
    _, dlogits = core.softmax_cross_entropy(logits, y)
    model.backward(dlogits)                          # fills every layer's grads
    rows = []
    for i, name, p in model.parameters():
        analytic_full = model.layers[i].grads[name].copy()
        idx = np.sort(rng.choice(p.size, size=min(n_entries, p.size), replace=False))
        flat = p.reshape(-1)                         # a view: writing it changes the model
        saved = flat[idx].copy()

        def loss_at(values, flat=flat, idx=idx):
            flat[idx] = values
            return _param_loss(model, x, y)

        numeric = core.numerical_gradient(loss_at, saved, eps=eps)
        flat[idx] = saved                            # restore the parameters exactly
        analytic = analytic_full.reshape(-1)[idx]
        rel = np.abs(analytic - numeric) / np.maximum(np.abs(analytic) + np.abs(numeric), 1e-12)
        rows.append({"layer": i, "kind": type(model.layers[i]).__name__, "param": name,
                     "index": idx, "analytic": analytic, "numeric": numeric,
                     "rel_error": float(rel.max())})
    return rows


# ---------------------------------------------------------------------------
# Plots
# ---------------------------------------------------------------------------

def plot_history(history: Dict[str, List[float]], title: Optional[str] = None):
    """Two panels: the loss (train and test) and the accuracy (train and test) per epoch."""
    epochs = np.arange(1, len(history["loss"]) + 1)
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(9.4, 3.6))
    a1.plot(epochs, history["loss"], "o-", label="train (mean over the epoch)")
    a1.plot(epochs, history["test_loss"], "s--", label="test (after the epoch)")
    a1.set_xlabel("epoch")
    a1.set_ylabel("cross-entropy")
    a1.set_yscale("log")
    a1.set_title("loss")
    a1.legend()
    a2.plot(epochs, 100 * np.asarray(history["train_acc"]), "o-", label="train")
    a2.plot(epochs, 100 * np.asarray(history["test_acc"]), "s--", label="test")
    a2.set_xlabel("epoch")
    a2.set_ylabel("accuracy (%)")
    a2.set_title("accuracy")
    a2.axhline(97, color="0.6", linewidth=0.8, linestyle=":")
    a2.legend(loc="lower right")
    for a in (a1, a2):
        a.grid(alpha=0.3)
        a.set_xticks(epochs[::2] if len(epochs) > 10 else epochs)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_confusion(C: np.ndarray, title: str = "confusion matrix (test set)"):
    """The confusion matrix as an annotated heat map; off-diagonal errors outlined in red."""
    C = np.asarray(C)
    K = C.shape[0]
    fig, ax = plt.subplots(figsize=(5.2, 4.6))
    shown = np.log1p(C)
    ax.imshow(shown, cmap="Blues")
    vmax = shown.max() or 1.0
    for t in range(K):
        for p in range(K):
            if C[t, p]:
                ax.text(p, t, str(C[t, p]), ha="center", va="center", fontsize=9,
                        color="white" if shown[t, p] > 0.6 * vmax else "black")
            if t != p and C[t, p]:
                ax.add_patch(plt.Rectangle((p - 0.5, t - 0.5), 1, 1, fill=False, edgecolor=HIGHLIGHT,
                                           linewidth=2))
    ax.set_xticks(range(K))
    ax.set_yticks(range(K))
    ax.set_xlabel("predicted digit")
    ax.set_ylabel("true digit")
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return fig


def plot_kernels(w: np.ndarray, title: str = "first-layer kernels"):
    """The ``(F, 1, k, k)`` kernels of a convolution, one small diverging image each
    (red positive, blue negative, a shared colour scale)."""
    w = np.asarray(w)
    F = w.shape[0]
    cols = min(F, 8)
    rows = int(np.ceil(F / cols))
    lim = float(np.abs(w).max()) or 1.0
    fig, axes = plt.subplots(rows, cols, figsize=(1.15 * cols, 1.3 * rows + 0.4), squeeze=False)
    for f, ax in enumerate(axes.flat):
        ax.set_xticks([])
        ax.set_yticks([])
        if f < F:
            ax.imshow(w[f, 0], cmap="RdBu_r", vmin=-lim, vmax=lim)
            ax.set_title(f"kernel {f}", fontsize=8)
        else:
            ax.axis("off")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def plot_feature_maps(model: train.Sequential, image: np.ndarray, n_layers: int = 3,
                      max_maps: int = 8, label: Optional[str] = None):
    """The input digit ``(1, 8, 8)`` and the first ``max_maps`` channels after each of the first
    ``n_layers`` layers (by default convolution, ReLU, pooling)."""
    x = np.asarray(image)[None]                   # (1, 1, 8, 8)
    stages = []
    for layer in model.layers[:n_layers]:
        x = layer.forward(x)
        stages.append((type(layer).__name__, x[0]))
    fig, axes = plt.subplots(n_layers, max_maps + 1, figsize=(1.04 * (max_maps + 1), 1.2 * n_layers + 0.3),
                             squeeze=False)
    for r, (name, maps) in enumerate(stages):
        ax0 = axes[r, 0]
        if r == 0:
            ax0.imshow(np.asarray(image)[0], cmap="gray_r")
            ax0.set_title("input" + (f" ({label})" if label else ""), fontsize=8)
        else:
            ax0.axis("off")
        ax0.set_xticks([])
        ax0.set_yticks([])
        lim = float(np.abs(maps[:max_maps]).max()) or 1.0
        for c in range(max_maps):
            ax = axes[r, c + 1]
            ax.imshow(maps[c], cmap="RdBu_r", vmin=-lim, vmax=lim)
            ax.set_xticks([])
            ax.set_yticks([])
            if c == 0:
                ax.set_ylabel(f"{name}\n{maps.shape[1]}x{maps.shape[2]}", fontsize=8)
            if r == 0:
                ax.set_title(f"channel {c}", fontsize=8)
    fig.tight_layout()
    return fig


def plot_misclassified(x: np.ndarray, y_true, y_pred, n: int = 8, title: Optional[str] = None):
    """Up to ``n`` misclassified images ``(N, 1, 8, 8)``, each titled "predicted p / true t"."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    wrong = np.flatnonzero(y_true != y_pred)[:n]
    cols = max(len(wrong), 1)
    fig, axes = plt.subplots(1, cols, figsize=(1.45 * cols + 0.3, 2.0), squeeze=False)
    for ax, i in zip(axes[0], wrong):
        ax.imshow(x[i, 0], cmap="gray_r")
        ax.set_title(f"predicted {y_pred[i]}\ntrue {y_true[i]}", fontsize=9)
    for ax in axes[0]:
        ax.set_xticks([])
        ax.set_yticks([])
    if not len(wrong):
        axes[0, 0].text(0.5, 0.5, "no mistakes", ha="center", va="center")
    if title:
        fig.suptitle(title, fontsize=10)
        fig.tight_layout(rect=(0, 0, 1, 0.88))
    else:
        fig.tight_layout()
    return fig
