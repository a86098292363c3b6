"""Chapter 03 (gradient expansion): the ties-and-overlap explorable and the chapter's figures.

The source article's "expansion" repeats every cell of the upstream gradient ∂L/∂Y over its
pooling window and multiplies the result by the 0/1 mask of the maxima.  That is exact for
non-overlapping windows without ties, and wrong otherwise.  ``TiesAndOverlap`` lets a reader
create ties (small value ranges) and overlaps (stride < window) and compare the three tie
policies of :func:`mlp_cnn_core.maxpool2d_forward` (``"first"``, ``"all"``, ``"split"``) by
their gradient mass Σ ∂L/∂X against Σ ∂L/∂Y; :func:`policies_state` computes one of its states
(and, with the central-difference gradient beside them, a figure of the chapter).
:func:`expansion_state` and :func:`overlap_state` are the chapter's two other figures, drawn by
the same view with :func:`cnnviz.figure`.

All the gradients and every window's winners come from :mod:`mlp_cnn_core`
(``maxpool2d_backward``, ``maxpool2d_winners``); this module only arranges them.  Notation (the
book's): ``X`` the input with cells ``(u, v)``, ``Y`` the output with one cell ``(i, j)`` per
window, ∂L/∂X and ∂L/∂Y the gradients (``dx``, ``dout`` in code).
"""
from __future__ import annotations

from typing import Dict

import numpy as np

import mlp_cnn_core as core

from .draw import format_value, sub
from .explorable import SeededExplorable, cell_id, control, link, panel, window
from .maxpool import window_class, window_legend

__all__ = ["POLICIES", "tie_marks", "naive_expansion", "naive_defined", "policy_gradients",
           "tie_values", "upstream_gradient", "policies_state", "expansion_state", "overlap_state",
           "TiesAndOverlap"]

POLICIES = core.TIES_POLICIES  # ("first", "all", "split")


# ---------------------------------------------------------------------------
# Small helpers (bookkeeping for the pictures; the gradients come from the core)
# ---------------------------------------------------------------------------

def tie_marks(x, k: int, s: int):
    """``(counts, first, tied)`` for a 2-D ``x`` pooled by ``k``×``k`` windows with stride ``s``.

    ``counts`` (``(Ho, Wo)`` ints): how many cells hold each window's maximum (above 1: a tie);
    ``first`` (bool, ``x``'s shape): the cells that win some window under PyTorch's rule (the first
    maximum); ``tied``: the cells that are one of several equal maxima of some window.  From
    :func:`mlp_cnn_core.maxpool2d_winners`.
    """
    x = np.asarray(x, dtype=float)
    shares_all = core.maxpool2d_winners(x, k, s, ties="all")      # (Ho, Wo, k, k), 1 on every maximum
    shares_first = core.maxpool2d_winners(x, k, s, ties="first")
    counts = shares_all.sum(axis=(-2, -1)).astype(int)
    first = np.zeros(x.shape, dtype=bool)
    tied = np.zeros(x.shape, dtype=bool)
    Ho, Wo = counts.shape
    for i in range(Ho):
        for j in range(Wo):
            for a in range(k):
                for b in range(k):
                    r, c = i * s + a, j * s + b
                    first[r, c] |= bool(shares_first[i, j, a, b])
                    tied[r, c] |= bool(shares_all[i, j, a, b]) and counts[i, j] > 1
    return counts, first, tied


def naive_defined(shape, k: int, s: int) -> bool:
    """The expansion has the input's shape only when the windows tile it exactly."""
    return s == k and all(n % k == 0 for n in shape)


def naive_expansion(x, dout, k: int):
    """The article's recipe: ``expand(∂L/∂Y) ⊙ 1[X = expand(Y)]`` (the naive mask of the maxima).

    Returns ``(expanded, mask, dx)``; raises ``ValueError`` when the expansion does not have
    ``x``'s shape (overlapping windows, or a size not divisible by ``k``).
    """
    x = np.asarray(x, dtype=float)
    out, _ = core.maxpool2d_forward(x, k, k)
    expanded = core.expand_gradient(dout, k)
    if expanded.shape != x.shape:
        raise ValueError(f"expand(∂L/∂Y) has shape {expanded.shape} but x has shape {x.shape}")
    mask = (x == core.expand_gradient(out, k)).astype(int)
    return expanded, mask, expanded * mask


