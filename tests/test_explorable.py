"""The explorable base (cnnviz.explorable): controls, states, actions, messages, repr, rebuild."""
from __future__ import annotations

import json

import numpy as np
import pytest

from cnnviz import explorable as ex
from cnnviz.draw import format_value


class Doubler(ex.Explorable):
    """A toy explorable: doubles a seeded matrix; an action draws a new one."""

    TITLE = "Doubler"

    def __init__(self, seed=0, **kw):
        super().__init__(seed=int(seed), **kw)

    def make_controls(self):
        return [ex.control("n", "size", [1, 2, 3], default=2),
                ex.control("neg", "negate", [False, True], kind="toggle"),
                ex.control("mode", "mode", ["a", "b"], kind="select", labels=["A", "B"])]

    def make_actions(self):
        return [ex.action("new", "new values"), ex.action("fail", "fail")]

    def act(self, name, value):
        if name == "new":
            self.config = {**self.config, "seed": self.config["seed"] + 1}
        elif name == "fail":
            raise ValueError("cannot do that")
        else:
            super().act(name, value)

    def state(self, n, neg, mode):
        if mode == "b" and n == 3:
            return {"message": "no <b>B</b> for 3×3"}
        x = np.random.default_rng(self.config["seed"]).integers(-3, 4, size=(n, n)).astype(float)
        y = -2 * x if neg else 2 * x
        return {"panels": [ex.panel("x", "x", x), ex.panel("y", "y", y, scale="div")],
                "links": {ex.cell_id("x", 0, 0): ex.link([ex.cell_id("y", 0, 0)], [ex.window("x", 0, 0, 1, 1)], "x→y")},
                "caption": f"sum {y.sum():g}"}


def test_every_combination_has_a_state_under_its_key():
    w = Doubler()
    assert len(w.states) == 3 * 2 * 2
    assert set(w.states) == {f"{n}|{neg}|{m}" for n in (1, 2, 3) for neg in ("false", "true") for m in "ab"}
    assert w.values == {"n": 2, "neg": False, "mode": "a"}
    s = w.current()
    x = np.random.default_rng(0).integers(-3, 4, size=(2, 2)).astype(float)
    assert s["panels"][1]["text"] == [[f"{v:g}" for v in row] for row in 2 * x]


def test_set_changes_the_current_state_and_rejects_unknown_values():
    w = Doubler()
    s = w.set(neg=True)
    x = np.random.default_rng(0).integers(-3, 4, size=(2, 2)).astype(float)
    assert s["caption"] == f"sum {(-2 * x).sum():g}"
    assert w.set(mode="b", n=3) == {"message": "no <b>B</b> for 3×3"}
    with pytest.raises(ValueError, match="n must be one of"):
        w.set(n=7)
    with pytest.raises(ValueError, match="no control named 'size'"):
        w.set(size=2)
    with pytest.raises(ValueError, match="n must be one of"):
        Doubler(values={"n": 9})


def test_action_recomputes_every_state_and_errors_are_sent_back():
    w = Doubler()
    before = json.dumps(w.states, sort_keys=True)
    sent = []
    w.send = sent.append
    w._on_msg(w, {"type": "hello"}, [])
    w._on_msg(w, {"type": "action", "name": "new", "value": None}, [])
    assert w.config["seed"] == 1 and json.dumps(w.states, sort_keys=True) != before
    w._on_msg(w, {"type": "action", "name": "fail", "value": None}, [])
    w._on_msg(w, {"type": "action", "name": "nope", "value": None}, [])
    assert sent[0] == {"type": "kernel"}
    assert sent[1] == {"type": "done", "name": "new"}
    assert sent[2] == {"type": "error", "name": "fail", "text": "cannot do that"}
    assert sent[3]["type"] == "error" and "no action 'nope'" in sent[3]["text"]


def test_rebuild_recomputes_a_saved_explorable_from_its_config():
    w = Doubler(seed=5)
    w.run_action("new")
    again = ex.rebuild("Doubler", w.config)
    assert again.states == w.states
    with pytest.raises(ValueError, match="unknown explorable 'Nope'"):
        ex.rebuild("Nope", {})


