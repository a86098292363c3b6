"""Chapter 09 (mean pooling vs max pooling): where does the gradient go under each?

``PoolingRouting`` is the chapter's explorable (see :mod:`cnnviz.explorable`): on one
input it runs max pooling and mean (average) pooling with the same window, stride and
padding, sends the same upstream gradient ∂L/∂Y back through both, and shows the two
input gradients ∂L/∂X side by side -- sparse (one winner per window) against dense
(every cell of every window). Hover a cell to see the windows that contain it and what
each pooling hands it; hover a cell of ∂L/∂Y to follow its gradient.
:func:`comparison_state` computes what it draws from the inputs (the chapter's static
figures draw it with ``cnnviz.figure(cnnviz.call(comparison_state, ...))``);
:func:`pooling_state` holds the numbers, :func:`compare_state` draws them.

All the numbers come from :mod:`mlp_cnn_core` (``maxpool2d_*`` and ``avgpool2d_*``).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

import mlp_cnn_core as core

from .draw import format_value, sub
from .explorable import SeededExplorable, cell_id, control, link, panel, window

__all__ = ["input_values", "upstream_values", "PoolingState", "pooling_state",
           "compare_state", "comparison_state", "PoolingRouting", "SIZES"]

#: The explorable's input sizes: 5 is not divided by a stride of 2 or 3 (its last cells
#: are skipped).
SIZES = (4, 5, 6)


def input_values(size: int, seed: int) -> np.ndarray:
    """The explorable's input: the numbers ``1 .. size*size`` shuffled with ``seed``
    (``(size, size)``).

    All different, so every max-pool window has exactly one maximum (ties are chapter
    03's topic).
    """
    rng = np.random.default_rng(seed)
    return (rng.permutation(size * size) + 1).reshape(size, size).astype(np.float64)


def upstream_values(shape, kind: str = "ones", seed: int = 0) -> np.ndarray:
    """The upstream gradient ∂L/∂Y: all ones, or random integers 1..4 (seeded).

    Positive on purpose: two contributions can never cancel, so "non-zero" means
    "reached".
    """
    if kind == "ones":
        return np.ones(shape)
    if kind != "random":
        raise ValueError(f"kind must be 'ones' or 'random', got {kind!r}")
    rng = np.random.default_rng(10_000 + seed)
    return rng.integers(1, 5, size=shape).astype(np.float64)


@dataclass
class PoolingState:
    """Max and mean pooling of one input with one geometry, forward and backward.

    ``x`` ``(H, W)``; ``dy`` (∂L/∂Y) ``(Ho, Wo)``; ``out_max``, ``out_mean``
    ``(Ho, Wo)``; ``dx_max``, ``dx_mean`` (∂L/∂X) ``(H, W)``; ``wins`` ``(H, W)`` ints:
    how many windows each cell won (max pooling); ``rows``, ``cols`` ``(Ho, Wo)``: the
    cell each max-pool window routes to; ``geometry`` the windows
    (:class:`mlp_cnn_core.WindowGeometry`).
    """
    window: int
    stride: int
    padding: int
    x: np.ndarray
    dy: np.ndarray
    out_max: np.ndarray
    out_mean: np.ndarray
    dx_max: np.ndarray
    dx_mean: np.ndarray
    wins: np.ndarray
    rows: np.ndarray
    cols: np.ndarray
    geometry: core.WindowGeometry

    @property
    def mass_max(self) -> float:
        return float(self.dx_max.sum())

    @property
    def mass_mean(self) -> float:
        return float(self.dx_mean.sum())

    @property
    def mass_dy(self) -> float:
        return float(self.dy.sum())


def pooling_state(x: np.ndarray, window: int, stride: int, padding: int, dy=None,
                  upstream: str = "ones", seed: int = 0) -> PoolingState:
    """Max and mean pooling of ``x`` ``(H, W)``, forward and backward, one geometry.

    ``dy`` (∂L/∂Y) defaults to :func:`upstream_values` of the output's shape.  Raises
    ``ValueError`` (from the core) for an impossible geometry.
    """
    x = np.asarray(x, dtype=np.float64)
    out_max, cmax = core.maxpool2d_forward(x, window, stride, padding)
    out_mean, cmean = core.avgpool2d_forward(x, window, stride, padding)
    if dy is None:
        dy = upstream_values(out_max.shape, upstream, seed)
    dy = np.asarray(dy, dtype=np.float64)
    return PoolingState(window, stride, padding, x, dy, out_max, out_mean,
                        core.maxpool2d_backward(dy, cmax),
                        core.avgpool2d_backward(dy, cmean), core.maxpool2d_mask(cmax),
                        cmax.rows, cmax.cols, cmax.geometry)


def compare_state(st: PoolingState) -> dict:
    """What the explorable draws for a :class:`PoolingState`: the input X with its
    padding ring (max-pool winners ``win``), ∂L/∂Y, ∂L/∂X under max pooling and under
    mean pooling (one colour scale), and the links of every cell."""
    fmt = format_value
    geo = st.geometry
    k, s, p = st.window, st.stride, st.padding
    H, W = st.x.shape
    Ho, Wo = st.dy.shape
    kk = k * k
    xp = np.full((H + 2 * p, W + 2 * p), np.nan)
    xp[p:p + H, p:p + W] = st.x
    text = [["pad" if np.isnan(v) else fmt(v) for v in row] for row in xp]
    cls = np.full(xp.shape, "pad", dtype=object)
    cls[p:p + H, p:p + W] = np.where(st.wins > 0, "win", "")
    lim = max(float(np.abs(st.dx_max).max()), float(np.abs(st.dx_mean).max())) or 1.0
    nz_max = int(np.count_nonzero(st.dx_max))
    nz_mean = int(np.count_nonzero(st.dx_mean))
    n = st.x.size
    panels = [
        panel("x", f"X ({H}×{W})" + (f", padding {p}" if p else ""), xp, text=text,
              classes=cls),
        panel("dy", f"∂L/∂Y ({Ho}×{Wo})", st.dy, scale="div", limit=lim),
        panel("max", "∂L/∂X, max pool", st.dx_max, scale="div", limit=lim,
              subtitle=f"{nz_max} of {n} cells",
              classes=np.where(st.dx_max != 0, "win", "")),
        panel("mean", "∂L/∂X, mean pool", st.dx_mean, scale="div", limit=lim,
              subtitle=f"{nz_mean} of {n} cells",
              classes=np.where(st.dx_mean != 0, "", "zero")),
    ]
    box = {(i, j): window("x", i * s, j * s, k, k) for i, j in np.ndindex(Ho, Wo)}
    links = {}
    for i, j in np.ndindex(Ho, Wo):
        real = geo.cells(i, j)
        n_pad = kk - len(real)
        r, c = int(st.rows[i, j]), int(st.cols[i, j])
        g = st.dy[i, j]
        text = (f"{sub('∂L/∂Y', i, j)} = {fmt(g)}. Max pool: all of it to "
                f"{sub('X', r, c)} = {fmt(st.x[r, c])}, the window's maximum. Mean "
                f"pool: {fmt(g)}/{kk} = {fmt(g / kk)} to each of its {len(real)} cells"
                + (f"; the {n_pad} shares of padded cells are lost." if n_pad else "."))
        cells = ([cell_id("dy", i, j), cell_id("x", r + p, c + p), cell_id("max", r, c)]
                 + [cell_id("mean", a, b) for a, b in real])
        links[cell_id("dy", i, j)] = link(cells, [box[i, j]], text)
    for r in range(H):
        for c in range(W):
            ws = geo.windows_of(r, c)
            won = [(i, j) for i, j in ws if (st.rows[i, j], st.cols[i, j]) == (r, c)]
            if not ws:
                text = (f"{sub('X', r, c)} lies in no window (the stride skips it): "
                        "no gradient under either pooling.")
            else:
                max_part = (" + ".join(fmt(st.dy[i, j]) for i, j in won)
                            + f" = {fmt(st.dx_max[r, c])}"
                            if won else "0 (it wins none)")
                shares = " + ".join(fmt(st.dy[i, j]) for i, j in ws)
                text = (f"{sub('X', r, c)} is in {len(ws)} window"
                        f"{'s' if len(ws) > 1 else ''}. Max pool: {max_part}. Mean "
                        f"pool: ({shares})/{kk} = {fmt(st.dx_mean[r, c])}.")
            cells = ([cell_id("x", r + p, c + p), cell_id("max", r, c),
                      cell_id("mean", r, c)] + [cell_id("dy", i, j) for i, j in ws])
            lk = link(cells, [box[w] for w in ws], text)
            for q, rr, cc in (("x", r + p, c + p), ("max", r, c), ("mean", r, c)):
                links[cell_id(q, rr, cc)] = lk
    notes = []
    if s < k:
        notes.append("windows overlap: a cell in several windows adds up their "
                     "gradients")
    if not all(geo.windows_of(r, c) for r in range(H) for c in range(W)):
        notes.append("some cells lie in no window and get nothing under either pooling")
    if p:
        notes.append(f"mean pooling divides by {kk} at the border too (padded zeros "
                     "count), so the shares of padded cells are lost")
    caption = (f"Σ ∂L/∂Y = {fmt(st.mass_dy)}. <b>Max pool</b>: {nz_max} of {n} cells "
               f"receive gradient, Σ ∂L/∂X = {fmt(st.mass_max)}. <b>Mean pool</b>: "
               f"{nz_mean} of {n}, Σ ∂L/∂X = {fmt(st.mass_mean)}."
               + (" " + "; ".join(notes).capitalize() + "." if notes else ""))
    legend = {"win": "maximum of its window (under max pooling it gets the gradient)"}
    return {"panels": panels, "links": links, "caption": caption,
            "focus": cell_id("dy", 0, 0), "legend": legend}


def comparison_state(x, window: int, stride: int, padding: int, dy=None,
                     upstream: str = "ones", seed: int = 0) -> dict:
    """:func:`compare_state` of :func:`pooling_state` with these arguments: the state
    of the explorable (and of the chapter's figures) for an input ``x`` ``(H, W)``, a
    window, a stride and a padding, and ``dy`` (∂L/∂Y; default
    :func:`upstream_values`)."""
    return compare_state(pooling_state(x, window, stride, padding, dy=dy,
                                       upstream=upstream, seed=seed))


class PoolingRouting(SeededExplorable):
    """Chapter 9: ∂L/∂X under max pooling and under mean pooling side by side, for the
    same input and upstream gradient.

    Controls: input size (:data:`SIZES`), window k (1-3), stride s (1-3), padding p
    (0-1; PyTorch allows at most k // 2), the upstream gradient (all ones, or random
    integers 1..4).  Action (kernel): a new shuffled input and random gradient (the next
    seed)."""

    TITLE = "Mean vs max pooling: where each gradient goes"
    NEW_LABEL = "new input and ∂L/∂Y"

    def __init__(self, seed: int = 0, **kw):
        super().__init__(seed=int(seed), **kw)

    def make_controls(self):
        return [control("size", "input size", list(SIZES), default=6,
                        labels=[f"{n}×{n}" for n in SIZES]),
                control("k", "window k", [1, 2, 3], default=3),
                control("s", "stride s", [1, 2, 3], default=1),
                control("p", "padding p", [0, 1], default=1),
                control("upstream", "∂L/∂Y", ["ones", "random"], default="random",
                        kind="select", labels=["all ones", "random 1..4"])]

    def state(self, size, k, s, p, upstream):
        if p > k // 2:
            return {"message": f"Padding {p} is more than half the window ({k}×{k}): "
                               "PyTorch refuses it (a window could hold only padding). "
                               f"Choose p ≤ {k // 2}."}
        seed = self.config["seed"]
        return comparison_state(input_values(size, seed), k, s, p, upstream=upstream,
                                seed=seed)
