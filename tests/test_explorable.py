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