def policy_gradients(x, dout, k: int, s: int) -> Dict[str, np.ndarray]:
    """``{"first": dx, "all": dx, "split": dx}`` (∂L/∂X under each tie policy) from
    :func:`mlp_cnn_core.maxpool2d_backward`."""
    grads = {}
    for p in POLICIES:
        _, cache = core.maxpool2d_forward(x, k, s, ties=p)
        grads[p] = core.maxpool2d_backward(dout, cache)
    return grads


def tie_values(size: int, vmax: int, seed: int) -> np.ndarray:
    """A seeded ``(size, size)`` input of integers from {0, ..., vmax} (exactly representable, so
    ties are real and reproducible).

    The same uniform draw is rounded down to ``vmax + 1`` levels, so changing ``vmax`` coarsens
    one picture instead of drawing a new one.
    """
    u = np.random.default_rng([int(seed), int(size)]).random((size, size))
    return np.floor(u * (vmax + 1))


def upstream_gradient(shape, kind: str, seed: int) -> np.ndarray:
    """The upstream gradient ∂L/∂Y: all ones, or seeded integers from {1, 2, 3}."""
    if kind == "ones":
        return np.ones(shape)
    return np.random.default_rng([int(seed), 7, *shape]).integers(1, 4, size=shape).astype(float)


def _mass_word(a: float, b: float) -> str:
    if np.isclose(a, b, rtol=1e-12, atol=1e-12):
        return "="
    return ">" if a > b else "<"


def _drawn_windows(Ho: int, Wo: int, k: int, s: int):
    """The windows a picture outlines, ``[(i, j, colour class)]``: all of them when they do not
    overlap, else the four of the top-left 2×2 block (more would hide the numbers)."""
    if s >= k:
        return [(i, j, window_class(i, j, False)) for i in range(Ho) for j in range(Wo)]
    return [(i, j, window_class(i, j)) for i in range(min(Ho, 2)) for j in range(min(Wo, 2))]


def _marks(first, tied, inside, H: int, W: int):
    """Cell classes of an input-shaped panel: ``win`` a first maximum, ``tie`` a tied maximum,
    ``dim`` a cell in no window."""
    return [[" ".join(t for t, on in (("win", first[u, v]), ("tie", tied[u, v])) if on)
             or ("" if (u, v) in inside else "dim") for v in range(W)] for u in range(H)]


# ---------------------------------------------------------------------------
# The explorable's state (also the chapter's figures of ties)
# ---------------------------------------------------------------------------

