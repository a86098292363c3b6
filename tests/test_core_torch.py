"""The core against PyTorch autograd: outputs and every gradient.

float64 to 1e-10 (absolute) over many random configurations drawn by hypothesis,
on random floats and on small-integer / half-integer inputs full of ties; float32
to ~1e-5 relative with the dtype preserved; and PyTorch's corner cases (-inf
padding, NaN winning a window, ReLU'(0) = 0, huge logits, all -inf windows).

PyTorch is a test oracle only: the module is skipped where torch is absent.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

torch = pytest.importorskip("torch")
import torch.nn.functional as TF  # noqa: E402

# tiny tensors: one thread is fastest, and a busy CI machine does not stall torch's
# thread pool
torch.set_num_threads(1)

import mlp_cnn_core as core  # noqa: E402
from conftest import (  # noqa: E402
    LAYERS,
    SEEDS,
    assert_close,
    assert_close32,
    conv_cases,
    make_array,
    pool_cases,
    shapes,
)

pytestmark = pytest.mark.torch

ATOL = 1e-10


def tt(a, grad=True):
    """numpy -> torch, same dtype, a leaf that records its gradient."""
    return torch.tensor(np.array(a), requires_grad=grad)


def npy(t):
    return t.detach().numpy()


# ---------------------------------------------------------------------------
# Torch references
# ---------------------------------------------------------------------------


def torch_conv(x, w, b, stride, padding, dout):
    xt, wt = tt(x), tt(w)
    bt = tt(b) if b is not None else None
    out = TF.conv2d(xt, wt, bt, stride=stride, padding=padding)
    out.backward(torch.tensor(dout))
    db = npy(bt.grad) if bt is not None else None
    return npy(out), npy(xt.grad), npy(wt.grad), db


def torch_pool(fn, x, kernel_size, stride, padding, dout, **kw):
    """Pool an array (..., H, W) with torch: leading dims are folded into one (3-D,
    unbatched)."""
    H, W = x.shape[-2:]
    xt = tt(x.reshape((-1, H, W)))
    out = fn(xt, kernel_size, stride, padding, **kw)
    out.backward(torch.tensor(dout.reshape(tuple(out.shape))))
    o = npy(out).reshape(x.shape[:-2] + tuple(out.shape[-2:]))
    return o, npy(xt.grad).reshape(x.shape)


def torch_maxpool(x, kernel_size, stride, padding, dout):
    return torch_pool(TF.max_pool2d, x, kernel_size, stride, padding, dout)


def torch_avgpool(x, kernel_size, stride, padding, dout):
    return torch_pool(
        TF.avg_pool2d, x, kernel_size, stride, padding, dout, count_include_pad=True
    )


# ---------------------------------------------------------------------------
# Convolution
# ---------------------------------------------------------------------------


@LAYERS
@settings(max_examples=200)
@given(case=conv_cases())
def test_conv2d_matches_torch(layers, case):
    (x, w, b, dout), out, (dx, dw, db) = case.run(layers)
    t_out, t_dx, t_dw, t_db = torch_conv(x, w, b, case.stride, case.padding, dout)
    assert out.shape == case.out_shape
    assert_close(out, t_out, ATOL, err_msg="conv out")
    assert_close(dx, t_dx, ATOL, err_msg="conv dx")
    assert_close(dw, t_dw, ATOL, err_msg="conv dw")
    if b is not None:
        assert_close(db, t_db, ATOL, err_msg="conv db")
    else:  # db is returned anyway: the gradient a bias would have had
        assert_close(db, dout.sum(axis=(0, 2, 3)), ATOL, err_msg="conv db without bias")
    for a in (out, dx, dw, db):
        assert a.dtype == np.float64


@LAYERS
@settings(max_examples=100)
@given(case=conv_cases(kinds=("float", "halves")))
def test_conv2d_float32_matches_torch(layers, case):
    (x, w, b, dout), out, (dx, dw, db) = case.run(layers, np.float32)
    t_out, t_dx, t_dw, t_db = torch_conv(x, w, b, case.stride, case.padding, dout)
    for name, a in (("out", out), ("dx", dx), ("dw", dw), ("db", db)):
        assert a.dtype == np.float32, f"{name} is {a.dtype}, expected float32"
    assert_close32(out, t_out, err_msg="conv32 out")
    assert_close32(dx, t_dx, err_msg="conv32 dx")
    assert_close32(dw, t_dw, err_msg="conv32 dw")
    if b is not None:
        assert_close32(db, t_db, err_msg="conv32 db")


@LAYERS
@pytest.mark.parametrize("k", [(2, 2), (3, 2), (1, 3)])
def test_conv2d_stride_none_means_stride_equal_to_kernel(layers, k, rng):
    x, w = rng.standard_normal((2, 2, 7, 8)), rng.standard_normal((3, 2) + k)
    out, cache = layers.conv2d_forward(x, w, None, None)
    dout = rng.standard_normal(out.shape)
    t_out, t_dx, t_dw, _ = torch_conv(x, w, None, k, 0, dout)
    dx, dw, _ = layers.conv2d_backward(dout, cache)
    assert_close(out, t_out, ATOL)
    assert_close(dx, t_dx, ATOL)
    assert_close(dw, t_dw, ATOL)


@LAYERS
def test_conv2d_known_values(layers):
    """A hand-checkable case: the source article's 6x6 input, 3x3 kernel, stride 1."""
    x = np.arange(36, dtype=np.float64).reshape(1, 1, 6, 6)
    w = np.array([[[[1.0, 0, -1], [2, 0, -2], [1, 0, -1]]]])
    out, _ = layers.conv2d_forward(x, w)
    # a horizontal gradient filter on a ramp that grows by 1 per column: every output is
    # -8
    assert_close(out, np.full((1, 1, 4, 4), -8.0), 0)
    t_out, _, _, _ = torch_conv(x, w, None, 1, 0, np.ones((1, 1, 4, 4)))
    assert_close(out, t_out, 0)


