"""One design for every explorable and every grid figure in the book: Python computes, the browser draws.

An explorable is a small `anywidget <https://anywidget.dev>`_ widget.  Its Python side is a pure
function of the control values, ``state(**values) -> dict``, that calls ``mlp_cnn_core`` and returns
what the picture needs (the numbers to write in each cell, colours, winners, windows, which cells a
gradient reaches).  When the widget is created it computes the state of *every* combination of its
discrete controls, so the browser redraws instantly, with or without a running kernel: on the
book's web page the widget works from its saved state.  Controls that need new computation (a new
random draw, a typed matrix) are *actions*: they run in the kernel and replace all the states.

A subclass of :class:`Explorable` defines ``TITLE``, ``make_controls()`` (a list of :func:`control`),
optionally ``make_actions()`` (a list of :func:`action`) and ``act(name, value)``, and
``state(**values)``.  Everything it needs to rebuild itself lives in ``self.config`` (JSON-able
keyword arguments of its constructor), so ``rebuild(kind, config)`` recomputes any saved explorable
-- the browser tests use that to check that what the page draws is what the core computes.
:class:`SeededExplorable` adds the usual "new random values" action.

A state is a dict::

    {"panels": [panel, ...],      # drawn side by side, wrapping on narrow screens
     "links": {cell_id: link},    # hover / click / keyboard: what a cell is connected to
     "caption": "text",           # below the panels (may hold <b>, <i>, <sub>, <sup>, <code>)
     "focus": cell_id,            # optional: the cell followed when the state is first drawn
     "legend": {key: "text"}}     # optional: your wording for legend entries (None hides one)

or ``{"message": "why there is nothing to draw"}`` for an impossible combination.  A panel is
built with :func:`panel`; a cell id is ``"<panel id>:<row>:<col>"`` (see :func:`cell_id`); a link
is built with :func:`link`; an outlined rectangle of cells with :func:`window`.  Cells that share
one link store it once (the others hold the id of the first cell that has it).

The picture language (one view, ``static/explorable.js`` and ``static/explorable.css``, draws
every explorable and every figure, in the page's light and dark themes; a notebook stores the view
once, in a :class:`ViewSource` that every widget's small loader, ``static/loader.js``, imports):

* **fills** -- ``scale="seq"`` shades a panel from its smallest to its largest value (``span``
  fixes the range), ``"div"`` colours positive values vermillion and negative values blue, centred
  on zero (gradients; ``limit`` fixes the range), ``"none"`` leaves the cells plain.  Fills stay
  light enough for text contrast of at least 4.5:1 in both themes.
* **cell classes** (space-separated, per cell): ``win`` a window's maximum (bold, orange outline),
  ``tie`` a tied maximum (dashed orange), ``sel`` a selected cell (purple), ``hl`` a highlighted
  cell (green), ``pad`` padding (grey), ``dead`` a cell that passes no gradient, ``dim`` and
  ``zero`` muted text (``dead``, ``dim``, ``zero`` and ``pad`` also fade the fill).
* **windows** (:func:`window`): dashed blue by default; the classes ``c1`` … ``c4`` give up to four
  windows their own colour and line style, each inset a little more than the one before so windows
  that overlap stay visible; ``dead`` is a window that passes no gradient (dashed grey).
  :func:`pool_windows` gives the windows of a k×k pooling with stride k on one panel.
* **panel extras**: ``op`` -- a glyph drawn before the panel (``"⊙"``, ``"="``, ``"→"``, ``"+"``,
  ``"⋆"``); ``subtitle``; ``row_labels``/``col_labels``; ``new_row`` starts a new row of panels.
  Titles may use ``<sub>``/``<sup>`` (``"∂L/∂L1"``, ``"X<sub>uv</sub>"``).
* **numbers**: each cell's text is :func:`~cnnviz.draw.format_value` of its value (3 significant
  digits) unless ``text`` is given; the view widens a panel's cells to fit its longest text, and
  a rounded value's fuller text (6 significant digits) is kept for the read-out below the panels.
* **legend**: generated from what a state draws (cell classes, window classes, fills, the followed
  cell and what it links to); a state's ``"legend"`` dict changes the wording of an entry
  (``{"win": "the label", "window.c2": "the window of Y<sub>01</sub>"}``) or hides it (``None``).
  The keys are listed in :data:`LEGEND`.

How to draw a figure
--------------------
A static figure of the book (a grid of numbers, windows, winners, a mask, operators between
panels) is a *state* drawn by the same view, with no controls: :func:`figure`.  Write the state
function in the chapter's module (``cnnviz/<chapter>.py``), next to its explorable, and call it
through :func:`call` so the page test can recompute the figure with the current core::

    # cnnviz/conv.py
    def rotation_state(x, k) -> dict:
        \"\"\"∂L/∂X of one 3×3 kernel: pad(∂L/∂Y) correlated with rot180(K).\"\"\"
        x, k = np.asarray(x, float), np.asarray(k, float)
        y, cache = core.conv2d_forward(x[None, None], k[None, None])
        dx, _, _ = core.conv2d_backward(np.ones_like(y), cache)
        return {"panels": [
                    panel("x", "X (4×4)", x, scale="div",
                          windows=[window("x", 0, 0, 3, 3, "c1"), window("x", 0, 1, 3, 3, "c2")]),
                    panel("k", "rot180(K)", core.rot180(k), op="⋆"),
                    panel("dx", "∂L/∂X", dx[0, 0], scale="div", op="=",
                          classes=np.where(dx[0, 0] == 0, "zero", ""))],
                "caption": "Each input cell collects one product per window that reads it.",
                "legend": {"window.c1": "window of Y<sub>00</sub>", "window.c2": "window of Y<sub>01</sub>"}}

    # the notebook (last line of a cell)
    cnnviz.figure(cnnviz.call(conv.rotation_state, x, K), title="Two windows, one kernel")

:func:`figure` also draws an explorable as it is now (``cnnviz.figure(explorable, values={...})``)
and follows a cell as hovering shows it (``follow="dx:3:2"``: the cell, the cells it links to,
its windows and the read-out text); ``panels=[...]`` picks panels.  For a plain row of matrices
use :func:`matrices`::

    cnnviz.figure(cnnviz.call(cnnviz.matrices, [P, K_rot, dXX], ["pad(∂L/∂L1)", "rot180(W)", "∂L/∂XX"],
                              scale="div", ops=[None, "⋆", "="]))

A figure made from a plain state dict draws too, but cannot be recomputed (:func:`rebuild` says
so), so the book's page test cannot check its numbers: in the book, use :func:`call`.
"""
from __future__ import annotations

