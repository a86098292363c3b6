"""Tests of chapter 06's helpers (cnnviz.dense): the tiny network, the figures and the explorable.

Expected values are computed here independently of the code under test: the forward pass and
every gradient with plain numpy loops and the hand-derived formulas (p - 1[m = t], h^T dL/dz,
dL/dz V^T, routing to the window maximum, the ReLU mask, correlation with the image), and, when
PyTorch is installed, with torch autograd.
"""
import itertools

import numpy as np
import pytest

from cnnviz import dense
from cnnviz.explorable import call, figure, rebuild

# ---------------------------------------------------------------------------
# An independent reference: loops and closed forms, no mlp_cnn_core
# ---------------------------------------------------------------------------

def reference(image, kernel, conv_b, V, b, label):
    image, kernel, V, b = (np.asarray(t, dtype=float) for t in (image, kernel, V, b))
    cb = float(np.ravel(conv_b)[0])
    H, Wd = image.shape
    kh, kw = kernel.shape
    Ho, Wo = H - kh + 1, Wd - kw + 1
    z = np.array(
        [
            [np.sum(image[i : i + kh, j : j + kw] * kernel) + cb for j in range(Wo)]
            for i in range(Ho)
        ]
    )
    a = np.where(z > 0, z, 0.0)
    m = np.zeros((Ho // 2, Wo // 2))
    win = np.zeros((Ho // 2, Wo // 2, 2), dtype=int)
    for i in range(Ho // 2):
        for j in range(Wo // 2):
            best = None
            for r in range(2):
                for c in range(2):
                    val = a[2 * i + r, 2 * j + c]
                    if best is None or val > best:  # first maximum in row-major order
                        best, win[i, j] = val, (2 * i + r, 2 * j + c)
            m[i, j] = best
    f = m.reshape(-1)                                   # a, b, c, d
    s = f @ V + b
    e = np.exp(s - s.max())
    p = e / e.sum()
    y = np.zeros_like(p)
    y[label] = 1.0
    delta = p - y
    dV = np.outer(f, delta)
    df = V @ delta
    dm = df.reshape(m.shape)
    da = np.zeros_like(a)
    for i in range(m.shape[0]):
        for j in range(m.shape[1]):
            da[tuple(win[i, j])] += dm[i, j]
    dz = da * (z > 0)
    dw = np.array(
        [
            [np.sum(dz * image[r : r + Ho, c : c + Wo]) for c in range(kw)]
            for r in range(kh)
        ]
    )
    dx = np.zeros_like(image)
    for i in range(Ho):
        for j in range(Wo):
            dx[i:i + kh, j:j + kw] += dz[i, j] * kernel
    return dict(z=z, a=a, m=m, f=f, s=s, p=p, y=y, loss=-np.log(p[label]), delta=delta, dV=dV, db=delta,
                df=df, dm=dm, da=da, dz=dz, dw=dw, dcb=dz.sum(), dx=dx)


def random_values(seed):
    rng = np.random.default_rng(seed)
    return dict(image=rng.normal(size=(5, 5)), kernel=rng.normal(size=(2, 2)), conv_b=rng.normal(size=1),
                V=rng.normal(size=(4, 3)), b=rng.normal(size=3), label=int(rng.integers(0, 3)))


def assert_matches(v, ref):
    pairs = [("conv", "z"), ("relu", "a"), ("pool", "m"), ("flat", "f"), ("logits", "s"), ("p", "p"),
             ("onehot", "y"), ("dlogits", "delta"), ("dV", "dV"), ("db", "db"), ("dflat", "df"), ("dpool", "dm"),
             ("drelu", "da"), ("dconv", "dz"), ("dw", "dw"), ("dconv_b", "dcb"), ("dx", "dx")]
    for mine, theirs in pairs:
        got = np.asarray(v[mine], dtype=float)
        want = np.asarray(ref[theirs], dtype=float)
        np.testing.assert_allclose(
            got.reshape(want.shape), want, rtol=1e-12, atol=1e-12, err_msg=mine
        )
    assert np.isclose(float(v["loss"]), ref["loss"], rtol=1e-12)


# ---------------------------------------------------------------------------
# tiny_network and the chapter's numbers
# ---------------------------------------------------------------------------


def test_chapter_values_have_no_kinks_and_match_the_seed():
    vals = dense.chapter_values()
    expected_image = np.random.default_rng(15).integers(0, 5, size=(5, 5)).astype(float)
    np.testing.assert_array_equal(vals["image"], expected_image)
    ref = reference(**vals)
    assert np.abs(ref["z"]).min() >= 0.25  # no ReLU input at (or near) 0
    for i, j in itertools.product(range(2), range(2)):
        window = np.sort(ref["a"][2 * i : 2 * i + 2, 2 * j : 2 * j + 2].ravel())
        assert window[-1] - window[-2] >= 0.25  # no tie in any pooling window
    assert ref["p"].argmax() != vals["label"]  # the example is misclassified


def test_tiny_network_chapter_values_against_loops():
    vals = dense.chapter_values()
    v = dense.tiny_network(**vals)
    assert_matches(v, reference(**vals))
    # the numbers printed in the chapter
    np.testing.assert_allclose(v["flat"], [[3.25, 2.75, 4.75, 3.75]])
    np.testing.assert_allclose(v["logits"], [[1.15, -0.55, 0.425]], atol=1e-12)
    assert (
        v["dx"].shape == (1, 1, 5, 5)
        and v["dw"].shape == (1, 1, 2, 2)
        and v["dflat"].shape == (1, 4)
    )


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
         for k in ("image", "kernel", "conv_b", "V", "b")}
    z = torch.nn.functional.conv2d(t["image"][None, None], t["kernel"][None, None], t["conv_b"])
    m = torch.nn.functional.max_pool2d(torch.relu(z), 2)
    s = m.reshape(1, -1) @ t["V"] + t["b"]
    loss = torch.nn.functional.cross_entropy(s, torch.tensor([vals["label"]]))
    loss.backward()
    assert np.isclose(float(v["loss"]), loss.item(), rtol=1e-12)
    for mine, k in [("dx", "image"), ("dw", "kernel"), ("dconv_b", "conv_b"), ("dV", "V"), ("db", "b")]:
        np.testing.assert_allclose(np.asarray(v[mine]).reshape(t[k].shape), t[k].grad.numpy(),
                                   rtol=1e-10, atol=1e-12, err_msg=mine)


# ---------------------------------------------------------------------------
# The chapter's figures (states drawn by the explorables' view)
# ---------------------------------------------------------------------------

fmt = dense.format_value


def panels_of(state):
    return {q["id"]: q for q in state["panels"]}


def texts(M):
    return [[fmt(t) for t in row] for row in np.atleast_2d(M)]


def test_forward_state_panels_and_values():
    vals = dense.chapter_values()
    ref = reference(**vals)
    st = dense.forward_state(vals)
    P = panels_of(st)
    assert list(P) == ["X", "Y", "A", "Q", "h", "z", "p"]
    for pid, key in [("X", None), ("Y", "z"), ("A", "a"), ("Q", "m"), ("h", "f"), ("z", "s"), ("p", "p")]:
        assert P[pid]["text"] == texts(vals["image"] if key is None else ref[key]), pid
    assert sorted(P["Q"]["text"][0] + P["Q"]["text"][1]) == sorted(["3.25", "2.75", "4.75", "3.75"])
    # the four window maxima, each window outlined
    wins = {(r, c) for r in range(4) for c in range(4) if "win" in P["A"]["classes"][r][c]}
    assert wins == {(int(np.argmax(ref["a"][2 * i:2 * i + 2, 2 * j:2 * j + 2]) // 2 + 2 * i),
                     int(np.argmax(ref["a"][2 * i:2 * i + 2, 2 * j:2 * j + 2]) % 2 + 2 * j))
                    for i in range(2) for j in range(2)}
    assert P["A"]["windows"] == [["A", 2 * i, 2 * j, 2, 2, ""] for i in range(2) for j in range(2)]
    assert P["p"]["classes"] == [["", "", "sel"]]
    assert "1.2360" in st["caption"] and "t = 2" in st["caption"]


def test_backward_state_panels_and_values():
    vals = dense.chapter_values()
    ref = reference(**vals)
    st = dense.backward_state(vals)
    P = panels_of(st)
    assert list(P) == ["dz", "dV", "dh", "dQ", "dA", "dY", "dK", "dX"]
    for pid, key in [("dz", "delta"), ("dV", "dV"), ("dh", "df"), ("dQ", "dm"), ("dA", "da"), ("dY", "dz"),
                     ("dK", "dw"), ("dX", "dx")]:
        assert P[pid]["text"] == texts(ref[key]), pid
    dead = {(r, c) for r in range(4) for c in range(4) if P["dY"]["classes"][r][c] == "dead"}
    assert dead == {(r, c) for r in range(4) for c in range(4) if ref["z"][r, c] <= 0}
    assert f"{ref['dcb']:.4g}" in st["caption"]


def test_flatten_state_order():
    q = np.array([[1.0, 2.0], [3.0, 4.0]])
    dh = np.array([[0.5, -0.25, 0.125, 2.0]])
    st = dense.flatten_state(q, dh)
    P = panels_of(st)
    assert P["h"]["text"] == [["1", "2", "3", "4"]]                    # row-major
    assert P["dQ"]["text"] == [["0.5", "-0.25"], ["0.125", "2"]]
    assert P["h"]["colLabels"] == ["h₀", "h₁", "h₂", "h₃"]
    # entry d of h, its cell of Q and their gradients are linked
    for d, (r, c) in enumerate([(0, 0), (0, 1), (1, 0), (1, 1)]):
        lk = st["links"][f"h:0:{d}"]
        assert set(lk["cells"]) == {f"Q:{r}:{c}", f"h:0:{d}", f"dh:0:{d}", f"dQ:{r}:{c}"}
        assert all(st["links"][cid] == lk for cid in lk["cells"])
        assert f"h<sub>{d}</sub> = Q<sub>{r}{c}</sub> = {fmt(q[r, c])}" in lk["text"]
        assert f"∂L/∂Q<sub>{r}{c}</sub> = ∂L/∂h<sub>{d}</sub>" in lk["text"]


def test_figures_recompute_from_their_recipes():
    vals = dense.chapter_values()
    for fn in (dense.forward_state, dense.backward_state):
        fig = figure(call(fn, vals))
        assert rebuild("StateFigure", fig.config).current() == fig.current()


# ---------------------------------------------------------------------------
# The explorable
# ---------------------------------------------------------------------------

CHAPTER_B = np.array([0.1, -0.1, 0.0])


def expected_state(label, biases, vals=None):
    vals = dict(dense.chapter_values() if vals is None else vals)
    vals["b"] = np.asarray(biases, dtype=float)
    vals["label"] = label
    return reference(**vals)


@pytest.fixture(scope="module")
def explorable():
    return dense.SoftmaxGradient()


def check_state(state, label, b):
    """One stored state against the loop reference (no core): every number drawn, every
    link."""
    ref = expected_state(label, b)
    P = {q["id"]: q for q in state["panels"]}
    assert list(P) == ["z", "p", "t", "dz", "V", "dV", "h", "dh", "dQ"]
    assert P["z"]["text"] == [[fmt(t) for t in ref["s"]]]
    assert P["p"]["text"] == [[fmt(t) for t in ref["p"]]]
    assert P["t"]["text"] == [[fmt(t) for t in ref["y"]]]
    assert P["dz"]["text"] == [[fmt(t) for t in ref["delta"]]]
    assert P["dV"]["text"] == [[fmt(t) for t in row] for row in ref["dV"]]
    assert P["dh"]["text"] == [[fmt(t) for t in ref["df"]]]
    assert P["dQ"]["text"] == [[fmt(ref["dm"][r, c]) for c in range(2)] for r in range(2)]
    assert P["V"]["rowLabels"] == ["h₀", "h₁", "h₂", "h₃"] and P["V"]["colLabels"] == ["z₀", "z₁", "z₂"]
    # the label is marked, and p - 1[m = t] is negative there only
    assert [c for c in range(3) if "win" in P["dz"]["classes"][0][c]] == [label]
    assert ref["delta"][label] < 0 and (np.delete(ref["delta"], label) > 0).all()
    assert f"loss = −log p<sub>{label}</sub> = {ref['loss']:.4f}" in state["caption"]
    pred = int(np.argmax(ref["p"]))
    assert f"predicts class {pred} ({'right' if pred == label else 'wrong'})" in state["caption"]
    assert "p − 𝟙<sub>t</sub> sums to 0 " in state["caption"]
    assert state["focus"] == f"dz:0:{label}"
    # links point at existing cells; the numbers they print are the reference's
    for key, lk in state["links"].items():
        for cid in [key] + lk["cells"]:
            pid, r, c = cid.split(":")
            assert (
                pid in P
                and 0 <= int(r) < P[pid]["rows"]
                and 0 <= int(c) < P[pid]["cols"]
            ), cid
    for k in range(3):
        lk = state["links"][f"z:0:{k}"]
        assert all(state["links"][f"{q}:0:{k}"] == lk for q in ("p", "t", "dz"))
        assert f"= <b>{fmt(ref['delta'][k])}</b>" in lk["text"]
        assert f"({', '.join(fmt(ref['delta'][k] * w) for w in dense.chapter_values()['V'][:, k])})" in lk["text"]
        assert {f"V:{i}:{k}" for i in range(4)} <= set(lk["cells"])
    V = dense.chapter_values()["V"]
    par = lambda x: f"({fmt(x)})" if fmt(x).startswith("-") else fmt(x)   # noqa: E731
    for i in range(4):
        lk = state["links"][f"dh:0:{i}"]
        assert state["links"][f"dQ:{i // 2}:{i % 2}"] == lk
        terms = " + ".join(f"{par(V[i, k])}·{par(ref['delta'][k])}" for k in range(3))
        assert f"{terms} = <b>{fmt(ref['df'][i])}</b>" in lk["text"]
        assert f"∂L/∂Q<sub>{i // 2}{i % 2}</sub>" in lk["text"]
        assert sum(V[i, k] * ref["delta"][k] for k in range(3)) == pytest.approx(ref["df"][i], abs=1e-12)
        for k in range(3):
            text = state["links"][f"V:{i}:{k}"]["text"]
            assert state["links"][f"dV:{i}:{k}"]["text"] == text
            assert f"= <b>{fmt(ref['dV'][i, k])}</b>" in text


def test_every_control_value(explorable):
    """The full grid: every label x every option of each bias (375 states)."""
    specs = {c["name"]: c for c in explorable.controls}
    assert list(specs) == ["label", "b0", "b1", "b2"]
    assert specs["label"]["options"] == [0, 1, 2] and specs["label"]["default"] == 2
    assert specs["label"]["label"] == "label t" and specs["b1"]["label"] == "bias b₁"
    for k in range(3):
        assert (
            specs[f"b{k}"]["options"] == list(dense.BIAS_STEPS)
            and specs[f"b{k}"]["default"] == 0
        )
        assert specs[f"b{k}"]["labels"] == [
            fmt(CHAPTER_B[k] + t) for t in dense.BIAS_STEPS
        ]
    n = 0
    for label, s0, s1, s2 in itertools.product([0, 1, 2], *[dense.BIAS_STEPS] * 3):
        state = explorable.set(label=label, b0=s0, b1=s1, b2=s2)
        check_state(state, label, CHAPTER_B + [s0, s1, s2])
        n += 1
    assert n == len(explorable.states) == 375


def test_default_state_is_the_chapters(explorable):
    state = explorable.set(label=2, b0=0, b1=0, b2=0)
    ref = expected_state(2, CHAPTER_B)
    assert "loss = −log p<sub>2</sub> = 1.2360" in state["caption"] and "predicts class 0 (wrong)" in state["caption"]
    assert state["links"]["dz:0:2"]["text"].startswith("Class 2 (the label")
    np.testing.assert_allclose(ref["delta"].sum(), 0, atol=1e-15)


def test_label_changes_only_the_one_hot(explorable):
    a = explorable.set(label=2, b0=0, b1=0, b2=0)
    b = explorable.set(label=0)
    P, Q = ({q["id"]: q for q in st["panels"]} for st in (a, b))
    assert P["p"]["text"] == Q["p"]["text"] and P["z"]["text"] == Q["z"]["text"]
    assert Q["t"]["text"] == [["1", "0", "0"]]
    assert "predicts class 0 (right)" in b["caption"]


def test_bias_moves_one_logit(explorable):
    a = explorable.set(label=2, b0=0, b1=0, b2=0)
    b = explorable.set(b1=2)
    s_a = expected_state(2, CHAPTER_B)["s"]
    s_b = expected_state(2, CHAPTER_B + [0, 2, 0])["s"]
    np.testing.assert_allclose(s_b - s_a, [0, 2, 0], atol=1e-12)
    sa, sb = ({q["id"]: q for q in st["panels"]}["z"]["text"][0] for st in (a, b))
    assert sa[0] == sb[0] and sa[2] == sb[2] and sa[1] != sb[1]
    assert "b = (0.1, 1.9, 0)" in b["caption"]


def test_controls_repr_payload_and_rebuild(explorable):
    with pytest.raises(ValueError, match="b0 must be one of"):
        explorable.set(b0=0.5)
    assert repr(explorable) == repr(dense.SoftmaxGradient())
    assert "0x" not in repr(explorable) and "run this cell" in repr(explorable)
    assert explorable.payload_size() <= 250_000
    import json
    again = rebuild("SoftmaxGradient", explorable.config)
    assert json.dumps(again.states, sort_keys=True) == json.dumps(
        explorable.states, sort_keys=True
    )


def test_softmax_state_with_other_numbers():
    """The state function works for any network numbers (here random ones) and matches
    the loops.
    """
    for seed in range(3):
        vals = random_values(seed)
        state = dense.softmax_state(vals)
        ref = reference(**vals)
        P = {q["id"]: q for q in state["panels"]}
        assert P["dz"]["text"] == [[fmt(t) for t in ref["delta"]]]
        assert P["dh"]["text"] == [[fmt(t) for t in ref["df"]]]
