"""Figures and widgets of the book.

One picture language draws every grid of numbers in the book: :mod:`cnnviz.explorable` holds the
explorables and the static figures of a state (:func:`figure`, :func:`call`, :func:`matrices`),
both drawn in the browser by ``cnnviz/static/explorable.js``; the docstring of
:mod:`cnnviz.explorable` says how to draw a figure.  :mod:`cnnviz.draw` holds :func:`format_value`
(the text of every cell) and the matplotlib helpers for what matplotlib draws best (curves, timing
charts).  Each chapter with a widget has its own module here (the widget's logic lives in a class
that tests drive from Python).
"""
from .draw import (ACCENT, HIGHLIGHT, WINDOW, draw_matrix, format_value, latex_matrix,  # noqa: F401
                   matrices_figure, outline_cells, outline_window, show_figure)
from .explorable import StateFigure, call, figure, matrices  # noqa: F401
