"""mlp_cnn_train: a small training framework on top of ``mlp_cnn_core``.

Layers that hold their parameters and the cache of their last forward pass, a ``Sequential``
model, SGD and Adam, and a mini-batch training loop with softmax cross-entropy.  Chapters 5, 6,
8 and 9 train networks with it; all the math is in ``mlp_cnn_core``.
"""
from __future__ import annotations

import math

import numpy as np

from mlp_cnn_core import (avgpool2d_backward, avgpool2d_forward, conv2d_backward, conv2d_forward,
                          dense_backward, dense_forward, flatten_backward, flatten_forward,
                          maxpool2d_backward, maxpool2d_forward, relu_backward, relu_forward,
                          softmax_cross_entropy)

__all__ = ["Layer", "Conv2D", "ReLU", "MaxPool2D", "AvgPool2D", "Flatten", "Dense", "Sequential",
           "SGD", "Adam", "train_classifier", "accuracy"]


def _pair(value, name):
    if isinstance(value, (tuple, list)):
        return int(value[0]), int(value[1])
    return int(value), int(value)


class Layer:
    """A layer holds its parameters and the cache of its last forward pass."""
    params: dict
    grads: dict

    def __init__(self):
        self.params, self.grads, self.cache = {}, {}, None

    def __repr__(self) -> str:
        return type(self).__name__ + "()"


class Conv2D(Layer):
    """Convolution layer with He-initialised weights ``(F, C, k, k)`` and zero bias."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, rng=None, dtype=np.float64):
        super().__init__()
        rng = np.random.default_rng(rng)
        kh, kw = _pair(kernel_size, "kernel_size")
        fan_in = in_channels * kh * kw
        self.params["w"] = (rng.standard_normal((out_channels, in_channels, kh, kw)) * math.sqrt(2 / fan_in)).astype(dtype)
        self.params["b"] = np.zeros(out_channels, dtype=dtype)
        self.stride, self.padding = stride, padding

    def forward(self, x):
        out, self.cache = conv2d_forward(x, self.params["w"], self.params["b"], self.stride, self.padding)
        return out

    def backward(self, dout):
        dx, self.grads["w"], self.grads["b"] = conv2d_backward(dout, self.cache)
        return dx

    def __repr__(self):
        F, C, kh, kw = self.params["w"].shape
        return f"Conv2D({C}->{F}, kernel={(kh, kw)}, stride={self.stride}, padding={self.padding})"


class ReLU(Layer):
    def forward(self, x):
        out, self.cache = relu_forward(x)
        return out

    def backward(self, dout):
        return relu_backward(dout, self.cache)


class MaxPool2D(Layer):
    def __init__(self, kernel_size, stride=None, padding=0, ties="first"):
        super().__init__()
        self.kernel_size, self.stride, self.padding, self.ties = kernel_size, stride, padding, ties

    def forward(self, x):
        out, self.cache = maxpool2d_forward(x, self.kernel_size, self.stride, self.padding, self.ties)
        return out

    def backward(self, dout):
        return maxpool2d_backward(dout, self.cache)

    def __repr__(self):
        return f"MaxPool2D(kernel={self.kernel_size}, stride={self.stride}, padding={self.padding})"


class AvgPool2D(Layer):
    def __init__(self, kernel_size, stride=None, padding=0):
        super().__init__()
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding

    def forward(self, x):
        out, self.cache = avgpool2d_forward(x, self.kernel_size, self.stride, self.padding)
        return out

    def backward(self, dout):
        return avgpool2d_backward(dout, self.cache)

    def __repr__(self):
        return f"AvgPool2D(kernel={self.kernel_size}, stride={self.stride}, padding={self.padding})"


class Flatten(Layer):
    def forward(self, x):
        out, self.cache = flatten_forward(x)
        return out

    def backward(self, dout):
        return flatten_backward(dout, self.cache)


class Dense(Layer):
    """Fully connected layer with He-initialised weights ``(D, M)`` and zero bias."""

    def __init__(self, in_features, out_features, rng=None, dtype=np.float64):
        super().__init__()
        rng = np.random.default_rng(rng)
        self.params["w"] = (rng.standard_normal((in_features, out_features)) * math.sqrt(2 / in_features)).astype(dtype)
        self.params["b"] = np.zeros(out_features, dtype=dtype)

    def forward(self, x):
        out, self.cache = dense_forward(x, self.params["w"], self.params["b"])
        return out

    def backward(self, dout):
        dx, self.grads["w"], self.grads["b"] = dense_backward(dout, self.cache)
        return dx

    def __repr__(self):
        D, M = self.params["w"].shape
        return f"Dense({D}->{M})"


class Sequential:
    """Layers applied in order; ``backward`` runs them in reverse and fills each layer's ``grads``."""

    def __init__(self, *layers: Layer):
        self.layers = list(layers)

    def forward(self, x):
        for layer in self.layers:
            x = layer.forward(x)
        return x

    __call__ = forward

    def backward(self, dout):
        for layer in reversed(self.layers):
            dout = layer.backward(dout)
        return dout

    def parameters(self):
        """``[(layer_index, name, array), ...]`` for every parameter (arrays are updated in place)."""
        return [(i, k, v) for i, layer in enumerate(self.layers) for k, v in layer.params.items()]

    def gradients(self):
        return [(i, k, self.layers[i].grads[k]) for i, k, _ in self.parameters()]

    def predict(self, x, batch_size=512):
        return np.concatenate([self.forward(x[i:i + batch_size]).argmax(axis=1)
                               for i in range(0, len(x), batch_size)])

    def __repr__(self):
        return "Sequential(\n" + "".join(f"  {layer!r},\n" for layer in self.layers) + ")"


