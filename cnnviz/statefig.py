"""Deprecated: an explorable's state drawn with matplotlib.  Use :func:`cnnviz.figure`.

:func:`cnnviz.figure` draws a state with the explorables' own browser view (one palette, one
cell formatter, both themes, any width, the PDF).  This matplotlib copy stays only until the
chapters that still call :func:`state_figure` (4, 5, 7 and 9, as ``fig = state_figure(...);
plt.show()``) and their tests are converted; then delete this module.  The conversion::

    fig = state_figure(state, title=t, follow=f, panels=p); plt.show()      # before
    cnnviz.figure(cnnviz.call(module.state_function, *args), title=t, follow=f, panels=p)   # after

``cell`` and ``max_width`` have no counterpart: the view sizes cells to their text and wraps the
panels to the column.  :func:`plain_text` now lives in :mod:`cnnviz.explorable`.
"""
from __future__ import annotations

import textwrap
from typing import Any, Dict, List, Optional

from matplotlib import pyplot as plt
from matplotlib.font_manager import FontProperties
from matplotlib.patches import Rectangle
from matplotlib.textpath import TextPath

from .explorable import plain_text  # kept here for the chapters not yet converted

__all__ = ["state_figure", "plain_text"]

# The browser's palette (cnnviz/static/explorable.css, light theme).
_SEQ = (86 / 255, 120 / 255, 160 / 255)
_POS = (213 / 255, 94 / 255, 0.0)
_NEG = (0.0, 114 / 255, 178 / 255)
_WIN = "#e69f00"
_WINDOW = "#0072b2"
_PAD = "#e4e4e4"
_MUTED = "#5f5f5f"
_HL = "#009e73"
_CUR = "#cc79a7"


def _fill(panel: Dict[str, Any], f) -> Optional[tuple]:
    if f is None or panel["scale"] == "none":
        return None
    if panel["scale"] == "div":
        if f == 0:
            return None
        a = min(1.0, abs(f)) * 0.85
        return (*(_POS if f > 0 else _NEG), a)
    return (*_SEQ, 0.08 + 0.55 * f)


def _slot(p: Dict[str, Any], cell: float) -> float:
    """Width in inches a panel needs: its cells, or its title (8.5 pt) if that is longer."""
    title = TextPath((0, 0), p["title"], size=8.5, prop=FontProperties(family=["sans-serif"]))
    xs = title.vertices[:, 0]                    # control points: a cheap upper bound of the extent
    return max(p["cols"] * cell, (float(xs.max() - xs.min()) if len(xs) else 0.0) / 72 + 0.05)


def _rows(panels: List[Dict[str, Any]], cell: float, gap: float, max_width: float) -> List[List[int]]:
    rows, width = [[]], 0.0
    for n, p in enumerate(panels):
        w = _slot(p, cell) + gap
        if rows[-1] and width + w > max_width:
            rows.append([])
            width = 0.0
        rows[-1].append(n)
        width += w
    return rows


def _followed(state: Dict[str, Any], follow: Optional[str]) -> Optional[Dict[str, Any]]:
    if follow is None:
        return None
    links = state.get("links", {})
    lk = links.get(follow)
    if isinstance(lk, str):  # a link shared with another cell
        lk = links[lk]
    if lk is None:
        raise ValueError(f"no cell {follow!r} to follow; linked cells are e.g. {sorted(links)[:4]}")
    return lk


