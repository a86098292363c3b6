"""Bad input gets a ValueError/TypeError whose message names the argument (and, where it
helps, the shapes involved); inputs are never modified; outputs never alias inputs."""

from __future__ import annotations

import itertools
import re

import numpy as np
import pytest

import mlp_cnn_core as core
import mlp_cnn_fast as fast
import mlp_cnn_train as train
from conftest import LAYERS, make_array

X4 = np.ones((2, 3, 5, 5))
W4 = np.ones((4, 3, 3, 3))
B4 = np.ones(4)
XP = np.ones((2, 3, 6, 6))  # for pooling
LOGITS = np.zeros((3, 4))
LABELS = np.array([0, 1, 3])


def _caches():
    """One valid cache of every kind, plus the forward outputs they belong to."""
    conv_out, conv_c = core.conv2d_forward(X4, W4, B4)
    _, convn_c = core.conv2d_forward_naive(X4, W4, B4)
    relu_out, relu_c = core.relu_forward(XP)
    mp_out, mp_c = core.maxpool2d_forward(XP, 2)
    _, mpn_c = core.maxpool2d_forward_naive(XP, 2)
    ap_out, ap_c = core.avgpool2d_forward(XP, 2)
    fl_out, fl_c = core.flatten_forward(XP)
    d_out, d_c = core.dense_forward(np.ones((2, 3)), np.ones((3, 5)), np.ones(5))
    fast_caches = {
        f"fast.{name}": (getattr(fast, name), cache, shape)
        for name, (_, cache, shape) in [
            (
                "conv2d_backward",
                (None, fast.conv2d_forward(X4, W4, B4)[1], conv_out.shape),
            ),
            ("relu_backward", (None, fast.relu_forward(XP)[1], relu_out.shape)),
            (
                "maxpool2d_backward",
                (None, fast.maxpool2d_forward(XP, 2)[1], mp_out.shape),
            ),
            (
                "avgpool2d_backward",
                (None, fast.avgpool2d_forward(XP, 2)[1], ap_out.shape),
            ),
        ]
    }
    return fast_caches | {
        "conv2d_backward": (core.conv2d_backward, conv_c, conv_out.shape),
        "conv2d_backward_naive": (core.conv2d_backward_naive, convn_c, conv_out.shape),
        "relu_backward": (core.relu_backward, relu_c, relu_out.shape),
        "maxpool2d_backward": (core.maxpool2d_backward, mp_c, mp_out.shape),
        "maxpool2d_backward_naive": (
            core.maxpool2d_backward_naive,
            mpn_c,
            mp_out.shape,
        ),
        "avgpool2d_backward": (core.avgpool2d_backward, ap_c, ap_out.shape),
        "flatten_backward": (core.flatten_backward, fl_c, fl_out.shape),
        "dense_backward": (core.dense_backward, d_c, d_out.shape),
    }


BACKWARDS = list(_caches())