class SGD:
    """Plain (optionally momentum) stochastic gradient descent, updating arrays in place."""

    def __init__(self, model: Sequential, lr=0.1, momentum=0.0):
        self.model, self.lr, self.momentum = model, lr, momentum
        self.velocity = {}

    def step(self):
        for (i, k, p), (_, _, g) in zip(self.model.parameters(), self.model.gradients()):
            v = self.velocity.get((i, k))
            v = g if v is None or not self.momentum else self.momentum * v + g
            self.velocity[(i, k)] = v
            p -= self.lr * v


class Adam:
    """Adam (Kingma & Ba, 2015), updating arrays in place."""

    def __init__(self, model: Sequential, lr=1e-3, betas=(0.9, 0.999), eps=1e-8):
        self.model, self.lr, self.betas, self.eps = model, lr, betas, eps
        self.m, self.v, self.t = {}, {}, 0

    def step(self):
        self.t += 1
        b1, b2 = self.betas
        for (i, k, p), (_, _, g) in zip(self.model.parameters(), self.model.gradients()):
            m = self.m[(i, k)] = b1 * self.m.get((i, k), 0) + (1 - b1) * g
            v = self.v[(i, k)] = b2 * self.v.get((i, k), 0) + (1 - b2) * g * g
            mhat = m / (1 - b1 ** self.t)
            vhat = v / (1 - b2 ** self.t)
            p -= self.lr * mhat / (np.sqrt(vhat) + self.eps)


def accuracy(model: Sequential, x, y) -> float:
    """Fraction of ``x`` whose argmax prediction equals ``y``."""
    return float(np.mean(model.predict(x) == np.asarray(y)))


def train_classifier(model: Sequential, x_train, y_train, epochs=10, batch_size=32, optimizer=None,
                     x_val=None, y_val=None, rng=0):
    """Mini-batch training with softmax cross-entropy.

    Returns a history dict with per-epoch ``loss`` (mean training loss), ``train_acc`` and,
    when validation data is given, ``val_acc``.
    """
    x_train = np.asarray(x_train)
    if x_train.dtype.kind != "f":
        x_train = x_train.astype(np.float64)
    y_train = np.asarray(y_train)
    if len(x_train) != len(y_train):
        raise ValueError(f"x_train has {len(x_train)} samples but y_train has {len(y_train)}")
    optimizer = optimizer or Adam(model)
    rng = np.random.default_rng(rng)
    history = {"loss": [], "train_acc": [], "val_acc": []}
    for _ in range(epochs):
        order = rng.permutation(len(x_train))
        total = 0.0
        for i in range(0, len(order), batch_size):
            idx = order[i:i + batch_size]
            logits = model.forward(x_train[idx])
            loss, dlogits = softmax_cross_entropy(logits, y_train[idx])
            model.backward(dlogits)
            optimizer.step()
            total += float(loss) * len(idx)
        history["loss"].append(total / len(order))
        history["train_acc"].append(accuracy(model, x_train, y_train))
        if x_val is not None:
            history["val_acc"].append(accuracy(model, x_val, y_val))
    return history
