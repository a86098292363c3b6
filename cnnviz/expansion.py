"""Chapter 03 (gradient expansion): the ties-and-overlap explorable and the chapter's figures.

The source article's "expansion" repeats every cell of the upstream gradient ``dY`` over its
pooling window and multiplies the result by the 0/1 mask of the maxima.  That is exact for
non-overlapping windows without ties, and wrong otherwise.  ``TiesAndOverlap`` lets a reader
create ties (small value ranges) and overlaps (stride < window) and compare the three tie
policies of :func:`mlp_cnn_core.maxpool2d_forward` (``"first"``, ``"all"``, ``"split"``) by
their gradient mass ``sum(dX)`` against ``sum(dY)``; :func:`policies_state` computes one of its
states, and :func:`ties_figure` draws the same state as a static figure.

All the gradients and every window's winners come from :mod:`mlp_cnn_core`
(``maxpool2d_backward``, ``maxpool2d_winners``); this module only arranges and draws them.
"""
from __future__ import annotations

from typing import Dict, Optional

import numpy as np
from matplotlib import pyplot as plt

import mlp_cnn_core as core

from .draw import ACCENT, HIGHLIGHT, WINDOW, draw_matrix, format_value, outline_cells, outline_window
from .explorable import SeededExplorable, cell_id, control, link, panel, window

__all__ = ["POLICIES", "POLICY_LABELS", "tie_marks", "naive_expansion", "naive_defined",
           "policy_gradients", "tie_values", "upstream_gradient", "policies_state", "TiesAndOverlap",
           "expansion_figure", "overlap_figure", "ties_figure"]

POLICIES = core.TIES_POLICIES  # ("first", "all", "split")
POLICY_LABELS = {"first": "first (PyTorch)", "all": "all (naive mask)", "split": "split"}


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
    """The article's recipe: ``expand(dY) * (x == expand(Y))`` (the naive mask of the maxima).

    Returns ``(expanded, mask, dx)``; raises ``ValueError`` when the expansion does not have
    ``x``'s shape (overlapping windows, or a size not divisible by ``k``).
    """
    x = np.asarray(x, dtype=float)
    out, _ = core.maxpool2d_forward(x, k, k)
    expanded = core.expand_gradient(dout, k)
    if expanded.shape != x.shape:
        raise ValueError(f"expand(dY) has shape {expanded.shape} but x has shape {x.shape}")
    mask = (x == core.expand_gradient(out, k)).astype(int)
    return expanded, mask, expanded * mask


def policy_gradients(x, dout, k: int, s: int) -> Dict[str, np.ndarray]:
    """``{"first": dX, "all": dX, "split": dX}`` from :func:`mlp_cnn_core.maxpool2d_backward`."""
    grads = {}
    for p in POLICIES:
        _, cache = core.maxpool2d_forward(x, k, s, ties=p)
        grads[p] = core.maxpool2d_backward(dout, cache)
    return grads


def tie_values(size: int, vmax: int, seed: int) -> np.ndarray:
    """A seeded ``(size, size)`` input of integers from {0, ..., vmax} (exact, so ties are real).

    The same uniform draw is rounded down to ``vmax + 1`` levels, so changing ``vmax`` coarsens
    one picture instead of drawing a new one.
    """
    u = np.random.default_rng([int(seed), int(size)]).random((size, size))
    return np.floor(u * (vmax + 1))


def upstream_gradient(shape, kind: str, seed: int) -> np.ndarray:
    """The upstream gradient dY: all ones, or seeded integers from {1, 2, 3}."""
    if kind == "ones":
        return np.ones(shape)
    return np.random.default_rng([int(seed), 7, *shape]).integers(1, 4, size=shape).astype(float)


def _mass_word(a: float, b: float) -> str:
    if np.isclose(a, b, rtol=1e-12, atol=1e-12):
        return "="
    return ">" if a > b else "<"


# ---------------------------------------------------------------------------
# The explorable (drawn in the browser from precomputed states)
# ---------------------------------------------------------------------------

