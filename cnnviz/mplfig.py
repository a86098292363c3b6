"""Matplotlib figures drawn for the book's column, shown as inline SVG that follows the theme.

Training curves, timing charts, feature maps and the network diagram are matplotlib figures.
Every chapter shows them the same way::

    from cnnviz import mplfig, show_figure

    fig, (a1, a2) = mplfig.subplots(1, 2, height=300)   # the column's width, 300 px tall
    a1.plot(epochs, loss)
    ...
    show_figure(fig)                                     # displays it and closes it

- **Drawn for the column.** The book's column is :data:`COLUMN_PX` (720) CSS pixels wide at a
  1280 px screen (``_static/book.css``). :func:`subplots` and :func:`figure` make figures that
  wide (in CSS pixels: 96 per inch), with constrained layout. :func:`show_figure` refuses a
  figure wider than the column (a ``ValueError`` naming both widths) and raises every text
  smaller than :data:`MIN_FONT_PX` (12 px, 9 pt) to that size, so no text is below 11 px as
  shown. The page shows the figure at its drawn size; a narrower screen shrinks it to at most
  80 % and then scrolls it inside its own box (``.cnn-figure``), so its text stays legible.
- **Both themes.** The figure and axes backgrounds are transparent, and the axes' chrome (spines,
  ticks, tick labels, axis labels, titles, legend text and frame, grid) is drawn in the page's
  text colour (``currentColor``), so the book's dark mode and JupyterLab's dark theme show light
  text on the dark page and no white box. Text or lines of your own that sit on the page
  background (an ``ax.text`` or ``ax.annotate`` note, a black arrow) should use ``color=FG``
  (:data:`FG`), which is drawn in that same colour; text on a coloured cell keeps the colour you
  give it. A legend's box is filled with the page's background colour (:data:`BG`). Data colours
  (lines, bars, images) are yours: mid tones such as C0, C2, C3 and C4 keep 3:1 against both
  backgrounds, C1 (orange) does not on white.
- **Where HTML is sanitized** (JupyterLab or GitHub showing a notebook the reader has not run
  or trusted), the output shows the line "Figure: <titles> (drawn once this notebook is run or
  trusted)." instead of the drawing.
- **SVG, deterministic.** The figure is written as SVG with its text as text (it prints sharply
  and can be searched), inline in a ``text/html`` output with a ``text/plain`` description
  ``<Figure 720×300 px: …>``. The bytes depend only on the figure: no date, no generator
  version, ids derived from the content (``cnnfig-<hash>-<n>``, unique per figure on a page),
  coordinates rounded to 0.01 pt, so re-executing a notebook gives no diff. nbval compares
  ``text/html``; ``tests/nbval_sanitize.cfg`` masks path data, ids and embedded images, so a
  trained curve that differs in its last digit on another machine does not fail it.

A figure shown into an ``ipywidgets.Output`` (``show_figure(fig, out=output)``) is stored in
the widget state the same way.
"""
from __future__ import annotations

import hashlib
import html as html_lib
import io
import re
from typing import Optional

from matplotlib import colors as mcolors
from matplotlib import pyplot as plt
from matplotlib.text import Text

__all__ = ["COLUMN_PX", "MIN_FONT_PX", "MIN_SHOWN", "FG", "BG", "size", "subplots", "figure_svg",
           "figure_html", "show_figure"]

#: Width of the book's column in CSS pixels at a 1280 px wide screen: figures are drawn this wide.
COLUMN_PX = 720
#: Smallest text a shown figure may hold, in CSS pixels (9 pt).
MIN_FONT_PX = 12
#: A figure never shows narrower than this fraction of its drawn width (it scrolls instead).
MIN_SHOWN = 0.8
#: Colour for text and lines drawn on the page background: rendered in the page's text colour.
FG = "#010203"
#: Colour of the page's background (a legend's box, a label's backing): rendered as the page's.
BG = "#fefdfc"

PX_PER_INCH = 96          # CSS pixels per inch
PT_PER_PX = 72 / 96       # an SVG user unit of matplotlib is one point
_FG_CSS = "currentColor"
# the book's page, JupyterLab's page, else the browser's own background for the colour scheme
_BG_CSS = "var(--pst-color-background,var(--jp-layout-color0,Canvas))"
_HASHSALT = "cnnviz"
_DEFAULT_GRID_ALPHA = 0.25