def policies_state(x, k: int, s: int, dout, numerical=None) -> dict:
    """One state of :class:`TiesAndOverlap`: ``X`` = ``x`` (H, W) pooled by ``k``×``k`` windows
    with stride ``s``, upstream gradient ∂L/∂Y = ``dout`` (Ho, Wo).

    Panels: X (first and tied maxima marked, windows outlined), ∂L/∂Y (tied windows marked),
    expand(∂L/∂Y) when the windows tile X, and ∂L/∂X under each tie policy with its mass
    Σ ∂L/∂X in the title; ``numerical`` (X's shape, e.g. central differences) adds one more
    ∂L/∂X panel.  Links: an output cell shows its window, its maxima and what each policy gives
    them; an input cell (or a ∂L/∂X cell) the windows it lies in and the sum it receives under
    each policy.
    """
    x = np.asarray(x, dtype=float)
    dout = np.asarray(dout, dtype=float)
    H, W = x.shape
    fmt = format_value
    grads = policy_gradients(x, dout, k, s)
    shares = {p: core.maxpool2d_winners(x, k, s, ties=p) for p in POLICIES}   # (Ho, Wo, k, k)
    Ho, Wo = dout.shape
    mass = {p: float(grads[p].sum()) for p in POLICIES}
    total = float(dout.sum())
    overlap = s < k
    tiles = naive_defined(x.shape, k, s)

    inside, maxima = {}, {}
    for i in range(Ho):
        for j in range(Wo):
            maxima[(i, j)] = []
            for a in range(k):
                for b in range(k):
                    uv = (i * s + a, j * s + b)
                    inside.setdefault(uv, []).append((i, j))
                    if shares["all"][i, j, a, b]:
                        maxima[(i, j)].append((uv, {p: float(shares[p][i, j, a, b]) for p in POLICIES}))
    counts, first_mask, tied_mask = tie_marks(x, k, s)
    marks = _marks(first_mask, tied_mask, inside, H, W)
    grad_panels = [grads[p] for p in POLICIES] + ([] if numerical is None else [np.asarray(numerical, float)])
    lim = max(float(np.max(np.abs(g))) for g in grad_panels) or 1.0
    dx_ids = {p: f"dx_{p}" for p in POLICIES}
    drawn = _drawn_windows(Ho, Wo, k, s)
    panels = [panel("x", f"X ({H}×{W})", x, classes=marks,
                    windows=[window("x", i * s, j * s, k, k, cls) for i, j, cls in drawn]),
              panel("dy", f"∂L/∂Y: Σ = {fmt(total)}", dout, scale="div", limit=lim,
                    classes=np.where(counts > 1, "tie", ""),
                    windows=[window("dy", i, j, 1, 1, cls) for i, j, cls in drawn])]
    if tiles:
        panels.append(panel("ex", "expand(∂L/∂Y)", core.expand_gradient(dout, k), scale="div", limit=lim))
    for n, p in enumerate(POLICIES):
        panels.append(panel(dx_ids[p], f"∂L/∂X, {p}: Σ = {fmt(mass[p])}", grads[p], scale="div", limit=lim,
                            classes=marks, new_row=n == 0))
    if numerical is not None:
        num = np.asarray(numerical, dtype=float)
        panels.append(panel("num", f"central differences: Σ = {fmt(num.sum())}", num, scale="div", limit=lim,
                            classes=marks))

    links = {}
    for (i, j), ms in maxima.items():
        box = window("x", i * s, j * s, k, k)
        g = dout[i, j]
        cells = [cell_id("dy", i, j)] + [cell_id(pid, *uv) for uv, _ in ms for pid in ["x", *dx_ids.values()]]
        if len(ms) == 1:
            (u, v), _ = ms[0]
            text = (f"Window ({i}, {j}): maximum {fmt(x[u, v])}, only at {sub('X', u, v)}, which gets "
                    f"∂L/∂{sub('Y', i, j)} = {fmt(g)} under every policy.")
        else:
            n = len(ms)
            held = ", ".join(sub("X", *uv) for uv, _ in ms)
            (u, v), _ = next(m for m in ms if m[1]["first"])
            text = (f"Window ({i}, {j}): maximum {fmt(x[ms[0][0]])}, a {n}-way tie ({held}). "
                    f"first: {sub('X', u, v)} gets {fmt(g)}. all: each gets {fmt(g)}, {fmt(n * g)} in total. "
                    f"split: each gets {fmt(g / n)}.")
        links[cell_id("dy", i, j)] = link(cells, [box] + [[pid, *box[1:]] for pid in dx_ids.values()], text)
    for u in range(H):
        for v in range(W):
            ins = inside.get((u, v), [])
            mine = [((i, j), sh) for (i, j) in ins for uv, sh in maxima[(i, j)] if uv == (u, v)]
            grad = f"∂L/∂{sub('X', u, v)}"
            if not ins:
                text = f"{sub('X', u, v)} lies in no window: {grad} = 0 under every policy."
            elif not mine:
                text = (f"{sub('X', u, v)} = {fmt(x[u, v])} is in {len(ins)} window{'s' if len(ins) > 1 else ''} "
                        f"and the maximum of none: {grad} = 0 under every policy.")
            else:
                parts = []
                for p in POLICIES:
                    terms = [fmt(sh[p] * dout[ij]) for ij, sh in mine if sh[p]]
                    got = fmt(grads[p][u, v])
                    parts.append(f"{p}: {' + '.join(terms)} = {got}" if len(terms) > 1 else f"{p}: {got}")
                n_tied = sum(1 for ij, _ in mine if counts[ij] > 1)
                if len(ins) == 1:
                    what = (f"one of the {counts[mine[0][0]]} tied maxima of its window" if n_tied
                            else "the maximum of its window")
                else:
                    what = (f"a maximum of {len(mine)} of its {len(ins)} windows"
                            + (f" ({n_tied} tied)" if n_tied else ""))
                text = f"{sub('X', u, v)} = {fmt(x[u, v])} is {what}. {grad}: " + "; ".join(parts) + "."
            cells = [cell_id(pid, u, v) for pid in ["x", *dx_ids.values()]]
            cells += [cell_id("dy", *ij) for ij, _ in mine]
            lk = link(cells, [window("x", i * s, j * s, k, k) for i, j in ins], text)
            for pid in ["x", *dx_ids.values()]:
                links[cell_id(pid, u, v)] = lk

    n_tied = int((counts > 1).sum())
    caption = (f"{n_tied} of {Ho * Wo} windows tie. Σ ∂L/∂Y = {fmt(total)}; Σ ∂L/∂X: " +
               ", ".join(f"{p} {fmt(mass[p])} ({_mass_word(mass[p], total)})" for p in POLICIES) + ". ")
    if overlap:
        won = {}
        for (i, j), ms in maxima.items():
            for uv, sh in ms:
                if sh["first"]:
                    won[uv] = won.get(uv, 0) + 1
        several = sum(1 for n in won.values() if n > 1)
        caption += (f"The windows overlap (stride {s} < window {k}; the first four are outlined): "
                    f"{several} cell{'s win' if several != 1 else ' wins'} several windows and add up "
                    "their gradients. ")
    if tiles:
        caption += ("The windows tile X, so the naive expansion expand(∂L/∂Y) ⊙ 𝟙[X = expand(Y)] is "
                    "defined: it equals 'all'.")
    else:
        caption += (f"The naive expansion is undefined here: expand(∂L/∂Y) is {Ho * k}×{Wo * k}, "
                    f"X is {H}×{W}.")
    legend = {"win": "first maximum of a window", "tie": "one of several equal maxima",
              "dim": "in no window", **window_legend(drawn, s < k)}
    return {"panels": panels, "links": links, "caption": caption, "focus": cell_id("dy", 0, 0),
            "legend": legend}


