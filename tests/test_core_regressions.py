"""Regressions found while writing the book."""

import numpy as np
import pytest

import mlp_cnn_core as core
from conftest import LAYERS


@LAYERS
@pytest.mark.parametrize("kernel,stride", [(2, 2), (1, 2), (2, 1), (3, 2)])
def test_routed_gradients_have_no_negative_zeros(layers, kernel, stride):
    # dout * False used to give -0.0, printed as "-0." in the chapters (PyTorch gives
    # +0.0)
    x = np.arange(36.0).reshape(6, 6)
    out, cache = layers.maxpool2d_forward(x, kernel, stride)
    dx = layers.maxpool2d_backward(-np.ones_like(out), cache)
    zeros = dx == 0
    assert zeros.any()
    assert not np.signbit(dx[zeros]).any()


@LAYERS
def test_relu_gradient_has_no_negative_zeros(layers):
    _, cache = layers.relu_forward(np.array([-1.0, 0.0, 2.0]))
    dx = layers.relu_backward(np.array([-3.0, -3.0, -3.0]), cache)
    np.testing.assert_array_equal(dx, [0.0, 0.0, -3.0])
    assert not np.signbit(dx[:2]).any()


@LAYERS
def test_dense_and_conv_promote_a_float64_bias_alike(layers):
    x32, b64 = np.ones((2, 3), np.float32), np.ones(4)
    dense_out, _ = core.dense_forward(x32, np.ones((3, 4), np.float32), b64)
    conv_out, _ = layers.conv2d_forward(
        np.ones((1, 1, 3, 3), np.float32), np.ones((4, 1, 2, 2), np.float32), b64
    )
    assert dense_out.dtype == conv_out.dtype == np.float64
    assert core.dense_forward(x32, np.ones((3, 4), np.float32))[0].dtype == np.float32


def test_numerical_gradient_of_a_transposed_array():
    # a non-contiguous x used to give zeros: the moves went into a reshaped copy, never into f
    x = np.arange(6.0).reshape(2, 3).T
    np.testing.assert_allclose(core.numerical_gradient(lambda v: (v**2).sum(), x), 2 * x, atol=1e-6)