def size(height: float, width: float = COLUMN_PX) -> tuple:
    """``figsize`` (inches) for a figure ``width`` × ``height`` CSS pixels (default: the column's width)."""
    if not (0 < width <= COLUMN_PX):
        raise ValueError(f"width must be in (0, {COLUMN_PX}] CSS px (the column), got {width}")
    if not height > 0:
        raise ValueError(f"height must be positive (CSS px), got {height}")
    return (width / PX_PER_INCH, height / PX_PER_INCH)


def subplots(nrows: int = 1, ncols: int = 1, *, height: float, width: float = COLUMN_PX, **kwargs):
    """``plt.subplots`` for the column: ``width`` × ``height`` CSS pixels, constrained layout."""
    kwargs.setdefault("layout", "constrained")
    return plt.subplots(nrows, ncols, figsize=size(height, width), **kwargs)


# --- theme: the chrome in the page's colour, no background ---------------------------------------
def _is(color, *names) -> bool:
    try:
        return any(mcolors.same_color(color, n) for n in names)
    except (ValueError, TypeError):
        return False


def _chrome_texts(fig):
    texts = [t for t in (getattr(fig, "_suptitle", None), getattr(fig, "_supxlabel", None),
                         getattr(fig, "_supylabel", None)) if t is not None]
    legends = list(fig.legends)
    for ax in fig.axes:
        texts += [ax.title, ax._left_title, ax._right_title]
        for axis in (ax.xaxis, ax.yaxis):
            texts += [axis.label, axis.get_offset_text()]
            texts += axis.get_ticklabels(which="both")
        if ax.get_legend() is not None:
            legends.append(ax.get_legend())
    for leg in legends:
        texts += list(leg.get_texts())
        if leg.get_title() is not None:
            texts.append(leg.get_title())
    return texts, legends


def _theme(fig) -> None:
    """Transparent backgrounds; spines, ticks, labels, titles, legends and grid in FG."""
    if _is(fig.patch.get_facecolor(), "white"):
        fig.patch.set_facecolor("none")
    for ax in fig.axes:
        if _is(ax.patch.get_facecolor(), "white"):
            ax.patch.set_facecolor("none")
        for spine in ax.spines.values():
            if _is(spine.get_edgecolor(), "black"):
                spine.set_edgecolor(FG)
        for name, axis in (("x", ax.xaxis), ("y", ax.yaxis)):
            ticks = axis.get_major_ticks() + axis.get_minor_ticks()
            if all(_is(t.tick1line.get_color(), "black") for t in ticks):
                ax.tick_params(axis=name, which="both", color=FG)
            grid = axis.get_gridlines()
            if grid and _is(grid[0].get_color(), "#b0b0b0"):
                ax.tick_params(axis=name, which="both", grid_color=FG,
                               grid_alpha=grid[0].get_alpha() or _DEFAULT_GRID_ALPHA)
    texts, legends = _chrome_texts(fig)
    for t in texts:
        if _is(t.get_color(), "black"):
            t.set_color(FG)
    for ax in fig.axes:
        for name, axis in (("x", ax.xaxis), ("y", ax.yaxis)):
            labels = axis.get_ticklabels(which="both")
            if labels and all(_is(t.get_color(), FG) for t in labels):
                ax.tick_params(axis=name, which="both", labelcolor=FG)
    for leg in legends:
        frame = leg.get_frame()
        if _is(frame.get_facecolor()[:3], "white"):
            frame.set_facecolor(mcolors.to_rgba(BG, frame.get_facecolor()[3]))
        if _is(frame.get_edgecolor(), "0.8"):
            frame.set_edgecolor(mcolors.to_rgba(FG, 0.3))


def _legible(fig) -> None:
    """Every text at least MIN_FONT_PX (as drawn)."""
    smallest = MIN_FONT_PX * PT_PER_PX
    for t in fig.findobj(Text):
        if t.get_visible() and t.get_text() and t.get_fontsize() < smallest:
            t.set_fontsize(smallest)