SIZES = (4, 5, 6)
VMAX = (1, 3, 99)


class TiesAndOverlap(SeededExplorable):
    """Chapter 3: ties, overlapping windows and the gradient mass of the three tie policies.

    Controls: input size (4-6), window k (2, 3), stride s (1-3), the largest value of the input
    (integers from 0; small: many ties) and the upstream gradient ∂L/∂Y (ones or random integers
    1-3).  Every state shows ∂L/∂X under the three policies side by side, and expand(∂L/∂Y)
    whenever the windows tile the input.  Action (kernel): new random values."""

    TITLE = "Ties and overlapping windows: where does the gradient go?"
    NEW_LABEL = "new random values"

    def __init__(self, seed: int = 2, **kw):
        super().__init__(seed=int(seed), **kw)

    def make_controls(self):
        return [
            control("size", "input size", list(SIZES), default=4, labels=[f"{n}×{n}" for n in SIZES]),
            control("k", "window k", [2, 3], default=2),
            control("s", "stride s", [1, 2, 3], default=2),
            control("vmax", "values from 0 to", list(VMAX), default=3,
                    labels=["1 (many ties)", "3", "99 (few ties)"]),
            control("upstream", "upstream ∂L/∂Y", ["ones", "random"], default="random", kind="select",
                    labels=["all ones", "random 1–3"]),
        ]

    def state(self, size, k, s, vmax, upstream):
        x = tie_values(size, vmax, self.config["seed"])
        n_out = core.pool_output_size(size, k, s)
        return policies_state(x, k, s, upstream_gradient((n_out, n_out), upstream, self.config["seed"]))


# ---------------------------------------------------------------------------
# The chapter's other figures
# ---------------------------------------------------------------------------

