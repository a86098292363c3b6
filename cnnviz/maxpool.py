"""Chapter 02 (max pooling backward: the mask): the explorable and the chapter's figures.

``MaxPoolRouting`` is the chapter's explorable (drawn in the browser from precomputed states, see
:mod:`cnnviz.explorable`): a small integer map pooled with the window and stride the reader picks;
hovering an output cell shows its window and the one input cell its gradient reaches, hovering an
input cell shows the windows it lies in, the ones it wins and the sum it receives.
:func:`routing_state` is the pure function that computes one state.

:func:`routing_figure_state` is the state of the chapter's static figures (drawn by the same view
with :func:`cnnviz.figure`): every window of a small example outlined in its own colour, the
winners and tied maxima marked, the mask and the routed gradient beside it, one row of panels per
channel.  All numbers come from :mod:`mlp_cnn_core`; nothing here re-implements the pooling math.

Notation (the book's): ``X`` the input with cells ``(u, v)``, ``Y`` the output with cells
``(i, j)`` (one per window), ∂L/∂X and ∂L/∂Y the gradients.
"""
from __future__ import annotations

import re
from typing import Dict, Optional, Sequence, Tuple

import numpy as np

import mlp_cnn_core as core

from .draw import format_value, sub
from .explorable import Explorable, action, cell_id, control, link, panel, window

__all__ = ["random_input", "random_upstream", "parse_matrix", "coverage", "window_class",
           "window_legend", "routing_state", "routing_figure_state", "MaxPoolRouting"]


# ---------------------------------------------------------------------------------------------
# Small helpers (inputs, the text box, window geometry)
# ---------------------------------------------------------------------------------------------

def random_input(n: int, seed: int, low: int = 0, high: int = 9) -> np.ndarray:
    """An ``(n, n)`` float array of seeded random integers in ``[low, high]`` (ties are frequent)."""
    rng = np.random.default_rng([int(seed), int(n)])
    return rng.integers(low, high + 1, size=(n, n)).astype(float)


def random_upstream(shape: Tuple[int, int], seed: int) -> np.ndarray:
    """A seeded random upstream gradient ∂L/∂Y of small nonzero integers in ``{-3..-1, 1..3}``."""
    rng = np.random.default_rng([int(seed), 7, int(shape[0]), int(shape[1])])
    mag = rng.integers(1, 4, size=shape)
    sign = rng.choice([-1, 1], size=shape)
    return (mag * sign).astype(float)


def parse_matrix(text: str) -> np.ndarray:
    """Read a matrix typed as rows of numbers (rows on lines or separated by ``;``, numbers by
    spaces or commas).  Raises ``ValueError`` with a readable message when it is not a
    rectangular matrix of numbers."""
    rows = [r for r in re.split(r"[;\n]", text) if r.strip()]
    if not rows:
        raise ValueError("the box is empty")
    values = []
    for n, r in enumerate(rows):
        items = [t for t in re.split(r"[,\s]+", r.strip().strip("[]").strip()) if t]
        try:
            values.append([float(t) for t in items])
        except ValueError:
            raise ValueError(f"row {n} ({r.strip()!r}) is not a list of numbers") from None
    lengths = {len(v) for v in values}
    if len(lengths) != 1:
        raise ValueError(f"the rows have different lengths {sorted(lengths)}")
    return np.array(values, dtype=float)


def coverage(shape: Tuple[int, int], kernel: int, stride: int) -> np.ndarray:
    """How many windows contain each input cell (an int array of ``shape``).

    Average pooling's backward pass of an all-ones gradient gives each cell ``(number of
    windows containing it) / k²``; multiplying by ``k²`` gives the count.
    """
    _, cache = core.avgpool2d_forward(np.zeros(shape), kernel, stride)
    ones = np.ones(cache.out_shape)
    return np.rint(core.avgpool2d_backward(ones, cache) * kernel * kernel).astype(int)


# ---------------------------------------------------------------------------------------------
# The states (the explorable's and the figures')
# ---------------------------------------------------------------------------------------------