# --- SVG: deterministic, compact, inline -------------------------------------------------------
_GEOMETRY_ATTR = re.compile(r'\b(d|x|y|x1|x2|y1|y2|cx|cy|r|width|height|points|transform|viewBox)="([^"]*)"')
_NUMBER = re.compile(r"-?\d+\.\d{3,}")
_FONT_FAMILY = re.compile(r"font-family: ([^;\"]*);? ?")


def _round(match: re.Match) -> str:
    value = round(float(match.group(0)), 2)
    text = f"{value:.2f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def _tidy(svg: str, alt: str) -> tuple:
    """matplotlib's SVG made inline-ready; returns (svg, width_px, height_px)."""
    svg = svg[svg.index("<svg"):]
    svg = re.sub(r"\s*<metadata>.*?</metadata>", "", svg, flags=re.S)
    # one font family for the figure, on the root (matplotlib repeats it on every text)
    families = set(_FONT_FAMILY.findall(svg))
    family = families.pop() if len(families) == 1 else None
    if family:
        svg = _FONT_FAMILY.sub("", svg)
    svg = _GEOMETRY_ATTR.sub(lambda m: f'{m.group(1)}="{_NUMBER.sub(_round, m.group(2))}"', svg)
    svg = re.sub(r"(?i)#010203\b", _FG_CSS, svg)
    svg = re.sub(r"(?i)#fefdfc\b", _BG_CSS, svg)
    # ids: drop the ones nothing refers to, name the others after the figure's content
    referenced = set(re.findall(r"url\(#([^)]+)\)", svg)) | set(re.findall(r'href="#([^"]+)"', svg))
    svg = re.sub(r'\s+id="([^"]+)"', lambda m: m.group(0) if m.group(1) in referenced else "", svg)
    prefix = "cnnfig-" + hashlib.sha256(svg.encode("utf-8")).hexdigest()[:10] + "-"
    names = {old: f"{prefix}{n}" for n, old in enumerate(sorted(referenced, key=svg.find), 1)}
    if names:
        pattern = re.compile(r'(id="|url\(#|href="#)(' + "|".join(map(re.escape, names)) + r')(?=[")])')
        svg = pattern.sub(lambda m: m.group(1) + names[m.group(2)], svg)
    m = re.match(r'<svg[^>]*\bwidth="([\d.]+)pt" height="([\d.]+)pt"', svg)
    w_px, h_px = (round(float(v) / PT_PER_PX) for v in m.groups())
    root_style = (f"width:100%;max-width:{w_px}px;min-width:{min(w_px, round(MIN_SHOWN * w_px))}px;"
                  f"height:auto;display:block;color:inherit")
    if family:
        root_style += f";font-family:{family}"
    svg = re.sub(r'<svg ([^>]*?)width="[\d.]+pt" height="[\d.]+pt"',
                 lambda m: (f'<svg class="cnn-figure-svg" role="img" aria-label="{html_lib.escape(alt)}" '
                            f'{m.group(1)}width="{w_px}" height="{h_px}" style="{root_style}"'),
                 svg, count=1)
    # matplotlib's one style rule would reach every element of the page: keep it to the figure
    svg = svg.replace("<style type=\"text/css\">*{", "<style type=\"text/css\">svg.cnn-figure-svg *{")
    svg = re.sub(r' transform="rotate\(-?0 [^"]*\)"', "", svg)              # a rotation by 0°
    svg = re.sub(r'<path d="[^"]*" style="fill: none"/>', "", svg)       # invisible backgrounds
    svg = re.sub(r'\sd="([^"]*)"', lambda m: ' d="' + " ".join(m.group(1).split()) + '"', svg)
    svg = _drop_bare_groups(svg)
    svg = re.sub(r"\n\s*", "\n", svg).strip()
    return svg, w_px, h_px