# ---------------------------------------------------------------------------
# Max pooling
# ---------------------------------------------------------------------------

POOLS = {
    "max": ("maxpool2d_forward", "maxpool2d_backward", torch_maxpool, 0),
    "avg": ("avgpool2d_forward", "avgpool2d_backward", torch_avgpool, ATOL),
}


def pool_pass(layers, pool, case, dtype=np.float64):
    """One pass of ``layers``' max or average pooling on ``case``, and PyTorch's:
    ``(x, out, dx), (torch out, torch dx), the tolerance of out``."""
    forward, backward, reference, out_tol = POOLS[pool]
    x, dout = case.x(dtype), case.dout(dtype)
    out, cache = getattr(layers, forward)(
        x, case.kernel_size, case.stride, case.padding
    )
    dx = getattr(layers, backward)(dout, cache)
    return (
        (x, out, dx),
        reference(x, case.kernel_size, case.stride, case.padding, dout),
        out_tol,
    )


@LAYERS
@pytest.mark.parametrize("pool", POOLS)
@settings(max_examples=250)
@given(case=pool_cases())
def test_pooling_matches_torch(layers, pool, case):
    (x, out, dx), (t_out, t_dx), out_tol = pool_pass(layers, pool, case)
    assert out.shape == case.out_shape
    assert_close(out, t_out, out_tol, err_msg=f"{pool}pool out")
    assert_close(dx, t_dx, ATOL, err_msg=f"{pool}pool dx")
    assert dx.shape == x.shape and dx.dtype == np.float64