import functools
import gzip
import importlib
import itertools
import json
import math
import pathlib
import pkgutil
import re
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Set, Tuple, Union

import anywidget
import ipywidgets
import numpy as np
import traitlets

from .draw import format_value

__all__ = ["Explorable", "SeededExplorable", "StateFigure", "StateCall", "ViewSource", "view_source", "control",
           "action", "panel", "link", "cell_id", "window", "pool_windows", "rebuild", "figure", "call", "matrices",
           "figure_state", "legend_entries", "plain_text", "REGISTRY", "LEGEND", "CELL_CLASSES", "WINDOW_CLASSES",
           "state_key", "gzip_size"]

STATIC = pathlib.Path(__file__).parent / "static"

#: Every explorable class by name (filled in when a subclass is defined).
REGISTRY: Dict[str, type] = {}

NEEDS_KERNEL = ("needs a running Python kernel: open this chapter in Binder or Colab "
                "(the rocket button at the top of the page) and run it")

#: The classes a cell may carry (see the module docstring).
CELL_CLASSES = ("win", "tie", "sel", "hl", "pad", "dead", "dim", "zero")
#: The classes a window may carry.
WINDOW_CLASSES = ("c1", "c2", "c3", "c4", "dead")

#: Every legend entry the view can draw, in the order it draws them, with its default wording
#: (``None``: no entry unless a state gives the wording).  ``fill.*`` are the ``"div"`` colours;
#: a cell class is its own key; ``window`` is a window without a class, ``window.<class>`` one
#: with; ``follow.*`` is what hovering (or a figure's ``follow``) shows.
LEGEND: Dict[str, Optional[str]] = {
    "fill.pos": "positive",
    "fill.neg": "negative",
    "win": "maximum of its window",
    "tie": "tied maximum",
    "sel": "selected cell",
    "hl": "highlighted cell",
    "pad": "padding",
    "dead": "passes no gradient",
    "dim": None,
    "zero": None,
    "window": "window",
    "window.c1": "window 1",
    "window.c2": "window 2",
    "window.c3": "window 3",
    "window.c4": "window 4",
    "window.dead": "dead window (passes no gradient)",
    "follow.cell": "followed cell",
    "follow.cells": "cells it links to",
    "follow.windows": "its windows",
}