def _drop_bare_groups(svg: str) -> str:
    """Remove ``<g>`` elements without attributes (keeping what they hold)."""
    out, kept, last = [], [], 0
    for m in re.finditer(r"<g\b[^>]*>|</g>", svg):
        out.append(svg[last:m.start()])
        last = m.end()
        tag = m.group(0)
        if tag == "</g>":
            if kept.pop():
                out.append(tag)
        else:
            keep = tag != "<g>"
            kept.append(keep)
            if keep:
                out.append(tag)
    out.append(svg[last:])
    return "".join(out)


def _alt(fig) -> str:
    titles = [t.get_text() for t in [getattr(fig, "_suptitle", None)] if t is not None and t.get_text()]
    titles += [ax.get_title() for ax in fig.axes if ax.get_title()]
    return "; ".join(titles)


def figure_svg(fig, alt: Optional[str] = None) -> tuple:
    """The figure as inline SVG for the book: ``(svg, width_px, height_px)`` (see the module doc).

    Applies the theme and the smallest font size to ``fig`` (it is modified, not closed).
    Raises ``ValueError`` when the figure is wider than the column."""
    width = fig.get_figwidth() * PX_PER_INCH
    if width > COLUMN_PX + 0.5:
        raise ValueError(f"fig is {width:.0f} px wide, the book's column {COLUMN_PX} px: make it with "
                         f"cnnviz.mplfig.subplots(..., height=...) or figsize=cnnviz.mplfig.size(height)")
    fig.canvas.draw()          # creates the ticks, so their labels can be themed and sized
    _theme(fig)
    _legible(fig)
    buf = io.StringIO()
    with plt.rc_context({"svg.fonttype": "none", "svg.hashsalt": _HASHSALT, "svg.image_inline": True}):
        fig.savefig(buf, format="svg", bbox_inches="tight", pad_inches=0.04, transparent=True,
                    metadata={"Date": None, "Creator": None, "Format": None, "Type": None})
    svg, w, h = _tidy(buf.getvalue(), _alt(fig) if alt is None else alt)
    if w > COLUMN_PX + 1:
        raise ValueError(f"fig is {w} px wide once its labels are included, the book's column {COLUMN_PX} px: "
                         f"make it narrower (labels outside the axes count)")
    return svg, w, h


# Where HTML is shown sanitized (JupyterLab and GitHub with a notebook the reader has not run or
# trusted), <style> and <svg> are removed but the SVG's texts would stay, as a line of stray
# words: the drawing sits in a hidden box that only the style shows (hidden="hidden": the sanitizer
# drops empty attributes), and a note shows instead.
_REVEAL = ("<style>.cnn-figure>.cnn-figure-draw{display:block!important}"
           ".cnn-figure>.cnn-figure-untrusted{display:none}</style>")


def figure_html(fig, alt: Optional[str] = None) -> dict:
    """The mime bundle :func:`show_figure` displays: ``text/html`` (inline SVG in a
    ``div.cnn-figure`` that scrolls on a narrow screen) and ``text/plain``."""
    svg, w, h = figure_svg(fig, alt)
    label = _alt(fig) if alt is None else alt
    note = (f"Figure{': ' + html_lib.escape(label) if label else ''} (drawn once this notebook is run "
            f"or trusted).")
    html = (f'<div class="cnn-figure" style="overflow-x:auto;max-width:100%">{_REVEAL}'
            f'<div class="cnn-figure-draw" hidden="hidden">{svg}</div>'
            f'<p class="cnn-figure-untrusted">{note}</p></div>')
    plain = f"<Figure {w}×{h} px" + (f": {label}>" if label else ">")
    return {"text/html": html, "text/plain": plain}


def show_figure(fig, alt: Optional[str] = None, out=None) -> None:
    """Show ``fig`` as the book shows figures (see the module doc) and close it.

    ``alt`` describes the figure for screen readers (default: its titles). With ``out`` (an
    ``ipywidgets.Output``) the figure replaces what the Output showed, in one trait update:
    nothing leaks into the notebook cell when no front end is listening (nbval, scripts), and
    the stored widget state carries the figure for the static book.
    """
    try:
        bundle = figure_html(fig, alt)
    finally:
        plt.close(fig)
    if out is not None:
        out.outputs = ({"output_type": "display_data", "data": bundle, "metadata": {}},)
        return
    from IPython.display import display

    display(bundle, raw=True)