@LAYERS
@settings(max_examples=200)
@given(case=pool_cases(kinds=("ints", "halves")))
def test_maxpool2d_ties_argmax_matches_torch_indices(layers, case):
    """On tie-heavy inputs the stored winner (flat index row*W + col) is torch's."""
    x = case.x()
    H, W = x.shape[-2:]
    _, cache = layers.maxpool2d_forward(x, case.kernel_size, case.stride, case.padding)
    _, idx = TF.max_pool2d(
        torch.tensor(x.reshape((-1, H, W))),
        case.kernel_size,
        case.stride,
        case.padding,
        return_indices=True,
    )
    np.testing.assert_array_equal(cache.argmax, idx.numpy().reshape(case.out_shape))
    # rows/cols are the same index split in two
    np.testing.assert_array_equal(cache.rows * W + cache.cols, cache.argmax)


@LAYERS
@pytest.mark.parametrize("pool", POOLS)
@settings(max_examples=120)
@given(case=pool_cases(kinds=("float", "halves")))
def test_pooling_float32_matches_torch(layers, pool, case):
    (x, out, dx), (t_out, t_dx), _ = pool_pass(layers, pool, case, np.float32)
    assert out.dtype == np.float32 and dx.dtype == np.float32
    assert_close32(out, t_out)
    assert_close32(dx, t_dx)


@LAYERS
@pytest.mark.parametrize("shape", [(5, 7), (2, 5, 7), (2, 3, 5, 7), (2, 1, 2, 5, 7)])
@pytest.mark.parametrize("kind", ["float", "ints"])
def test_maxpool2d_leading_dims_match_torch(layers, shape, kind, rng):
    """2-D matrix, 3-D, 4-D and 5-D inputs, overlapping 3x3 windows with stride 2 and
    padding 1."""
    x = make_array(rng, shape, kind)
    out, cache = layers.maxpool2d_forward(x, 3, 2, 1)
    dout = make_array(rng, out.shape, "ints")
    dx = layers.maxpool2d_backward(dout, cache)
    t_out, t_dx = torch_maxpool(x, 3, 2, 1, dout)
    assert out.shape == shape[:-2] + (3, 4)
    assert_close(out, t_out, 0)
    assert_close(dx, t_dx, 0)


# ---------------------------------------------------------------------------
# Average pooling
# ---------------------------------------------------------------------------


@LAYERS
def test_avgpool2d_counts_padding(layers):
    """count_include_pad=True: each corner window holds 4 real cells of 9 and 5 padded
    zeros: 36/9."""
    x = np.full((3, 3), 9.0)
    out, _ = layers.avgpool2d_forward(x, 3, 2, 1)
    assert_close(
        out, [[4.0, 4.0], [4.0, 4.0]], 0
    )  # 4 real cells of 9 over 9 cells each
    t_out, _ = torch_avgpool(x, 3, 2, 1, np.ones((2, 2)))
    assert_close(out, t_out, ATOL)


# ---------------------------------------------------------------------------
# ReLU, flatten, dense
# ---------------------------------------------------------------------------

@LAYERS
@settings(max_examples=200)
@given(
    shape=shapes(5, 1, 4),
    kind=st.sampled_from(["float", "ints", "halves"]),
    seed=SEEDS,
    f32=st.booleans(),
)
def test_relu_matches_torch(layers, shape, kind, seed, f32):
    rng, dtype = np.random.default_rng(seed), np.float32 if f32 else np.float64
    x = make_array(rng, shape, kind, dtype)
    dout = make_array(rng, shape, "float", dtype)
    out, cache = layers.relu_forward(x)
    dx = layers.relu_backward(dout, cache)
    xt = tt(x)
    o = torch.relu(xt)
    o.backward(torch.tensor(dout))
    assert out.dtype == dtype and dx.dtype == dtype
    assert_close(out, npy(o), 0)
    assert_close(dx, npy(xt.grad), 0)


@LAYERS
def test_relu_derivative_at_zero_is_zero(layers):
    x = np.array([-1.0, -0.0, 0.0, 1e-300, 2.0])
    out, cache = layers.relu_forward(x)
    dx = layers.relu_backward(np.ones(5), cache)
    assert_close(dx, [0, 0, 0, 1, 1], 0)
    xt = tt(x)
    torch.relu(xt).backward(torch.ones(5, dtype=torch.float64))
    assert_close(dx, npy(xt.grad), 0)