# ---------------------------------------------------------------------------
# Wrong rank
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "call,match",
    [
        (
            lambda: core.conv2d_forward(np.ones((3, 5, 5)), W4),
            r"x must be 4-D.*\(3, 5, 5\)",
        ),
        (lambda: core.conv2d_forward(np.ones((1, 2, 3, 5, 5)), W4), r"x must be 4-D"),
        (
            lambda: core.conv2d_forward(X4, np.ones((3, 3, 3))),
            r"w must be 4-D.*\(3, 3, 3\)",
        ),
        (lambda: core.conv2d_forward_naive(np.ones((3, 5, 5)), W4), r"x must be 4-D"),
        (lambda: core.conv2d_forward_naive(X4, np.ones((3, 3))), r"w must be 4-D"),
        (
            lambda: core.maxpool2d_forward(np.ones(5), 2),
            r"x must have at least 2 dimensions.*\(5,\)",
        ),
        (
            lambda: core.maxpool2d_forward(np.float64(3.0), 1),
            r"x must have at least 2 dimensions",
        ),
        (
            lambda: core.maxpool2d_forward_naive(np.ones(5), 2),
            r"x must have at least 2 dimensions",
        ),
        (
            lambda: core.avgpool2d_forward(np.ones(5), 2),
            r"x must have at least 2 dimensions",
        ),
        (
            lambda: fast.conv2d_forward(np.ones((3, 5, 5)), W4),
            r"x must be 4-D.*\(3, 5, 5\)",
        ),
        (
            lambda: fast.conv2d_forward(X4, np.ones((3, 3, 3))),
            r"w must be 4-D.*\(3, 3, 3\)",
        ),
        (
            lambda: fast.maxpool2d_forward(np.ones(5), 2),
            r"x must have at least 2 dimensions.*\(5,\)",
        ),
        (
            lambda: fast.avgpool2d_forward(np.ones(5), 2),
            r"x must have at least 2 dimensions",
        ),
        (
            lambda: core.dense_forward(np.ones(3), np.ones((3, 2))),
            r"x must be 2-D.*\(3,\)",
        ),
        (
            lambda: core.dense_forward(np.ones((1, 2, 3)), np.ones((3, 2))),
            r"x must be 2-D",
        ),
        (lambda: core.dense_forward(np.ones((2, 3)), np.ones(3)), r"w must be 2-D"),
        (lambda: core.flatten_forward(np.ones(3)), r"x must have a batch axis"),
        (
            lambda: core.softmax_cross_entropy(np.zeros(3), np.array([0])),
            r"logits must be 2-D",
        ),
        (lambda: core.softmax(np.zeros(3)), r"logits must be 2-D"),
        (lambda: core.im2col(np.ones((3, 5, 5)), 2), r"x must be 4-D"),
        (
            lambda: core.expand_gradient(np.ones(3), 2),
            r"dout must have at least 2 dimensions",
        ),
        (lambda: core.rot180(np.ones(3)), r"w must have at least 2 dimensions"),
        (lambda: core.dilate(np.ones(3), 2), r"d must have at least 2 dimensions"),
    ],
)
def test_wrong_rank(call, match):
    with pytest.raises(ValueError, match=match):
        call()


# ---------------------------------------------------------------------------
# Geometry: kernel, stride, padding
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "call",
    [
        lambda: core.conv2d_forward(np.ones((1, 1, 2, 2)), np.ones((1, 1, 3, 3))),
        lambda: core.conv2d_forward(
            np.ones((1, 1, 2, 5)), np.ones((1, 1, 5, 2)), padding=1
        ),
        lambda: core.conv2d_forward_naive(np.ones((1, 1, 2, 2)), np.ones((1, 1, 3, 3))),
        lambda: core.maxpool2d_forward(np.ones((2, 2)), 3),
        lambda: core.maxpool2d_forward(np.ones((4, 1)), (1, 4)),
        lambda: core.maxpool2d_forward_naive(np.ones((2, 2)), 3),
        lambda: core.avgpool2d_forward(np.ones((3, 2)), (1, 3)),
        lambda: core.im2col(np.ones((1, 1, 2, 2)), 3),
        lambda: fast.conv2d_forward(np.ones((1, 1, 2, 2)), np.ones((1, 1, 3, 3))),
        lambda: fast.maxpool2d_forward(np.ones((2, 2)), 3),
        lambda: fast.avgpool2d_forward(np.ones((3, 2)), (1, 3)),
    ],
)
def test_kernel_larger_than_padded_input(call):
    with pytest.raises(ValueError, match=r"kernel_size .*larger than the padded input"):
        call()


@LAYERS
def test_kernel_that_fits_only_thanks_to_padding_is_accepted(layers):
    out, _ = layers.conv2d_forward(
        np.ones((1, 1, 2, 2)), np.ones((1, 1, 3, 3)), padding=1
    )
    assert out.shape == (1, 1, 2, 2)
    out, _ = layers.maxpool2d_forward(np.ones((2, 2)), 3, 1, 1)
    assert out.shape == (2, 2)


@LAYERS
@pytest.mark.parametrize("stride", [0, -1, (1, 0), (0, 2), (-2, 1)])
@pytest.mark.parametrize(
    "fn", ["conv", "maxpool", "avgpool", "maxpool_naive", "conv_naive", "im2col"]
)
def test_stride_must_be_positive(layers, fn, stride):
    call = {
        "conv": lambda: layers.conv2d_forward(X4, W4, stride=stride),
        "conv_naive": lambda: core.conv2d_forward_naive(X4, W4, stride=stride),
        "maxpool": lambda: layers.maxpool2d_forward(XP, 2, stride),
        "maxpool_naive": lambda: core.maxpool2d_forward_naive(XP, 2, stride),
        "avgpool": lambda: layers.avgpool2d_forward(XP, 2, stride),
        "im2col": lambda: core.im2col(X4, 2, stride),
    }[fn]
    with pytest.raises(ValueError, match=r"stride must be positive"):
        call()


