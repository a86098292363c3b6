"""Layer classes, Sequential, the optimizers and the training loop."""

from __future__ import annotations

import time

import numpy as np
import pytest

import mlp_cnn_core as core
import mlp_cnn_fast as fast
import mlp_cnn_train as train
from conftest import LAYERS, assert_close


def small_model(rng=0, dtype=np.float64, pool="max", ties="first"):
    pool_layer = (
        train.MaxPool2D(2, ties=ties) if pool == "max" else train.AvgPool2D(3, 2, 1)
    )
    return train.Sequential(
        train.Conv2D(2, 3, 3, stride=1, padding=1, rng=rng, dtype=dtype),
        train.ReLU(),
        pool_layer,
        train.Flatten(),
        train.Dense(
            3 * 3 * 3, 4, rng=rng + 1 if isinstance(rng, int) else rng, dtype=dtype
        ),
    )


# ---------------------------------------------------------------------------
# Sequential == chained functions
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "pool,ties", [("max", "first"), ("max", "all"), ("max", "split"), ("avg", None)]
)
def test_sequential_matches_chained_functions(pool, ties, rng):
    """The layers call mlp_cnn_fast's functions: the same numbers, bit for bit."""
    layers = fast
    model = small_model(pool=pool, ties=ties or "first")
    conv, dense = model.layers[0], model.layers[4]
    conv.params["b"][:] = rng.standard_normal(3)  # non-zero biases exercise db
    dense.params["b"][:] = rng.standard_normal(4)
    x = (
        np.round(rng.standard_normal((5, 2, 6, 6)) * 2) / 2
    )  # halves: ties in the pool windows
    y = rng.integers(0, 4, size=5)

    logits = model.forward(x)
    loss, dlogits = core.softmax_cross_entropy(logits, y)
    dx = model.backward(dlogits)

    w1, b1, w2, b2 = (
        conv.params["w"],
        conv.params["b"],
        dense.params["w"],
        dense.params["b"],
    )
    z1, c1 = layers.conv2d_forward(x, w1, b1, 1, 1)
    a1, cr = layers.relu_forward(z1)
    if pool == "max":
        p1, cp = layers.maxpool2d_forward(a1, 2, ties=ties)
    else:
        p1, cp = layers.avgpool2d_forward(a1, 3, 2, 1)
    f1, cf = core.flatten_forward(p1)
    z2, cd = core.dense_forward(f1, w2, b2)
    loss_f, d = core.softmax_cross_entropy(z2, y)
    d, dw2, db2 = core.dense_backward(d, cd)
    d = core.flatten_backward(d, cf)
    d = (
        layers.maxpool2d_backward(d, cp)
        if pool == "max"
        else layers.avgpool2d_backward(d, cp)
    )
    dx_f, dw1, db1 = layers.conv2d_backward(layers.relu_backward(d, cr), c1)

    assert_close(logits, z2, 0)
    assert loss == loss_f
    assert_close(dx, dx_f, 0)
    assert_close(conv.grads["w"], dw1, 0)
    assert_close(conv.grads["b"], db1, 0)
    assert_close(dense.grads["w"], dw2, 0)
    assert_close(dense.grads["b"], db2, 0)

    names = [(i, k) for i, k, _ in model.parameters()]
    assert names == [(0, "w"), (0, "b"), (4, "w"), (4, "b")]
    for (i, k, p), (j, k2, g) in zip(model.parameters(), model.gradients()):
        assert (i, k) == (j, k2) and p.shape == g.shape
        assert p is model.layers[i].params[k]  # updated in place by the optimizers


def test_sequential_call_predict_and_repr(rng):
    model = small_model()
    x = rng.standard_normal((7, 2, 6, 6))
    assert_close(model(x), model.forward(x), 0)
    pred = model.predict(x, batch_size=3)
    assert pred.shape == (7,) and pred.dtype.kind == "i"
    np.testing.assert_array_equal(pred, model.forward(x).argmax(axis=1))
    assert train.accuracy(model, x, pred) == 1.0
    text = repr(model)
    for word in ("Conv2D", "ReLU", "MaxPool2D", "Flatten", "Dense"):
        assert word in text


