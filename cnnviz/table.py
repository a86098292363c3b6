"""Printed tables, shown once: a styled HTML table in the book and JupyterLab, aligned text elsewhere.

::

    from cnnviz import show_table

    show_table([["0", "386 (85.8 %)", "+2"], ["1", "398 (88.4 %)", "+31"]],
               header=["seed", "max pooling", "difference"],
               footer=[["mean", "87.1 %", "+17"]], caption="Ten seeds")

The output holds ``text/html`` (a ``table.cnn-table`` in a ``div.cnn-table-wrap`` that scrolls
sideways on a narrow screen; ``_static/book.css`` styles it for the light and the dark theme,
JupyterLab with its own table style) and a deterministic ``text/plain`` (the same cells in
aligned columns), so nbval compares both and a chapter prints each table once. Cells are text:
numbers are written with ``str()`` (format them first for a fixed number of digits) and HTML
is escaped. Columns whose cells all look like numbers are right-aligned (``align`` overrides:
one of ``"l"``, ``"r"``, ``"c"`` per column).
"""
from __future__ import annotations

import html as html_lib
import re
from typing import Optional, Sequence

__all__ = ["table_bundle", "show_table"]

_NUM = r"[+\-−±]?\d[\d.,]*(?:e[+\-−]?\d+)?"
# a number, maybe "± number", a unit and a note in brackets: 386 (85.8 %), 1.1e-14, +31, 0.46×, 87.1 ± 2.3 %
_NUMERIC = re.compile(rf"{_NUM}(?: ?± ?{_NUM})?(?: ?(?:%|×|x|ns|µs|ms|s))?(?: \([^)]*\))?", re.I)
_ALIGN = {"l": "left", "r": "right", "c": "center"}


def _cells(rows, width: int, what: str) -> list:
    out = []
    for i, row in enumerate(rows):
        row = ["" if v is None else str(v) for v in row]
        if len(row) != width:
            raise ValueError(f"{what} {i} has {len(row)} cells, the header {width}")
        out.append(row)
    return out


def _alignment(align, header, body) -> list:
    if align is None:
        cols = list(zip(*body)) if body else [[] for _ in header]
        return ["r" if all(_NUMERIC.fullmatch(v) or v in ("", "—", "-") for v in col)
                and any(_NUMERIC.fullmatch(v) for v in col) else "l" for col in cols]
    align = list(align)
    if len(align) != len(header) or any(a not in _ALIGN for a in align):
        raise ValueError(f"align must give one of 'l', 'r', 'c' per column ({len(header)}), got {align!r}")
    return align


def _plain(header, body, footer, align, caption) -> str:
    rows = [header] + body + footer
    widths = [max(len(r[j]) for r in rows) for j in range(len(header))]

    def line(r):
        return "  ".join(v.rjust(w) if a == "r" else v.center(w) if a == "c" else v.ljust(w)
                         for v, w, a in zip(r, widths, align)).rstrip()

    rule = "  ".join("-" * w for w in widths)
    out = ([caption] if caption else []) + [line(header), rule] + [line(r) for r in body]
    if footer:
        out += [rule] + [line(r) for r in footer]
    return "\n".join(out)


def _html(header, body, footer, align, caption) -> str:
    def cell(tag, v, a):
        style = f' style="text-align:{_ALIGN[a]}"' if a != "l" else ""
        return f"<{tag}{style}>{html_lib.escape(v)}</{tag}>"

    def row(r, tag="td"):
        return "<tr>" + "".join(cell(tag, v, a) for v, a in zip(r, align)) + "</tr>"

    parts = ['<div class="cnn-table-wrap" style="overflow-x:auto;max-width:100%">', '<table class="cnn-table">']
    if caption:
        parts.append(f"<caption>{html_lib.escape(caption)}</caption>")
    parts.append("<thead>" + row(header, "th") + "</thead>")
    parts.append("<tbody>" + "".join(row(r) for r in body) + "</tbody>")
    if footer:
        parts.append("<tfoot>" + "".join(row(r) for r in footer) + "</tfoot>")
    parts.append("</table></div>")
    return "".join(parts)


def table_bundle(rows: Sequence[Sequence], header: Sequence, *, footer: Sequence[Sequence] = (),
                 align: Optional[Sequence[str]] = None, caption: Optional[str] = None) -> dict:
    """The mime bundle :func:`show_table` displays: ``{"text/html": ..., "text/plain": ...}``."""
    header = ["" if v is None else str(v) for v in header]
    if not header:
        raise ValueError("header must name at least one column")
    body = _cells(rows, len(header), "row")
    foot = _cells(footer, len(header), "footer row")
    align = _alignment(align, header, body + foot)
    return {"text/html": _html(header, body, foot, align, caption),
            "text/plain": _plain(header, body, foot, align, caption)}


def show_table(rows: Sequence[Sequence], header: Sequence, *, footer: Sequence[Sequence] = (),
               align: Optional[Sequence[str]] = None, caption: Optional[str] = None) -> None:
    """Display a table (see the module doc): ``rows`` of cells under ``header``, ``footer`` rows
    (a mean, a total) set apart below, an optional ``caption`` above."""
    from IPython.display import display

    display(table_bundle(rows, header, footer=footer, align=align, caption=caption), raw=True)
