"""mlp_cnn_train: a small training framework on top of ``mlp_cnn_fast``.

Layers that hold their parameters and the cache of their last forward pass, a
``Sequential`` model, SGD and Adam, and a mini-batch training loop with softmax
cross-entropy.  Chapters 5, 6, 8 and 9 train networks with it.  All the math is in
``mlp_cnn_core``; the layers call its tuned twin ``mlp_cnn_fast`` (same results, proved
by the tests), so training takes seconds.

:func:`small_cnn_forward` and :func:`small_cnn_backward` chain the book's small network
(convolution, ReLU, max pool, flatten, dense) by hand, every intermediate kept, with the
layer functions of any module: the chapters' figures use the core's, the benchmarks
the fast ones and the loops.
"""
from __future__ import annotations

import math
from types import ModuleType
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np
from numpy.typing import ArrayLike

import mlp_cnn_fast as fast
from mlp_cnn_core import Pair, _pair

__all__ = ["Layer", "Conv2D", "ReLU", "MaxPool2D", "AvgPool2D", "Flatten", "Dense",
           "Sequential", "SGD", "Adam", "train_classifier", "accuracy",
           "small_cnn_forward", "small_cnn_backward"]


class Layer:
    """A layer holds its parameters and the cache of its last forward pass.

    A subclass names its pair of layer functions (``_forward``, ``_backward``) and the
    arguments that follow the input (``_args``); a layer with parameters ``w`` and ``b``
    receives their gradients in ``grads`` on the way back.
    """
    params: Dict[str, np.ndarray]
    grads: Dict[str, np.ndarray]
    _forward: Callable[..., Tuple[np.ndarray, Any]]
    _backward: Callable[..., Any]

    def __init__(self) -> None:
        self.params, self.grads, self.cache = {}, {}, None

    def _args(self) -> tuple:
        return ()

    def forward(self, x: ArrayLike) -> np.ndarray:
        out, self.cache = type(self)._forward(x, *self._args())
        return out

    def backward(self, dout: ArrayLike) -> np.ndarray:
        result = type(self)._backward(dout, self.cache)
        if not self.params:
            return result
        dx, self.grads["w"], self.grads["b"] = result
        return dx

    def __repr__(self) -> str:
        return type(self).__name__ + "()"


def _he(rng: np.random.Generator, shape: Tuple[int, ...], fan_in: int,
        dtype) -> np.ndarray:
    """He initialisation: normal with standard deviation sqrt(2 / fan_in)."""
    return (rng.standard_normal(shape) * math.sqrt(2 / fan_in)).astype(dtype)


class Conv2D(Layer):
    """Convolution layer, He-initialised weights ``(F, C, kh, kw)``, zero bias."""
    _forward, _backward = fast.conv2d_forward, fast.conv2d_backward

    def __init__(self, in_channels: int, out_channels: int, kernel_size: Pair,
                 stride: Pair = 1, padding: Pair = 0, rng: Any = None,
                 dtype=np.float64) -> None:
        super().__init__()
        kh, kw = _pair(kernel_size, "kernel_size")
        shape = (out_channels, in_channels, kh, kw)
        fan_in = in_channels * kh * kw
        self.params["w"] = _he(np.random.default_rng(rng), shape, fan_in, dtype)
        self.params["b"] = np.zeros(out_channels, dtype=dtype)
        self.stride, self.padding = stride, padding

    def _args(self) -> tuple:
        return self.params["w"], self.params["b"], self.stride, self.padding

    def __repr__(self) -> str:
        F, C, kh, kw = self.params["w"].shape
        return (f"Conv2D({C}->{F}, kernel={(kh, kw)}, stride={self.stride}, "
                f"padding={self.padding})")


class ReLU(Layer):
    _forward, _backward = fast.relu_forward, fast.relu_backward


class _Pool(Layer):
    def __init__(self, kernel_size: Pair, stride: Optional[Pair] = None,
                 padding: Pair = 0) -> None:
        super().__init__()
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding

    def _args(self) -> tuple:
        return self.kernel_size, self.stride, self.padding

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(kernel={self.kernel_size}, "
                f"stride={self.stride}, padding={self.padding})")


class MaxPool2D(_Pool):
    _forward, _backward = fast.maxpool2d_forward, fast.maxpool2d_backward

    def __init__(self, kernel_size: Pair, stride: Optional[Pair] = None,
                 padding: Pair = 0, ties: str = "first") -> None:
        super().__init__(kernel_size, stride, padding)
        self.ties = ties

    def _args(self) -> tuple:
        return super()._args() + (self.ties,)