def window_class(i: int, j: int, overlap: bool = True) -> str:
    """The colour class of window ``(i, j)`` in a figure.  Overlapping windows get ``c1`` … ``c4``
    by the parity of ``i`` and ``j`` (each class inset a little more than the one before, so the
    outlines stay apart; neighbours, across or down, never share one; a 2×2 output gets c1, c2,
    c3, c4 in row-major order).  Windows that do not overlap need no inset: they alternate ``c1``
    and ``c2`` like the squares of a chessboard."""
    i, j = int(i), int(j)
    if not overlap:
        return "c1" if (i + j) % 2 == 0 else "c2"
    return f"c{1 + 2 * (i % 2) + j % 2}"


def window_legend(drawn: Sequence[Tuple[int, int, str]], overlap: bool) -> Dict[str, str]:
    """Legend wording for the windows ``[(i, j, class)]`` a figure outlines with
    :func:`window_class`: each window named when at most four overlapping ones are drawn."""
    if not overlap:
        return {"window.c1": "windows with i + j even", "window.c2": "windows with i + j odd"}
    if len(drawn) <= 4:
        return {f"window.{cls}": f"window ({i}, {j}): {sub('Y', i, j)}" for i, j, cls in drawn}
    return {"window.c1": "windows, i and j even", "window.c2": "i even, j odd",
            "window.c3": "i odd, j even", "window.c4": "i and j odd"}


def routing_state(x: np.ndarray, k: int, s: int, dout: np.ndarray) -> dict:
    """Everything the routing picture shows for input ``X`` = ``x`` (H, W), window ``k``, stride
    ``s`` and upstream gradient ∂L/∂Y = ``dout`` (Ho, Wo): the pooled output, the winners and
    tied maxima, the mask (windows won per cell), the routed gradient ∂L/∂X, and for every cell
    what it is linked to.

    All numbers come from ``mlp_cnn_core``: the winners from the forward pass's cache
    (``rows``, ``cols``), the tied maxima from ``maxpool2d_winners(..., ties="all")``, the window
    positions and memberships from ``cache.geometry``.
    """
    x = np.asarray(x, dtype=float)
    dout = np.asarray(dout, dtype=float)
    H, W = x.shape
    y, cache = core.maxpool2d_forward(x, k, s)
    dx = core.maxpool2d_backward(dout, cache)
    won = core.maxpool2d_mask(cache)
    tied = core.maxpool2d_winners(x, k, s, ties="all")          # (Ho, Wo, k, k): 1 on every maximum
    geo = cache.geometry
    rows, cols = cache.rows, cache.cols
    Ho, Wo = y.shape
    fmt = format_value

    def box(i, j):
        u0, v0 = geo.input_cell(i, j, 0, 0)
        return window("x", u0, v0, k, k)

    # no padding here: every window's k*k cells are input cells, in row-major order like `tied`
    maxima = {(i, j): [uv for uv, t in zip(geo.cells(i, j), tied[i, j].ravel()) if t > 0]
              for i in range(Ho) for j in range(Wo)}
    tied_losers = {uv for m in maxima.values() if len(m) > 1 for uv in m} - {
        (int(u), int(v)) for u, v in zip(*np.nonzero(won))}
    x_cls = [["win" if won[u, v] else "tie" if (u, v) in tied_losers else "" if geo.windows_of(u, v) else "dim"
              for v in range(W)] for u in range(H)]
    lim = float(np.max(np.abs(dx))) or 1.0
    panels = [
        panel("x", f"X ({H}×{W})", x, classes=x_cls),
        panel("y", f"Y ({Ho}×{Wo})", y),
        panel("dy", "∂L/∂Y", dout, scale="div", limit=lim),
        panel("m", "mask", won, classes=np.where(won > 0, "win", "")),
        panel("dx", "∂L/∂X", dx, scale="div", limit=lim, classes=np.where(won > 0, "win", "")),
    ]
    links = {}
    for i in range(Ho):
        for j in range(Wo):
            u, v = int(rows[i, j]), int(cols[i, j])
            text = (f"{sub('Y', i, j)} = {fmt(y[i, j])}, the maximum of window ({i}, {j}), taken from "
                    f"{sub('X', u, v)}: ∂L/∂{sub('Y', i, j)} = {fmt(dout[i, j])} goes to "
                    f"∂L/∂{sub('X', u, v)} and nowhere else.")
            others = [uv for uv in maxima[(i, j)] if uv != (u, v)]
            if others:
                also = ", ".join(sub("X", a, b) for a, b in others)
                text += (f" Tie: {also} also hold{'s' if len(others) == 1 else ''} {fmt(y[i, j])}; the first "
                         f"maximum in row-major order, {sub('X', u, v)}, takes the gradient.")
            cells = [cell_id(p, u, v) for p in ("x", "m", "dx")] + [cell_id(p, i, j) for p in ("y", "dy")]
            links[cell_id("y", i, j)] = links[cell_id("dy", i, j)] = link(cells, [box(i, j)], text)
    for u in range(H):
        for v in range(W):
            ins = geo.windows_of(u, v)
            wins = [(i, j) for i, j in ins if (rows[i, j], cols[i, j]) == (u, v)]
            grad = f"∂L/∂{sub('X', u, v)}"
            if not ins:
                text = f"{sub('X', u, v)} lies in no window: {grad} = 0."
            elif not wins:
                why = " (a tied maximum, but not the first)" if (u, v) in tied_losers else ""
                text = (f"{sub('X', u, v)} = {fmt(x[u, v])} is in {len(ins)} window{'s' if len(ins) > 1 else ''} "
                        f"but wins none{why}: {grad} = 0.")
            else:
                terms = " + ".join(fmt(dout[i, j]) for i, j in wins)
                total = f"{terms} = {fmt(dx[u, v])}" if len(wins) > 1 else fmt(dx[u, v])
                text = (f"{sub('X', u, v)} = {fmt(x[u, v])} wins {len(wins)} of the {len(ins)} window"
                        f"{'s' if len(ins) > 1 else ''} it is in: {grad} = {total}.")
            cells = [cell_id(p, u, v) for p in ("x", "m", "dx")]
            cells += [cell_id(p, i, j) for i, j in wins for p in ("y", "dy")]
            lk = link(cells, [box(i, j) for i, j in ins], text)
            for p in ("x", "m", "dx"):
                links[cell_id(p, u, v)] = lk
    caption = (f"Σ ∂L/∂X = {fmt(dx.sum())} = Σ ∂L/∂Y = {fmt(dout.sum())}: each window passes "
               "its own gradient to one cell, its first maximum.")
    several = int((won > 1).sum())
    if several:
        caption += (f" {several} cell{'s win' if several > 1 else ' wins'} several windows and "
                    f"receive{'' if several > 1 else 's'} the sum of their gradients.")
    lonely = sum(1 for u in range(H) for v in range(W) if not geo.windows_of(u, v))
    if lonely:
        caption += f" {lonely} cell{'s lie' if lonely > 1 else ' lies'} in no window (greyed)."
    return {"panels": panels, "links": links, "caption": caption, "focus": cell_id("y", 0, 0)}


