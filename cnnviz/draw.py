"""What every chapter writes numbers with: the text of a cell (:func:`format_value`, used by the
explorables and figures of :mod:`cnnviz.explorable`) and matrices in LaTeX (:func:`latex_matrix`,
with the book's theme-safe mark for chosen entries)."""
from __future__ import annotations

import math
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any, Optional

import numpy as np

__all__ = ["format_value", "latex_matrix", "MARK_TEX", "sub", "factor", "SUBSCRIPT_DIGITS"]

#: ``str.translate`` table for Unicode subscript digits (``"h1".translate(...)`` -> h₁)
SUBSCRIPT_DIGITS = str.maketrans("0123456789", "₀₁₂₃₄₅₆₇₈₉")


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


#: How ``latex_matrix`` marks an entry (a maximum, a winner): bold, and coloured by the theme.
#: MathJax 3 (the book, JupyterLab) and MathJax 2 both know ``\class`` and ``\style``.
#: The colour is the CSS variable ``--cnn-max-color`` that ``_static/book.css`` sets for the light
#: and the dark theme (class ``cnn-max``); where it is not set, JupyterLab's theme-aware link colour
#: ``--jp-content-link-color``, and elsewhere a mid blue that is readable on white and on black.
MARK_TEX = r"\class{cnn-max}{\style{color:var(--cnn-max-color,var(--jp-content-link-color,#2f6fb5))}{\mathbf{%s}}}"


def latex_matrix(M, fmt: Optional[str] = None, boxed=None, color: str = "theme") -> str:
    """A ``bmatrix`` for MathJax; entries where ``boxed`` is true are marked (bold and coloured).

    ``color="theme"`` (the default) is the book's mark: a colour that follows the page's theme
    (:data:`MARK_TEX`: the book's light and dark mode, JupyterLab's themes), so it keeps its
    contrast everywhere. A TeX colour name (``"red"``) draws ``\\color{...}``, the same in every
    theme, which is not readable on both.
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


def sub(name: str, *index: int) -> str:
    """``X<sub>12</sub>``: an entry's name with its indices as an HTML subscript (the book's
    X<sub>uv</sub>), separated by commas only when one of them has two digits."""
    index = tuple(int(i) for i in index)
    sep = "," if any(i > 9 for i in index) else ""
    return f"{name}<sub>{sep.join(str(i) for i in index)}</sub>"


def factor(x) -> str:
    """A number as a factor in a written-out product: negative numbers in parentheses."""
    s = format_value(x)
    return f"({s})" if s.startswith("-") else s
