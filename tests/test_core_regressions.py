"""Regressions found while writing the book."""
import numpy as np
import pytest

import mlp_cnn_core as core


@pytest.mark.parametrize("kernel,stride", [(2, 2), (1, 2), (2, 1), (3, 2)])
def test_routed_gradients_have_no_negative_zeros(kernel, stride):
    # dout * False used to give -0.0, printed as "-0." in the chapters (PyTorch gives +0.0)
    x = np.arange(36.0).reshape(6, 6)
    out, cache = core.maxpool2d_forward(x, kernel, stride)
    dx = core.maxpool2d_backward(-np.ones_like(out), cache)
    zeros = dx == 0
    assert zeros.any()
    assert not np.signbit(dx[zeros]).any()


def test_relu_gradient_has_no_negative_zeros():
    _, cache = core.relu_forward(np.array([-1.0, 0.0, 2.0]))
    dx = core.relu_backward(np.array([-3.0, -3.0, -3.0]), cache)
    np.testing.assert_array_equal(dx, [0.0, 0.0, -3.0])
    assert not np.signbit(dx[:2]).any()
