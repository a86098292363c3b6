"""Figures and widgets of the book.

``cnnviz.draw`` holds the drawing helpers every chapter shares; each chapter with a widget has
its own module here (the widget's logic lives in a class that tests drive from Python).
"""
from .draw import (ACCENT, HIGHLIGHT, WINDOW, draw_matrix, format_value, latex_matrix,  # noqa: F401
                   matrices_figure, outline_cells, outline_window, show_figure)
