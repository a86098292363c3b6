"""Tests of chapter 06's helpers (cnnviz.dense): the tiny network, the figures and the widget.

Expected values are computed here independently of the code under test: the forward pass and
every gradient with plain numpy loops and the hand-derived formulas (p - y, f^T delta, delta W^T,
routing to the window maximum, the ReLU mask, correlation with the image), and, when PyTorch is
installed, with torch autograd.
"""
import itertools
import re

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from cnnviz import dense  # noqa: E402


# ---------------------------------------------------------------------------
# An independent reference: loops and closed forms, no mlp_cnn_core
# ---------------------------------------------------------------------------

def reference(image, kernel, conv_b, W, b, label):
    image, kernel, W, b = (np.asarray(t, dtype=float) for t in (image, kernel, W, b))
    cb = float(np.ravel(conv_b)[0])
    H, Wd = image.shape
    kh, kw = kernel.shape
    Ho, Wo = H - kh + 1, Wd - kw + 1
    z = np.array([[np.sum(image[i:i + kh, j:j + kw] * kernel) + cb for j in range(Wo)] for i in range(Ho)])
    a = np.where(z > 0, z, 0.0)
    m = np.zeros((Ho // 2, Wo // 2))
    win = np.zeros((Ho // 2, Wo // 2, 2), dtype=int)
    for i in range(Ho // 2):
        for j in range(Wo // 2):
            best = None
            for r in range(2):
                for c in range(2):
                    val = a[2 * i + r, 2 * j + c]
                    if best is None or val > best:      # first maximum in row-major order
                        best, win[i, j] = val, (2 * i + r, 2 * j + c)
            m[i, j] = best
    f = m.reshape(-1)                                   # a, b, c, d
    s = f @ W + b
    e = np.exp(s - s.max())
    p = e / e.sum()
    y = np.zeros_like(p)
    y[label] = 1.0
    delta = p - y
    dW = np.outer(f, delta)
    df = W @ delta
    dm = df.reshape(m.shape)
    da = np.zeros_like(a)
    for i in range(m.shape[0]):
        for j in range(m.shape[1]):
            da[tuple(win[i, j])] += dm[i, j]
    dz = da * (z > 0)
    dw = np.array([[np.sum(dz * image[r:r + Ho, c:c + Wo]) for c in range(kw)] for r in range(kh)])
    dx = np.zeros_like(image)
    for i in range(Ho):
        for j in range(Wo):
            dx[i:i + kh, j:j + kw] += dz[i, j] * kernel
    return dict(z=z, a=a, m=m, f=f, s=s, p=p, y=y, loss=-np.log(p[label]), delta=delta, dW=dW, db=delta,
                df=df, dm=dm, da=da, dz=dz, dw=dw, dcb=dz.sum(), dx=dx)


def random_values(seed):
    rng = np.random.default_rng(seed)
    return dict(image=rng.normal(size=(5, 5)), kernel=rng.normal(size=(2, 2)), conv_b=rng.normal(size=1),
                W=rng.normal(size=(4, 3)), b=rng.normal(size=3), label=int(rng.integers(0, 3)))


def assert_matches(v, ref):
    pairs = [("conv", "z"), ("relu", "a"), ("pool", "m"), ("flat", "f"), ("logits", "s"), ("p", "p"),
             ("y", "y"), ("dlogits", "delta"), ("dW", "dW"), ("db", "db"), ("dflat", "df"), ("dpool", "dm"),
             ("drelu", "da"), ("dconv", "dz"), ("dw", "dw"), ("dconv_b", "dcb"), ("dx", "dx")]
    for mine, theirs in pairs:
        got = np.asarray(v[mine], dtype=float)
        want = np.asarray(ref[theirs], dtype=float)
        np.testing.assert_allclose(got.reshape(want.shape), want, rtol=1e-12, atol=1e-12, err_msg=mine)
    assert np.isclose(float(v["loss"]), ref["loss"], rtol=1e-12)


# ---------------------------------------------------------------------------
# tiny_network and the chapter's numbers
# ---------------------------------------------------------------------------

def test_chapter_values_have_no_kinks_and_match_the_seed():
    vals = dense.chapter_values()
    expected_image = np.random.default_rng(15).integers(0, 5, size=(5, 5)).astype(float)
    np.testing.assert_array_equal(vals["image"], expected_image)
    ref = reference(**vals)
    assert np.abs(ref["z"]).min() >= 0.25                       # no ReLU input at (or near) 0
    for i, j in itertools.product(range(2), range(2)):
        window = np.sort(ref["a"][2 * i:2 * i + 2, 2 * j:2 * j + 2].ravel())
        assert window[-1] - window[-2] >= 0.25                  # no tie in any pooling window
    assert ref["p"].argmax() != vals["label"]                   # the example is misclassified


def test_tiny_network_chapter_values_against_loops():
    vals = dense.chapter_values()
    v = dense.tiny_network(**vals)
    assert_matches(v, reference(**vals))
    # the numbers printed in the chapter
    np.testing.assert_allclose(v["flat"], [[3.25, 2.75, 4.75, 3.75]])
    np.testing.assert_allclose(v["logits"], [[1.15, -0.55, 0.425]], atol=1e-12)
    assert v["dx"].shape == (1, 1, 5, 5) and v["dw"].shape == (1, 1, 2, 2) and v["dflat"].shape == (1, 4)


@pytest.mark.parametrize("seed", range(20))
def test_tiny_network_random_values_against_loops(seed):
    vals = random_values(seed)
    assert_matches(dense.tiny_network(**vals), reference(**vals))


@pytest.mark.torch
@pytest.mark.parametrize("seed", range(5))
def test_tiny_network_against_torch_autograd(seed):
    torch = pytest.importorskip("torch")
    vals = random_values(100 + seed)
    v = dense.tiny_network(**vals)
    t = {k: torch.tensor(np.asarray(vals[k], dtype=float), dtype=torch.float64, requires_grad=True)
         for k in ("image", "kernel", "conv_b", "W", "b")}
    z = torch.nn.functional.conv2d(t["image"][None, None], t["kernel"][None, None], t["conv_b"])
    m = torch.nn.functional.max_pool2d(torch.relu(z), 2)
    s = m.reshape(1, -1) @ t["W"] + t["b"]
    loss = torch.nn.functional.cross_entropy(s, torch.tensor([vals["label"]]))
    loss.backward()
    assert np.isclose(float(v["loss"]), loss.item(), rtol=1e-12)
    for mine, k in [("dx", "image"), ("dw", "kernel"), ("dconv_b", "conv_b"), ("dW", "W"), ("db", "b")]:
        np.testing.assert_allclose(np.asarray(v[mine]).reshape(t[k].shape), t[k].grad.numpy(),
                                   rtol=1e-10, atol=1e-12, err_msg=mine)


# ---------------------------------------------------------------------------
# Static figures
# ---------------------------------------------------------------------------

def axes_texts(ax):
    return [t.get_text() for t in ax.texts]


def visible_axes(fig):
    return [ax for ax in fig.axes if ax.get_visible()]


def test_forward_figure_panels_and_values():
    v = dense.tiny_network(**dense.chapter_values())
    fig = dense.forward_figure(v)
    try:
        axes = visible_axes(fig)
        titles = [ax.get_title() for ax in axes]
        assert len(axes) == 7, titles
        assert titles[0].startswith("image") and titles[-1].startswith("softmax")
        pool_ax = axes[titles.index("max pool m (2×2)")]
        assert sorted(axes_texts(pool_ax)) == sorted(["3.25", "2.75", "4.75", "3.75"])
        relu_ax = axes[[i for i, t in enumerate(titles) if t.startswith("ReLU")][0]]
        red = [p for p in relu_ax.patches if p.get_edgecolor()[:3] == matplotlib.colors.to_rgb(dense.HIGHLIGHT)]
        assert len(red) == 4                                   # the four window maxima
        assert "1.2360" in fig._suptitle.get_text()
    finally:
        plt.close(fig)


def test_backward_figure_panels_and_values():
    vals = dense.chapter_values()
    v = dense.tiny_network(**vals)
    ref = reference(**vals)
    fig = dense.backward_figure(v)
    try:
        axes = visible_axes(fig)
        titles = [ax.get_title() for ax in axes]
        assert len(axes) == 8, titles
        assert titles[0].startswith("①") and titles[-1].startswith("⑧")
        dz_ax = axes[0]
        expected = [dense.format_value(t) for t in ref["delta"]]
        assert axes_texts(dz_ax) == expected
        kernel_ax = axes[6]
        assert axes_texts(kernel_ax) == [dense.format_value(t) for t in ref["dw"].ravel()]
        assert f"{ref['dcb']:.4g}" in fig._suptitle.get_text()
    finally:
        plt.close(fig)


def test_flatten_figure_letters_and_order():
    pool = np.array([[1.0, 2.0], [3.0, 4.0]])
    dflat = np.array([[0.5, -0.25, 0.125, 2.0]])
    fig = dense.flatten_figure(pool, dflat)
    try:
        assert len(fig.axes) == 4
        flat_texts = axes_texts(fig.axes[1])
        # values in row-major order, each followed by its letter a, b, c, d
        assert [t for t in flat_texts if t not in "abcd"] == ["1", "2", "3", "4"]
        assert [t for t in flat_texts if t in list("abcd")] == list("abcd")
        back = [t for t in axes_texts(fig.axes[3]) if t not in list("abcd")]
        assert back == ["0.5", "-0.25", "0.125", "2"]
    finally:
        plt.close(fig)


# ---------------------------------------------------------------------------
# The widget
# ---------------------------------------------------------------------------

def expected_state(label, biases, vals=None):
    vals = dict(dense.chapter_values() if vals is None else vals)
    vals["b"] = np.asarray(biases, dtype=float)
    vals["label"] = label
    return reference(**vals)


def test_widget_default_state():
    w = dense.SoftmaxGradExplorer()
    ref = expected_state(2, [0.1, -0.1, 0.0])
    np.testing.assert_allclose(w.p[0], ref["p"], rtol=1e-12)
    np.testing.assert_allclose(w.dlogits[0], ref["delta"], atol=1e-12)
    np.testing.assert_allclose(w.dflat[0], ref["df"], atol=1e-12)
    np.testing.assert_allclose(w.dpool, ref["dm"], atol=1e-12)
    np.testing.assert_allclose(w.dW, ref["dW"], atol=1e-12)
    assert np.isclose(w.loss, ref["loss"])
    assert w.prediction == 0
    assert f"{ref['loss']:.4f}" in w.summary.value
    assert "predicts class 0" in w.summary.value
    assert len(w.out.outputs) == 1 and "image/png" in w.out.outputs[0]["data"]


def test_widget_label_changes_only_y():
    w = dense.SoftmaxGradExplorer()
    p0 = w.p.copy()
    w.label.value = 0
    np.testing.assert_array_equal(w.p, p0)
    np.testing.assert_array_equal(w.y, [[1.0, 0.0, 0.0]])
    ref = expected_state(0, [0.1, -0.1, 0.0])
    np.testing.assert_allclose(w.dlogits[0], ref["delta"], atol=1e-12)
    np.testing.assert_allclose(w.dflat[0], ref["df"], atol=1e-12)
    assert "the prediction is right" in w.summary.value
    assert f"{ref['loss']:.4f}" in w.summary.value
    # the summary lists p - y with three decimals; the only negative entry is at the label
    listed = [float(t) for t in re.search(r"p − y</b> = \[([^\]]*)\]", w.summary.value).group(1).split(",")]
    np.testing.assert_allclose(listed, np.round(ref["delta"], 3), atol=1e-9)
    assert [i for i, t in enumerate(listed) if t < 0] == [0]


def test_widget_bias_moves_one_logit():
    w = dense.SoftmaxGradExplorer()
    s0 = w.logits.copy()
    w.biases[1].value = 2.0
    diff = w.logits - s0
    np.testing.assert_allclose(diff, [[0.0, 2.1, 0.0]], atol=1e-12)   # b1 went from -0.1 to 2.0
    ref = expected_state(2, [0.1, 2.0, 0.0])
    np.testing.assert_allclose(w.dflat[0], ref["df"], atol=1e-12)
    fig = w.figure()
    try:
        titles = [ax.get_title() for ax in visible_axes(fig)]
        assert len(titles) == 7
        dz_ax = visible_axes(fig)[titles.index("dL/ds = p − y")]
        assert axes_texts(dz_ax) == [f"{t:+.3f}" for t in ref["delta"]]
        assert "2" in fig._suptitle.get_text() and f"{ref['loss']:.4f}" in fig._suptitle.get_text()
    finally:
        plt.close(fig)


def set_biases(w, values):
    for slider, value in zip(w.biases, values):
        if slider.value != value:          # only touch what changes (each change redraws)
            slider.value = value


def check_state(w, label):
    assert np.isclose(w.p.sum(), 1.0) and np.isfinite(w.p).all()
    assert abs(w.dlogits.sum()) < 1e-12
    assert w.dlogits[0, label] < 0 and (np.delete(w.dlogits[0], label) > 0).all()
    ref = expected_state(label, [sl.value for sl in w.biases])
    np.testing.assert_allclose(w.dlogits[0], ref["delta"], atol=1e-12)
    np.testing.assert_allclose(w.dflat[0], ref["df"], atol=1e-12)
    np.testing.assert_allclose(w.dpool, ref["dm"], atol=1e-12)
    assert f"{ref['loss']:.4f}" in w.summary.value
    assert len(w.out.outputs) == 1


def test_widget_sweep_every_combination_state(monkeypatch):
    """Every label x every bias slider at min / middle / max (81 states); the drawing is stubbed
    out here (it is exercised for real in the next test) to keep the sweep fast."""
    w = dense.SoftmaxGradExplorer()
    monkeypatch.setattr(w, "figure", lambda *a, **k: plt.figure(figsize=(1, 1)))
    lo, hi = w.BIAS_RANGE
    for label in w.label.options:
        w.label.value = label
        for b in itertools.product((lo, 0.0, hi), repeat=w.K):
            set_biases(w, b)
            check_state(w, label)


def test_widget_sweep_extremes_with_drawing():
    w = dense.SoftmaxGradExplorer()
    lo, hi = w.BIAS_RANGE
    for label in w.label.options:
        w.label.value = label
        for b in ([lo] * w.K, [hi, lo, hi], [hi] * w.K):
            set_biases(w, b)
            check_state(w, label)
    fig = w.figure()
    try:
        assert len(visible_axes(fig)) == 7
    finally:
        plt.close(fig)


def test_widget_clamps_out_of_range_bias():
    vals = dense.chapter_values()
    vals["b"] = np.array([10.0, -10.0, 0.0])
    w = dense.SoftmaxGradExplorer(vals)
    assert [s.value for s in w.biases] == [3.0, -3.0, 0.0]
    w.biases[0].value = 99.0                                   # the slider clamps, nothing raises
    assert w.biases[0].value == 3.0
    plt.close("all")
