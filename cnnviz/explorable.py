"""One design for every explorable in the book: Python computes, the browser draws.

An explorable is a small `anywidget <https://anywidget.dev>`_ widget.  Its Python side is a pure
function of the control values, ``state(**values) -> dict``, that calls ``mlp_cnn_core`` and returns
what the picture needs (the numbers to write in each cell, colours, winners, windows, which cells a
gradient reaches).  When the widget is created it computes the state of *every* combination of its
discrete controls, so the browser redraws instantly, with or without a running kernel: on the
book's web page the widget works from its saved state.  Controls that need new computation (a new
random draw, a typed matrix) are *actions*: they run in the kernel and replace all the states.

A subclass defines ``TITLE``, ``controls()`` (a list of :func:`control`), optionally ``actions()``
(a list of :func:`action`) and ``act(name, value)``, and ``state(**values)``.  Everything it needs
to rebuild itself lives in ``self.config`` (JSON-able keyword arguments of its constructor), so
``rebuild(kind, config)`` recomputes any saved explorable -- the browser test uses that to check
that what the page draws is what the core computes.

A state is a dict::

    {"panels": [panel, ...],      # drawn side by side, wrapping on narrow screens
     "links": {cell_id: link},    # hover / click / keyboard: what a cell is connected to
     "caption": "text",           # below the panels (may hold <b>, <i>, <sub>, <sup>)
     "focus": cell_id}            # optional: the cell followed when the state is first drawn

or ``{"message": "why there is nothing to draw"}`` for an impossible combination.  A panel is
built with :func:`panel`; a cell id is ``"<panel id>:<row>:<col>"`` (see :func:`cell_id`); a link
is built with :func:`link`.  Cells that share one link store it once (the others hold the id of the
first cell that has it).
"""
from __future__ import annotations

import gzip
import itertools
import json
import math
import pathlib
from typing import Any, Dict, Iterable, List, Optional, Sequence

import anywidget
import numpy as np
import traitlets

from .draw import format_value

__all__ = ["Explorable", "SeededExplorable", "control", "action", "panel", "link", "cell_id", "window", "rebuild",
           "REGISTRY", "state_key", "gzip_size"]

STATIC = pathlib.Path(__file__).parent / "static"

#: Every explorable class by name (filled in when a subclass is defined).
REGISTRY: Dict[str, type] = {}

NEEDS_KERNEL = ("needs a running Python kernel: open this chapter in Binder or Colab "
                "(the rocket button at the top of the page) and run it")


