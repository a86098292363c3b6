"""Tests of chapters 08/09's helpers (cnnviz.training): data split, network factory,
training helper, gradient check and plots.  Expected values come from scikit-learn, from
hand-built examples or from mlp_cnn_core directly, not from the code under test."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

import mlp_cnn_core as core
import mlp_cnn_train as train  # noqa: E402
from cnnviz import training as tr  # noqa: E402


@pytest.fixture(scope="module")
def data():
    tr.limit_blas_threads(1)
    return tr.load_digits_split(seed=0)


def test_split_shapes_standardization_and_stratification(data):
    from sklearn.datasets import load_digits

    digits = load_digits()
    assert data.x_train.shape == (1347, 1, 8, 8) and data.x_test.shape == (450, 1, 8, 8)
    assert data.x_train.dtype == np.float64 and data.y_train.dtype.kind == "i"
    # the standardization uses the training pixels only
    raw_train = data.x_train * data.std + data.mean
    assert (
        np.allclose(raw_train, np.round(raw_train))
        and raw_train.min() > -1e-9
        and raw_train.max() < 16 + 1e-9
    )
    assert data.mean == pytest.approx(raw_train.mean()) and data.std == pytest.approx(
        raw_train.std()
    )
    assert abs(data.x_train.mean()) < 1e-12 and data.x_train.std() == pytest.approx(1)
    # stratified: every class keeps its share (within one image)
    per_class = np.bincount(digits.target)
    assert np.all(np.abs(np.bincount(data.y_test) - 0.25 * per_class) <= 1)
    assert np.array_equal(
        np.bincount(data.y_train) + np.bincount(data.y_test), per_class
    )
    # every image of the data set is in exactly one part: compare sorted rows
    all_raw = np.concatenate([raw_train, data.x_test * data.std + data.mean]).reshape(
        1797, 64
    )
    ref = digits.images.reshape(1797, 64)
    assert sorted(map(tuple, np.rint(all_raw).astype(int))) == sorted(
        map(tuple, ref.astype(int))
    )


def test_split_is_seeded(data):
    again = tr.load_digits_split(seed=0)
    other = tr.load_digits_split(seed=1)
    assert np.array_equal(again.x_train, data.x_train) and np.array_equal(
        again.y_test, data.y_test
    )
    assert not np.array_equal(other.y_test, data.y_test)


def test_network_shapes_and_parameters(data):
    for pool, cls in [("max", train.MaxPool2D), ("avg", train.AvgPool2D)]:
        net = tr.make_digits_cnn(pool, seed=3)
        kinds = [type(layer) for layer in net.layers]
        assert kinds == [
            train.Conv2D,
            train.ReLU,
            cls,
            train.Conv2D,
            train.ReLU,
            cls,
            train.Flatten,
            train.Dense,
        ]
        x = data.x_train[:5]
        shapes = []
        for layer in net.layers:
            x = layer.forward(x)
            shapes.append(x.shape)
        assert shapes == [
            (5, 16, 8, 8),
            (5, 16, 8, 8),
            (5, 16, 4, 4),
            (5, 32, 4, 4),
            (5, 32, 4, 4),
            (5, 32, 2, 2),
            (5, 128),
            (5, 10),
        ]
        assert (
            sum(p.size for _, _, p in net.parameters())
            == 16 * 9 + 16 + 32 * 16 * 9 + 32 + 128 * 10 + 10
        )
    a, b = tr.make_digits_cnn("max", seed=7), tr.make_digits_cnn("avg", seed=7)
    assert all(
        np.array_equal(p, q)
        for (_, _, p), (_, _, q) in zip(a.parameters(), b.parameters())
    )
    c = tr.make_digits_cnn("max", seed=8)
    assert not np.array_equal(a.layers[0].params["w"], c.layers[0].params["w"])


def test_network_argument_errors():
    with pytest.raises(ValueError, match="pool must be"):
        tr.make_digits_cnn("min")
    with pytest.raises(ValueError, match="second pooling"):
        tr.make_digits_cnn("max", padding=0)
    net = tr.make_digits_cnn("max", channels=(4, 6))
    assert net.layers[0].params["w"].shape == (4, 1, 3, 3) and net.layers[7].params[
        "w"
    ].shape == (24, 10)


def test_train_digits_is_deterministic_and_uses_the_core(data):
    h1 = tr.train_digits(tr.make_digits_cnn("avg", seed=0), data, epochs=2, seed=4)
    h2 = tr.train_digits(tr.make_digits_cnn("avg", seed=0), data, epochs=2, seed=4)
    for key in ["loss", "test_loss", "train_acc", "test_acc"]:
        assert len(h1[key]) == 2 and h1[key] == h2[key]
    assert h1["seconds"] > 0
    # the same as calling train.train_classifier epoch by epoch
    net = tr.make_digits_cnn("avg", seed=0)
    opt = train.Adam(net, lr=tr.LEARNING_RATE)
    for e in range(2):
        h = train.train_classifier(
            net,
            data.x_train,
            data.y_train,
            epochs=1,
            batch_size=32,
            optimizer=opt,
            x_val=data.x_test,
            y_val=data.y_test,
            rng=4000 + e,
        )
        assert h["loss"][0] == h1["loss"][e] and h["val_acc"][0] == h1["test_acc"][e]
    logits = net.forward(data.x_test)
    assert h1["test_loss"][-1] == pytest.approx(
        float(core.softmax_cross_entropy(logits, data.y_test)[0])
    )


def test_the_chapter_network_reaches_97_percent(data):
    net = tr.make_digits_cnn("max", seed=0)
    h = tr.train_digits(net, data, seed=0)
    assert train.accuracy(net, data.x_test, data.y_test) >= 0.97
    assert h["test_acc"][-1] == train.accuracy(net, data.x_test, data.y_test)


def test_evaluate_matches_the_core(data):
    net = tr.make_digits_cnn("max", seed=2)
    loss, acc = tr.evaluate(net, data.x_test, data.y_test, batch_size=100)
    ref_loss, _ = core.softmax_cross_entropy(net.forward(data.x_test), data.y_test)
    assert loss == pytest.approx(float(ref_loss), rel=1e-12)
    assert acc == np.mean(net.forward(data.x_test).argmax(1) == data.y_test)


def test_confusion_matrix():
    y_true = np.array([0, 0, 1, 2, 2, 2])
    y_pred = np.array([0, 1, 1, 2, 0, 2])
    C = tr.confusion_matrix(y_true, y_pred, n_classes=3)
    assert np.array_equal(C, [[1, 1, 0], [0, 1, 0], [1, 0, 2]])
    from sklearn.metrics import confusion_matrix

    rng = np.random.default_rng(0)
    a, b = rng.integers(0, 10, 200), rng.integers(0, 10, 200)
    assert np.array_equal(
        tr.confusion_matrix(a, b), confusion_matrix(a, b, labels=range(10))
    )


def test_gradient_check_passes_a_correct_network_and_restores_it(data):
    net = tr.make_digits_cnn("avg", seed=5)
    before = [p.copy() for _, _, p in net.parameters()]
    rows = tr.network_gradient_check(
        net, data.x_train[:3], data.y_train[:3], n_entries=3, seed=1
    )
    assert [(r["layer"], r["param"]) for r in rows] == [
        (0, "w"),
        (0, "b"),
        (3, "w"),
        (3, "b"),
        (7, "w"),
        (7, "b"),
    ]
    assert all(r["rel_error"] < 1e-6 for r in rows)
    assert all(len(r["index"]) == 3 and len(np.unique(r["index"])) == 3 for r in rows)
    assert all(np.array_equal(p, q) for p, (_, _, q) in zip(before, net.parameters()))
    # the analytic values are the backward pass's own gradients
    _, d = core.softmax_cross_entropy(net.forward(data.x_train[:3]), data.y_train[:3])
    net.backward(d)
    for r in rows:
        assert np.array_equal(
            r["analytic"],
            net.layers[r["layer"]].grads[r["param"]].reshape(-1)[r["index"]],
        )


def test_gradient_check_catches_a_broken_layer(data):
    class HalfDenseGrad(train.Dense):
        def backward(self, dout):
            dx = super().backward(dout)
            self.grads["w"] = self.grads["w"] / 2  # wrong by a factor 2
            return dx

    net = tr.make_digits_cnn("max", seed=1)
    bad = HalfDenseGrad(128, 10)
    bad.params = net.layers[7].params
    net.layers[7] = bad
    rows = tr.network_gradient_check(
        net, data.x_train[:4], data.y_train[:4], n_entries=4, seed=0
    )
    failing = [(r["layer"], r["param"]) for r in rows if r["rel_error"] > 1e-3]
    assert failing == [(7, "w")]
    r = rows[4]
    nz = r["numeric"] != 0
    assert np.allclose(r["analytic"][nz] / r["numeric"][nz], 0.5)


def test_confusion_state_draws_the_matrix_and_marks_the_mistakes():
    C = np.array([[5, 0, 1], [0, 4, 0], [2, 0, 3]])
    st = tr.confusion_state(C)
    (p,) = st["panels"]
    assert p["text"] == [["5", "", "1"], ["", "4", ""], ["2", "", "3"]]
    assert p["classes"] == [["", "", "hl"], ["", "", ""], ["hl", "", ""]]
    assert p["rowLabels"] == p["colLabels"] == ["0", "1", "2"]
    assert st["caption"].startswith("12 of 15 test digits lie on the diagonal")
    assert "3 off it, in 2 cells" in st["caption"]
    with pytest.raises(ValueError, match="square"):
        tr.confusion_state(np.zeros((2, 3)))


def _svg(fig):
    from cnnviz import mplfig
    svg, w, h = mplfig.figure_svg(fig)        # refuses a figure wider than the column
    plt.close(fig)
    return svg, w


def test_plots_are_drawn_for_the_column(data):
    net = tr.make_digits_cnn("max", seed=0)
    h = tr.train_digits(net, data, epochs=2, seed=0)
    fig = tr.plot_history(h, title="t")
    assert len(fig.axes) == 2 and [len(ax.lines) for ax in fig.axes] == [2, 3]
    assert np.array_equal(fig.axes[0].lines[1].get_ydata(), h["test_loss"])
    assert _svg(fig)[1] <= 720
    fig = tr.plot_comparison({"a": h, "b": {"loss": [1.0, 0.5, 0.2], "val_acc": [0.5, 0.6, 0.9]}})
    assert [ln.get_label() for ln in fig.axes[0].lines] == ["a", "b"]
    assert np.allclose(fig.axes[1].lines[1].get_ydata(), [50, 60, 90])
    assert _svg(fig)[1] <= 720
    pred = net.predict(data.x_test)
    wrong = np.flatnonzero(data.y_test != pred)[:5]
    fig = tr.plot_misclassified(data.x_test, data.y_test, pred, n=5, title="t")
    titles = [ax.get_title() for ax in fig.axes]
    assert titles == [f"predicted {pred[i]}\ntrue {data.y_test[i]}" for i in wrong]
    assert [np.array_equal(ax.images[0].get_array(), data.x_test[i, 0])
            for ax, i in zip(fig.axes, wrong)] == [True] * len(wrong)
    assert _svg(fig)[1] <= 720
    fig = tr.plot_misclassified(data.x_test[:3], data.y_test[:3], data.y_test[:3])
    assert fig.axes[0].texts[0].get_text() == "no mistakes"
    plt.close(fig)
    with pytest.raises(ValueError, match="2 images but 1 titles"):
        tr.plot_digits(data.x_test[:2], ["a"])
    fig = tr.plot_kernels(net.layers[0].params["w"])
    assert sum(ax.get_title().startswith("kernel") for ax in fig.axes) == 16
    assert _svg(fig)[1] <= 720
    fig = tr.plot_feature_maps(net, data.x_test[0], label="x")
    assert len(fig.axes) == 3 * 9
    conv = net.layers[0].forward(data.x_test[:1])[0]
    assert np.array_equal(fig.axes[1].images[0].get_array(), conv[0])
    assert _svg(fig)[1] <= 720
    assert plt.get_fignums() == []