@settings(max_examples=150)
@given(shape=shapes(4, 2, 5), seed=SEEDS, f32=st.booleans())
def test_flatten_matches_torch(shape, seed, f32):
    rng, dtype = np.random.default_rng(seed), np.float32 if f32 else np.float64
    x = make_array(rng, shape, "float", dtype)
    out, cache = core.flatten_forward(x)
    dout = make_array(rng, out.shape, "float", dtype)
    dx = core.flatten_backward(dout, cache)
    xt = tt(x)
    o = torch.flatten(xt, 1)
    o.backward(torch.tensor(dout))
    assert out.dtype == dtype and dx.dtype == dtype
    assert_close(out, npy(o), 0)
    assert_close(dx, npy(xt.grad), 0)


@settings(max_examples=200)
@given(
    n=st.integers(1, 6),
    d=st.integers(1, 8),
    m=st.integers(1, 6),
    bias=st.booleans(),
    kind=st.sampled_from(["float", "ints", "halves"]),
    seed=SEEDS,
    f32=st.booleans(),
)
def test_dense_matches_torch(n, d, m, bias, kind, seed, f32):
    rng, dtype = np.random.default_rng(seed), np.float32 if f32 else np.float64
    x, w = make_array(rng, (n, d), kind, dtype), make_array(rng, (d, m), kind, dtype)
    b = make_array(rng, (m,), kind, dtype) if bias else None
    dout = make_array(rng, (n, m), kind, dtype)
    out, cache = core.dense_forward(x, w, b)
    dx, dw, db = core.dense_backward(dout, cache)
    xt, wt = tt(x), tt(w)
    o = xt @ wt
    if bias:
        bt = tt(b)
        o = o + bt
    o.backward(torch.tensor(dout))
    check = (
        assert_close32
        if f32
        else (lambda a, e, err_msg="": assert_close(a, e, ATOL, err_msg=err_msg))
    )
    for name, a in (("out", out), ("dx", dx), ("dw", dw), ("db", db)):
        assert a.dtype == dtype, f"dense {name} is {a.dtype}"
    check(out, npy(o), err_msg="dense out")
    check(dx, npy(xt.grad), err_msg="dense dx")
    check(dw, npy(wt.grad), err_msg="dense dw")
    check(db, npy(bt.grad) if bias else dout.sum(axis=0), err_msg="dense db")


# ---------------------------------------------------------------------------
# Losses
# ---------------------------------------------------------------------------


@settings(max_examples=150)
@given(
    n=st.integers(1, 8),
    k=st.integers(1, 10),
    scale=st.sampled_from([0.1, 1.0, 10.0, 100.0, 1000.0]),
    kind=st.sampled_from(["float", "ints"]),
    seed=SEEDS,
    f32=st.booleans(),
)
def test_softmax_cross_entropy_matches_torch(n, k, scale, kind, seed, f32):
    rng, dtype = np.random.default_rng(seed), np.float32 if f32 else np.float64
    logits = (make_array(rng, (n, k), kind) * scale).astype(dtype)
    labels = rng.integers(0, k, size=n)
    loss, dlogits = core.softmax_cross_entropy(logits, labels)
    zt = tt(logits)
    t_loss = TF.cross_entropy(zt, torch.tensor(labels), reduction="mean")
    t_loss.backward()
    assert np.isfinite(loss) and np.all(np.isfinite(dlogits))
    assert dlogits.shape == (n, k)
    if f32:
        assert np.asarray(loss).dtype == np.float32 and dlogits.dtype == np.float32
        assert_close32(loss, npy(t_loss), rtol=1e-5)
        assert_close(dlogits, npy(zt.grad), atol=1e-6)
    else:
        assert np.asarray(loss).dtype == np.float64 and dlogits.dtype == np.float64
        assert_close(loss, npy(t_loss), ATOL * max(1.0, scale))
        assert_close(dlogits, npy(zt.grad), ATOL)
    # the softmax rows themselves
    assert_close(
        core.softmax(logits),
        npy(torch.softmax(torch.tensor(logits), dim=1)),
        1e-6 if f32 else ATOL,
    )