def state_figure(state: Dict[str, Any], cell: float = 0.36, max_width: float = 9.4,
                 title: Optional[str] = None, caption: bool = True, follow: Optional[str] = None,
                 panels: Optional[List[str]] = None):
    """A matplotlib figure of an explorable ``state`` (see :mod:`cnnviz.explorable`).

    ``cell`` is the side of a cell in inches; panels wrap into rows no wider than
    ``max_width`` inches.  ``title`` goes above; the state's caption (without HTML) below.
    ``follow`` (a cell id) outlines what that cell links to; ``panels`` picks panel ids (default:
    all).  Returns the figure.
    """
    if "message" in state:
        if follow is not None:
            raise ValueError(f"this state has nothing to draw: {plain_text(state['message'])}")
        fig, ax = plt.subplots(figsize=(min(max_width, 6.0), 0.8))
        ax.axis("off")
        ax.text(0.5, 0.5, plain_text(state["message"]), ha="center", va="center", wrap=True, fontsize=9)
        return fig
    lk = _followed(state, follow)
    panels = [p for p in state["panels"] if panels is None or p["id"] in panels]
    gap = 0.35
    rows = _rows(panels, cell, gap, max_width)
    row_h = [max(panels[n]["rows"] for n in r) * cell + 0.45 for r in rows]
    width = min(max_width, max(sum(_slot(panels[n], cell) + gap for n in r) for r in rows) + 0.2)
    head = 0.35 if title else 0.1
    lines = (textwrap.wrap(plain_text(state["caption"]), int(width * 13))
             if caption and state.get("caption") else [])
    foot = 0.15 + 0.16 * len(lines)
    height = sum(row_h) + head + foot
    fig = plt.figure(figsize=(width, height))
    fs = 9 if cell >= 0.34 else 7.5
    y_top = height - head
    for r, members in zip(row_h, rows):
        x = 0.1
        for n in members:
            p = panels[n]
            w, h = p["cols"] * cell, p["rows"] * cell
            ax = fig.add_axes([x / width, (y_top - 0.3 - h) / height, w / width, h / height])
            _draw_panel(ax, p, fs)
            if lk is not None:
                _draw_follow(ax, p, follow, lk)
            ax.set_title(p["title"], fontsize=8.5, loc="left", pad=3)
            x += _slot(p, cell) + gap
        y_top -= r
    if title:
        fig.text(0.5, 1 - 0.05 / height, title, ha="center", va="top", fontsize=10)
    if lines:
        fig.text(0.1 / width, 0.08 / height, "\n".join(lines), ha="left", va="bottom", fontsize=8,
                 color=_MUTED)
    return fig


def _draw_panel(ax, p: Dict[str, Any], fs: float) -> None:
    R, C = p["rows"], p["cols"]
    classes = p.get("classes") or [[""] * C for _ in range(R)]
    for r in range(R):
        for c in range(C):
            cls = set(classes[r][c].split())
            face = _PAD if "pad" in cls else _fill(p, p["fill"][r][c])
            ax.add_patch(Rectangle((c, r), 1, 1, facecolor=face or "white", edgecolor="#b8b8b8",
                                   linewidth=0.8))
            muted = cls & {"pad", "dim", "zero"}
            text = p["text"][r][c]
            ax.text(c + 0.5, r + 0.52, text, ha="center", va="center",
                    fontsize=fs if len(text) <= 4 else fs - 1.5,
                    color=_MUTED if muted else "black", fontweight="bold" if "win" in cls else "normal")
            if cls & {"win", "tie", "sel"}:
                ax.add_patch(Rectangle((c + 0.06, r + 0.06), 0.88, 0.88, fill=False,
                                       edgecolor=_WIN if "sel" not in cls else "#cc79a7",
                                       linewidth=2.2 if "tie" not in cls else 1.6,
                                       linestyle="--" if "tie" in cls else "-", zorder=3))
    for _, r0, c0, h, w, cls in p.get("windows", []):
        dead = "dead" in str(cls).split()
        ax.add_patch(Rectangle((c0 + 0.08, r0 + 0.08), w - 0.16, h - 0.16, fill=False,
                               edgecolor="0.5" if dead else _WINDOW, linewidth=1.6,
                               linestyle=(0, (3, 2)) if dead else "-", zorder=4))
    ax.set_xlim(0, C)
    ax.set_ylim(R, 0)
    ax.set_aspect("equal")
    ax.axis("off")


def _draw_follow(ax, p: Dict[str, Any], follow: str, lk: Dict[str, Any]) -> None:
    """Outline, in panel ``p``, the followed cell (purple), the cells it links to (green) and its
    windows (dashed green), as the browser does on hover."""
    for cid in [follow] + list(lk["cells"]):
        pid, r, c = cid.split(":")
        if pid == p["id"]:
            ax.add_patch(Rectangle((int(c) + 0.04, int(r) + 0.04), 0.92, 0.92, fill=False, linewidth=2.4,
                                   edgecolor=_CUR if cid == follow else _HL, zorder=5))
    for idx, (pid, r0, c0, h, w, _) in enumerate(lk["windows"]):
        if pid == p["id"]:
            inset = 0.12 + 0.05 * (idx % 4)
            ax.add_patch(Rectangle((c0 + inset, r0 + inset), w - 2 * inset, h - 2 * inset, fill=False,
                                   edgecolor=_HL, linewidth=1.6, linestyle="--", zorder=6))