def test_layer_initialisation_is_seeded():
    a, b = small_model(rng=5), small_model(rng=5)
    for (_, _, p), (_, _, q) in zip(a.parameters(), b.parameters()):
        np.testing.assert_array_equal(p, q)
    c = small_model(rng=6)
    assert not np.array_equal(a.layers[0].params["w"], c.layers[0].params["w"])
    assert np.all(a.layers[0].params["b"] == 0) and np.all(a.layers[4].params["b"] == 0)


# ---------------------------------------------------------------------------
# Optimizers
# ---------------------------------------------------------------------------


def _loss(model, x, y):
    return float(core.softmax_cross_entropy(model.forward(x), y)[0])


def _grad_step(model, x, y):
    loss, d = core.softmax_cross_entropy(model.forward(x), y)
    model.backward(d)
    return float(loss)


@pytest.mark.parametrize(
    "make_opt, expected_step",
    [
        (lambda m: train.SGD(m, lr=0.05), lambda g, opt: 0.05 * g),
        # Adam's bias-corrected first step: lr * g / (|g| + eps)
        (
            lambda m: train.Adam(m, lr=0.01),
            lambda g, opt: 0.01 * g / (np.abs(g) + opt.eps),
        ),
    ],
    ids=["sgd", "adam"],
)
def test_first_optimizer_step(make_opt, expected_step, rng):
    model = small_model()
    x, y = rng.standard_normal((4, 2, 6, 6)), rng.integers(0, 4, size=4)
    _grad_step(model, x, y)
    before = [p.copy() for _, _, p in model.parameters()]
    grads = [g.copy() for _, _, g in model.gradients()]
    opt = make_opt(model)
    opt.step()
    for p, p0, g in zip((p for _, _, p in model.parameters()), before, grads):
        assert_close(p, p0 - expected_step(g, opt), 1e-12)


@pytest.mark.parametrize(
    "make_opt",
    [
        lambda m: train.SGD(m, lr=0.1),
        lambda m: train.SGD(m, lr=0.05, momentum=0.9),
        lambda m: train.Adam(m, lr=0.01),
    ],
    ids=["sgd", "sgd_momentum", "adam"],
)
def test_optimizers_reduce_the_loss_on_a_tiny_problem(make_opt, rng):
    model = small_model()
    x, y = rng.standard_normal((8, 2, 6, 6)), rng.integers(0, 4, size=8)
    opt = make_opt(model)
    start = _loss(model, x, y)
    losses = []
    for _ in range(30):
        losses.append(_grad_step(model, x, y))
        opt.step()
    end = _loss(model, x, y)
    assert end < 0.5 * start, (start, end)
    assert losses[1] < losses[0]  # the first step already helps


# ---------------------------------------------------------------------------
# Training on scikit-learn's digits
# ---------------------------------------------------------------------------


def test_train_classifier_on_digits_reaches_a_sensible_accuracy():
    datasets = pytest.importorskip("sklearn.datasets")
    digits = datasets.load_digits()
    x = (digits.images / 16.0)[:, None, :, :]  # (1797, 1, 8, 8) in [0, 1]
    y = digits.target
    order = np.random.default_rng(0).permutation(len(y))
    tr, te = order[:600], order[600:900]
    model = train.Sequential(
        train.Conv2D(1, 8, 3, padding=1, rng=0),
        train.ReLU(),
        train.MaxPool2D(2),
        train.Flatten(),
        train.Dense(8 * 4 * 4, 10, rng=1),
    )
    t0 = time.perf_counter()
    history = train.train_classifier(
        model,
        x[tr],
        y[tr],
        epochs=8,
        batch_size=32,
        optimizer=train.Adam(model, lr=0.01),
        x_val=x[te],
        y_val=y[te],
        rng=0,
    )
    elapsed = time.perf_counter() - t0
    assert elapsed < 10, f"training took {elapsed:.1f} s"
    assert set(history) == {"loss", "train_acc", "val_acc"}
    assert (
        len(history["loss"])
        == len(history["train_acc"])
        == len(history["val_acc"])
        == 8
    )
    assert history["loss"][-1] < history["loss"][0]
    assert history["train_acc"][-1] > 0.9
    assert history["val_acc"][-1] > 0.85, history["val_acc"]
    assert history["val_acc"][-1] == pytest.approx(train.accuracy(model, x[te], y[te]))