@pytest.mark.parametrize("big", [1000.0, -1000.0, 1e4])
def test_cross_entropy_huge_logits_do_not_overflow(big):
    logits = np.array([[big, 0.0, -big], [0.0, big, big], [-big, -big, -big]])
    labels = np.array([2, 0, 1])
    with np.errstate(
        over="raise", invalid="raise", divide="raise"
    ):  # underflow to 0 is fine
        loss, dlogits = core.softmax_cross_entropy(logits, labels)
    assert np.isfinite(loss) and np.all(np.isfinite(dlogits))
    zt = tt(logits)
    t_loss = TF.cross_entropy(zt, torch.tensor(labels))
    t_loss.backward()
    assert_close(loss, npy(t_loss), ATOL * abs(big))
    assert_close(dlogits, npy(zt.grad), ATOL)


@settings(max_examples=150)
@given(shape=shapes(5, 1, 3), seed=SEEDS, f32=st.booleans())
def test_l2_loss_matches_torch(shape, seed, f32):
    rng, dtype = np.random.default_rng(seed), np.float32 if f32 else np.float64
    p, t = (
        make_array(rng, shape, "float", dtype),
        make_array(rng, shape, "float", dtype),
    )
    loss, dpred = core.l2_loss(p, t)
    pt, tgt = tt(p), tt(t)
    t_loss = 0.5 * torch.sum((pt - tgt) ** 2)
    t_loss.backward()
    assert dpred.dtype == dtype and np.asarray(loss).dtype == dtype
    if f32:
        assert_close32(loss, npy(t_loss))
        assert_close32(dpred, npy(pt.grad))
    else:
        assert_close(loss, npy(t_loss), ATOL)
        assert_close(dpred, npy(pt.grad), ATOL)
        assert_close(-dpred, npy(tgt.grad), ATOL)


# ---------------------------------------------------------------------------
# A whole small network, chained by hand, against torch
# ---------------------------------------------------------------------------


@LAYERS
@settings(max_examples=30)
@given(
    seed=SEEDS,
    kind=st.sampled_from(["float", "ints"]),
    stride=st.integers(1, 2),
    pool_stride=st.sampled_from([None, 1, 2]),
)
def test_small_cnn_matches_torch(layers, seed, kind, stride, pool_stride):
    rng = np.random.default_rng(seed)
    x = make_array(rng, (3, 2, 8, 8), kind)
    w1, b1 = make_array(rng, (4, 2, 3, 3), kind), make_array(rng, (4,), kind)
    h = (8 + 2 - 3) // stride + 1
    p = (h - 2) // (pool_stride or 2) + 1
    D = 4 * p * p
    w2, b2 = make_array(rng, (D, 5), kind), make_array(rng, (5,), kind)
    y = rng.integers(0, 5, size=3)

    z1, c1 = layers.conv2d_forward(x, w1, b1, stride, 1)
    a1, cr = layers.relu_forward(z1)
    p1, cp = layers.maxpool2d_forward(a1, 2, pool_stride)
    f1, cf = core.flatten_forward(p1)
    z2, cd = core.dense_forward(f1, w2, b2)
    loss, d = core.softmax_cross_entropy(z2, y)
    d, dw2, db2 = core.dense_backward(d, cd)
    d = core.flatten_backward(d, cf)
    d = layers.maxpool2d_backward(d, cp)
    d = layers.relu_backward(d, cr)
    dx, dw1, db1 = layers.conv2d_backward(d, c1)

    T = [tt(a) for a in (x, w1, b1, w2, b2)]
    tz = TF.conv2d(T[0], T[1], T[2], stride=stride, padding=1)
    tz = TF.max_pool2d(torch.relu(tz), 2, pool_stride)
    t_loss = TF.cross_entropy(torch.flatten(tz, 1) @ T[3] + T[4], torch.tensor(y))
    t_loss.backward()
    # integer data makes huge logits: compare relative to their size
    scale = max(1.0, float(np.abs(z2).max()))
    assert_close(loss, npy(t_loss), 1e-10 * scale)
    for ours, t in zip((dx, dw1, db1, dw2, db2), T):
        assert_close(ours, npy(t.grad), 1e-10 * scale)