@LAYERS
@pytest.mark.parametrize(
    "stride",
    [1.0, 1.5, True, False, np.bool_(True), "2", (1, 1.0), (1, 2, 3), [True, 1]],
)
@pytest.mark.parametrize("fn", ["conv", "maxpool", "avgpool"])
def test_stride_must_be_an_int(layers, fn, stride):
    call = {
        "conv": lambda: layers.conv2d_forward(X4, W4, stride=stride),
        "maxpool": lambda: layers.maxpool2d_forward(XP, 2, stride),
        "avgpool": lambda: layers.avgpool2d_forward(XP, 2, stride),
    }[fn]
    with pytest.raises(TypeError, match=r"stride must be an int"):
        call()


@LAYERS
def test_numpy_integers_are_ints(layers):
    out, _ = layers.maxpool2d_forward(XP, np.int64(2), np.int32(2), np.int8(1))
    assert out.shape == (2, 3, 4, 4)
    out, _ = layers.conv2d_forward(X4, W4, stride=(np.int64(2), 1))
    assert out.shape == (2, 4, 2, 3)


@LAYERS
@pytest.mark.parametrize("kernel_size", [0, -1, (2, 0)])
def test_kernel_size_must_be_positive(layers, kernel_size):
    with pytest.raises(ValueError, match=r"kernel_size must be positive"):
        layers.maxpool2d_forward(XP, kernel_size)
    with pytest.raises(ValueError, match=r"kernel_size must be positive"):
        layers.avgpool2d_forward(XP, kernel_size)


@LAYERS
@pytest.mark.parametrize("kernel_size", [2.0, None, True, (2,), "2"])
def test_kernel_size_must_be_an_int(layers, kernel_size):
    with pytest.raises(TypeError, match=r"kernel_size must be an int"):
        layers.maxpool2d_forward(XP, kernel_size)


@LAYERS
@pytest.mark.parametrize("padding", [-1, (0, -1)])
def test_padding_must_not_be_negative(layers, padding):
    for call in (
        lambda: layers.conv2d_forward(X4, W4, padding=padding),
        lambda: layers.maxpool2d_forward(XP, 3, padding=padding),
        lambda: layers.avgpool2d_forward(XP, 3, padding=padding),
    ):
        with pytest.raises(ValueError, match=r"padding must be >= 0"):
            call()


@LAYERS
@pytest.mark.parametrize(
    "kernel_size,padding", [(2, 2), (3, 2), (1, 1), ((3, 4), (1, 3)), ((4, 2), (3, 1))]
)
def test_pooling_padding_at_most_half_the_kernel(layers, kernel_size, padding):
    for fn in (
        layers.maxpool2d_forward,
        core.maxpool2d_forward_naive,
        layers.avgpool2d_forward,
    ):
        with pytest.raises(
            ValueError, match=r"padding must be at most half the kernel"
        ):
            fn(XP, kernel_size, 1, padding)


@LAYERS
def test_conv_padding_may_exceed_half_the_kernel(layers):
    out, _ = layers.conv2d_forward(X4, W4, padding=3)
    assert out.shape == (2, 4, 9, 9)


@LAYERS
@pytest.mark.parametrize("padding", [0.5, True, None, (1,)])
def test_padding_must_be_an_int(layers, padding):
    with pytest.raises(TypeError, match=r"padding must be an int"):
        layers.maxpool2d_forward(XP, 3, 1, padding)
    with pytest.raises(TypeError, match=r"padding must be an int"):
        layers.conv2d_forward(X4, W4, padding=padding)


# ---------------------------------------------------------------------------
# Shapes that do not fit
# ---------------------------------------------------------------------------


@LAYERS
def test_channel_mismatch(layers):
    for fn in (layers.conv2d_forward, core.conv2d_forward_naive):
        with pytest.raises(ValueError, match=r"channel mismatch.*C=3.*C=2"):
            fn(X4, np.ones((4, 2, 3, 3)))


