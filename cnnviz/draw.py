"""Drawing helpers shared by every chapter: annotated matrices, window outlines, LaTeX matrices.

Everything here draws with matplotlib on axes it is given (or a figure it returns), so the
same code makes a chapter's static figures and its widgets' figures.
"""
from __future__ import annotations

import math
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any, Optional, Sequence

import numpy as np
from matplotlib import pyplot as plt
from matplotlib.patches import Rectangle

__all__ = ["format_value", "draw_matrix", "outline_cells", "outline_window", "matrices_figure",
           "latex_matrix", "MARK_TEX", "HIGHLIGHT", "WINDOW", "ACCENT"]

HIGHLIGHT = "#d62728"   # the cells a gradient reaches (red)
WINDOW = "#1f77b4"      # a pooling / kernel window (blue)
ACCENT = "#ff7f0e"      # a second emphasis (orange)


def _decimal(v: float) -> Decimal:
    """``v`` rounded to ten significant digits, exactly, as a decimal: the last bits in which two
    machines' BLAS may differ are gone, so every text made from it is the same on both."""
    return Decimal(f"{v:.10g}")


def format_value(v: Any, fmt: Optional[str] = None, digits: int = 3) -> str:
    """A short, stable text for one matrix entry.

    ``digits`` significant digits (3 for a cell; 10 for an exact read-out), integers below 10⁵ in
    full, ``-0`` as ``0``, ``NaN``, ``∞`` and ``−∞``.  The value is first rounded to ten significant
    digits and then rounded half to even *in decimal*, so a value that is x.xx5 up to its last bit
    prints the same on every machine (``-1.575`` → ``-1.58`` whether the product gave
    ``-1.5749999999999997`` or ``-1.5750000000000002``).  ``fmt`` (a ``str.format`` pattern such as
    ``"{:g}"``) is applied to the value rounded to ten significant digits.
    """
    if fmt is not None:
        if isinstance(v, (float, np.floating)) and math.isfinite(v):
            v = float(_decimal(float(v)))
        return fmt.format(v)
    v = float(v)
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "∞" if v > 0 else "−∞"
    if v == 0:
        return "0"
    d = _decimal(v)
    if d == d.to_integral_value() and abs(d) < 100_000:
        return str(int(d))
    d = d.quantize(Decimal(1).scaleb(d.adjusted() - digits + 1), rounding=ROUND_HALF_EVEN)
    return f"{float(d):.{digits}g}"


def draw_matrix(ax, M, title: Optional[str] = None, fmt: Optional[str] = None,
                highlight=None, highlight_color: str = HIGHLIGHT, cmap: str = "Blues",
                diverging: bool = False, vmin=None, vmax=None, annotate: bool = True,
                fontsize: Optional[float] = None, row_labels: Optional[Sequence[str]] = None,
                col_labels: Optional[Sequence[str]] = None):
    """Draw a 2-D array as a grid of coloured cells with its values written in them.

    ``highlight`` is a boolean array of ``M``'s shape: those cells get a thick outline.
    ``diverging=True`` centres a red/blue colour map on zero (for gradients).
    Returns the ``AxesImage``.
    """
    M = np.asarray(M, dtype=float)
    if M.ndim != 2:
        raise ValueError(f"M must be 2-D, got shape {M.shape}")
    finite = M[np.isfinite(M)]
    if diverging:
        lim = float(np.max(np.abs(finite))) if finite.size else 1.0
        lim = lim or 1.0
        vmin, vmax, cmap = -lim, lim, "RdBu_r"
    shown = np.where(np.isfinite(M), M, np.nan)
    im = ax.imshow(shown, cmap=cmap, vmin=vmin, vmax=vmax)
    H, W = M.shape
    if annotate:
        fs = fontsize or max(6.0, 13.0 - 0.6 * max(H, W))
        norm = im.norm
        for r in range(H):
            for c in range(W):
                val = M[r, c]
                level = norm(val) if np.isfinite(val) else 0.0
                dark = (abs(level - 0.5) > 0.3) if diverging else (level > 0.6)
                ax.text(c, r, format_value(val, fmt), ha="center", va="center", fontsize=fs,
                        color="white" if dark else "black")
    ax.set_xticks(np.arange(W))
    ax.set_yticks(np.arange(H))
    ax.set_xticklabels(col_labels if col_labels is not None else [str(c) for c in range(W)], fontsize=8)
    ax.set_yticklabels(row_labels if row_labels is not None else [str(r) for r in range(H)], fontsize=8)
    ax.set_xticks(np.arange(-0.5, W, 1), minor=True)
    ax.set_yticks(np.arange(-0.5, H, 1), minor=True)
    ax.grid(which="minor", color="0.6", linewidth=0.6)
    ax.tick_params(which="minor", length=0)
    if title:
        ax.set_title(title, fontsize=10)
    if highlight is not None:
        outline_cells(ax, highlight, color=highlight_color)
    return im


