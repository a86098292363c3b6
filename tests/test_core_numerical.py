"""Central-difference gradient checks (``core.numerical_gradient``) for every layer and
for two whole networks, on inputs chosen away from kinks (ReLU at 0) and ties (max
pooling); plus the adjoint identity <conv(x), y> = <x, conv_backward(y).dx>.

Each layer is checked through the scalar ``f(x) = sum(layer(x) * R)`` for a fixed random
``R``, whose gradient is exactly ``layer_backward(R)``.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import mlp_cnn_core as core
import mlp_cnn_train as train
from conftest import LAYERS, SEEDS, as_pair, conv_cases, out_size, pool_cases, shapes

RTOL, ATOL = 1e-6, 1e-7


def check_grad(f, x, analytic, rtol=RTOL, atol=ATOL, name=""):
    num = core.numerical_gradient(f, x)
    assert num.shape == np.shape(x)
    np.testing.assert_allclose(analytic, num, rtol=rtol, atol=atol, err_msg=name)


def distinct_values(rng, shape, spacing=0.25):
    """Values with no ties at all: a random permutation of a grid with the given
    spacing."""
    n = int(np.prod(shape))
    return (rng.permutation(n) - n / 2.0).reshape(shape) * spacing


def away_from_zero(rng, shape, margin=0.1):
    return np.where(rng.random(shape) < 0.5, -1.0, 1.0) * (
        margin + np.abs(rng.standard_normal(shape))
    )


def min_window_gap(a, kernel_size, stride, padding):
    """Smallest (max - runner-up) over the pooling windows whose max is positive: a
    central difference with step eps is exact for max pooling when this gap exceeds
    2*eps.
    """
    kh, kw = as_pair(kernel_size)
    sh, sw = (kh, kw) if stride is None else as_pair(stride)
    ph, pw = as_pair(padding)
    H, W = a.shape[-2:]
    gap = np.inf
    for idx in np.ndindex(*a.shape[:-2]):
        for i in range(out_size(H, kh, sh, ph)):
            for j in range(out_size(W, kw, sw, pw)):
                vals = sorted(
                    (
                        a[idx + (r, c)]
                        for r in range(i * sh - ph, i * sh - ph + kh)
                        for c in range(j * sw - pw, j * sw - pw + kw)
                        if 0 <= r < H and 0 <= c < W
                    ),
                    reverse=True,
                )
                if len(vals) > 1 and vals[0] > 0:
                    gap = min(gap, vals[0] - vals[1])
    return gap


# ---------------------------------------------------------------------------
# numerical_gradient itself
# ---------------------------------------------------------------------------


def test_numerical_gradient_of_a_known_function(rng):
    x = rng.standard_normal((3, 4))
    x0 = x.copy()
    g = core.numerical_gradient(lambda v: np.sum(v**3), x)
    assert g.shape == x.shape and g.dtype == np.float64
    np.testing.assert_allclose(g, 3 * x**2, rtol=1e-7, atol=1e-8)
    np.testing.assert_array_equal(x, x0)  # never modified


def test_numerical_gradient_accepts_integers_and_float32():
    g = core.numerical_gradient(lambda v: float(np.sum(v * v)), np.array([1, 2, 3]))
    np.testing.assert_allclose(g, [2, 4, 6], atol=1e-6)
    x32 = np.array([1.0, -2.0], dtype=np.float32)
    g32 = core.numerical_gradient(lambda v: float(np.sum(v * v)), x32)
    assert g32.dtype == np.float64
    np.testing.assert_allclose(g32, [2, -4], atol=1e-6)
    assert x32.dtype == np.float32 and x32.tolist() == [1.0, -2.0]


@LAYERS
def test_numerical_gradient_at_a_tie_gives_half_to_each_tied_cell(layers):
    """Why gradient checks must avoid ties: central differences give 0.5 to each tied
    maximum whatever their number (a 3-way tie sums to 1.5), which matches no tie
    policy.
    """
    x = np.array([[1.0, 1.0], [1.0, 0.0]])
    num = core.numerical_gradient(
        lambda v: float(layers.maxpool2d_forward(v, 2)[0].sum()), x
    )
    np.testing.assert_allclose(num, [[0.5, 0.5], [0.5, 0.0]], atol=1e-9)
    for ties in core.TIES_POLICIES:
        _, cache = layers.maxpool2d_forward(x, 2, ties=ties)
        dx = layers.maxpool2d_backward(np.ones((1, 1)), cache)
        assert not np.allclose(dx, num)


# ---------------------------------------------------------------------------
# Layer by layer
# ---------------------------------------------------------------------------


@LAYERS
@settings(max_examples=40)
@given(case=conv_cases(kinds=("float",), max_n=2, max_c=2, max_f=2, max_size=6))
def test_conv2d_gradients_numerically(layers, case):
    x, w, b, _ = case.arrays()
    R = np.random.default_rng(case.seed + 5).standard_normal(case.out_shape)
    s, p = case.stride, case.padding
    _, cache = layers.conv2d_forward(x, w, b, s, p)
    dx, dw, db = layers.conv2d_backward(R, cache)
    check_grad(
        lambda v: np.sum(layers.conv2d_forward(v, w, b, s, p)[0] * R), x, dx, name="dx"
    )
    check_grad(
        lambda v: np.sum(layers.conv2d_forward(x, v, b, s, p)[0] * R), w, dw, name="dw"
    )
    if b is not None:
        check_grad(
            lambda v: np.sum(layers.conv2d_forward(x, w, v, s, p)[0] * R),
            b,
            db,
            name="db",
        )


@LAYERS
@settings(max_examples=60)
@given(case=pool_cases(kinds=("float",), max_size=8))
def test_maxpool2d_gradient_numerically(layers, case):
    rng = np.random.default_rng(case.seed)
    x = distinct_values(rng, case.shape)
    R = rng.standard_normal(case.out_shape)
    args = (case.kernel_size, case.stride, case.padding)
    for ties in core.TIES_POLICIES:  # without ties every policy is the true gradient
        _, cache = layers.maxpool2d_forward(x, *args, ties=ties)
        dx = layers.maxpool2d_backward(R, cache)
        check_grad(
            lambda v: np.sum(layers.maxpool2d_forward(v, *args)[0] * R),
            x,
            dx,
            name=ties,
        )


@LAYERS
@settings(max_examples=60)
@given(case=pool_cases(kinds=("float",), max_size=8))
def test_avgpool2d_gradient_numerically(layers, case):
    x = case.x()
    R = np.random.default_rng(case.seed + 9).standard_normal(case.out_shape)
    args = (case.kernel_size, case.stride, case.padding)
    _, cache = layers.avgpool2d_forward(x, *args)
    check_grad(
        lambda v: np.sum(layers.avgpool2d_forward(v, *args)[0] * R),
        x,
        layers.avgpool2d_backward(R, cache),
    )


@LAYERS
@settings(max_examples=40)
@given(shape=shapes(4, 1, 4), seed=SEEDS)
def test_relu_gradient_numerically(layers, shape, seed):
    rng = np.random.default_rng(seed)
    x = away_from_zero(rng, shape)
    R = rng.standard_normal(shape)
    _, cache = layers.relu_forward(x)
    check_grad(
        lambda v: np.sum(layers.relu_forward(v)[0] * R),
        x,
        layers.relu_backward(R, cache),
    )


def test_flatten_gradient_numerically(rng):
    x = rng.standard_normal((2, 3, 2, 2))
    R = rng.standard_normal((2, 12))
    _, cache = core.flatten_forward(x)
    check_grad(
        lambda v: np.sum(core.flatten_forward(v)[0] * R),
        x,
        core.flatten_backward(R, cache),
    )


@settings(max_examples=40)
@given(
    n=st.integers(1, 4),
    d=st.integers(1, 6),
    m=st.integers(1, 4),
    seed=SEEDS,
)
def test_dense_gradients_numerically(n, d, m, seed):
    rng = np.random.default_rng(seed)
    x, w, b, R = (rng.standard_normal(s) for s in ((n, d), (d, m), (m,), (n, m)))
    _, cache = core.dense_forward(x, w, b)
    dx, dw, db = core.dense_backward(R, cache)
    check_grad(lambda v: np.sum(core.dense_forward(v, w, b)[0] * R), x, dx, name="dx")
    check_grad(lambda v: np.sum(core.dense_forward(x, v, b)[0] * R), w, dw, name="dw")
    check_grad(lambda v: np.sum(core.dense_forward(x, w, v)[0] * R), b, db, name="db")


@settings(max_examples=60)
@given(
    n=st.integers(1, 6),
    k=st.integers(1, 8),
    scale=st.sampled_from([0.1, 1.0, 5.0]),
    seed=SEEDS,
)
def test_softmax_cross_entropy_gradient_numerically(n, k, scale, seed):
    rng = np.random.default_rng(seed)
    logits = rng.standard_normal((n, k)) * scale
    labels = rng.integers(0, k, size=n)
    _, dlogits = core.softmax_cross_entropy(logits, labels)
    check_grad(lambda v: core.softmax_cross_entropy(v, labels)[0], logits, dlogits)
    # every row of dlogits sums to 0: softmax is invariant to adding a constant per row
    np.testing.assert_allclose(dlogits.sum(axis=1), 0, atol=1e-15)


def test_l2_loss_gradient_numerically(rng):
    p, t = rng.standard_normal((3, 2)), rng.standard_normal((3, 2))
    loss, dpred = core.l2_loss(p, t)
    assert loss == pytest.approx(0.5 * np.sum((p - t) ** 2), rel=1e-15)
    check_grad(lambda v: core.l2_loss(v, t)[0], p, dpred, name="dpred")
    check_grad(lambda v: core.l2_loss(p, v)[0], t, -dpred, name="dtarget")


# ---------------------------------------------------------------------------
# Whole networks
# ---------------------------------------------------------------------------


def _cnn_loss_and_grads(layers, x, w1, b1, w2, b2, y, conv_s, conv_p, pool):
    v = train.small_cnn_forward(
        x,
        w1,
        w2,
        b1,
        b2,
        stride=conv_s,
        padding=conv_p,
        pool=pool[0],
        pool_stride=pool[1],
        pool_padding=pool[2],
        layers=layers,
    )
    loss, d = core.softmax_cross_entropy(v["out"], y)
    g = train.small_cnn_backward(d, v, layers=layers)
    return (
        loss,
        (g["dx"], g["dw"], g["dconv_b"], g["ddense_w"], g["ddense_b"]),
        v["conv"],
        v["act"],
    )


@LAYERS
@pytest.mark.parametrize(
    "conv_s,conv_p,pool",
    [
        (1, 1, (2, None, 0)),  # the classic: 3x3 same conv, 2x2/2 pooling
        (2, 0, (3, 1, 1)),  # strided conv, overlapping padded pooling
        ((1, 2), (0, 1), ((2, 3), (1, 2), (1, 1))),  # rectangular everything
    ],
)
def test_small_cnn_with_cross_entropy_numerically(layers, conv_s, conv_p, pool):
    N, C, H, W, F, K = 2, 2, 7, 8, 3, 4
    checked = 0
    for seed in range(50):
        rng = np.random.default_rng(seed)
        x = rng.standard_normal((N, C, H, W))
        w1, b1 = rng.standard_normal((F, C, 3, 3)) * 0.5, rng.standard_normal(F) * 0.1
        z1, _ = layers.conv2d_forward(x, w1, b1, conv_s, conv_p)
        a1, _ = layers.relu_forward(z1)
        # stay away from kinks and ties: the check is only meaningful there
        if np.min(np.abs(z1)) < 1e-3 or min_window_gap(a1, *pool) < 1e-3:
            continue
        p1, _ = layers.maxpool2d_forward(a1, *pool)
        D = p1[0].size
        w2, b2 = rng.standard_normal((D, K)) * 0.5, rng.standard_normal(K) * 0.1
        y = rng.integers(0, K, size=N)
        params = [x, w1, b1, w2, b2]
        _, grads, _, _ = _cnn_loss_and_grads(layers, *params, y, conv_s, conv_p, pool)
        for i, (name, g) in enumerate(zip(("dx", "dw1", "db1", "dw2", "db2"), grads)):

            def f(v, i=i):
                ps = list(params)
                ps[i] = v
                return _cnn_loss_and_grads(layers, *ps, y, conv_s, conv_p, pool)[0]

            assert np.any(g != 0), name
            check_grad(f, params[i], g, name=name)
        checked += 1
        if checked == 2:
            break
    assert checked == 2, "no seed gave inputs away from kinks and ties"


@LAYERS
def test_source_article_net_6x6_numerically(layers):
    """The source article's net: 6x6 input -> 3x3 conv -> 4x4 -> ReLU -> 2x2 max pool
    -> 2x2 -> flatten 4 -> dense 4x1 -> L2 loss against a target of 1."""
    target = np.array([[1.0]])

    def loss(x, w1, w2):
        return core.l2_loss(
            train.small_cnn_forward(x, w1, w2, layers=layers)["out"], target
        )[0]

    for seed in range(100):
        rng = np.random.default_rng(seed)
        x, w1, w2 = (
            rng.standard_normal((1, 1, 6, 6)),
            rng.standard_normal((1, 1, 3, 3)),
            rng.standard_normal((4, 1)),
        )
        v = train.small_cnn_forward(x, w1, w2, layers=layers)
        if (
            np.min(np.abs(v["conv"])) > 1e-3
            and min_window_gap(v["act"], 2, None, 0) > 1e-3
            and np.count_nonzero(v["pool"]) >= 3
        ):
            break
    else:  # pragma: no cover
        pytest.fail("no suitable seed")
    assert v["conv"].shape == (1, 1, 4, 4)
    g = train.small_cnn_backward(core.l2_loss(v["out"], target)[1], v, layers=layers)
    check_grad(lambda u: loss(u, w1, w2), x, g["dx"], name="dx")
    check_grad(lambda u: loss(x, u, w2), w1, g["dw"], name="dw1")
    check_grad(lambda u: loss(x, w1, u), w2, g["ddense_w"], name="dw2")


# ---------------------------------------------------------------------------
# Adjoint identity
# ---------------------------------------------------------------------------


@LAYERS
@settings(max_examples=150)
@given(case=conv_cases(kinds=("float",), bias=False))
def test_conv_adjoint_identity(layers, case):
    """<conv(x), y> = <x, conv_backward(y).dx>: dx is the adjoint (transpose) of the
    linear map x -> conv(x, w); likewise <conv(x), y> = <w, dw> since conv is linear in
    w too.
    """
    x, w, _, y = case.arrays()
    out, cache = layers.conv2d_forward(x, w, None, case.stride, case.padding)
    dx, dw, _ = layers.conv2d_backward(y, cache)
    lhs = np.sum(out * y)
    tol = 1e-10 * max(1.0, np.sum(np.abs(out * y)))
    assert abs(lhs - np.sum(x * dx)) <= tol
    assert abs(lhs - np.sum(w * dw)) <= tol