@LAYERS
@pytest.mark.parametrize(
    "b", [np.ones(3), np.ones(5), np.ones((4, 1)), np.ones((1, 4)), np.float64(1.0)]
)
def test_conv_bias_shape(layers, b):
    for fn in (layers.conv2d_forward, core.conv2d_forward_naive):
        with pytest.raises(ValueError, match=r"b must have shape \(F,\) = \(4,\)"):
            fn(X4, W4, b)


def test_dense_shapes():
    with pytest.raises(ValueError, match=r"disagree on D"):
        core.dense_forward(np.ones((2, 3)), np.ones((4, 5)))
    with pytest.raises(ValueError, match=r"b must have shape \(M,\) = \(5,\)"):
        core.dense_forward(np.ones((2, 3)), np.ones((3, 5)), np.ones(3))
    with pytest.raises(ValueError, match=r"b must have shape"):
        core.dense_forward(np.ones((2, 3)), np.ones((3, 5)), np.ones((1, 5)))


@pytest.mark.parametrize("name", BACKWARDS)
@pytest.mark.parametrize("change", ["bigger", "smaller", "transposed", "extra_axis"])
def test_dout_of_the_wrong_shape(name, change):
    fn, cache, shape = _caches()[name]
    bad = {
        "bigger": tuple(s + 1 for s in shape),
        "smaller": shape[:-1] + (shape[-1] + 1,)
        if shape[-1] == 1
        else shape[:-1] + (shape[-1] - 1,),
        "transposed": shape[::-1] if shape[::-1] != shape else shape + (1,),
        "extra_axis": (1,) + shape,
    }[change]
    with pytest.raises(ValueError, match=r"dout must have .*shape"):
        fn(np.ones(bad), cache)


@pytest.mark.parametrize("name", BACKWARDS)
def test_cache_of_the_wrong_type(name):
    fn, _, shape = _caches()[name]
    other = _caches()[
        "avgpool2d_backward" if "avgpool" not in name else "relu_backward"
    ][1]
    for bad in (other, None, {"x": 1}, (np.ones(shape), 2)):
        with pytest.raises(TypeError, match=r"cache must be the \w+Cache returned by"):
            fn(np.ones(shape), bad)


@LAYERS
def test_maxpool_mask_cache_type(layers):
    _, cache = layers.avgpool2d_forward(XP, 2)
    with pytest.raises(TypeError, match=r"cache must be the MaxPoolCache"):
        core.maxpool2d_mask(cache)


def test_conv_input_grad_rotated_shapes():
    dout = np.ones((2, 4, 3, 3))
    with pytest.raises(ValueError, match=r"dout"):
        core.conv2d_input_grad_rotated(np.ones((2, 4, 2, 3)), W4, X4.shape)
    with pytest.raises(ValueError, match=r"shapes do not fit"):
        core.conv2d_input_grad_rotated(dout, np.ones((4, 2, 3, 3)), X4.shape)
    with pytest.raises(ValueError, match=r"dout must be 4-D"):
        core.conv2d_input_grad_rotated(np.ones((4, 3, 3)), W4, X4.shape)


def test_col2im_shape():
    with pytest.raises(ValueError, match=r"cols must have shape"):
        core.col2im(np.ones((2, 27, 10)), X4.shape, 3)


# ---------------------------------------------------------------------------
# Losses
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "labels", [np.array([0, 1, 4]), np.array([-1, 0, 0]), np.array([0, 0, 99])]
)
def test_labels_out_of_range(labels):
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 4\)"):
        core.softmax_cross_entropy(LOGITS, labels)


@pytest.mark.parametrize(
    "labels",
    [
        np.array([0.0, 1.0, 3.0]),
        np.array([True, False, True]),
        np.array(["a", "b", "c"]),
        [0.5, 1, 2],
    ],
)
def test_labels_must_be_integers(labels):
    with pytest.raises(TypeError, match=r"labels must be integers"):
        core.softmax_cross_entropy(LOGITS, labels)


@pytest.mark.parametrize(
    "labels",
    [np.array([0, 1]), np.array([[0], [1], [3]]), np.array(1), np.eye(3, 4, dtype=int)],
)
def test_labels_wrong_shape(labels):
    with pytest.raises(ValueError, match=r"labels must have shape \(N,\) = \(3,\)"):
        core.softmax_cross_entropy(LOGITS, labels)