def outline_cells(ax, mask, color: str = HIGHLIGHT, linewidth: float = 2.5):
    """Draw a thick square around every cell where ``mask`` is true."""
    mask = np.asarray(mask, dtype=bool)
    for r, c in zip(*np.nonzero(mask)):
        ax.add_patch(Rectangle((c - 0.5, r - 0.5), 1, 1, fill=False, edgecolor=color,
                               linewidth=linewidth, zorder=3))


def outline_window(ax, row: int, col: int, height: int, width: int, color: str = WINDOW,
                   linewidth: float = 2.5, linestyle: str = "-", inset: float = 0.0):
    """Outline the rectangle of cells ``[row, row+height) x [col, col+width)`` (may leave the grid)."""
    ax.add_patch(Rectangle((col - 0.5 + inset, row - 0.5 + inset), width - 2 * inset, height - 2 * inset,
                           fill=False, edgecolor=color, linewidth=linewidth, linestyle=linestyle, zorder=4))


def matrices_figure(mats: Sequence, titles: Sequence[str], highlights: Optional[Sequence] = None,
                    diverging: Optional[Sequence[bool]] = None, cell_size: float = 0.45,
                    suptitle: Optional[str] = None, fmt: Optional[str] = None):
    """A row of annotated matrices, each sized by its own shape. Returns the figure."""
    n = len(mats)
    highlights = list(highlights) if highlights is not None else [None] * n
    diverging = list(diverging) if diverging is not None else [False] * n
    widths = [max(np.asarray(m).shape[1], 1) for m in mats]
    height = max(np.asarray(m).shape[0] for m in mats)
    fig, axes = plt.subplots(1, n, figsize=(cell_size * sum(widths) + 1.2 * n, cell_size * height + 1.1),
                             gridspec_kw={"width_ratios": widths}, squeeze=False)
    for ax, m, t, h, d in zip(axes[0], mats, titles, highlights, diverging):
        draw_matrix(ax, np.asarray(m), title=t, highlight=h, diverging=d, fmt=fmt)
    if suptitle:
        fig.suptitle(suptitle, fontsize=11)
    fig.tight_layout()
    return fig


#: How ``latex_matrix`` marks an entry (a maximum, a winner): bold, and coloured by the theme.
#: MathJax 3 (the book, JupyterLab) and MathJax 2 both know ``\class`` and ``\style``.
#: The colour is the CSS variable ``--cnn-max-color`` that ``_static/book.css`` sets for the light
#: and the dark theme (class ``cnn-max``); where it is not set, JupyterLab's theme-aware link colour
#: ``--jp-content-link-color``, and elsewhere a mid blue that is readable on white and on black.
MARK_TEX = r"\class{cnn-max}{\style{color:var(--cnn-max-color,var(--jp-content-link-color,#2f6fb5))}{\mathbf{%s}}}"


def latex_matrix(M, fmt: Optional[str] = None, boxed=None, color: str = "red") -> str:
    """A ``bmatrix`` for MathJax; entries where ``boxed`` is true are marked (bold and coloured).

    ``color="theme"`` is the book's mark: a colour that follows the page's theme
    (:data:`MARK_TEX`: the book's light and dark mode, JupyterLab's themes), so it keeps its
    contrast everywhere. A TeX colour name (``"red"``, the default of the stored outputs the
    chapters have not re-run yet) draws ``\\color{...}``, the same in every theme.
    """
    M = np.asarray(M)
    boxed = np.zeros(M.shape, bool) if boxed is None else np.asarray(boxed, bool)
    if M.ndim == 1:
        M, boxed = M[:, None], boxed.reshape(-1, 1) if boxed.ndim == 1 else boxed
    if M.ndim != 2:
        raise ValueError(f"M must be 1-D or 2-D, got shape {M.shape}")
    if boxed.shape != M.shape:
        raise ValueError(f"boxed must have M's shape {M.shape}, got {boxed.shape}")
    mark = MARK_TEX if color == "theme" else r"\color{%s}{\mathbf{%%s}}" % color
    rows = []
    for r in range(M.shape[0]):
        cells = []
        for c in range(M.shape[1]):
            t = format_value(M[r, c], fmt).replace("−", "-").replace("∞", r"\infty")
            cells.append(mark % t if boxed[r, c] else t)
        rows.append(" & ".join(cells))
    return r"\begin{bmatrix}" + r" \\ ".join(rows) + r"\end{bmatrix}"