# ---------------------------------------------------------------------------
# PyTorch's corner cases
# ---------------------------------------------------------------------------


@LAYERS
def test_padding_acts_as_minus_infinity(layers):
    """An all-negative input with padding pools to negative values, never to the padded
    0."""
    x = -1.0 - np.arange(16, dtype=np.float64).reshape(1, 1, 4, 4)
    out, cache = layers.maxpool2d_forward(x, 3, 2, 1)
    dout = np.arange(1.0, 5.0).reshape(1, 1, 2, 2)
    dx = layers.maxpool2d_backward(dout, cache)
    assert np.all(out < 0)
    assert_close(out, [[[[-1.0, -2.0], [-5.0, -6.0]]]], 0)
    t_out, t_dx = torch_maxpool(x, 3, 2, 1, dout)
    assert_close(out, t_out, 0)
    assert_close(dx, t_dx, 0)
    assert dx.sum() == dout.sum()


@LAYERS
def test_nan_wins_its_window(layers):
    x = np.array([[1.0, 5.0, 2.0, 0.0], [3.0, np.nan, 4.0, 9.0]])
    out, cache = layers.maxpool2d_forward(x, 2)
    dx = layers.maxpool2d_backward(np.array([[10.0, 20.0]]), cache)
    assert np.isnan(out[0, 0]) and out[0, 1] == 9.0
    assert_close(dx, [[0, 0, 0, 0], [0, 10.0, 0, 20.0]], 0)
    t_out, t_dx = torch_maxpool(x, 2, None, 0, np.array([[10.0, 20.0]]))
    assert_close(out, t_out, 0)
    assert_close(dx, t_dx, 0)


@LAYERS
def test_two_nans_in_a_window_follow_torch(layers):
    """With two NaNs in one window torch's CPU kernel (``val > max || isnan(val)``)
    keeps the *last* NaN in row-major order; the core must pick the same one (fast and
    naive)."""
    x = np.array([[np.nan, 1.0, np.nan], [2.0, 3.0, 0.0]])
    dout = np.array([[7.0]])
    t_out, t_dx = torch_maxpool(x, (2, 3), None, 0, dout)
    torch_winner = np.flatnonzero(t_dx.ravel())
    assert list(torch_winner) == [2]  # documents torch's choice: the last NaN
    for fwd, bwd in (
        (layers.maxpool2d_forward, layers.maxpool2d_backward),
        (core.maxpool2d_forward_naive, core.maxpool2d_backward_naive),
    ):
        out, cache = fwd(x, (2, 3))
        assert np.isnan(out).all()
        assert_close(bwd(dout, cache), t_dx, 0)
        assert cache.argmax.ravel().tolist() == [2]


@LAYERS
@settings(max_examples=150)
@given(
    case=pool_cases(kinds=("ints",)),
    nan_frac=st.sampled_from([0.0, 0.1, 0.3]),
    inf_frac=st.sampled_from([0.0, 0.2, 0.6]),
)
def test_random_nans_and_infs_follow_torch(layers, case, nan_frac, inf_frac):
    """NaN wins its window (the last NaN if several), +inf/-inf are ordinary values."""
    x = case.x()
    r = np.random.default_rng(case.seed + 7)
    x[r.random(x.shape) < inf_frac] = np.inf
    x[r.random(x.shape) < inf_frac] = -np.inf
    x[r.random(x.shape) < nan_frac] = np.nan
    dout = case.dout()
    out, cache = layers.maxpool2d_forward(
        x, case.kernel_size, case.stride, case.padding
    )
    dx = layers.maxpool2d_backward(dout, cache)
    t_out, t_dx = torch_maxpool(x, case.kernel_size, case.stride, case.padding, dout)
    assert_close(out, t_out, 0)
    assert_close(dx, t_dx, 0)