def routing_figure_state(x, k: int, s: int, dout, channel_names: Optional[Sequence[str]] = None) -> dict:
    """The chapter's static routing figure: :func:`routing_state` with every window drawn.

    ``x`` is ``(H, W)`` or ``(C, H, W)`` (one row of panels per channel, named by
    ``channel_names``); ``dout`` has the pooled output's shape.  Each window ``(i, j)`` is outlined
    on ``X`` in the colour :func:`window_class` gives it (four colours and staggered insets when the
    windows overlap, two alternating colours when they do not), and its cell of Y and of ∂L/∂Y
    carry the same colour;
    winners are ``win``, tied maxima that lose ``tie``.  A one-channel state keeps the links of
    :func:`routing_state` (a figure may follow a cell); a several-channel state has none.
    """
    x = np.asarray(x, dtype=float)
    dout = np.asarray(dout, dtype=float)
    x3, d3 = (x[None], dout[None]) if x.ndim == 2 else (x, dout)
    if x3.ndim != 3 or d3.ndim != 3 or len(d3) != len(x3):
        raise ValueError(f"x must be (H, W) or (C, H, W) and dout (Ho, Wo) or (C, Ho, Wo) like it; "
                         f"got x {x.shape}, dout {dout.shape}")
    C = len(x3)
    if channel_names is not None and len(channel_names) != C:
        raise ValueError(f"{len(channel_names)} channel names for {C} channels")
    panels, links, captions = [], {}, []
    Ho, Wo = d3.shape[-2:]
    for ch in range(C):
        st = routing_state(x3[ch], k, s, d3[ch])
        geo = core.maxpool2d_forward(x3[ch], k, s)[1].geometry
        boxes = [(i, j, window_class(i, j, s < k)) for i in range(Ho) for j in range(Wo)]
        for p in st["panels"]:
            p = dict(p)
            if p["id"] == "x":
                p["windows"] = [window("x", *geo.input_cell(i, j, 0, 0), k, k, cls) for i, j, cls in boxes]
            elif p["id"] in ("y", "dy"):
                p["windows"] = [window(p["id"], i, j, 1, 1, cls) for i, j, cls in boxes]
            if C > 1:
                if p["id"] == "x":
                    name = channel_names[ch] if channel_names else f"channel {ch + 1}"
                    p["title"] = f"{name}: {p['title']}"
                    if ch:
                        p["newRow"] = True
                p["windows"] = [[f"{w[0]}{ch}", *w[1:]] for w in p["windows"]]
                p["id"] = f"{p['id']}{ch}"
            panels.append(p)
        if C == 1:
            links = st["links"]
        captions.append(st["caption"])
    legend = window_legend(boxes, s < k)
    legend["win"] = "a window's maximum (gets its gradient)"
    legend["tie"] = "tied maximum that gets nothing"
    state = {"panels": panels, "caption": captions[0] if C == 1 else "", "legend": legend}
    if links:
        state["links"] = links
    return state


