"""Tie policies, naive-vs-fast cross-checks and the three ways to compute conv's dX.

* ``ties="first" | "all" | "split"`` against an independent loop reference written here
  (it does not call the core), plus the gradient-mass properties of each policy.
* ``maxpool2d_mask`` counts the windows each cell won (> 1 with overlapping windows).
* The ``*_naive`` loop versions equal the vectorised ones, the core's and the fast
  module's (all three policies, random and tied inputs).
* ``conv2d_input_grad_rotated`` equals ``conv2d_backward``'s dx; ``im2col`` and
  ``col2im`` are adjoint.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import mlp_cnn_core as core
from conftest import (
    LAYERS,
    SEEDS,
    as_pair,
    assert_close,
    conv_cases,
    make_array,
    out_size,
    pool_cases,
)

POLICIES = ("first", "all", "split")


# ---------------------------------------------------------------------------
# Independent reference (plain loops, no call into the core)
# ---------------------------------------------------------------------------


def ref_maxpool(x, kernel_size, stride, padding, dout, ties):
    """Max pooling by the book: visit each window, list its real (unpadded) cells, find
    the maximum, and route the window's gradient by the tie policy.  NaN-free inputs
    only.

    Returns ``(out, dx, wins)``; ``wins`` counts, per input cell, the windows that sent
    it a gradient (for "split" every tied maximum counts, like "all").
    """
    x = np.asarray(x, dtype=np.float64)
    kh, kw = as_pair(kernel_size)
    sh, sw = (kh, kw) if stride is None else as_pair(stride)
    ph, pw = as_pair(padding)
    H, W = x.shape[-2:]
    lead = x.shape[:-2]
    Ho, Wo = out_size(H, kh, sh, ph), out_size(W, kw, sw, pw)
    out = np.empty(lead + (Ho, Wo))
    dx = np.zeros(x.shape)
    wins = np.zeros(x.shape, dtype=np.int64)
    for idx in np.ndindex(*lead):
        for i in range(Ho):
            for j in range(Wo):
                cells = []
                for r in range(i * sh - ph, i * sh - ph + kh):
                    for c in range(j * sw - pw, j * sw - pw + kw):
                        if 0 <= r < H and 0 <= c < W:
                            cells.append((r, c))
                values = [float(x[idx + rc]) for rc in cells]
                top = max(values)
                tied = [rc for rc, v in zip(cells, values) if v == top]
                out[idx + (i, j)] = top
                g = float(dout[idx + (i, j)])
                if ties == "first":
                    targets, share = tied[:1], g
                elif ties == "all":
                    targets, share = tied, g
                elif ties == "split":
                    targets, share = tied, g / len(tied)
                else:  # pragma: no cover
                    raise ValueError(ties)
                for rc in targets:
                    dx[idx + rc] += share
                    wins[idx + rc] += 1
    return out, dx, wins


def test_reference_itself_on_a_hand_example():
    """The reference is checked by hand before it checks the core."""
    x = np.array([[1.0, 1.0], [0.0, 1.0]])
    out, dx_first, _ = ref_maxpool(x, 2, None, 0, np.array([[6.0]]), "first")
    _, dx_all, _ = ref_maxpool(x, 2, None, 0, np.array([[6.0]]), "all")
    _, dx_split, _ = ref_maxpool(x, 2, None, 0, np.array([[6.0]]), "split")
    assert out.tolist() == [[1.0]]
    assert dx_first.tolist() == [[6, 0], [0, 0]]
    assert dx_all.tolist() == [[6, 6], [0, 6]]
    assert dx_split.tolist() == [[2, 2], [0, 2]]


# ---------------------------------------------------------------------------
# The core against the reference
# ---------------------------------------------------------------------------


@LAYERS
@settings(max_examples=200)
@given(case=pool_cases(max_lead=2, max_size=9), ties=st.sampled_from(POLICIES))
def test_maxpool_policies_match_independent_reference(layers, case, ties):
    x, dout = case.x(), case.dout()
    out, cache = layers.maxpool2d_forward(
        x, case.kernel_size, case.stride, case.padding, ties=ties
    )
    dx = layers.maxpool2d_backward(dout, cache)
    r_out, r_dx, r_wins = ref_maxpool(
        x, case.kernel_size, case.stride, case.padding, dout, ties
    )
    assert cache.ties == ties
    assert_close(out, r_out, 0)
    # integer dout: routing is exact; float dout: overlapping windows may add in another
    # order
    assert_close(dx, r_dx, 0 if (ties != "split" and case.kind != "float") else 1e-12)
    np.testing.assert_array_equal(core.maxpool2d_mask(cache), r_wins)


@LAYERS
@pytest.mark.parametrize("ties", POLICIES)
def test_padded_cells_never_win_any_policy(layers, ties):
    """An all-negative input: padded cells (value -inf for max pooling) never receive
    gradient, whatever the policy; with every real cell tied at -1, "all" gives each
    window's full gradient to every real cell of the window.
    """
    x = -np.ones((3, 3))
    out, cache = layers.maxpool2d_forward(x, 3, 2, 1, ties=ties)
    dout = np.ones(out.shape)
    dx = layers.maxpool2d_backward(dout, cache)
    _, r_dx, _ = ref_maxpool(x, 3, 2, 1, dout, ties)
    assert np.all(out == -1.0)
    assert_close(dx, r_dx, 1e-12)
    assert dx.shape == x.shape
    if ties == "first":
        assert dx.tolist() == [[1, 1, 0], [1, 1, 0], [0, 0, 0]]
    if ties == "all":
        # cell (1, 1) lies in all four windows; corners in one; edges in two
        assert dx.tolist() == [[1, 2, 1], [2, 4, 2], [1, 2, 1]]
    if ties == "split":
        assert_close(dx.sum(), dout.sum(), 1e-12)


@LAYERS
def test_default_policy_is_first(layers):
    assert core.TIES_POLICIES == ("first", "all", "split")
    _, cache = layers.maxpool2d_forward(np.ones((2, 2)), 2)
    assert cache.ties == "first"
    assert layers.maxpool2d_backward(np.ones((1, 1)), cache).tolist() == [
        [1, 0],
        [0, 0],
    ]


# ---------------------------------------------------------------------------
# Gradient mass
# ---------------------------------------------------------------------------


@LAYERS
@settings(max_examples=200)
@given(case=pool_cases(kinds=("ints", "halves")))
def test_first_and_split_conserve_gradient_mass(layers, case):
    x, dout = case.x(), case.dout(kind="ints")
    _, c_first = layers.maxpool2d_forward(
        x, case.kernel_size, case.stride, case.padding, ties="first"
    )
    _, c_split = layers.maxpool2d_forward(
        x, case.kernel_size, case.stride, case.padding, ties="split"
    )
    dx_first = layers.maxpool2d_backward(dout, c_first)
    dx_split = layers.maxpool2d_backward(dout, c_split)
    # small-integer dout: "first" only moves integers around, the sums are exactly equal
    assert dx_first.sum() == dout.sum()
    assert dx_first.sum(axis=(-2, -1)).tolist() == dout.sum(axis=(-2, -1)).tolist()
    assert_close(dx_split.sum(axis=(-2, -1)), dout.sum(axis=(-2, -1)), 1e-10)


@LAYERS
@settings(max_examples=200)
@given(case=pool_cases(kinds=("ints", "halves")))
def test_all_never_loses_mass_and_gains_exactly_the_extra_winners(layers, case):
    x = case.x()
    dout = np.abs(case.dout(kind="ints")) + 1.0  # strictly positive
    out, c_all = layers.maxpool2d_forward(
        x, case.kernel_size, case.stride, case.padding, ties="all"
    )
    dx_all = layers.maxpool2d_backward(dout, c_all)
    _, _, wins_all = ref_maxpool(
        x, case.kernel_size, case.stride, case.padding, dout, "all"
    )
    _, _, wins_first = ref_maxpool(
        x, case.kernel_size, case.stride, case.padding, dout, "first"
    )
    assert dx_all.sum() >= dout.sum()
    if wins_all.sum() > wins_first.sum():  # some window has a tie
        assert dx_all.sum() > dout.sum()
    else:
        assert dx_all.sum() == dout.sum()


@LAYERS
def test_all_exceeds_mass_on_a_tie_while_first_and_split_conserve(layers):
    x = np.array([[3.0, 3.0, 1.0, 2.0], [0.0, 3.0, 2.0, 2.0]])
    dout = np.array([[1.0, 1.0]])
    sums = {}
    for ties in POLICIES:
        _, cache = layers.maxpool2d_forward(x, 2, ties=ties)
        sums[ties] = layers.maxpool2d_backward(dout, cache).sum()
    assert sums["first"] == 2.0
    assert sums["split"] == pytest.approx(2.0, abs=1e-12)
    assert (
        sums["all"] > 2.0 and sums["all"] == 6.0
    )  # 3 tied in window 0, 3 tied in window 1


@LAYERS
def test_overlapping_windows_add_gradients(layers):
    """The `=` vs `+=` bug: with stride < kernel one cell wins several windows and must
    receive the *sum* of their gradients (a 2x2/stride-2 test can never catch this).
    """
    x = np.array([[0.0, 1.0, 0.0], [1.0, 9.0, 1.0], [0.0, 1.0, 0.0]])
    dout = np.array([[1.0, 2.0], [3.0, 4.0]])
    for ties in POLICIES:
        out, cache = layers.maxpool2d_forward(x, 2, 1, ties=ties)
        assert out.tolist() == [[9, 9], [9, 9]]
        dx = layers.maxpool2d_backward(dout, cache)
        assert dx[1, 1] == 10.0 and dx.sum() == 10.0
        mask = core.maxpool2d_mask(cache)
        assert mask[1, 1] == 4 and mask.sum() == 4
        assert mask.dtype.kind == "i"


@LAYERS
def test_mask_counts_windows_won(layers):
    x = np.array([[5.0, 1.0, 2.0, 0.0], [1.0, 1.0, 7.0, 1.0], [0.0, 3.0, 1.0, 1.0]])
    _, cache = layers.maxpool2d_forward(
        x, (2, 3), 1
    )  # windows of 2x3 sliding by 1: 2x2 windows
    mask = core.maxpool2d_mask(cache)
    assert mask.shape == x.shape
    assert mask[1, 2] == 4  # 7 is the max of every window
    assert mask.sum() == 4
    # non-overlapping, no ties: the 0/1 mask of the source articles
    x2 = np.arange(16.0)[::-1].reshape(
        4, 4
    )  # decreasing: each window's max is its top-left
    _, c2 = layers.maxpool2d_forward(x2, 2)
    m2 = core.maxpool2d_mask(c2)
    assert set(np.unique(m2)) == {0, 1} and m2.sum() == 4
    assert m2.tolist() == [[1, 0, 1, 0], [0, 0, 0, 0], [1, 0, 1, 0], [0, 0, 0, 0]]


@LAYERS
def test_mask_for_all_and_split_counts_every_tied_max(layers):
    x = np.array([[2.0, 2.0], [2.0, 1.0]])
    for ties, expected in (
        ("first", [[1, 0], [0, 0]]),
        ("all", [[1, 1], [1, 0]]),
        ("split", [[1, 1], [1, 0]]),
    ):
        _, cache = layers.maxpool2d_forward(x, 2, ties=ties)
        assert core.maxpool2d_mask(cache).tolist() == expected


@LAYERS
@settings(max_examples=100)
@given(
    seed=SEEDS,
    k=st.integers(1, 4),
    lead=st.lists(st.integers(1, 3), max_size=2),
    hb=st.integers(1, 3),
    wb=st.integers(1, 3),
)
def test_expand_gradient_times_mask_is_the_gradient_without_overlap(
    layers, seed, k, lead, hb, wb
):
    """The source article's recipe (expand dout over each window, multiply by the 0/1
    mask) is the max-pool gradient when windows do not overlap and the input has no
    ties.
    """
    rng = np.random.default_rng(seed)
    shape = tuple(lead) + (hb * k, wb * k)
    x = (
        rng.permutation(int(np.prod(shape))).reshape(shape).astype(np.float64)
    )  # distinct values
    out, cache = layers.maxpool2d_forward(x, k)
    dout = rng.standard_normal(out.shape)
    expanded = core.expand_gradient(dout, k)
    assert expanded.shape == x.shape
    assert_close(
        expanded * core.maxpool2d_mask(cache), layers.maxpool2d_backward(dout, cache), 0
    )


# ---------------------------------------------------------------------------
# Naive loops == fast versions
# ---------------------------------------------------------------------------


@LAYERS
@settings(max_examples=120)
@given(case=pool_cases(max_lead=1, max_size=8), ties=st.sampled_from(POLICIES))
def test_maxpool_naive_equals_vectorised(layers, case, ties):
    x, dout = case.x(), case.dout()
    args = (case.kernel_size, case.stride, case.padding)
    out_f, c_f = layers.maxpool2d_forward(x, *args, ties=ties)
    out_n, c_n = core.maxpool2d_forward_naive(x, *args, ties=ties)
    assert_close(out_n, out_f, 0)
    np.testing.assert_array_equal(c_n.argmax, c_f.argmax)
    # the core adds each cell's windows in the loops' order: the same sums, bit for bit
    exact = ties != "split" and (case.kind != "float" or layers is core)
    tol = 0 if exact else 1e-12
    dx_f = layers.maxpool2d_backward(dout, c_f)
    assert_close(core.maxpool2d_backward_naive(dout, c_f), dx_f, tol)
    assert_close(core.maxpool2d_backward_naive(dout, c_n), dx_f, tol)
    assert_close(layers.maxpool2d_backward(dout, c_n), dx_f, tol)


@LAYERS
@pytest.mark.parametrize("ties", POLICIES)
def test_maxpool_naive_equals_vectorised_with_nans(layers, ties, rng):
    x = make_array(rng, (2, 7, 6), "ints")
    x[rng.random(x.shape) < 0.25] = np.nan
    out_f, c_f = layers.maxpool2d_forward(x, 3, 2, 1, ties=ties)
    out_n, c_n = core.maxpool2d_forward_naive(x, 3, 2, 1, ties=ties)
    assert np.isnan(out_f).any()
    assert_close(out_n, out_f, 0)
    dout = make_array(rng, out_f.shape, "ints")
    assert_close(
        core.maxpool2d_backward_naive(dout, c_n),
        layers.maxpool2d_backward(dout, c_f),
        1e-12,
    )


@LAYERS
@settings(max_examples=120)
@given(case=conv_cases(max_n=2, max_size=7))
def test_conv_naive_equals_vectorised(layers, case):
    x, w, b, dout = case.arrays()
    out_f, c_f = layers.conv2d_forward(x, w, b, case.stride, case.padding)
    out_n, c_n = core.conv2d_forward_naive(x, w, b, case.stride, case.padding)
    tol = 0 if case.kind != "float" else 1e-10
    assert_close(out_n, out_f, tol)
    for g_n, g_f in zip(
        core.conv2d_backward_naive(dout, c_n), layers.conv2d_backward(dout, c_f)
    ):
        assert_close(g_n, g_f, tol)
    # the caches are interchangeable: each backward accepts the other forward's cache
    for g_x, g_f in zip(
        layers.conv2d_backward(dout, c_n), layers.conv2d_backward(dout, c_f)
    ):
        assert_close(g_x, g_f, tol)
    for g_x, g_f in zip(
        core.conv2d_backward_naive(dout, c_f), layers.conv2d_backward(dout, c_f)
    ):
        assert_close(g_x, g_f, tol)


# ---------------------------------------------------------------------------
# Conv dX three ways: col2im, rotated kernel, adjoint identity of im2col
# ---------------------------------------------------------------------------


@LAYERS
@settings(max_examples=200)
@given(case=conv_cases())
def test_rotated_kernel_input_grad_equals_backward(layers, case):
    (x, w, b, dout), _, (dx, _, _) = case.run(layers)
    dx_rot = core.conv2d_input_grad_rotated(dout, w, x.shape, case.stride, case.padding)
    assert dx_rot.shape == x.shape
    assert_close(dx_rot, dx, 1e-10)


@LAYERS
@settings(max_examples=200)
@given(case=conv_cases())
def test_im2col_col2im_are_adjoint(layers, case):
    rng = np.random.default_rng(case.seed + 3)
    x = rng.standard_normal(case.x_shape)
    F, C, kh, kw = case.w_shape
    cols = core.im2col(x, (kh, kw), case.stride, case.padding)
    N, _, Ho, Wo = case.out_shape
    assert cols.shape == (N, C * kh * kw, Ho * Wo)
    c = rng.standard_normal(cols.shape)
    back = core.col2im(c, x.shape, (kh, kw), case.stride, case.padding)
    assert back.shape == x.shape
    lhs, rhs = np.sum(cols * c), np.sum(x * back)
    assert abs(lhs - rhs) <= 1e-10 * max(1.0, abs(lhs))
    # and the convolution is one matrix product on the columns
    w = rng.standard_normal(case.w_shape)
    out, _ = layers.conv2d_forward(x, w, None, case.stride, case.padding)
    assert_close(
        np.einsum("fk,nkp->nfp", w.reshape(F, -1), cols).reshape(out.shape), out, 1e-10
    )


def test_im2col_layout_is_documented_row_order():
    x = np.arange(2 * 3 * 3, dtype=np.float64).reshape(1, 2, 3, 3)
    cols = core.im2col(x, 2, 1, 0)
    assert cols.shape == (1, 2 * 4, 4)
    # row c*kh*kw + r*kw + s, column i*Wo + j holds x[c, i + r, j + s]
    for c in range(2):
        for r in range(2):
            for s in range(2):
                for i in range(2):
                    for j in range(2):
                        assert (
                            cols[0, c * 4 + r * 2 + s, i * 2 + j]
                            == x[0, c, i + r, j + s]
                        )


def test_rot180_and_dilate():
    w = np.arange(6.0).reshape(1, 1, 2, 3)
    assert core.rot180(w).tolist() == [[[[5, 4, 3], [2, 1, 0]]]]
    d = core.dilate(np.array([[1.0, 2.0], [3.0, 4.0]]), (2, 3))
    assert d.tolist() == [[1, 0, 0, 2], [0, 0, 0, 0], [3, 0, 0, 4]]
    assert core.dilate(np.ones((2, 2)), 1).tolist() == [[1, 1], [1, 1]]


@LAYERS
@pytest.mark.parametrize(
    "size,k,s,p",
    [(6, 3, 1, 0), (7, 2, 2, 0), (7, 3, 2, 1), (5, 5, 1, 2), (8, 3, None, 0)],
)
def test_pool_output_size(layers, size, k, s, p):
    expected = (size + 2 * p - k) // (k if s is None else s) + 1
    assert core.pool_output_size(size, k, s, p) == expected
    out, _ = layers.maxpool2d_forward(np.zeros((size, size)), k, s, p)
    assert out.shape == (expected, expected)


@LAYERS
@pytest.mark.parametrize("ties", POLICIES)
@pytest.mark.parametrize(
    "kernel,stride,padding", [((17, 16), 1, 0), ((17, 17), 2, (8, 3))]
)
def test_big_windows_match_reference(layers, kernel, stride, padding, ties):
    """More than 256 cells per window: the winner's offset no longer fits in a byte."""
    x = make_array(np.random.default_rng(1), (2, 21, 19), "ints")
    out, cache = layers.maxpool2d_forward(x, kernel, stride, padding, ties=ties)
    dout = make_array(np.random.default_rng(2), out.shape, "ints")
    r_out, r_dx, r_wins = ref_maxpool(x, kernel, stride, padding, dout, ties)
    assert_close(out, r_out, 0)
    assert_close(layers.maxpool2d_backward(dout, cache), r_dx, 1e-12)
    np.testing.assert_array_equal(core.maxpool2d_mask(cache), r_wins)