def test_train_classifier_is_reproducible_and_defaults_to_adam(rng):
    x, y = rng.standard_normal((20, 2, 6, 6)), rng.integers(0, 4, size=20)
    h1 = train.train_classifier(small_model(), x, y, epochs=2, batch_size=8, rng=3)
    h2 = train.train_classifier(small_model(), x, y, epochs=2, batch_size=8, rng=3)
    assert h1 == h2
    assert h1["val_acc"] == []


# ---------------------------------------------------------------------------
# dtypes
# ---------------------------------------------------------------------------


@LAYERS
def test_integer_and_bool_inputs_are_computed_in_float64(layers):
    xi = np.arange(2 * 1 * 4 * 4).reshape(2, 1, 4, 4) % 5 - 2  # int64
    wi = np.ones((2, 1, 3, 3), dtype=np.int32)
    out, cache = layers.conv2d_forward(xi, wi, np.array([1, -1]))
    assert out.dtype == np.float64
    dx, dw, db = layers.conv2d_backward(np.ones(out.shape, dtype=np.int16), cache)
    assert dx.dtype == dw.dtype == db.dtype == np.float64
    assert core.conv2d_forward_naive(xi, wi)[0].dtype == np.float64
    for fwd in (
        layers.maxpool2d_forward,
        layers.avgpool2d_forward,
        core.maxpool2d_forward_naive,
    ):
        o, c = fwd(xi.astype(np.uint8), 2)
        assert o.dtype == np.float64
    o, c = layers.maxpool2d_forward(xi, 2)
    assert layers.maxpool2d_backward(np.ones(o.shape, dtype=int), c).dtype == np.float64
    assert layers.relu_forward(np.array([True, False]))[0].dtype == np.float64
    assert layers.relu_forward(xi)[0].dtype == np.float64
    assert core.flatten_forward(xi)[0].dtype == np.float64
    assert (
        core.dense_forward(np.ones((2, 3), dtype=int), np.ones((3, 2), dtype=int))[
            0
        ].dtype
        == np.float64
    )
    loss, dz = core.softmax_cross_entropy(np.array([[1, 2, 3]]), np.array([2]))
    assert dz.dtype == np.float64 and np.asarray(loss).dtype == np.float64
    loss, dp = core.l2_loss(np.array([1, 2]), np.array([0, 0]))
    assert dp.dtype == np.float64 and loss == 2.5
    # integer results are the float64 results of the same values
    assert_close(
        layers.conv2d_forward(xi, wi)[0],
        layers.conv2d_forward(xi.astype(float), wi.astype(float))[0],
        0,
    )
    model = small_model()
    assert model.forward(np.ones((1, 2, 6, 6), dtype=np.int64)).dtype == np.float64


def test_float32_model_stays_float32(rng):
    model = small_model(dtype=np.float32)
    for _, _, p in model.parameters():
        assert p.dtype == np.float32
    x = rng.standard_normal((6, 2, 6, 6)).astype(np.float32)
    y = rng.integers(0, 4, size=6)
    logits = model.forward(x)
    assert logits.dtype == np.float32
    loss, d = core.softmax_cross_entropy(logits, y)
    assert d.dtype == np.float32 and np.asarray(loss).dtype == np.float32
    dx = model.backward(d)
    assert dx.dtype == np.float32
    for _, _, g in model.gradients():
        assert g.dtype == np.float32
    for opt in (train.SGD(model, lr=0.01, momentum=0.9), train.Adam(model, lr=1e-3)):
        opt.step()
        opt.step()
        for _, _, p in model.parameters():
            assert p.dtype == np.float32
    hist = train.train_classifier(model, x, y, epochs=1, batch_size=3)
    assert np.isfinite(hist["loss"][0])
    for _, _, p in model.parameters():
        assert p.dtype == np.float32


def test_float32_and_float64_models_agree(rng):
    m64, m32 = small_model(), small_model(dtype=np.float32)
    x = rng.standard_normal((3, 2, 6, 6))
    out64, out32 = m64.forward(x), m32.forward(x.astype(np.float32))
    np.testing.assert_allclose(out32, out64, rtol=1e-4, atol=1e-5)