def test_repr_is_deterministic_and_says_how_to_use_it():
    assert repr(Doubler()) == repr(Doubler(seed=3))
    assert "run this cell" in repr(Doubler()) and "0x" not in repr(Doubler())


def test_panel_colours_text_and_classes():
    p = ex.panel("g", "gradient", [[-2.0, 0.0], [1.0, np.nan]], scale="div")
    assert p["fill"] == [[-1.0, 0.0], [0.5, None]]
    assert p["text"] == [["-2", "0"], ["1", "NaN"]]
    p = ex.panel("x", "x", [[1, 3]], classes=[["win", ""]], text=[["a", 3.25]])
    assert p["fill"] == [[0.0, 1.0]] and p["classes"] == [["win", ""]] and p["text"] == [["a", "3.25"]]
    assert ex.panel("c", "c", [[4, 4]])["fill"] == [[0.0, 0.0]]
    with pytest.raises(ValueError, match="values must be 2-D"):
        ex.panel("v", "v", [1, 2])
    with pytest.raises(ValueError, match="classes must have the values' shape"):
        ex.panel("v", "v", [[1, 2]], classes=[["a"]])
    with pytest.raises(ValueError, match="scale must be"):
        ex.panel("v", "v", [[1]], scale="rainbow")


def test_control_validation():
    with pytest.raises(ValueError, match="default 5 is not one of"):
        ex.control("k", "k", [1, 2], default=5)
    with pytest.raises(ValueError, match="toggle's options"):
        ex.control("t", "t", [0, 1], kind="toggle")
    with pytest.raises(ValueError, match="2 labels for 3 options"):
        ex.control("k", "k", [1, 2, 3], labels=["a", "b"])
    c = ex.control("b", "bias", [-0.5, 0.0, 1.0])
    assert c["keys"] == ["-0.5", "0", "1"] and c["labels"] == ["-0.5", "0", "1"]
    assert ex.state_key([True, 2.0, "x"]) == "true|2|x"


def test_states_are_json_safe():
    w = Doubler()
    json.dumps({"states": w.states, "controls": w.controls}, allow_nan=False)
    assert 0 < w.payload_size() < 5000


def test_the_page_stores_a_shared_link_once():
    w = Doubler()
    state = {"links": {"a:0:0": ex.link(["b:0:0"], text="t"), "b:0:0": ex.link(["b:0:0"], text="t"),
                       "c:0:0": ex.link(["c:0:0"], text="u")}}
    w.states = {"k": state}
    page = w.page_states()["k"]["links"]
    assert page == {"a:0:0": state["links"]["a:0:0"], "b:0:0": "a:0:0", "c:0:0": state["links"]["c:0:0"]}
    assert w.states["k"] is state  # Python keeps the full state


class Seeded(ex.SeededExplorable):
    TITLE = "Seeded"
    NEW_LABEL = "draw again"

    def __init__(self, seed=3):
        super().__init__(seed=seed)

    def make_controls(self):
        return [ex.control("n", "n", [1, 2])]

    def state(self, n):
        return {"panels": [ex.panel("x", "x", np.random.default_rng(self.config["seed"]).integers(0, 9, (n, n)))]}


def test_a_seeded_explorable_draws_the_next_input_on_new():
    w = Seeded()
    assert w.actions == [ex.action("new", "draw again")]
    w.run_action("new")
    assert w.config["seed"] == 4 and w.states == Seeded(seed=4).states
    with pytest.raises(ValueError, match="no action 'other'"):
        w.run_action("other")
    assert w.config["seed"] == 4