# ---------------------------------------------------------------------------
# Memory layout: views, transposes, Fortran order give the same results
# ---------------------------------------------------------------------------


def _odd_layouts(a):
    """The same values as ``a`` in non-contiguous / unusual memory layouts."""
    big = np.zeros(tuple(2 * n for n in a.shape), dtype=a.dtype)
    strided = big[tuple(slice(None, None, 2) for _ in a.shape)]
    strided[...] = a
    flipped = np.ascontiguousarray(a[..., ::-1, ::-1])[..., ::-1, ::-1]
    return {
        "strided": strided,
        "fortran": np.asfortranarray(a),
        "negative_strides": flipped,
    }


@LAYERS
@settings(max_examples=60)
@given(case=conv_cases(max_size=7))
def test_conv_does_not_depend_on_memory_layout(layers, case):
    x, w, b, dout = case.arrays()
    out, cache = layers.conv2d_forward(x, w, b, case.stride, case.padding)
    grads = layers.conv2d_backward(dout, cache)
    for (name, xv), wv, dv in zip(
        _odd_layouts(x).items(), _odd_layouts(w).values(), _odd_layouts(dout).values()
    ):
        o2, c2 = layers.conv2d_forward(xv, wv, b, case.stride, case.padding)
        assert_close(o2, out, 1e-12, err_msg=name)
        for g2, g in zip(layers.conv2d_backward(dv, c2), grads):
            assert_close(g2, g, 1e-12, err_msg=name)


