"""``maxpool2d_winners`` and ``WindowGeometry``: each window's gradient shares.

* against an independent loop reference written here (no call into the core);
* against ``maxpool2d_backward``: scattering ``winners * dout`` onto the input cells
  gives ``dx``;
* against PyTorch's ``return_indices`` for ``ties="first"`` (NaN included: the last NaN
  wins), and so is the ``argmax`` of the core's and the fast module's caches (that test
  needs torch).
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import mlp_cnn_core as core
from conftest import LAYERS, as_pair, assert_close, out_size, pool_cases

POLICIES = ("first", "all", "split")


def ref_winners(x, kernel_size, stride, padding, ties):
    """Shares by the book, one window at a time (NaN: a NaN is the maximum; "first"
    takes the last NaN, as PyTorch does; "all" and "split" take every NaN).
    """
    kh, kw = as_pair(kernel_size)
    sh, sw = (kh, kw) if stride is None else as_pair(stride)
    ph, pw = as_pair(padding)
    H, W = x.shape[-2:]
    Ho, Wo = out_size(H, kh, sh, ph), out_size(W, kw, sw, pw)
    win = np.zeros(x.shape[:-2] + (Ho, Wo, kh, kw))
    for idx in np.ndindex(*x.shape[:-2]):
        for i in range(Ho):
            for j in range(Wo):
                cells = [
                    (a, b)
                    for a in range(kh)
                    for b in range(kw)
                    if 0 <= i * sh - ph + a < H and 0 <= j * sw - pw + b < W
                ]
                val = {
                    ab: float(x[idx + (i * sh - ph + ab[0], j * sw - pw + ab[1])])
                    for ab in cells
                }
                nans = [ab for ab in cells if np.isnan(val[ab])]
                if nans:
                    tied = nans
                else:
                    top = max(val.values())
                    tied = [ab for ab in cells if val[ab] == top]
                if ties == "first":
                    chosen, share = ([nans[-1]] if nans else tied[:1]), 1.0
                else:
                    chosen, share = tied, (1.0 if ties == "all" else 1.0 / len(tied))
                for a, b in chosen:
                    win[idx + (i, j, a, b)] = share
    return win


def scatter(win, dout, geometry, x_shape):
    """Add ``win * dout`` of every window onto the input cell it names (padding
    dropped)."""
    kh, kw = geometry.kernel_size
    Ho, Wo = geometry.out_size
    H, W = geometry.in_size
    dx = np.zeros(x_shape)
    for i in range(Ho):
        for j in range(Wo):
            for a in range(kh):
                for b in range(kw):
                    r, c = geometry.input_cell(i, j, a, b)
                    if 0 <= r < H and 0 <= c < W:
                        dx[..., r, c] += win[..., i, j, a, b] * dout[..., i, j]
                    else:
                        assert np.all(win[..., i, j, a, b] == 0), (
                            "a padded cell has a share"
                        )
    return dx


def test_reference_itself_on_a_hand_example():
    x = np.array([[1.0, 3.0], [3.0, 0.0]])
    assert ref_winners(x, 2, None, 0, "first")[0, 0].tolist() == [[0, 1], [0, 0]]
    assert ref_winners(x, 2, None, 0, "all")[0, 0].tolist() == [[0, 1], [1, 0]]
    assert ref_winners(x, 2, None, 0, "split")[0, 0].tolist() == [[0, 0.5], [0.5, 0]]


def test_winners_on_a_hand_example():
    x = np.array(
        [
            [1.0, 3.0, 0.0, 0.0],
            [3.0, 0.0, 0.0, 0.0],
            [0.0, 0.0, 7.0, 7.0],
            [0.0, 0.0, 7.0, 7.0],
        ]
    )
    first = core.maxpool2d_winners(x, 2)
    assert first.shape == (2, 2, 2, 2)
    assert first[0, 0].tolist() == [[0, 1], [0, 0]]
    assert first[1, 1].tolist() == [[1, 0], [0, 0]]
    assert first[0, 1].tolist() == [
        [1, 0],
        [0, 0],
    ]  # an all-zero window: its first cell
    assert core.maxpool2d_winners(x, 2, ties="all")[1, 1].tolist() == [[1, 1], [1, 1]]
    assert core.maxpool2d_winners(x, 2, ties="split")[1, 1].tolist() == [
        [0.25, 0.25],
        [0.25, 0.25],
    ]


@LAYERS
@settings(max_examples=150)
@given(case=pool_cases(max_lead=2, max_size=8), ties=st.sampled_from(POLICIES))
def test_winners_match_reference_and_backward(layers, case, ties):
    x, dout = case.x(), case.dout()
    win = core.maxpool2d_winners(
        x, case.kernel_size, case.stride, case.padding, ties=ties
    )
    out, cache = layers.maxpool2d_forward(
        x, case.kernel_size, case.stride, case.padding, ties=ties
    )
    assert win.shape == out.shape + case.k
    assert_close(
        win, ref_winners(x, case.kernel_size, case.stride, case.padding, ties), 1e-15
    )
    dx = layers.maxpool2d_backward(dout, cache)
    assert_close(scatter(win, dout, cache.geometry, x.shape), dx, 1e-12)


@LAYERS
@pytest.mark.parametrize("ties", POLICIES)
def test_winners_with_nans(layers, ties):
    rng = np.random.default_rng(3)
    x = rng.integers(-2, 3, size=(2, 7, 7)).astype(float)
    x[rng.random(x.shape) < 0.2] = np.nan
    win = core.maxpool2d_winners(x, 3, 2, 1, ties=ties)
    assert_close(win, ref_winners(x, 3, 2, 1, ties), 1e-15)
    _, cache = layers.maxpool2d_forward(x, 3, 2, 1, ties=ties)
    dout = rng.integers(1, 4, size=cache.out.shape).astype(float)
    assert_close(
        scatter(win, dout, cache.geometry, x.shape),
        layers.maxpool2d_backward(dout, cache),
        1e-12,
    )


@pytest.mark.torch
@LAYERS
@pytest.mark.parametrize(
    "kernel, stride, padding",
    [(2, 2, 0), (3, 2, 1), (3, 1, 1), ((2, 3), (1, 2), (1, 1))],
)
def test_first_winner_is_pytorchs_index(layers, kernel, stride, padding):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    x = rng.integers(-1, 2, size=(2, 3, 7, 8)).astype(float)
    x[0, 0, 2, 2:5] = np.nan
    win = core.maxpool2d_winners(x, kernel, stride, padding)
    _, idx = torch.nn.functional.max_pool2d(
        torch.from_numpy(x), kernel, stride, padding, return_indices=True
    )
    cache = layers.maxpool2d_forward(x, kernel, stride, padding)[1]
    np.testing.assert_array_equal(cache.argmax, idx.numpy())
    geo = cache.geometry
    kh, kw = geo.kernel_size
    flat = win.reshape(win.shape[:-2] + (kh * kw,))
    assert np.all(flat.sum(axis=-1) == 1)
    a, b = np.divmod(flat.argmax(axis=-1), kw)
    Ho, Wo = geo.out_size
    i, j = np.meshgrid(np.arange(Ho), np.arange(Wo), indexing="ij")
    rows, cols = geo.input_cell(i, j, a, b)
    np.testing.assert_array_equal(rows * x.shape[-1] + cols, idx.numpy())


def test_padded_cells_get_no_share_even_when_real_cells_are_minus_inf():
    x = np.full((3, 3), -np.inf)
    for ties in POLICIES:
        win = core.maxpool2d_winners(x, 3, 2, 1, ties=ties)
        geo = core.maxpool2d_forward(x, 3, 2, 1)[1].geometry
        for i, j, a, b in np.ndindex(win.shape):
            if not geo.is_real(i, j, a, b):
                assert win[i, j, a, b] == 0
        assert np.all(
            win.sum(axis=(-2, -1)) == (4 if ties == "all" else 1)
        )  # 4 real cells a window


def test_winners_dtype_and_no_mutation():
    x = np.arange(16, dtype=np.float32).reshape(4, 4)
    x.flags.writeable = False
    assert core.maxpool2d_winners(x, 2, ties="split").dtype == np.float32
    assert core.maxpool2d_winners(np.arange(16).reshape(4, 4), 2).dtype == np.float64
    with pytest.raises(ValueError, match="ties"):
        core.maxpool2d_winners(x, 2, ties="last")


def test_window_geometry_is_a_frozen_named_record():
    _, cache = core.maxpool2d_forward(np.zeros((2, 5, 7)), 3, (2, 1), 1)
    geo = cache.geometry
    assert isinstance(geo, core.WindowGeometry)
    assert (geo.kernel_size, geo.stride, geo.padding, geo.in_size, geo.out_size) == (
        (3, 3),
        (2, 1),
        (1, 1),
        (5, 7),
        (3, 7),
    )
    assert geo.input_cell(0, 0, 0, 0) == (-1, -1)
    assert geo.input_cell(2, 6, 2, 2) == (5, 7)
    assert not geo.is_real(2, 6, 2, 2) and geo.is_real(2, 5, 1, 2)
    with pytest.raises(Exception):
        geo.stride = (1, 1)


@pytest.mark.parametrize(
    "H, W, k, s, p",
    [(5, 5, 3, 2, 1), (6, 4, 2, 1, 0), (7, 7, 3, 3, 1), (4, 6, (2, 3), (1, 2), (1, 1))],
)
def test_geometry_cells_and_windows_of_against_a_loop(H, W, k, s, p):
    _, cache = core.maxpool2d_forward(np.zeros((H, W)), k, s, p)
    geo = cache.geometry
    (kh, kw), (sh, sw), (ph, pw), (Ho, Wo) = (
        geo.kernel_size,
        geo.stride,
        geo.padding,
        geo.out_size,
    )
    for i in range(Ho):
        for j in range(Wo):
            want = [
                (r, c)
                for r in range(i * sh - ph, i * sh - ph + kh)
                for c in range(j * sw - pw, j * sw - pw + kw)
                if 0 <= r < H and 0 <= c < W
            ]
            assert geo.cells(i, j) == want
    for r in range(H):
        for c in range(W):
            assert geo.windows_of(r, c) == [
                (i, j)
                for i in range(Ho)
                for j in range(Wo)
                if (r, c) in geo.cells(i, j)
            ]