class AvgPool2D(_Pool):
    _forward, _backward = fast.avgpool2d_forward, fast.avgpool2d_backward


class Flatten(Layer):
    _forward, _backward = fast.flatten_forward, fast.flatten_backward


class Dense(Layer):
    """Fully connected layer with He-initialised weights ``(D, M)`` and zero bias."""
    _forward, _backward = fast.dense_forward, fast.dense_backward

    def __init__(self, in_features: int, out_features: int, rng: Any = None,
                 dtype=np.float64) -> None:
        super().__init__()
        shape = (in_features, out_features)
        self.params["w"] = _he(np.random.default_rng(rng), shape, in_features, dtype)
        self.params["b"] = np.zeros(out_features, dtype=dtype)

    def _args(self) -> tuple:
        return self.params["w"], self.params["b"]

    def __repr__(self) -> str:
        D, M = self.params["w"].shape
        return f"Dense({D}->{M})"


class Sequential:
    """Layers applied in order; ``backward`` runs them in reverse and fills each layer's
    ``grads``."""

    def __init__(self, *layers: Layer) -> None:
        self.layers = list(layers)

    def forward(self, x: ArrayLike) -> np.ndarray:
        for layer in self.layers:
            x = layer.forward(x)
        return x

    __call__ = forward

    def backward(self, dout: ArrayLike) -> np.ndarray:
        for layer in reversed(self.layers):
            dout = layer.backward(dout)
        return dout

    def parameters(self) -> List[Tuple[int, str, np.ndarray]]:
        """``[(layer_index, name, array), ...]``, every parameter (updated in place)."""
        return [(i, k, v) for i, layer in enumerate(self.layers)
                for k, v in layer.params.items()]

    def gradients(self) -> List[Tuple[int, str, np.ndarray]]:
        return [(i, k, self.layers[i].grads[k]) for i, k, _ in self.parameters()]

    def predict(self, x: ArrayLike, batch_size: int = 512) -> np.ndarray:
        return np.concatenate([self.forward(x[i:i + batch_size]).argmax(axis=1)
                               for i in range(0, len(x), batch_size)])

    def __repr__(self) -> str:
        inner = "".join(f"  {layer!r},\n" for layer in self.layers)
        return "Sequential(\n" + inner + ")"


class SGD:
    """Stochastic gradient descent, optionally with momentum, updating in place."""

    def __init__(self, model: Sequential, lr: float = 0.1,
                 momentum: float = 0.0) -> None:
        self.model, self.lr, self.momentum = model, lr, momentum
        self.velocity: Dict[Tuple[int, str], np.ndarray] = {}

    def step(self) -> None:
        for (i, k, p), (_, _, g) in zip(self.model.parameters(),
                                        self.model.gradients()):
            v = self.velocity.get((i, k))
            v = g if v is None or not self.momentum else self.momentum * v + g
            self.velocity[(i, k)] = v
            p -= self.lr * v


class Adam:
    """Adam (Kingma & Ba, 2015), updating arrays in place."""

    def __init__(self, model: Sequential, lr: float = 1e-3,
                 betas: Tuple[float, float] = (0.9, 0.999), eps: float = 1e-8) -> None:
        self.model, self.lr, self.betas, self.eps = model, lr, betas, eps
        self.m: Dict[Tuple[int, str], np.ndarray] = {}
        self.v: Dict[Tuple[int, str], np.ndarray] = {}
        self.t = 0

    def step(self) -> None:
        self.t += 1
        b1, b2 = self.betas
        for (i, k, p), (_, _, g) in zip(self.model.parameters(),
                                        self.model.gradients()):
            m = self.m[(i, k)] = b1 * self.m.get((i, k), 0) + (1 - b1) * g
            v = self.v[(i, k)] = b2 * self.v.get((i, k), 0) + (1 - b2) * g * g
            mhat = m / (1 - b1 ** self.t)
            vhat = v / (1 - b2 ** self.t)
            p -= self.lr * mhat / (np.sqrt(vhat) + self.eps)


def accuracy(model: Sequential, x: ArrayLike, y: ArrayLike) -> float:
    """Fraction of ``x`` whose argmax prediction equals ``y``."""
    return float(np.mean(model.predict(x) == np.asarray(y)))