@LAYERS
def test_all_minus_inf_window_with_padding_sends_gradient_to_first_real_cell(layers):
    x = np.full((1, 3, 3), -np.inf)
    x[0, 2, 2] = 5.0
    dout = np.array([[[1.0, 2.0], [4.0, 8.0]]])
    out, cache = layers.maxpool2d_forward(x, 3, 2, 1)
    dx = layers.maxpool2d_backward(dout, cache)
    t_out, t_dx = torch_maxpool(x, 3, 2, 1, dout)
    assert_close(out, t_out, 0)
    assert_close(dx, t_dx, 0)
    # window (0, 0) covers padded row/col -1 and real cells (0..1, 0..1): all -inf ->
    # cell (0, 0)
    assert dx[0, 0, 0] == 1.0
    assert out[0, 0, 0] == -np.inf and out[0, 1, 1] == 5.0


@LAYERS
def test_float32_dtype_kept_and_close_to_torch_through_a_small_net(layers, rng):
    x = rng.standard_normal((2, 1, 6, 6)).astype(np.float32)
    w = rng.standard_normal((2, 1, 3, 3)).astype(np.float32)
    z, cz = layers.conv2d_forward(x, w)
    a, ca = layers.relu_forward(z)
    p, cp = layers.avgpool2d_forward(a, 2)
    dp = np.ones_like(p)
    dx, dw, _ = layers.conv2d_backward(
        layers.relu_backward(layers.avgpool2d_backward(dp, cp), ca), cz
    )
    for arr in (z, a, p, dx, dw):
        assert arr.dtype == np.float32
    xt, wt = tt(x), tt(w)
    tp = TF.avg_pool2d(torch.relu(TF.conv2d(xt, wt)), 2)
    tp.backward(torch.ones_like(tp))
    assert_close32(p, npy(tp))
    assert_close32(dx, npy(xt.grad))
    assert_close32(dw, npy(wt.grad))


@LAYERS
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_upstream_gradient_reaches_only_the_winners(layers, bad, rng):
    """A NaN/inf in dout must land on the winner only (never 0 * inf = NaN on the
    others)."""
    x = make_array(rng, (2, 5, 6), "float")
    out, cache = layers.maxpool2d_forward(x, 3, 2, 1)
    dout = make_array(rng, out.shape, "float")
    dout[0, 1, 1] = bad
    dx = layers.maxpool2d_backward(dout, cache)
    _, t_dx = torch_maxpool(x, 3, 2, 1, dout)
    assert_close(dx, t_dx, 0)
    assert np.sum(~np.isfinite(dx)) == 1
    # ReLU: a non-finite gradient is dropped where x <= 0, as torch's threshold_backward
    # does
    xr = np.array([-1.0, 0.0, 2.0])
    _, rc = layers.relu_forward(xr)
    d = np.array([bad, bad, 1.0])
    xt = tt(xr)
    torch.relu(xt).backward(torch.tensor(d))
    assert_close(layers.relu_backward(d, rc), npy(xt.grad), 0)


@LAYERS
@pytest.mark.parametrize(
    "kernel,stride,padding", [((17, 16), 1, 0), ((17, 17), 2, (8, 3)), ((16, 16), 3, 8)]
)
def test_maxpool_kernels_with_more_than_256_cells_match_torch(
    layers, kernel, stride, padding, rng
):
    """Windows of more than 256 cells (offsets no longer fit in a byte)."""
    x = make_array(rng, (2, 21, 19), "ints")
    out, cache = layers.maxpool2d_forward(x, kernel, stride, padding)
    dout = make_array(rng, out.shape, "ints")
    dx = layers.maxpool2d_backward(dout, cache)
    t_out, t_dx = torch_maxpool(x, kernel, stride, padding, dout)
    assert_close(out, t_out, 0)
    assert_close(dx, t_dx, 0)