@LAYERS
@settings(max_examples=60)
@given(case=pool_cases(max_size=8), ties=st.sampled_from(POLICIES))
def test_pooling_does_not_depend_on_memory_layout(layers, case, ties):
    x, dout = case.x(), case.dout()
    args = (case.kernel_size, case.stride, case.padding)
    out, cache = layers.maxpool2d_forward(x, *args, ties=ties)
    dx = layers.maxpool2d_backward(dout, cache)
    aout, acache = layers.avgpool2d_forward(x, *args)
    adx = layers.avgpool2d_backward(dout, acache)
    for (name, xv), dv in zip(_odd_layouts(x).items(), _odd_layouts(dout).values()):
        o2, c2 = layers.maxpool2d_forward(xv, *args, ties=ties)
        assert_close(o2, out, 0, err_msg=name)
        assert_close(layers.maxpool2d_backward(dv, c2), dx, 1e-12, err_msg=name)
        o3, c3 = layers.avgpool2d_forward(xv, *args)
        assert_close(o3, aout, 1e-12, err_msg=name)
        assert_close(layers.avgpool2d_backward(dv, c3), adx, 1e-12, err_msg=name)


@LAYERS
def test_relu_flatten_dense_do_not_depend_on_memory_layout(layers, rng):
    x = make_array(rng, (3, 2, 4, 5), "halves")
    out, cache = core.flatten_forward(x)
    d = rng.standard_normal(out.shape)
    dx = core.flatten_backward(d, cache)
    r, rc = layers.relu_forward(x)
    rdx = layers.relu_backward(x, rc)
    w = rng.standard_normal((40, 3))
    dn, dc = core.dense_forward(out, w)
    core.dense_backward(rng.standard_normal(dn.shape), dc)
    for xv, dv, wv in zip(
        _odd_layouts(x).values(), _odd_layouts(d).values(), _odd_layouts(w).values()
    ):
        o2, c2 = core.flatten_forward(xv)
        assert_close(o2, out, 0)
        assert_close(core.flatten_backward(dv, c2), dx, 0)
        r2, rc2 = layers.relu_forward(xv)
        assert_close(r2, r, 0)
        assert_close(layers.relu_backward(xv, rc2), rdx, 0)
        dn2, _ = core.dense_forward(np.asfortranarray(o2), wv)
        assert_close(dn2, dn, 1e-12)