_TAGS = re.compile(r"</?(b|i|sub|sup|code|br)>")


def plain_text(s: str) -> str:
    """A caption, title or link text without its inline HTML tags."""
    return _TAGS.sub("", str(s))


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
    """The id of cell ``(r, c)`` of panel ``panel_id``: ``"<panel id>:<row>:<col>"``."""
    return f"{panel_id}:{int(r)}:{int(c)}"


def _check_classes(value: Any, allowed: Sequence[str], what: str) -> str:
    text = "" if value is None else str(value)
    unknown = [t for t in text.split() if t not in allowed]
    if unknown:
        raise ValueError(f"{what}: unknown class {unknown[0]!r}; the classes are {list(allowed)}")
    return text


def window(panel_id: str, r: int, c: int, h: int, w: int, cls: str = "") -> List[Any]:
    """An outlined rectangle of cells ``[panel, row, col, height, width, class]``: rows ``r`` to
    ``r + h - 1`` and columns ``c`` to ``c + w - 1`` of panel ``panel_id`` (it may reach outside the
    grid).  ``cls``: ``""`` (dashed blue), ``"c1"`` … ``"c4"`` (a colour and line style each,
    staggered insets; with more windows, cycle them or outline a few), ``"dead"`` (dashed grey),
    optionally together (``"c2 dead"``)."""
    cls = _check_classes(cls, WINDOW_CLASSES, f"window on {panel_id!r}")
    return [panel_id, int(r), int(c), int(h), int(w), cls]


def pool_windows(panel_id: str, n: int, k: int = 2) -> List[List[Any]]:
    """The ``n × n`` windows of a k×k pooling with stride k, outlined (dashed) on the panel of the
    map it pools, row by row."""
    return [window(panel_id, k * i, k * j, k, k) for i in range(n) for j in range(n)]


def _text(v: Any, fmt: Optional[str]) -> str:
    if isinstance(v, str):
        return v
    if v is None:
        return ""
    return format_value(v, fmt)


def _grid(name: str, pid: str, value: Any, shape: Tuple[int, int]) -> List[List[Any]]:
    grid = np.asarray(value, dtype=object)
    if grid.shape != shape:
        raise ValueError(f"panel {pid!r}: {name} must have the values' shape {shape}, got {grid.shape}")
    return grid.tolist()