def _key_part(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def state_key(values: Sequence[Any]) -> str:
    """The key of one combination of control values (the browser builds the same string)."""
    return "|".join(_key_part(v) for v in values)


def control(name: str, label: str, options: Sequence[Any], default: Any = None, kind: str = "slider",
            labels: Optional[Sequence[str]] = None, help: str = "") -> Dict[str, Any]:
    """A discrete control: ``kind`` is ``"slider"`` (ordered options), ``"select"`` or ``"toggle"``
    (``options`` must then be ``[False, True]``).  ``labels`` are what the reader sees."""
    options = list(options)
    if kind not in ("slider", "select", "toggle"):
        raise ValueError(f"kind must be 'slider', 'select' or 'toggle', got {kind!r}")
    if not options:
        raise ValueError(f"control {name!r} needs at least one option")
    if kind == "toggle" and (options != [False, True] or not all(isinstance(o, bool) for o in options)):
        raise ValueError(f"a toggle's options must be [False, True], got {options!r}")
    default = options[0] if default is None else default
    if default not in options:
        raise ValueError(f"control {name!r}: default {default!r} is not one of {options!r}")
    labels = [format_value(o) if isinstance(o, (int, float)) and not isinstance(o, bool) else str(o)
              for o in options] if labels is None else [str(s) for s in labels]
    if len(labels) != len(options):
        raise ValueError(f"control {name!r}: {len(labels)} labels for {len(options)} options")
    return {"name": name, "label": label, "kind": kind, "options": options,
            "keys": [_key_part(o) for o in options], "labels": labels, "default": default, "help": help}


def action(name: str, label: str, kind: str = "button", placeholder: str = "", help: str = "") -> Dict[str, Any]:
    """A control that needs the kernel: ``"button"`` or ``"text"`` (a text field and an apply button)."""
    if kind not in ("button", "text"):
        raise ValueError(f"kind must be 'button' or 'text', got {kind!r}")
    return {"name": name, "label": label, "kind": kind, "placeholder": placeholder, "help": help}


def cell_id(panel_id: str, r: int, c: int) -> str:
    return f"{panel_id}:{int(r)}:{int(c)}"


def window(panel_id: str, r: int, c: int, h: int, w: int, cls: str = "") -> List[Any]:
    """An outlined rectangle of cells ``[panel, row, col, height, width, class]``."""
    return [panel_id, int(r), int(c), int(h), int(w), cls]


def _text(v: Any, fmt: Optional[str]) -> str:
    if isinstance(v, str):
        return v
    if v is None:
        return ""
    return format_value(v, fmt)


def panel(pid: str, title: str, values, *, text=None, fmt: Optional[str] = None, scale: str = "seq",
          classes=None, windows: Iterable[List[Any]] = (), row_labels: Optional[Sequence[str]] = None,
          col_labels: Optional[Sequence[str]] = None, limit: Optional[float] = None) -> Dict[str, Any]:
    """One drawn grid.

    ``values`` (2-D) colour the cells: ``scale="seq"`` shades from the smallest to the largest
    finite value, ``"div"`` centres a two-colour scale on zero (gradients; ``limit`` fixes its
    range), ``"none"`` leaves cells plain.  ``text`` (2-D strings) is written in the cells (default:
    the values, formatted).  ``classes`` (2-D strings, space-separated) mark cells: ``win`` (a
    winner), ``tie``, ``pad`` (padding), ``dim``, ``sel`` (selected), ``zero``.
    """
    if scale not in ("seq", "div", "none"):
        raise ValueError(f"scale must be 'seq', 'div' or 'none', got {scale!r}")
    M = np.asarray(values, dtype=float)
    if M.ndim != 2:
        raise ValueError(f"panel {pid!r}: values must be 2-D, got shape {M.shape}")
    R, C = M.shape
    finite = np.isfinite(M)
    fill: List[List[Optional[float]]] = [[None] * C for _ in range(R)]
    if scale != "none" and finite.any():
        lo, hi = float(M[finite].min()), float(M[finite].max())
        lim = float(limit) if limit else max(abs(lo), abs(hi))
        for r in range(R):
            for c in range(C):
                if not finite[r, c]:
                    continue
                v = float(M[r, c])
                if scale == "div":
                    f = 0.0 if lim == 0 else max(-1.0, min(1.0, v / lim))
                else:
                    f = 0.0 if hi == lo else (v - lo) / (hi - lo)
                fill[r][c] = round(f, 3)
    if text is None:
        text = [[_text(M[r, c], fmt) for c in range(C)] for r in range(R)]
    else:
        text = [[_text(v, fmt) for v in row] for row in np.asarray(text, dtype=object).tolist()]
    if len(text) != R or any(len(row) != C for row in text):
        raise ValueError(f"panel {pid!r}: text must have the values' shape {M.shape}")
    out = {"id": pid, "title": title, "rows": R, "cols": C, "text": text, "fill": fill, "scale": scale}
    if classes is not None:
        cls = np.asarray(classes, dtype=object)
        if cls.shape != M.shape:
            raise ValueError(f"panel {pid!r}: classes must have the values' shape {M.shape}, got {cls.shape}")
        out["classes"] = [["" if v is None else str(v) for v in row] for row in cls.tolist()]
    out["windows"] = [list(w) for w in windows]
    if row_labels is not None:
        out["rowLabels"] = [str(s) for s in row_labels]
    if col_labels is not None:
        out["colLabels"] = [str(s) for s in col_labels]
    return out


def link(cells: Iterable[str] = (), windows: Iterable[List[Any]] = (), text: str = "") -> Dict[str, Any]:
    """What hovering (or clicking, or reaching with the arrow keys) a cell shows: the ``cells`` to
    highlight, the ``windows`` to outline, and a sentence."""
    return {"cells": list(cells), "windows": [list(w) for w in windows], "text": text}


def gzip_size(obj: Any) -> int:
    """Bytes of ``obj`` as compact JSON, gzipped (what a page pays for an explorable's states)."""
    return len(gzip.compress(json.dumps(obj, separators=(",", ":")).encode(), 9))


def _clean(obj: Any) -> Any:
    """JSON-safe copy: numpy scalars and arrays to Python, tuples to lists, NaN/inf to their text."""
    t = type(obj)
    if t is str or t is int or t is bool or obj is None:
        return obj
    if t is float:
        return obj if math.isfinite(obj) else format_value(obj)
    if t is list or t is tuple:
        return [_clean(v) for v in obj]
    if t is dict:
        return {k if type(k) is str else str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, np.ndarray):
        return _clean(obj.tolist())
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return _clean(float(obj))
    if isinstance(obj, str):
        return str(obj)
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    raise TypeError(f"a state holds {type(obj).__name__}, which a page cannot store: {obj!r:.80}")


def _share_links(state: Dict[str, Any]) -> Dict[str, Any]:
    """Store a link that several cells share once: the others hold the first cell's id."""
    links = state.get("links")
    if not links:
        return state
    first: Dict[Any, str] = {}
    shared = {}
    for cid, lk in links.items():
        key = (tuple(lk["cells"]), tuple(tuple(w) for w in lk["windows"]), lk["text"])
        if key in first:
            shared[cid] = first[key]
        else:
            first[key] = cid
            shared[cid] = lk
    return {**state, "links": shared}


def _page_states(states: Dict[str, Any]) -> Dict[str, Any]:
    return {k: _share_links(v) for k, v in states.items()}


def _states_json(states: Dict[str, Any], widget: Any = None) -> str:
    """The states as the page stores them: one JSON text, which the browser parses once (sending the
    nested dict would make the widget machinery walk every cell of every state)."""
    return json.dumps(_page_states(states), separators=(",", ":"), ensure_ascii=False, allow_nan=False)


class Explorable(anywidget.AnyWidget):
    """Base class of the book's explorables (see the module docstring)."""

    _esm = STATIC / "explorable.js"
    _css = STATIC / "explorable.css"

    TITLE = "explorable"

    kind = traitlets.Unicode("").tag(sync=True)
    title = traitlets.Unicode("").tag(sync=True)
    config = traitlets.Dict().tag(sync=True)
    controls = traitlets.List().tag(sync=True)
    actions = traitlets.List().tag(sync=True)
    values = traitlets.Dict().tag(sync=True)
    # Python keeps the full states; the page stores them as one JSON text (see _states_json).
    states = traitlets.Dict().tag(sync=True, to_json=_states_json)
    needs_kernel = traitlets.Unicode(NEEDS_KERNEL).tag(sync=True)

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "state" in cls.__dict__:  # a drawable explorable, not an intermediate base
            REGISTRY[cls.__name__] = cls

    def __init__(self, values: Optional[Dict[str, Any]] = None, **config: Any):
        super().__init__()
        self.config = _clean(config)
        self.kind = type(self).__name__
        self.title = self.TITLE
        self._recompute()
        chosen = {c["name"]: c["default"] for c in self.controls}
        for name, value in (values or {}).items():
            spec = self._control(name)
            if value not in spec["options"]:
                raise ValueError(f"{name} must be one of {spec['options']!r}, got {value!r}")
            chosen[name] = value
        self.values = chosen
        self.on_msg(self._on_msg)

    # -- what a subclass provides ------------------------------------------------------------
    def make_controls(self) -> List[Dict[str, Any]]:
        raise NotImplementedError

    def make_actions(self) -> List[Dict[str, Any]]:
        return []

    def state(self, **values: Any) -> Dict[str, Any]:
        raise NotImplementedError

    def act(self, name: str, value: Any) -> None:
        """Change ``self.config`` for an action (a kernel-side control); the states follow."""
        raise ValueError(f"{type(self).__name__} has no action {name!r}")

    # -- machinery ------------------------------------------------------------------------------
    def _control(self, name: str) -> Dict[str, Any]:
        for c in self.controls:
            if c["name"] == name:
                return c
        raise ValueError(f"no control named {name!r}; the controls are {[c['name'] for c in self.controls]}")

    def _recompute(self) -> None:
        controls = self.make_controls()
        names = [c["name"] for c in controls]
        states = {}
        for combo in itertools.product(*(c["options"] for c in controls)):
            states[state_key(combo)] = _clean(self.state(**dict(zip(names, combo))))
        self.controls = _clean(controls)
        self.actions = self.make_actions()
        self.states = states

    def _on_msg(self, widget, content, buffers) -> None:
        kind = content.get("type") if isinstance(content, dict) else None
        if kind == "hello":
            self.send({"type": "kernel"})
        elif kind == "action":
            try:
                self.act(str(content.get("name")), content.get("value"))
                self._recompute()
                self.send({"type": "done", "name": content.get("name")})
            except (ValueError, TypeError) as exc:
                self.send({"type": "error", "name": content.get("name"), "text": str(exc)})

    def run_action(self, name: str, value: Any = None) -> None:
        """What the browser's action button does, callable from Python (tests, notebooks)."""
        self.act(name, value)
        self._recompute()

    def current(self) -> Dict[str, Any]:
        """The state drawn for the current control values."""
        return self.states[state_key([self.values[c["name"]] for c in self.controls])]

    def set(self, **values: Any) -> Dict[str, Any]:
        """Set controls from Python (as the reader would) and return the state now drawn."""
        new = dict(self.values)
        for name, value in values.items():
            spec = self._control(name)
            if value not in spec["options"]:
                raise ValueError(f"{name} must be one of {spec['options']!r}, got {value!r}")
            new[name] = value
        self.values = new
        return self.current()

    def page_states(self) -> Dict[str, Any]:
        """The states as the page stores them (a link shared by several cells stored once)."""
        return _page_states(self.states)

    def payload_size(self) -> int:
        """Gzipped bytes of everything the page stores for this explorable's drawings."""
        return len(gzip.compress((_states_json(self.states) + json.dumps(self.controls)).encode(), 9))

    def __repr__(self) -> str:
        # Shown where the widget cannot be drawn (a notebook before it runs): say what it is.
        return f"{self.title} — an interactive figure: run this cell to use it (or read the book online)."


class SeededExplorable(Explorable):
    """An explorable whose input is drawn from ``config["seed"]``: its action ``"new"`` (labelled
    ``NEW_LABEL``) draws the next one."""

    NEW_LABEL = "new random values"

    def make_actions(self) -> List[Dict[str, Any]]:
        return [action("new", self.NEW_LABEL)]

    def act(self, name: str, value: Any) -> None:
        if name != "new":
            super().act(name, value)
        self.config = {**self.config, "seed": int(self.config["seed"]) + 1}


def rebuild(kind: str, config: Dict[str, Any]) -> Explorable:
    """The explorable ``kind`` recomputed from its saved ``config`` (with the current core)."""
    if kind not in REGISTRY:  # its module may not be imported yet
        import importlib
        import pkgutil
        for mod in pkgutil.iter_modules([str(pathlib.Path(__file__).parent)]):
            importlib.import_module(f"{__package__}.{mod.name}")
    if kind not in REGISTRY:
        raise ValueError(f"unknown explorable {kind!r}; known: {sorted(REGISTRY)}")
    return REGISTRY[kind](**config)