def test_labels_as_list_and_uint_are_fine():
    loss1, _ = core.softmax_cross_entropy(LOGITS, [0, 1, 3])
    loss2, _ = core.softmax_cross_entropy(LOGITS, np.array([0, 1, 3], dtype=np.uint8))
    assert loss1 == loss2 == pytest.approx(np.log(4))


@pytest.mark.parametrize(
    "bad,word", [(np.nan, "NaN"), (np.inf, "inf"), (-np.inf, "inf")]
)
def test_non_finite_logits(bad, word):
    z = LOGITS.copy()
    z[1, 2] = bad
    with pytest.raises(ValueError, match=rf"logits contains {word}"):
        core.softmax_cross_entropy(z, LABELS)


def test_l2_loss_errors():
    with pytest.raises(ValueError, match=r"pred \(2, 3\) and target \(3, 2\)"):
        core.l2_loss(np.ones((2, 3)), np.ones((3, 2)))
    with pytest.raises(ValueError, match=r"pred .*target .*same shape"):
        core.l2_loss(np.ones((2, 3)), np.ones(3))  # no broadcasting
    with pytest.raises(ValueError, match=r"pred contains NaN"):
        core.l2_loss(np.array([np.nan]), np.array([1.0]))
    with pytest.raises(ValueError, match=r"target contains inf"):
        core.l2_loss(np.array([1.0]), np.array([np.inf]))


# ---------------------------------------------------------------------------
# Other arguments
# ---------------------------------------------------------------------------


@LAYERS
@pytest.mark.parametrize("ties", ["First", "max", "", None, "avg", 0])
def test_unknown_ties(layers, ties):
    for fn in (layers.maxpool2d_forward, core.maxpool2d_forward_naive):
        with pytest.raises(
            ValueError, match=r"ties must be one of \('first', 'all', 'split'\)"
        ):
            fn(XP, 2, ties=ties)
    with pytest.raises(ValueError, match=r"ties must be one of"):
        train.MaxPool2D(2, ties=ties).forward(XP)


@LAYERS
@pytest.mark.parametrize(
    "x",
    [
        np.array([["a", "b"], ["c", "d"]]),
        np.ones((2, 2), dtype=complex),
        np.array([[None, 1], [2, 3]], dtype=object),
    ],
)
def test_non_real_input(layers, x):
    with pytest.raises(TypeError, match=r"x must hold real numbers"):
        layers.maxpool2d_forward(x, 2)
    with pytest.raises(TypeError, match=r"x must hold real numbers"):
        layers.relu_forward(x)


@LAYERS
def test_non_real_weights(layers):
    with pytest.raises(TypeError, match=r"w must hold real numbers"):
        layers.conv2d_forward(X4, W4.astype(complex))


@pytest.mark.parametrize("eps", [0, -1e-6, float("nan"), "1e-6", None])
def test_numerical_gradient_eps(eps):
    with pytest.raises(ValueError, match=r"eps must be a positive number"):
        core.numerical_gradient(lambda v: float(v.sum()), np.ones(3), eps=eps)


def test_train_classifier_length_mismatch():
    model = train.Sequential(train.Flatten(), train.Dense(4, 2, rng=0))
    with pytest.raises(ValueError, match=r"x_train has 5 samples but y_train has 4"):
        train.train_classifier(
            model, np.ones((5, 1, 2, 2)), np.zeros(4, dtype=int), epochs=1
        )


# ---------------------------------------------------------------------------
# Inputs are never modified; outputs never alias inputs
# ---------------------------------------------------------------------------

_FROZEN = [True]


def _frozen(a):
    """A private copy, read-only by default: any attempt by the core to write into it
    raises."""
    a = np.array(a, copy=True)
    a.flags.writeable = not _FROZEN[0]
    return a