def test_rebuild_finds_a_kind_whose_module_is_not_imported_yet():
    import subprocess
    import sys
    code = ("from cnnviz.explorable import rebuild\n"
            "w = rebuild('MaxPoolRouting', {'seed': 12, 'x': None})\n"
            "print(type(w).__module__)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "cnnviz.maxpool"


# --- the cell formatter ---------------------------------------------------------------------------
@pytest.mark.parametrize("below,above,text", [
    (-1.5749999999999997, -1.5750000000000002, "-1.58"),   # chapter 6's logit: BLAS-dependent last bit
    (1.4249999999999998, 1.4250000000000003, "1.42"),      # half to even, in decimal
    (0.12349999999999999, 0.12350000000000001, "0.124"),
])
def test_format_value_prints_a_rounding_boundary_the_same_on_every_machine(below, above, text):
    assert 0 < abs(below - above) <= 3 * np.spacing(abs(above))  # a few ulps apart
    assert format_value(below) == format_value(above) == text
    assert format_value(below, "{:.2f}") == format_value(above, "{:.2f}")


def test_format_value_texts():
    cases = {0.333: "0.333", 1 / 3: "0.333", -1.3125: "-1.31", 2.1875: "2.19", -0.4375: "-0.438",
             1e-05: "1e-05", float("nan"): "NaN", float("inf"): "∞", -float("inf"): "−∞", -0.0: "0",
             3.0: "3", 2.9999999999999996: "3", 12345.0: "12345", 123456.0: "1.23e+05", 1.125: "1.12",
             np.float32(0.1): "0.1"}
    assert {v: format_value(v) for v in cases} == cases
    assert format_value(1 / 3, digits=10) == "0.3333333333"
    assert format_value(-1.3125, digits=10) == "-1.3125"
    assert format_value(0.5, "{:g}") == "0.5" and format_value(3, "{:d}") == "3"


# --- panels: classes, extras, fuller values -------------------------------------------------------
def test_panel_keeps_the_fuller_value_of_a_rounded_number_only():
    p = ex.panel("g", "G<sub>L1</sub>", [[-1.3125, 0.5], [1 / 3, float("nan")]], scale="div")
    assert p["text"] == [["-1.31", "0.5"], ["0.333", "NaN"]]
    assert p["exact"] == [["-1.3125", ""], ["0.333333", ""]]
    assert "exact" not in ex.panel("i", "i", [[1, 2], [3, 4]])
    assert "exact" not in ex.panel("t", "t", [[1 / 3]], text=[["a third"]])  # the text is the state's own
    assert p["title"] == "G<sub>L1</sub>" and ex.plain_text(p["title"]) == "GL1"


def test_panel_extras_and_class_checks():
    p = ex.panel("y", "Y", [[1, 2]], op="⊙", subtitle="routed", new_row=True, span=(0, 4),
                 row_labels=["r"], col_labels=["a", "b"], windows=[ex.window("y", 0, 0, 1, 2, "c2 dead")])
    assert (p["op"], p["subtitle"], p["newRow"]) == ("⊙", "routed", True)
    assert (p["rowLabels"], p["colLabels"]) == (["r"], ["a", "b"])
    assert p["fill"] == [[0.25, 0.5]]  # the span fixes the range of the shading
    assert p["windows"] == [["y", 0, 0, 1, 2, "c2 dead"]]
    with pytest.raises(ValueError, match="unknown class 'winner'"):
        ex.panel("y", "Y", [[1]], classes=[["winner"]])
    with pytest.raises(ValueError, match="unknown class 'red'"):
        ex.window("y", 0, 0, 1, 1, "red")
    with pytest.raises(ValueError, match="1 column labels for 2 columns"):
        ex.panel("y", "Y", [[1, 2]], col_labels=["a"])


# --- legend ---------------------------------------------------------------------------------------
def test_legend_lists_what_a_state_draws_in_a_fixed_order():
    state = {"panels": [ex.panel("x", "x", [[3, -1], [0, 2]], scale="div", classes=[["win", "dim"], ["tie", ""]],
                                 windows=[ex.window("x", 0, 0, 2, 2), ex.window("x", 0, 1, 1, 1, "c2")])],
             "links": {"x:0:0": ex.link(["x:1:1"], [ex.window("x", 0, 0, 2, 2)], "t")}}
    keys = [k for k, _ in ex.legend_entries(state)]
    assert keys == ["fill.pos", "fill.neg", "win", "tie", "window", "window.c2", "follow.cell", "follow.cells",
                    "follow.windows"]  # "dim" has no default wording
    state["legend"] = {"win": "the label", "tie": None, "dim": "outside every window"}
    entries = dict(ex.legend_entries(state))
    assert entries["win"] == "the label" and "tie" not in entries and entries["dim"] == "outside every window"
    with pytest.raises(ValueError, match="unknown key 'winner'"):
        ex.legend_entries({"panels": [], "legend": {"winner": "x"}})
    assert ex.legend_entries({"message": "nothing"}) == []


def test_every_state_carries_its_legend():
    w = Doubler()
    st = w.set(n=2, mode="a")
    assert [k for k, _ in st["legend"]] == [k for k, _ in ex.legend_entries({**st, "legend": None})]
    assert "legend" not in w.set(n=3, mode="b")  # a message


# --- fixed-state figures --------------------------------------------------------------------------
def two_panels(seed, scale=1.0):
    """A state function for the figure tests (module level, like a chapter's)."""
    x = np.random.default_rng(seed).integers(-3, 4, size=(2, 3)) * scale
    return {"panels": [ex.panel("x", "X", x, scale="div", windows=[ex.window("x", 0, 0, 2, 2, "c1")]),
                       ex.panel("y", "∂L/∂Y", 2 * x, scale="div", op="→")],
            "links": {"y:0:0": ex.link(["x:0:0"], [ex.window("x", 0, 0, 2, 2)], "y[0,0] = 2·x[0,0]"),
                      "y:0:1": ex.link(["x:0:1"], [], "y[0,1] = 2·x[0,1]")},
            "caption": "doubled", "legend": {"window.c1": "the first window"}}


@pytest.fixture
def in_package(monkeypatch):
    """two_panels as if it lived in a cnnviz module (call() takes functions of the package only)."""
    import cnnviz.draw
    monkeypatch.setattr(cnnviz.draw, "two_panels", two_panels, raising=False)
    monkeypatch.setattr(two_panels, "__module__", "cnnviz.draw")
    return two_panels


def test_figure_of_a_call_draws_one_state_and_is_recomputed_by_rebuild(in_package):
    fig = ex.figure(ex.call(in_package, 4, scale=0.5), title="Doubling", follow="y:0:0", panels=["x", "y"])
    assert isinstance(fig, ex.StateFigure) and fig.kind == "StateFigure" and fig.title == "Doubling"
    assert fig.controls == [] and fig.actions == [] and list(fig.states) == [""]
    st = fig.current()
    assert st["fixed"] is True and st["focus"] == "y:0:0" and list(st["links"]) == ["y:0:0"]
    x = np.random.default_rng(4).integers(-3, 4, size=(2, 3)) * 0.5
    assert st["panels"][0]["text"] == [[format_value(v) for v in row] for row in x]
    assert dict(st["legend"])["window.c1"] == "the first window" and "follow.windows" in dict(st["legend"])
    assert fig.config["recipe"]["fn"] == "cnnviz.draw:two_panels"
    again = ex.rebuild("StateFigure", json.loads(json.dumps(fig.config)))  # as a page stores it
    assert again.states == fig.states and again.title == "Doubling"
    assert repr(fig) == repr(again) == ("Figure — Doubling: X, ∂L/∂Y (drawn by the book's view: run this cell, "
                                        "or read the book online).")
    assert ex.gzip_size(fig.page_states()) < 1500


def test_figure_options_pick_panels_reword_and_drop_the_caption(in_package):
    st = ex.figure(ex.call(in_package, 1), panels=["y"], caption=False, legend={"fill.pos": "> 0"}).current()
    assert [p["id"] for p in st["panels"]] == ["y"] and "caption" not in st and "links" not in st
    assert (np.random.default_rng(1).integers(-3, 4, size=(2, 3)) > 0).any()
    assert "window.c1" not in dict(st["legend"]) and dict(st["legend"])["fill.pos"] == "> 0"
    assert ex.figure(ex.call(in_package, 1), caption="other").current()["caption"] == "other"
    with pytest.raises(ValueError, match="no panel 'z' in this state; its panels are \\['x', 'y'\\]"):
        ex.figure(ex.call(in_package, 1), panels=["z"])
    with pytest.raises(ValueError, match="no cell 'y:9:9' to follow"):
        ex.figure(ex.call(in_package, 1), follow="y:9:9")
    with pytest.raises(ValueError, match="unknown key"):
        ex.figure(ex.call(in_package, 1), legend={"blue": "x"})


def test_figure_of_an_explorable_takes_its_values_and_is_recomputed():
    w = Doubler(seed=2)
    fig = ex.figure(w, values={"n": 3, "neg": True}, panels=["y"], follow="x:0:0")
    key = ex.state_key([3, True, "a"])
    assert fig.current()["panels"] == [p for p in w.states[key]["panels"] if p["id"] == "y"]
    assert w.values == {"n": 2, "neg": False, "mode": "a"}  # the explorable is left as it was
    assert ex.rebuild("StateFigure", fig.config).states == fig.states
    with pytest.raises(ValueError, match="n must be one of"):
        ex.figure(w, values={"n": 7})
    message = ex.figure(w, values={"n": 3, "mode": "b"})
    assert message.current() == {"message": "no <b>B</b> for 3×3", "fixed": True}
    assert "no B for 3×3" in repr(message)
    with pytest.raises(ValueError, match="nothing to draw"):
        ex.figure(w, values={"n": 3, "mode": "b"}, follow="x:0:0")


def test_figure_of_a_plain_state_draws_but_cannot_be_recomputed():
    fig = ex.figure({"panels": [ex.panel("x", "x", [[1, 2]])]})
    assert fig.current()["panels"][0]["text"] == [["1", "2"]] and fig.config["recipe"] is None
    with pytest.raises(ValueError, match="plain state dict, so it cannot be recomputed"):
        ex.rebuild("StateFigure", fig.config)
    with pytest.raises(TypeError, match="write figure\\(call\\(fn"):
        ex.figure(two_panels)
    with pytest.raises(TypeError, match="values= picks an explorable's control values"):
        ex.figure({"panels": []}, values={"n": 1})


def test_call_keeps_arguments_a_page_can_store_and_gets_them_back():
    x = np.array([[1.5, np.nan], [np.inf, -2]], dtype=np.float32)
    c = ex.call(ex.matrices, [x, np.arange(3)], ("a", "b"), scale=["div", "seq"], ops=[None, "="])
    back = ex.StateCall.from_recipe(json.loads(json.dumps(c.recipe, allow_nan=False)))
    assert back.args[1] == ("a", "b") and back.kwargs == {"scale": ["div", "seq"], "ops": [None, "="]}
    np.testing.assert_array_equal(back.args[0][0], x)
    assert back.args[0][0].dtype == np.float32 and back.args[0][1].dtype == np.arange(3).dtype
    assert back() == c()
    with pytest.raises(TypeError, match="argument 0 of matrices is a object"):
        ex.call(ex.matrices, object(), ["t"])
    with pytest.raises(TypeError, match="module-level function of the cnnviz package"):
        ex.call(lambda: {})
    with pytest.raises(TypeError, match="module-level function of the cnnviz package"):
        ex.call(two_panels, 1)   # defined in a test, not in the package


def test_matrices_is_a_row_of_panels():
    st = ex.matrices([[[1, -2]], [3, 4, 5]], ["A", "v"], scale=["div", "seq"], ops=[None, "="], subtitles=["s", None])
    shapes = [(p["id"], p["rows"], p["cols"], p["scale"]) for p in st["panels"]]
    assert shapes == [("m0", 1, 2, "div"), ("m1", 1, 3, "seq")]
    assert st["panels"][1]["op"] == "=" and st["panels"][0]["subtitle"] == "s" and "op" not in st["panels"][0]
    with pytest.raises(ValueError, match="2 matrices but 1 titles"):
        ex.matrices([[[1]], [[2]]], ["A"])
    with pytest.raises(ValueError, match="2 matrices but 1 entries in ops"):
        ex.matrices([[[1]], [[2]]], ["A", "B"], ops=["="])


def test_every_widget_shares_one_view_source_a_page_stores_once():
    a, b = Doubler(), ex.figure({"panels": [ex.panel("x", "x", [[1]])]})
    assert a.source is b.source is ex.view_source()
    static = ex.STATIC
    assert a.source.esm == (static / "explorable.js").read_text(encoding="utf-8")
    assert a.source.css == (static / "explorable.css").read_text(encoding="utf-8")
    assert a.get_state()["source"] == b.get_state()["source"] == f"IPY_MODEL_{a.source.model_id}"
    loader = (static / "loader.js").read_text(encoding="utf-8")
    assert a.get_state()["_esm"] == b.get_state()["_esm"] == loader and len(loader) < 2000
    assert "_css" not in a.get_state()  # the loader puts the view's style sheet in the page once
    a.source.close()
    assert Doubler().source is not a.source  # a closed source is made again
