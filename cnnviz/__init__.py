"""Figures and widgets of the book.

``cnnviz.draw`` holds the drawing helpers every chapter shares; each chapter with a widget has
its own module here (the widget's logic lives in a class that tests drive from Python).

How a chapter shows things (each prints once, reads in both themes and fits the column):

- a matplotlib figure: ``fig, ax = mplfig.subplots(height=300)`` (the column's width, 720 px),
  draw, then ``show_figure(fig)``: inline SVG whose axes and text follow the light or dark
  theme (:mod:`cnnviz.mplfig`);
- a table: ``show_table(rows, header, footer=..., caption=...)``: a styled HTML table plus
  aligned text (:mod:`cnnviz.table`);
- a marked entry in a matrix: ``latex_matrix(L1, boxed=mask == 1, color="theme")``: bold, in
  a colour that follows the theme (``\\class{cnn-max}``, styled by ``_static/book.css``).
"""
from . import mplfig  # noqa: F401
from .draw import (ACCENT, HIGHLIGHT, MARK_TEX, WINDOW, draw_matrix, format_value, latex_matrix,  # noqa: F401
                   matrices_figure, outline_cells, outline_window)
from .mplfig import show_figure  # noqa: F401
from .table import show_table  # noqa: F401