def _all_ops(rng, dtype=np.float64):
    """(name, thunk) for every forward and backward, each built from read-only arrays
    that are compared against their snapshot after the call."""
    x = _frozen(
        make_array(rng, (2, 3, 6, 7), "halves", dtype)
    )  # ties and zeros on purpose
    w = _frozen(make_array(rng, (4, 3, 3, 2), "float", dtype))
    b = _frozen(make_array(rng, (4,), "float", dtype))
    ops = []

    def conv(fwd, bwd, **kw):
        out, cache = fwd(x, w, b, **kw)
        dout = _frozen(np.ones_like(out))
        return [out, *bwd(dout, cache)], [x, w, b, dout]

    for tag, m in (("", core), ("fast_", fast)):
        ops.append(
            (
                f"{tag}conv2d",
                lambda m=m: conv(
                    m.conv2d_forward, m.conv2d_backward, stride=(2, 1), padding=1
                ),
            )
        )
        ops.append(
            (f"{tag}conv2d_1x1", lambda m=m: conv(m.conv2d_forward, m.conv2d_backward))
        )
    ops.append(
        (
            "conv2d_naive",
            lambda: conv(
                core.conv2d_forward_naive, core.conv2d_backward_naive, padding=1
            ),
        )
    )

    def pool(fwd, bwd, *args, **kw):
        out, cache = fwd(x, *args, **kw)
        dout = _frozen(np.ones_like(out))
        outs = [out, bwd(dout, cache)]
        if fwd in (
            core.maxpool2d_forward,
            core.maxpool2d_forward_naive,
            fast.maxpool2d_forward,
        ):
            outs.append(core.maxpool2d_mask(cache))
        return outs, [x, dout]

    for ties, (tag, m) in itertools.product(
        core.TIES_POLICIES, (("", core), ("fast_", fast))
    ):
        ops.append(
            (
                f"{tag}maxpool_{ties}",
                lambda t=ties, m=m: pool(
                    m.maxpool2d_forward, m.maxpool2d_backward, 3, 2, 1, ties=t
                ),
            )
        )
        ops.append(
            (
                f"{tag}maxpool_k1_{ties}",
                lambda t=ties, m=m: pool(
                    m.maxpool2d_forward, m.maxpool2d_backward, 1, ties=t
                ),
            )
        )
        ops.append(
            (
                f"{tag}maxpool_tiles_{ties}",
                lambda t=ties, m=m: pool(
                    m.maxpool2d_forward, m.maxpool2d_backward, 2, ties=t
                ),
            )
        )
    for ties in core.TIES_POLICIES:
        ops.append(
            (
                f"maxpool_naive_{ties}",
                lambda t=ties: pool(
                    core.maxpool2d_forward_naive,
                    core.maxpool2d_backward_naive,
                    2,
                    1,
                    1,
                    ties=t,
                ),
            )
        )
    for tag, m in (("", core), ("fast_", fast)):
        ops.append(
            (
                f"{tag}avgpool",
                lambda m=m: pool(m.avgpool2d_forward, m.avgpool2d_backward, 3, 2, 1),
            )
        )
        ops.append(
            (
                f"{tag}avgpool_k1",
                lambda m=m: pool(m.avgpool2d_forward, m.avgpool2d_backward, 1),
            )
        )
        ops.append(
            (
                f"{tag}avgpool_tiles",
                lambda m=m: pool(m.avgpool2d_forward, m.avgpool2d_backward, 2),
            )
        )

    def simple(fwd, bwd):
        out, cache = fwd(x)
        dout = _frozen(np.ones_like(out))
        return [out, bwd(dout, cache)], [x, dout]

    ops.append(("relu", lambda: simple(core.relu_forward, core.relu_backward)))
    ops.append(("fast_relu", lambda: simple(fast.relu_forward, fast.relu_backward)))
    ops.append(("flatten", lambda: simple(core.flatten_forward, core.flatten_backward)))

    def dense(with_bias):
        xd = _frozen(x.reshape(2, -1))
        wd = _frozen(make_array(rng, (xd.shape[1], 5), "float", dtype))
        bd = _frozen(np.zeros(5, dtype=dtype)) if with_bias else None
        out, cache = core.dense_forward(xd, wd, bd)
        dout = _frozen(np.ones_like(out))
        return [out, *core.dense_backward(dout, cache)], [
            a for a in (xd, wd, bd, dout) if a is not None
        ]

    ops.append(("dense", lambda: dense(True)))
    ops.append(("dense_nobias", lambda: dense(False)))

    def losses():
        z = _frozen(make_array(rng, (3, 4), "float", dtype))
        y = _frozen(np.array([0, 3, 1]))
        t = _frozen(make_array(rng, (3, 4), "float", dtype))
        loss, dz = core.softmax_cross_entropy(z, y)
        l2, dp = core.l2_loss(z, t)
        return [dz, dp, core.softmax(z)], [z, y, t]

    ops.append(("losses", losses))

    def geometry():
        cols = core.im2col(x, 2, 1, 0)
        c = _frozen(np.ones_like(cols))
        back = core.col2im(c, x.shape, 2, 1, 0)
        rot = core.conv2d_input_grad_rotated(_frozen(np.ones((2, 4, 4, 6))), w, x.shape)
        return [
            back,
            rot,
            core.rot180(w),
            core.dilate(w, 2),
            core.expand_gradient(w, 2),
        ], [x, w, c]

    ops.append(("geometry", geometry))

    def numgrad():
        g = core.numerical_gradient(lambda v: float(np.sum(v**2)), w)
        return [g], [w]

    ops.append(("numerical_gradient", numgrad))
    return ops