def panel(pid: str, title: str, values: Any, *, text: Any = None, fmt: Optional[str] = None, scale: str = "seq",
          classes: Any = None, windows: Iterable[List[Any]] = (), row_labels: Optional[Sequence[str]] = None,
          col_labels: Optional[Sequence[str]] = None, limit: Optional[float] = None,
          span: Optional[Tuple[float, float]] = None, op: Optional[str] = None, subtitle: Optional[str] = None,
          new_row: bool = False) -> Dict[str, Any]:
    """One drawn grid.

    ``values`` (2-D) colour the cells: ``scale="seq"`` shades from the smallest to the largest
    finite value (``span=(lo, hi)`` fixes that range, e.g. to compare two panels), ``"div"`` centres
    a two-colour scale on zero (gradients; ``limit`` fixes its range), ``"none"`` leaves cells plain.
    ``text`` (2-D; strings, numbers or ``None``) is written in the cells (default: the values,
    formatted with ``fmt`` or :func:`~cnnviz.draw.format_value`); where the written number is
    rounded, the value to 6 significant digits is kept for the read-out.  ``classes`` (2-D
    strings, space-separated, from :data:`CELL_CLASSES`) mark cells.  ``windows`` are outlined
    (:func:`window`).  ``title`` and ``subtitle`` may use ``<sub>``/``<sup>``/``<b>``/``<i>``; ``op``
    is a glyph drawn before the panel (``"⊙"``, ``"="``, ``"→"``); ``new_row`` starts a new row.
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
        lo, hi = (float(M[finite].min()), float(M[finite].max())) if span is None else map(float, span)
        lim = float(limit) if limit else max(abs(lo), abs(hi))
        for r in range(R):
            for c in range(C):
                if not finite[r, c]:
                    continue
                v = float(M[r, c])
                if scale == "div":
                    f = 0.0 if lim == 0 else max(-1.0, min(1.0, v / lim))
                else:
                    f = 0.0 if hi == lo else max(0.0, min(1.0, (v - lo) / (hi - lo)))
                fill[r][c] = round(f, 3)
    out: Dict[str, Any] = {"id": pid, "title": title, "rows": R, "cols": C}
    if text is None:
        out["text"] = [[_text(M[r, c], fmt) for c in range(C)] for r in range(R)]
        exact = [[format_value(M[r, c], digits=6) for c in range(C)] for r in range(R)]
        exact = [[e if e != t else "" for e, t in zip(er, tr)] for er, tr in zip(exact, out["text"])]
        if any(any(row) for row in exact):
            out["exact"] = exact
    else:
        out["text"] = [[_text(v, fmt) for v in row] for row in _grid("text", pid, text, (R, C))]
    out["fill"] = fill
    out["scale"] = scale
    if classes is not None:
        out["classes"] = [[_check_classes(v, CELL_CLASSES, f"panel {pid!r}") for v in row]
                          for row in _grid("classes", pid, classes, (R, C))]
    out["windows"] = [list(w) for w in windows]
    if row_labels is not None:
        out["rowLabels"] = [str(s) for s in row_labels]
        if len(out["rowLabels"]) != R:
            raise ValueError(f"panel {pid!r}: {len(out['rowLabels'])} row labels for {R} rows")
    if col_labels is not None:
        out["colLabels"] = [str(s) for s in col_labels]
        if len(out["colLabels"]) != C:
            raise ValueError(f"panel {pid!r}: {len(out['colLabels'])} column labels for {C} columns")
    if op:
        out["op"] = str(op)
    if subtitle:
        out["subtitle"] = str(subtitle)
    if new_row:
        out["newRow"] = True
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


def _link_of(links: Dict[str, Any], cid: str) -> Optional[Dict[str, Any]]:
    lk = links.get(cid)
    return links.get(lk) if isinstance(lk, str) else lk


def _used_keys(state: Dict[str, Any]) -> Set[str]:
    """The :data:`LEGEND` keys a state draws."""
    used = set()
    for p in state.get("panels", []):
        if p.get("scale") == "div":
            for row in p["fill"]:
                used.update("fill.pos" if f > 0 else "fill.neg" for f in row if f)
        for row in p.get("classes") or []:
            for cls in row:
                used.update(cls.split())
        for w in p.get("windows", []):
            tokens = str(w[5] if len(w) > 5 else "").split()
            used.update([f"window.{t}" for t in tokens] or ["window"])
    links = state.get("links") or {}
    if links:
        used.add("follow.cell")
        for lk in links.values():
            if isinstance(lk, dict) and lk.get("cells"):
                used.add("follow.cells")
            if isinstance(lk, dict) and lk.get("windows"):
                used.add("follow.windows")
    return used


def _check_legend(given: Dict[str, Any]) -> None:
    unknown = sorted(set(given) - set(LEGEND))
    if unknown:
        raise ValueError(f"legend: unknown key {unknown[0]!r}; the keys are {list(LEGEND)}")


def legend_entries(state: Dict[str, Any]) -> List[List[str]]:
    """The legend of a state: ``[key, text]`` for everything it draws that has a wording (the
    default of :data:`LEGEND` or the state's own ``"legend"`` dict), in :data:`LEGEND`'s order."""
    if "message" in state:
        return []
    given = state.get("legend")
    if isinstance(given, list):  # already worked out
        return given
    wording = dict(LEGEND)
    if isinstance(given, dict):
        _check_legend(given)
        wording.update(given)
    used = _used_keys(state)
    return [[k, str(wording[k])] for k in LEGEND if k in used and wording.get(k)]


def _wording(state: Dict[str, Any]) -> Dict[str, Optional[str]]:
    """The legend wording a state asked for (also from a worked-out legend: what it left out of
    what it draws was hidden)."""
    given = state.get("legend")
    if isinstance(given, dict):
        return dict(given)
    if isinstance(given, list):
        wording: Dict[str, Optional[str]] = {k: None for k in _used_keys(state)}
        wording.update({k: t for k, t in given})
        return wording
    return {}


def _finish(state: Dict[str, Any]) -> Dict[str, Any]:
    """A cleaned state with its legend worked out (what the page stores)."""
    if "message" in state:
        return state
    return {**state, "legend": legend_entries(state)}


def _share_links(state: Dict[str, Any]) -> Dict[str, Any]:
    """Store a link that several cells share once: the others hold the first cell's id."""
    links = state.get("links")
    if not links:
        return state
    first: Dict[Any, str] = {}
    shared = {}
    for cid, lk in links.items():
        if isinstance(lk, str):
            shared[cid] = lk
            continue
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


class ViewSource(ipywidgets.Widget):
    """The browser view of every explorable and figure (``static/explorable.js`` and
    ``static/explorable.css``), stored once per notebook: each widget names it in its ``source``,
    and the widget's own ES module (``static/loader.js``, a few hundred bytes) loads it.  So a page
    with many figures stores the view once, not once per figure."""

    esm = traitlets.Unicode("").tag(sync=True)
    css = traitlets.Unicode("").tag(sync=True)


_SOURCE: Optional[ViewSource] = None


def view_source() -> ViewSource:
    """The notebook's one :class:`ViewSource` (made on first use, and again if it was closed)."""
    global _SOURCE
    if _SOURCE is None or _SOURCE.comm is None:
        _SOURCE = ViewSource(esm=(STATIC / "explorable.js").read_text(encoding="utf-8"),
                             css=(STATIC / "explorable.css").read_text(encoding="utf-8"))
    return _SOURCE


class Explorable(anywidget.AnyWidget):
    """Base class of the book's explorables (see the module docstring)."""

    _esm = STATIC / "loader.js"

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
    # the view (explorable.js, explorable.css), shared by every widget of the notebook
    source = traitlets.Instance(ViewSource, allow_none=True).tag(sync=True, **ipywidgets.widget_serialization)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "state" in cls.__dict__:  # a drawable explorable, not an intermediate base
            REGISTRY[cls.__name__] = cls

    def __init__(self, values: Optional[Dict[str, Any]] = None, **config: Any) -> None:
        super().__init__(source=view_source())
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
        """The explorable's controls (a list of :func:`control`)."""
        raise NotImplementedError

    def make_actions(self) -> List[Dict[str, Any]]:
        """Its kernel-side controls (a list of :func:`action`; none by default)."""
        return []

    def state(self, **values: Any) -> Dict[str, Any]:
        """The state drawn for one combination of control values (see the module docstring)."""
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
            states[state_key(combo)] = _finish(_clean(self.state(**dict(zip(names, combo)))))
        self.controls = _clean(controls)
        self.actions = self.make_actions()
        self.states = states

    def _on_msg(self, widget: Any, content: Any, buffers: Any) -> None:
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


def _import_all() -> None:
    """Import every module of the package, so every explorable kind is registered."""
    for mod in pkgutil.iter_modules([str(pathlib.Path(__file__).parent)]):
        importlib.import_module(f"{__package__}.{mod.name}")


def rebuild(kind: str, config: Dict[str, Any]) -> Explorable:
    """The explorable (or figure) ``kind`` recomputed from its saved ``config`` with the current core."""
    if kind not in REGISTRY:  # its module may not be imported yet
        _import_all()
    if kind not in REGISTRY:
        raise ValueError(f"unknown explorable {kind!r}; known: {sorted(REGISTRY)}")
    return REGISTRY[kind](**config)


# ------------------------------------------------------------------------------------------------
# Fixed-state figures
# ------------------------------------------------------------------------------------------------

def _encode(obj: Any, where: str) -> Any:
    """A state function's argument as JSON that :func:`_decode` turns back into the same value
    (numpy arrays keep their dtype and shape, tuples stay tuples, NaN and ±∞ survive)."""
    if obj is None or isinstance(obj, (str, bool)):
        return obj
    if isinstance(obj, (int, np.integer)) and not isinstance(obj, np.bool_):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        v = float(obj)
        return v if math.isfinite(v) else {"__float__": repr(v)}
    if isinstance(obj, np.bool_):
        return bool(obj)
    if isinstance(obj, np.ndarray):
        if obj.dtype.kind not in "biuf":
            raise TypeError(f"{where} is an array of dtype {obj.dtype}, which a page cannot store")
        flat = [_encode(v, where) for v in obj.ravel().tolist()]
        return {"__ndarray__": flat, "dtype": str(obj.dtype), "shape": list(obj.shape)}
    if isinstance(obj, tuple):
        return {"__tuple__": [_encode(v, f"{where}[{n}]") for n, v in enumerate(obj)]}
    if isinstance(obj, list):
        return [_encode(v, f"{where}[{n}]") for n, v in enumerate(obj)]
    if isinstance(obj, dict) and all(isinstance(k, str) for k in obj):
        return {k: _encode(v, f"{where}[{k!r}]") for k, v in obj.items()}
    raise TypeError(f"{where} is a {type(obj).__name__}, which a page cannot store: pass numbers, strings, "
                    "lists, tuples, dicts or numpy arrays (write a state function that takes those)")


def _decode(obj: Any) -> Any:
    if isinstance(obj, list):
        return [_decode(v) for v in obj]
    if isinstance(obj, dict):
        if "__float__" in obj:
            return float(obj["__float__"])
        if "__tuple__" in obj:
            return tuple(_decode(v) for v in obj["__tuple__"])
        if "__ndarray__" in obj:
            return np.array([_decode(v) for v in obj["__ndarray__"]], dtype=obj["dtype"]).reshape(obj["shape"])
        return {k: _decode(v) for k, v in obj.items()}
    return obj


class StateCall:
    """A state function of a ``cnnviz`` module and its arguments: what :func:`figure` draws and
    what :func:`rebuild` recomputes.  Make one with :func:`call`."""

    def __init__(self, fn: Callable[..., Dict[str, Any]], args: Sequence[Any] = (),
                 kwargs: Optional[Dict[str, Any]] = None) -> None:
        if isinstance(fn, functools.partial):
            args, kwargs = tuple(fn.args) + tuple(args), {**fn.keywords, **(kwargs or {})}
            fn = fn.func
        module, qualname = getattr(fn, "__module__", None), getattr(fn, "__qualname__", "")
        if not callable(fn) or not module or "<" in qualname or not module.split(".")[0] == __package__:
            raise TypeError(f"call() needs a module-level function of the {__package__} package (so the page "
                            f"test can import it), got {fn!r}")
        self.fn = fn
        self.args = tuple(args)
        self.kwargs = dict(kwargs or {})
        name = qualname
        self.recipe = {"fn": f"{module}:{qualname}",
                       "args": [_encode(a, f"argument {n} of {name}") for n, a in enumerate(self.args)],
                       "kwargs": {k: _encode(v, f"argument {k!r} of {name}") for k, v in self.kwargs.items()}}

    @classmethod
    def from_recipe(cls, recipe: Dict[str, Any]) -> "StateCall":
        """The call a saved recipe describes (its module imported, its arguments decoded)."""
        module, _, qualname = str(recipe["fn"]).partition(":")
        if module.split(".")[0] != __package__:
            raise ValueError(f"a figure's state function must live in {__package__}, got {recipe['fn']!r}")
        fn: Any = importlib.import_module(module)
        for part in qualname.split("."):
            fn = getattr(fn, part)
        return cls(fn, _decode(recipe.get("args", [])), _decode(recipe.get("kwargs", {})))

    def __call__(self) -> Dict[str, Any]:
        return self.fn(*self.args, **self.kwargs)

    def __repr__(self) -> str:
        return f"call({self.recipe['fn']}, {len(self.args)} args, {sorted(self.kwargs)})"


def call(fn: Callable[..., Dict[str, Any]], *args: Any, **kwargs: Any) -> StateCall:
    """``fn(*args, **kwargs)`` kept for :func:`figure`: ``fn`` is a state function of a ``cnnviz``
    module, the arguments numbers, strings, lists, tuples, dicts or numpy arrays."""
    return StateCall(fn, args, kwargs)


def figure_state(state: Dict[str, Any], *, follow: Optional[str] = None, panels: Optional[Sequence[str]] = None,
                 caption: Union[bool, str] = True, legend: Optional[Dict[str, Optional[str]]] = None
                 ) -> Dict[str, Any]:
    """What a fixed-state figure draws of ``state``: the ``panels`` picked (ids, in the state's
    order; default all), the ``follow``ed cell with the cells and windows its link shows (the
    only link kept), the caption kept (``True``), dropped (``False``) or replaced (a string), and
    the ``legend`` wording merged into the state's."""
    if "message" in state:
        if follow is not None:
            raise ValueError(f"this state has nothing to draw, so no cell to follow: {plain_text(state['message'])}")
        return {"message": state["message"], "fixed": True}
    ids = [p["id"] for p in state["panels"]]
    if panels is not None:
        unknown = [p for p in panels if p not in ids]
        if unknown:
            raise ValueError(f"no panel {unknown[0]!r} in this state; its panels are {ids}")
    out: Dict[str, Any] = {"panels": [p for p in state["panels"] if panels is None or p["id"] in panels],
                           "fixed": True}
    if follow is not None:
        links = state.get("links") or {}
        lk = _link_of(links, follow)
        if lk is None:
            raise ValueError(f"no cell {follow!r} to follow; linked cells are e.g. {sorted(links)[:4]}")
        out["links"] = {follow: lk}
        out["focus"] = follow
    text = state.get("caption", "") if caption is True else (caption or "")
    if text:
        out["caption"] = text
    _check_legend(legend or {})
    wording = {**_wording(state), **(legend or {})}
    if wording:
        out["legend"] = wording
    return out


class StateFigure(Explorable):
    """A figure of one fixed state, drawn by the explorables' own view (no controls).  Make it
    with :func:`figure`; ``config`` holds the recipe that recomputes it (:func:`rebuild`)."""

    TITLE = ""

    def __init__(self, recipe: Optional[Dict[str, Any]] = None, title: Optional[str] = None,
                 caption: Union[bool, str] = True, follow: Optional[str] = None,
                 panels: Optional[Sequence[str]] = None, legend: Optional[Dict[str, Optional[str]]] = None,
                 _state: Optional[Dict[str, Any]] = None) -> None:
        if recipe is None and _state is None:
            raise ValueError("this figure was drawn from a plain state dict, so it cannot be recomputed: "
                             "make it with cnnviz.figure(cnnviz.call(state_function, ...)) or from an explorable")
        self._given = _state
        self._recipe = recipe
        self._options = {"follow": follow, "panels": None if panels is None else list(panels),
                         "caption": caption, "legend": legend}
        super().__init__(recipe=recipe, title=title, caption=caption, follow=follow,
                         panels=self._options["panels"], legend=legend)
        self.title = title or ""

    def make_controls(self) -> List[Dict[str, Any]]:
        return []

    def _source_state(self) -> Dict[str, Any]:
        if self._given is not None:
            return self._given
        recipe = self._recipe or {}
        if "fn" in recipe:
            return _clean(StateCall.from_recipe(recipe)())
        if "explorable" in recipe:
            w = rebuild(recipe["explorable"], recipe.get("config", {}))
            values = {**w.values, **recipe.get("values", {})}
            return w.states[state_key([values[c["name"]] for c in w.controls])]
        raise ValueError(f"a figure's recipe names a state function ('fn') or an explorable, got {sorted(recipe)}")

    def state(self) -> Dict[str, Any]:
        return figure_state(self._source_state(), **self._options)

    def __repr__(self) -> str:
        st = self.current()
        if "message" in st:
            what = plain_text(st["message"])
        else:
            what = ", ".join(plain_text(p["title"]) for p in st["panels"])
        label = f"{self.title}: {what}" if self.title else what
        return f"Figure — {label} (drawn by the book's view: run this cell, or read the book online)."


def figure(source: Union[Dict[str, Any], StateCall, Explorable], *, title: Optional[str] = None,
           caption: Union[bool, str] = True, follow: Optional[str] = None, panels: Optional[Sequence[str]] = None,
           legend: Optional[Dict[str, Optional[str]]] = None, values: Optional[Dict[str, Any]] = None
           ) -> StateFigure:
    """A static figure of one state, drawn by the explorables' view (the module docstring shows how).

    ``source``: :func:`call` of a state function (recomputable: use this in the book), an
    explorable (its state for its current ``values``, or those given), or a state dict (drawn,
    but not recomputable).  ``title`` goes above; ``caption`` keeps (``True``), drops (``False``) or
    replaces (a string) the state's caption; ``follow`` (a cell id) shows what hovering that cell
    shows; ``panels`` picks panel ids; ``legend`` rewords legend entries (see :data:`LEGEND`).
    """
    opts: Dict[str, Any] = {"title": title, "caption": caption, "follow": follow, "panels": panels, "legend": legend}
    if values is not None and not isinstance(source, Explorable):
        raise TypeError("values= picks an explorable's control values; this source is not an explorable")
    if isinstance(source, StateCall):
        return StateFigure(recipe=source.recipe, _state=_clean(source()), **opts)
    if isinstance(source, Explorable):
        chosen = dict(source.values)
        for name, value in (values or {}).items():
            spec = source._control(name)
            if value not in spec["options"]:
                raise ValueError(f"{name} must be one of {spec['options']!r}, got {value!r}")
            chosen[name] = value
        recipe = {"explorable": source.kind, "config": source.config, "values": chosen}
        return StateFigure(recipe=recipe, _state=source.states[state_key([chosen[c["name"]] for c in source.controls])],
                           **opts)
    if isinstance(source, dict):
        return StateFigure(recipe=None, _state=_clean(source), **opts)
    if callable(source):
        raise TypeError("figure() takes a state, not a function: write figure(call(fn, *args, **kwargs))")
    raise TypeError(f"figure() draws a state dict, call(...) or an explorable, got {type(source).__name__}")


def matrices(mats: Sequence[Any], titles: Sequence[str], *, scale: Union[str, Sequence[str]] = "seq",
             ops: Optional[Sequence[Optional[str]]] = None, subtitles: Optional[Sequence[Optional[str]]] = None,
             caption: str = "") -> Dict[str, Any]:
    """The state of a row of matrices (panel ids ``m0``, ``m1``, ...): ``scale`` for all or one per
    matrix, ``ops`` a glyph before each (``None`` for none), optional ``subtitles``.  Draw it with
    ``figure(call(matrices, mats, titles, ...))``."""
    n = len(mats)
    if len(titles) != n:
        raise ValueError(f"{n} matrices but {len(titles)} titles")
    scales = [scale] * n if isinstance(scale, str) else list(scale)
    ops = list(ops) if ops is not None else [None] * n
    subtitles = list(subtitles) if subtitles is not None else [None] * n
    for name, seq in (("scale", scales), ("ops", ops), ("subtitles", subtitles)):
        if len(seq) != n:
            raise ValueError(f"{n} matrices but {len(seq)} entries in {name}")
    panels = []
    for k, (m, t, s, o, sub) in enumerate(zip(mats, titles, scales, ops, subtitles)):
        m = np.asarray(m, dtype=float)
        panels.append(panel(f"m{k}", t, m[None, :] if m.ndim == 1 else m, scale=s, op=o, subtitle=sub))
    return {"panels": panels, "caption": caption}