def policies_state(x, k: int, s: int, dout) -> dict:
    """One state of :class:`TiesAndOverlap`: ``x`` (H, W) pooled by ``k``×``k`` windows with stride
    ``s``, upstream gradient ``dout`` (Ho, Wo).

    Panels: x (winners and tied maxima marked), dY (tied windows marked), expand(dY) when the
    windows tile x, and dX under each tie policy with its mass ``sum(dX)`` in the title.  Links:
    an output cell shows its window, its maxima and what each policy gives them; an input cell
    (or a dX cell) the windows it lies in and the sum it receives under each policy.
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
                    rc = (i * s + a, j * s + b)
                    inside.setdefault(rc, []).append((i, j))
                    if shares["all"][i, j, a, b]:
                        maxima[(i, j)].append((rc, {p: float(shares[p][i, j, a, b]) for p in POLICIES}))
    counts, first_mask, tied_mask = tie_marks(x, k, s)
    x_cls = [[" ".join(t for t, on in (("win", first_mask[r, c]), ("tie", tied_mask[r, c])) if on)
              or ("" if (r, c) in inside else "dim") for c in range(W)] for r in range(H)]
    lim = max(float(np.max(np.abs(g))) for g in grads.values()) or 1.0
    dx_ids = {p: f"dx_{p}" for p in POLICIES}
    boxes = [] if overlap else [window("x", i * s, j * s, k, k) for i in range(Ho) for j in range(Wo)]
    panels = [panel("x", f"x ({H}×{W})", x, classes=x_cls, windows=boxes),
              panel("dy", f"dY ({Ho}×{Wo}), Σ = {fmt(total)}", dout, scale="div", limit=lim,
                    classes=np.where(counts > 1, "tie", ""))]
    if tiles:
        panels.append(panel("ex", "expand(dY)", core.expand_gradient(dout, k), scale="div", limit=lim))
    for p in POLICIES:
        panels.append(panel(dx_ids[p], f"dX {p}, Σ = {fmt(mass[p])}", grads[p], scale="div", limit=lim,
                            classes=[["dim" if (r, c) not in inside else "" for c in range(W)] for r in range(H)]))

    links = {}
    for (i, j), ms in maxima.items():
        box = window("x", i * s, j * s, k, k)
        g = dout[i, j]
        cells = [cell_id("dy", i, j)] + [cell_id(pid, *rc) for rc, _ in ms for pid in ["x", *dx_ids.values()]]
        if len(ms) == 1:
            (r, c), _ = ms[0]
            text = (f"window ({i},{j}): maximum {fmt(x[r, c])}, only at x[{r},{c}], which gets dY = {fmt(g)} "
                    "under every policy.")
        else:
            n = len(ms)
            held = ", ".join(f"x[{r},{c}]" for (r, c), _ in ms)
            (r, c), _ = next(m for m in ms if m[1]["first"])
            text = (f"window ({i},{j}): maximum {fmt(x[ms[0][0]])}, a {n}-way tie ({held}). "
                    f"first: x[{r},{c}] gets {fmt(g)}. all: each gets {fmt(g)}, {fmt(n * g)} in total. "
                    f"split: each gets {fmt(g / n)}.")
        links[cell_id("dy", i, j)] = link(cells, [box] + [[pid, *box[1:]] for pid in dx_ids.values()], text)
    for r in range(H):
        for c in range(W):
            ins = inside.get((r, c), [])
            mine = [((i, j), sh) for (i, j) in ins for rc, sh in maxima[(i, j)] if rc == (r, c)]
            if not ins:
                text = f"x[{r},{c}] lies in no window: dX = 0 under every policy."
            elif not mine:
                text = (f"x[{r},{c}] = {fmt(x[r, c])} is in {len(ins)} window{'s' if len(ins) > 1 else ''} "
                        "and the maximum of none: dX = 0 under every policy.")
            else:
                parts = []
                for p in POLICIES:
                    terms = [fmt(sh[p] * dout[ij]) for ij, sh in mine if sh[p]]
                    got = fmt(grads[p][r, c])
                    parts.append(f"{p}: {' + '.join(terms)} = {got}" if len(terms) > 1 else f"{p}: {got}")
                n_tied = sum(1 for ij, _ in mine if counts[ij] > 1)
                if len(ins) == 1:
                    what = (f"one of the {counts[mine[0][0]]} tied maxima of its window" if n_tied
                            else "the maximum of its window")
                else:
                    what = (f"a maximum of {len(mine)} of its {len(ins)} windows"
                            + (f" ({n_tied} tied)" if n_tied else ""))
                text = f"x[{r},{c}] = {fmt(x[r, c])} is {what}. " + "; ".join(parts) + "."
            cells = [cell_id(pid, r, c) for pid in ["x", *dx_ids.values()]]
            cells += [cell_id("dy", *ij) for ij, _ in mine]
            lk = link(cells, [window("x", i * s, j * s, k, k) for i, j in ins], text)
            for pid in ["x", *dx_ids.values()]:
                links[cell_id(pid, r, c)] = lk

    n_tied = int((counts > 1).sum())
    caption = (f"{n_tied} of {Ho * Wo} windows tie. Σ dY = {fmt(total)}; Σ dX: " +
               ", ".join(f"{p} {fmt(mass[p])} ({_mass_word(mass[p], total)})" for p in POLICIES) + ". ")
    if overlap:
        won = {}
        for (i, j), ms in maxima.items():
            for rc, sh in ms:
                if sh["first"]:
                    won[rc] = won.get(rc, 0) + 1
        several = sum(1 for n in won.values() if n > 1)
        caption += (f"The windows overlap (stride {s} < window {k}): {several} cell"
                    f"{'s win' if several != 1 else ' wins'} several windows and add up their gradients. ")
    if tiles:
        caption += ("The windows tile x, so the naive expansion expand(dY) ⊙ (x == expand(y)) is defined: "
                    "it equals 'all'.")
    else:
        caption += (f"The naive expansion is undefined here: expand(dY) is {Ho * k}×{Wo * k}, x is {H}×{W}.")
    caption += " Outlines on x: solid, a window's first maximum; dashed, a tied maximum."
    return {"panels": panels, "links": links, "caption": caption, "focus": cell_id("dy", 0, 0)}


VMAX = (1, 2, 3, 9)


class TiesAndOverlap(SeededExplorable):
    """Chapter 3: ties, overlapping windows and the gradient mass of the three tie policies.

    Controls: input size (4-8), window k (2, 3), stride s (1-3), the value range {0..v_max} (small
    v_max: many ties) and the upstream gradient (ones or random integers 1-3).  Every state shows
    dX under the three policies side by side, and expand(dY) whenever the windows tile the input.
    Action (kernel): new random values."""

    TITLE = "Ties and overlapping windows: where does the gradient go?"
    NEW_LABEL = "new random values"

    def __init__(self, seed: int = 2, **kw):
        super().__init__(seed=int(seed), **kw)

    def make_controls(self):
        return [
            control("size", "input size", [4, 5, 6, 7, 8], default=4, labels=[f"{n}×{n}" for n in range(4, 9)]),
            control("k", "window k", [2, 3], default=2),
            control("s", "stride s", [1, 2, 3], default=2),
            control("vmax", "values 0..v_max (small = many ties)", list(VMAX), default=3,
                    labels=[f"0..{v}" for v in VMAX]),
            control("upstream", "upstream dY", ["ones", "random"], default="random", kind="select",
                    labels=["all ones", "random 1–3"]),
        ]

    def state(self, size, k, s, vmax, upstream):
        x = tie_values(size, vmax, self.config["seed"])
        n_out = core.pool_output_size(size, k, s)
        return policies_state(x, k, s, upstream_gradient((n_out, n_out), upstream, self.config["seed"]))


# ---------------------------------------------------------------------------
# Static figures of the chapter
# ---------------------------------------------------------------------------

MAX_WIDTH = 9.5  # inches: at most 950 px wide at the default 100 dpi


def _row_figure(widths, height, cell_size=0.45, extra_height=1.3, n_rows=1):
    """A figure with ``n_rows`` rows of panels; ``widths`` (in cells) lists the panels of each
    row, row after row.  At most ``MAX_WIDTH`` wide."""
    widths = [max(int(w), 1) for w in widths]
    per_row = -(-len(widths) // n_rows)
    rows = [widths[i:i + per_row] for i in range(0, len(widths), per_row)]
    widest = max(sum(r) for r in rows)
    fig_w = min(cell_size * widest + 0.55 * per_row, MAX_WIDTH)
    fig = plt.figure(figsize=(fig_w, n_rows * (cell_size * height + extra_height)))
    subs = fig.subfigures(len(rows), 1, squeeze=False)[:, 0] if len(rows) > 1 else [fig]
    axes = []
    for sub, row in zip(subs, rows):
        ratios = row + ([widest - sum(row)] if sum(row) < widest else [])
        ax_row = sub.subplots(1, len(ratios), squeeze=False, gridspec_kw={"width_ratios": ratios})[0]
        for extra in ax_row[len(row):]:
            extra.axis("off")
        axes += list(ax_row[:len(row)])
    return fig, axes


def _draw_grad(ax, m, title: str, lim: float) -> None:
    """A gradient panel on a red/blue scale shared by its neighbours (``[-lim, lim]``), with
    white text only on strongly coloured cells."""
    m = np.asarray(m, dtype=float)
    draw_matrix(ax, m, title=title, cmap="RdBu_r", vmin=-lim, vmax=lim)
    for t, v in zip(ax.texts, m.ravel()):
        t.set_color("white" if abs(v) > 0.6 * lim else "black")


def _draw_windows(ax, Ho: int, Wo: int, k: int, s: int) -> None:
    """Outline the pooling windows: all of them when they do not overlap, otherwise the first
    two of the top row (solid, dashed) to show the overlap."""
    if s >= k:
        for i in range(Ho):
            for j in range(Wo):
                outline_window(ax, i * s, j * s, k, k, color=WINDOW, linewidth=1.2, inset=0.06)
    else:
        outline_window(ax, 0, 0, k, k, color=WINDOW, linewidth=1.6, inset=0.06)
        if Wo > 1:
            outline_window(ax, 0, s, k, k, color=WINDOW, linewidth=1.6, linestyle="--", inset=0.14)


def _fmt(v: float) -> str:
    return format_value(v)


# ---------------------------------------------------------------------------
# Static figures of the chapter
# ---------------------------------------------------------------------------

def expansion_figure(x, dout, k: int = 2, cell_size: float = 0.55):
    """x with its windows → dY → expand(dY) → mask M → dX = expand(dY) ⊙ M (non-overlapping)."""
    x = np.asarray(x, dtype=float)
    out, cache = core.maxpool2d_forward(x, k)
    expanded = core.expand_gradient(dout, k)
    mask = core.maxpool2d_mask(cache)
    dx = expanded * mask
    mats = [(x, f"x {x.shape[0]}×{x.shape[1]}"), (np.asarray(dout, float), f"dY {np.shape(dout)[0]}×{np.shape(dout)[1]}"),
            (expanded, f"expand(dY) {expanded.shape[0]}×{expanded.shape[1]}"),
            (mask, f"mask M {mask.shape[0]}×{mask.shape[1]}"), (dx, "dX = expand(dY) ⊙ M")]
    fig, axes = _row_figure([m.shape[1] for m, _ in mats], x.shape[0], cell_size, 1.2)
    Ho, Wo = out.shape
    for idx, (ax, (m, t)) in enumerate(zip(axes, mats)):
        if idx == 4:
            _draw_grad(ax, m, t, float(np.max(np.abs(m))) or 1.0)
        else:
            draw_matrix(ax, m, title=t, cmap="Greys" if idx == 3 else "Blues",
                        vmax=float(np.max(m)) * 1.8 if idx in (0, 1, 2) else None)
        if idx != 1:
            _draw_windows(ax, Ho, Wo, k, k)
        if idx in (0, 3, 4):
            outline_cells(ax, mask > 0, color=HIGHLIGHT)
    fig.tight_layout()
    # operators between the panels, placed after the layout is fixed
    for a, b, sym in ((axes[1], axes[2], "→"), (axes[2], axes[3], "⊙"), (axes[3], axes[4], "=")):
        pa, pb = a.get_position(), b.get_position()
        fig.text((pa.x1 + pb.x0) / 2, (pa.y0 + pa.y1) / 2, sym, ha="center", va="center", fontsize=16)
    return fig


def overlap_figure(x, dout, k: int, s: int, cell_size: float = 0.55):
    """Overlapping windows: x (winners), how many windows each cell wins, dY, the correct dX
    (sum over windows) and the dX of the ``dx[rows, cols] = dout`` bug, differences circled."""
    x = np.asarray(x, dtype=float)
    dout = np.asarray(dout, dtype=float)
    out, cache = core.maxpool2d_forward(x, k, s)
    counts = core.maxpool2d_mask(cache)
    dx = core.maxpool2d_backward(dout, cache)
    bug = np.zeros_like(x)
    bug[cache.rows, cache.cols] = dout  # the "=" bug: a cell keeps only one window's gradient
    wrong = ~np.isclose(bug, dx)
    mats = [(x, f"x {x.shape[0]}×{x.shape[1]}, windows {k}×{k}, stride {s}", "Blues", False),
            (counts, "windows won per cell", "Greys", False),
            (dout, f"dY {dout.shape[0]}×{dout.shape[1]}", "Blues", False),
            (dx, f"dX correct (+=)\nsum = {_fmt(dx.sum())}", None, True),
            (bug, f"dX with '=' bug\nsum = {_fmt(bug.sum())}", None, True)]
    fig, axes = _row_figure([m.shape[1] for m, *_ in mats], x.shape[0], cell_size, 1.3)
    Ho, Wo = out.shape
    lim = float(np.max(np.abs(dx))) or 1.0
    for idx, (ax, (m, t, cmap, div)) in enumerate(zip(axes, mats)):
        if div:
            _draw_grad(ax, m, t, lim)
        else:
            draw_matrix(ax, m, title=t, cmap=cmap, vmax=float(np.max(m)) * 1.8 if idx != 1 else None, vmin=0)
        ax.title.set_fontsize(9)
        if idx == 0:
            _draw_windows(ax, Ho, Wo, k, s)
            outline_cells(ax, counts > 0, color=HIGHLIGHT)
        if idx in (1, 3, 4):
            outline_cells(ax, counts > 1, color=ACCENT)
        if idx == 4:
            outline_cells(ax, wrong, color="black", linewidth=3.5)
    fig.tight_layout()
    return fig


def ties_figure(x, dout, k: int = 2, s: Optional[int] = None, numerical: Optional[np.ndarray] = None,
                cell_size: float = 0.45):
    """The explorable's picture of one state as a static figure (same functions, same marks): x
    (its windows; red: a window's first maximum, orange: a tied maximum), dY (tied windows in
    orange) and dX under "first", "all", "split" (and, if given, the central-difference gradient),
    each titled with its mass sum(dX)."""
    s = k if s is None else s
    x = np.asarray(x, dtype=float)
    dout = np.asarray(dout, dtype=float)
    grads = policy_gradients(x, dout, k, s)
    counts, first, tied = tie_marks(x, k, s)
    mats = [("x", x, f"x ({x.shape[0]}×{x.shape[1]})"), ("dY", dout, f"dY, Σ = {_fmt(dout.sum())}")]
    mats += [("dX", grads[p], f"dX {p}, Σ = {_fmt(grads[p].sum())}") for p in POLICIES]
    if numerical is not None:
        numerical = np.round(np.asarray(numerical, dtype=float), 6)
        mats.append(("dX", numerical, f"central differences, Σ = {_fmt(numerical.sum())}"))
    n_rows = 1 if sum(m.shape[1] for _, m, _ in mats) <= 18 else 2
    fig, axes = _row_figure([m.shape[1] for _, m, _ in mats], x.shape[0], cell_size, 1.0, n_rows=n_rows)
    lim = max(float(np.max(np.abs(m))) for kind, m, _ in mats if kind == "dX") or 1.0
    Ho, Wo = dout.shape
    for ax, (kind, m, t) in zip(axes, mats):
        if kind == "dX":
            _draw_grad(ax, m, t, lim)
            outline_cells(ax, tied, color=ACCENT)
        else:
            draw_matrix(ax, m, title=t, cmap="Blues", vmin=0, vmax=max(float(np.max(m)), 1.0) * 1.8)
        ax.title.set_fontsize(9)
        if kind == "x":
            _draw_windows(ax, Ho, Wo, k, s)
            outline_cells(ax, first & ~tied, color=HIGHLIGHT)
            outline_cells(ax, tied, color=ACCENT)
        if kind == "dY":
            outline_cells(ax, counts > 1, color=ACCENT)
    return fig