_OP_NAMES = [name for name, _ in _all_ops(np.random.default_rng(0))]


def _run(name, dtype, frozen):
    _FROZEN[0] = frozen
    try:
        return dict(_all_ops(np.random.default_rng(11), dtype))[name]()
    finally:
        _FROZEN[0] = True


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name", _OP_NAMES)
def test_inputs_never_modified_and_outputs_never_alias_inputs(name, dtype):
    # 1. read-only inputs: a write into one of them would raise inside the call
    _, snapshots = _run(name, dtype, frozen=True)
    # 2. ordinary writable inputs (same values): equal to the snapshot after the calls
    outs, inputs = _run(name, dtype, frozen=False)
    assert all(a.flags.writeable for a in inputs)
    for a, s in zip(inputs, snapshots):
        np.testing.assert_array_equal(a, s, err_msg=f"{name}: an input was modified")
    # 3. no output shares memory with an input
    for o in outs:
        o = np.asarray(o)
        for a in inputs:
            assert not np.shares_memory(o, a), f"{name}: an output aliases an input"


def test_flatten_output_is_a_copy():
    x = np.arange(12.0).reshape(2, 2, 3)
    out, cache = core.flatten_forward(x)
    out[0, 0] = 99.0
    assert x[0, 0, 0] == 0.0
    d = np.ones((2, 6))
    dx = core.flatten_backward(d, cache)
    dx[0, 0, 0] = 5.0
    assert d[0, 0] == 1.0


@LAYERS
def test_caller_writes_to_relu_output_do_not_change_its_backward(layers):
    x = np.array([-1.0, 2.0])
    out, cache = layers.relu_forward(x)
    out[:] = [5.0, -5.0]
    assert layers.relu_backward(np.ones(2), cache).tolist() == [0.0, 1.0]


@pytest.mark.parametrize(
    "forward",
    [core.maxpool2d_forward, core.maxpool2d_forward_naive, fast.maxpool2d_forward],
    ids=["core", "naive", "fast"],
)
@pytest.mark.parametrize("ties", ["first", "all", "split"])
def test_caller_writes_to_maxpool_output_do_not_change_its_backward(ties, forward):
    """A learner who edits the pooled output in place (``out -= out.mean()``) must not
    change the gradient computed from the cache (PyTorch would refuse such an in-place
    edit).
    """
    x = np.array([[1.0, 1.0, 0.0, 2.0]])
    out, cache = forward(x, (1, 2), ties=ties)
    backward = (
        fast.maxpool2d_backward
        if forward is fast.maxpool2d_forward
        else core.maxpool2d_backward
    )
    expected = backward(np.ones((1, 2)), cache)
    out -= 10.0
    np.testing.assert_array_equal(backward(np.ones((1, 2)), cache), expected)


@LAYERS
def test_messages_name_the_shapes(layers):
    with pytest.raises(ValueError) as info:
        layers.conv2d_forward(np.ones((2, 3, 5, 5)), np.ones((4, 2, 3, 3)))
    msg = str(info.value)
    assert "(2, 3, 5, 5)" in msg and "(4, 2, 3, 3)" in msg
    _, cache = layers.maxpool2d_forward(XP, 2)
    with pytest.raises(ValueError) as info:
        layers.maxpool2d_backward(np.ones((2, 3, 3, 4)), cache)
    assert re.search(r"\(2, 3, 3, 3\).*\(2, 3, 3, 4\)", str(info.value))