SIZES = (4, 5, 6, 7, 8)


class MaxPoolRouting(Explorable):
    """Chapter 2: where each output cell's gradient goes in max pooling.

    Controls: input size (random integers 0-9 from ``seed``), window k, stride s, the upstream
    gradient (all ones or random small integers).  Actions (kernel): new random values, or a typed
    input matrix (2×2 to 8×8, rows separated by ``;`` or new lines)."""

    TITLE = "Max pooling backward: follow each gradient"

    def __init__(self, seed: int = 12, x=None, **kw):
        if x is not None:
            x = _checked_input(np.asarray(x, dtype=float)).tolist()
        super().__init__(seed=int(seed), x=x, **kw)

    def _x(self, size: int) -> np.ndarray:
        if self.config.get("x") is not None:
            return np.asarray(self.config["x"], dtype=float)
        return random_input(size, self.config["seed"])

    def make_controls(self):
        typed = self.config.get("x")
        if typed is not None:
            H, W = len(typed), len(typed[0])
            sizes, labels, default, kmax = [H], [f"{H}×{W}"], H, min(4, H, W)
        else:
            sizes, labels, default, kmax = list(SIZES), [f"{n}×{n}" for n in SIZES], 5, 4
        return [
            control("size", "input size", sizes, default=default, labels=labels),
            control("k", "window k", list(range(1, kmax + 1)), default=min(3, kmax)),
            control("s", "stride s", [1, 2, 3, 4], default=2),
            control("upstream", "upstream ∂L/∂Y", ["ones", "random"], default="random", kind="select",
                    labels=["all ones", "random integers"]),
        ]

    def make_actions(self):
        return [action("new", "new random values"),
                action("matrix", "use this input", kind="text", placeholder="e.g. 1 2 3; 4 5 6; 7 8 9")]

    def act(self, name, value):
        if name == "new":
            size = self.values.get("size")
            self.config = {**self.config, "seed": int(self.config["seed"]) + 1, "x": None}
            self.values = {**self.values, "size": size if size in SIZES else 5}
        elif name == "matrix":
            x = _checked_input(parse_matrix(str(value or "")))
            self.config = {**self.config, "x": x.tolist()}
            self.values = {**self.values, "size": x.shape[0], "k": min(self.values.get("k", 3), *x.shape, 4)}
        else:
            super().act(name, value)

    def state(self, size, k, s, upstream):
        x = self._x(size)
        H, W = x.shape
        Ho, Wo = core.pool_output_size(H, k, s), core.pool_output_size(W, k, s)
        dout = np.ones((Ho, Wo)) if upstream == "ones" else random_upstream((Ho, Wo), self.config["seed"])
        return routing_state(x, k, s, dout)


def _checked_input(x: np.ndarray) -> np.ndarray:
    """A typed input must be a 2-D matrix of 2×2 to 8×8 numbers (ValueError says what is wrong)."""
    if x.ndim != 2 or not (2 <= x.shape[0] <= 8 and 2 <= x.shape[1] <= 8):
        raise ValueError(f"the input must be a matrix with 2 to 8 rows and 2 to 8 columns; got shape {x.shape}")
    return x