def expansion_state(x, dout, k: int = 2) -> dict:
    """The expansion recipe for non-overlapping ``k``×``k`` windows: X with its windows and maxima,
    ∂L/∂Y, then expand(∂L/∂Y) ⊙ M = ∂L/∂X (M the 0/1 mask of the maxima), each window and its
    gradient in one colour.  ∂L/∂X is :func:`mlp_cnn_core.maxpool2d_backward`'s."""
    x = np.asarray(x, dtype=float)
    dout = np.asarray(dout, dtype=float)
    _, cache = core.maxpool2d_forward(x, k)
    expanded = core.expand_gradient(dout, k)
    mask = core.maxpool2d_mask(cache)
    dx = core.maxpool2d_backward(dout, cache)
    Ho, Wo = dout.shape
    H, W = x.shape
    drawn = _drawn_windows(Ho, Wo, k, k)
    boxes = [window("x", i * k, j * k, k, k, cls) for i, j, cls in drawn]

    def on(pid):
        return [[pid, *w[1:]] for w in boxes]

    win = np.where(mask > 0, "win", "")
    lim = float(np.max(np.abs(expanded))) or 1.0
    panels = [panel("x", f"X ({H}×{W})", x, classes=win, windows=boxes),
              panel("dy", f"∂L/∂Y ({Ho}×{Wo})", dout, scale="div", limit=lim,
                    windows=[window("dy", i, j, 1, 1, cls) for i, j, cls in drawn]),
              panel("ex", f"expand(∂L/∂Y) ({H}×{W})", expanded, scale="div", limit=lim, windows=on("ex"),
                    new_row=True),
              panel("m", "M, the mask", mask, scale="none", classes=win, windows=on("m"), op="⊙"),
              panel("dx", "∂L/∂X", dx, scale="div", limit=lim, classes=win, windows=on("dx"), op="=")]
    legend = {"win": "maximum of its window", **window_legend(drawn, False)}
    caption = (f"Each window's ∂L/∂Y<sub>ij</sub> is copied onto its {k}×{k} cells, and the mask keeps "
               "it on the window's maximum only.")
    return {"panels": panels, "caption": caption, "legend": legend}


def overlap_state(x, dout, k: int, s: int) -> dict:
    """Overlapping windows: X (the first four windows outlined, winners marked), how many windows
    each cell wins, ∂L/∂Y, the correct ∂L/∂X (:func:`mlp_cnn_core.maxpool2d_backward`, a sum over
    windows) and the ∂L/∂X of the ``dx[rows, cols] = dout`` bug, its wrong cells marked."""
    x = np.asarray(x, dtype=float)
    dout = np.asarray(dout, dtype=float)
    _, cache = core.maxpool2d_forward(x, k, s)
    counts = core.maxpool2d_mask(cache)
    dx = core.maxpool2d_backward(dout, cache)
    bug = np.zeros_like(x)
    bug[cache.rows, cache.cols] = dout  # the "=" bug: a cell keeps only one window's gradient
    wrong = ~np.isclose(bug, dx)
    H, W = x.shape
    Ho, Wo = dout.shape
    drawn = _drawn_windows(Ho, Wo, k, s)
    several = np.where(counts > 1, "hl", np.where(counts > 0, "win", ""))
    lim = float(np.max(np.abs(dx))) or 1.0
    panels = [panel("x", f"X ({H}×{W}): {k}×{k}, stride {s}", x, classes=np.where(counts > 0, "win", ""),
                    windows=[window("x", i * s, j * s, k, k, cls) for i, j, cls in drawn]),
              panel("m", "windows won", counts, scale="none", classes=several),
              panel("dy", f"∂L/∂Y ({Ho}×{Wo})", dout, scale="div", limit=lim,
                    windows=[window("dy", i, j, 1, 1, cls) for i, j, cls in drawn]),
              panel("dx", f"∂L/∂X with +=: Σ = {format_value(dx.sum())}", dx, scale="div", limit=lim,
                    classes=several, new_row=True),
              panel("bug", f"∂L/∂X with =: Σ = {format_value(bug.sum())}", bug, scale="div", limit=lim,
                    classes=np.where(wrong, "sel", ""))]
    legend = {"win": "maximum of a window", "hl": "maximum of several windows",
              "sel": "a gradient lost by =", **window_legend(drawn, s < k)}
    return {"panels": panels, "legend": legend,
            "caption": (f"{int((counts > 1).sum())} cells win several windows; with = each keeps the "
                        f"gradient of one window only, so Σ ∂L/∂X drops from {format_value(dx.sum())} "
                        f"to {format_value(bug.sum())}.")}
