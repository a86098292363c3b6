"""Figures and widgets of the book.

One picture language draws every grid of numbers in the book: :mod:`cnnviz.explorable` holds the
explorables and the static figures of a state (:func:`figure`, :func:`call`, :func:`matrices`),
both drawn in the browser by ``cnnviz/static/explorable.js``; the docstring of
:mod:`cnnviz.explorable` says how to draw a figure.  :mod:`cnnviz.draw` holds :func:`format_value`
(the text of every cell).  Each chapter with a widget has its own module here (the widget's logic
lives in a class that tests drive from Python).

How a chapter shows the rest (each prints once, reads in both themes and fits the column):

- a matplotlib figure (curves, timing charts, feature maps, diagrams):
  ``fig, ax = mplfig.subplots(height=300)`` (the column's width, 720 px), draw, then
  ``show_figure(fig)``: inline SVG whose axes and text follow the light or dark theme
  (:mod:`cnnviz.mplfig`);
- a table: ``show_table(rows, header, footer=..., caption=...)``: a styled HTML table plus
  aligned text (:mod:`cnnviz.table`);
- a marked entry in a matrix: ``latex_matrix(L1, boxed=mask == 1, color="theme")``: bold, in
  a colour that follows the theme (``\\class{cnn-max}``, styled by ``_static/book.css``).
"""
from . import mplfig  # noqa: F401
from .draw import MARK_TEX, format_value, latex_matrix  # noqa: F401
from .explorable import StateFigure, call, figure, matrices  # noqa: F401
from .mplfig import show_figure  # noqa: F401
from .table import show_table  # noqa: F401