def train_classifier(model: Sequential, x_train: ArrayLike, y_train: ArrayLike,
                     epochs: int = 10, batch_size: int = 32, optimizer: Any = None,
                     x_val: Optional[ArrayLike] = None,
                     y_val: Optional[ArrayLike] = None,
                     rng: Any = 0) -> Dict[str, List[float]]:
    """Mini-batch training with softmax cross-entropy.

    Returns a history dict with per-epoch ``loss`` (mean training loss), ``train_acc``
    and, when validation data is given, ``val_acc``.
    """
    x_train = np.asarray(x_train)
    if x_train.dtype.kind != "f":
        x_train = x_train.astype(np.float64)
    y_train = np.asarray(y_train)
    if len(x_train) != len(y_train):
        raise ValueError(f"x_train has {len(x_train)} samples but y_train has "
                         f"{len(y_train)}")
    optimizer = optimizer or Adam(model)
    rng = np.random.default_rng(rng)
    history: Dict[str, List[float]] = {"loss": [], "train_acc": [], "val_acc": []}
    for _ in range(epochs):
        order = rng.permutation(len(x_train))
        total = 0.0
        for i in range(0, len(order), batch_size):
            idx = order[i:i + batch_size]
            logits = model.forward(x_train[idx])
            loss, dlogits = fast.softmax_cross_entropy(logits, y_train[idx])
            model.backward(dlogits)
            optimizer.step()
            total += float(loss) * len(idx)
        history["loss"].append(total / len(order))
        history["train_acc"].append(accuracy(model, x_train, y_train))
        if x_val is not None:
            history["val_acc"].append(accuracy(model, x_val, y_val))
    return history


def small_cnn_forward(x: ArrayLike, w: ArrayLike, dense_w: ArrayLike,
                      conv_b: Optional[ArrayLike] = None,
                      dense_b: Optional[ArrayLike] = None, relu: bool = True,
                      stride: Pair = 1, padding: Pair = 0, pool: Pair = 2,
                      pool_stride: Optional[Pair] = None, pool_padding: Pair = 0,
                      layers: ModuleType = fast) -> Dict[str, Any]:
    """The book's small network, forward, every intermediate kept (Chapters 5 and 6).

    ``x (N, C, H, W)`` -> convolution with ``w (F, C, kh, kw)``, ``conv_b (F,)``,
    ``stride``, ``padding`` -> ``conv`` -> ReLU (when ``relu``) -> ``act`` -> max pool
    with window ``pool``, ``pool_stride``, ``pool_padding`` -> ``pool (N, F, Hp, Wp)``
    -> ``flat (N, D)`` -> dense with ``dense_w (D, M)``, ``dense_b (M,)`` ->
    ``out (N, M)``.

    Returns those arrays and the caches ``conv_cache``, ``relu_cache`` (None without
    ReLU), ``pool_cache``, ``flat_cache``, ``dense_cache``.  ``layers`` is the module
    whose layer functions run: ``mlp_cnn_fast`` (default), ``mlp_cnn_core`` (what the
    chapters draw), or any object with the same functions (the benchmarks' loops).
    Feed a loss's gradient with respect to ``out`` to :func:`small_cnn_backward`.
    """
    v: Dict[str, Any] = {}
    v["conv"], v["conv_cache"] = layers.conv2d_forward(x, w, conv_b, stride, padding)
    v["act"], v["relu_cache"] = (layers.relu_forward(v["conv"]) if relu
                                 else (v["conv"], None))
    v["pool"], v["pool_cache"] = layers.maxpool2d_forward(v["act"], pool, pool_stride,
                                                          pool_padding)
    v["flat"], v["flat_cache"] = layers.flatten_forward(v["pool"])
    v["out"], v["dense_cache"] = layers.dense_forward(v["flat"], dense_w, dense_b)
    return v


def small_cnn_backward(dout: ArrayLike, v: Dict[str, Any],
                       layers: ModuleType = fast) -> Dict[str, np.ndarray]:
    """Every gradient of :func:`small_cnn_forward`'s network, from
    ``dout = dL/d out (N, M)`` and its values ``v``: ``dflat``, ``ddense_w``,
    ``ddense_b``, ``dpool``, ``dact``, ``dconv`` (``dact`` through the ReLU mask),
    ``dx``, ``dw``, ``dconv_b``, each of the shape of what it is the gradient of."""
    g: Dict[str, np.ndarray] = {}
    dense = layers.dense_backward(dout, v["dense_cache"])
    g["dflat"], g["ddense_w"], g["ddense_b"] = dense
    g["dpool"] = layers.flatten_backward(g["dflat"], v["flat_cache"])
    g["dact"] = layers.maxpool2d_backward(g["dpool"], v["pool_cache"])
    relu = v["relu_cache"]
    g["dconv"] = g["dact"] if relu is None else layers.relu_backward(g["dact"], relu)
    g["dx"], g["dw"], g["dconv_b"] = layers.conv2d_backward(g["dconv"], v["conv_cache"])
    return g
