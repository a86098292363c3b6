"""What a chapter uses to show things on the page: matplotlib figures as inline SVG drawn for the
column in both themes (cnnviz.mplfig), printed tables (cnnviz.table), theme-safe marks in LaTeX
matrices (cnnviz.draw.latex_matrix), and the nbval sanitizer that keeps figures comparable."""
from __future__ import annotations

import json
import re
from pathlib import Path

import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")
from matplotlib import pyplot as plt  # noqa: E402

from cnnviz import MARK_TEX, latex_matrix, mplfig, show_figure, show_table  # noqa: E402
from cnnviz.table import table_bundle  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def curves(nudge=0.0, legend=True, title="loss"):
    fig, ax = mplfig.subplots(height=300)
    x = np.arange(10)
    y = np.sqrt(x)
    y[4] += nudge  # an inner point: the axes' limits stay
    ax.plot(x, y, "o-", label="train")
    ax.plot(x, x / 5, label="test")
    ax.set_title(title)
    ax.set_xlabel("epoch")
    ax.grid(alpha=0.3)
    if legend:
        ax.legend()
    return fig


def as_shown(fig):
    """The figure as a chapter shows it (mplfig.figure_html), the figure closed."""
    shown = mplfig.figure_html(fig)
    plt.close(fig)
    return shown


# --- figures -------------------------------------------------------------------------------------
def test_a_figure_is_inline_svg_with_a_deterministic_description():
    bundle = as_shown(curves())
    assert set(bundle) == {"text/html", "text/plain"}
    html = bundle["text/html"]
    assert html.startswith('<div class="cnn-figure"') and "</svg></div><p class=\"cnn-figure-untrusted\">" in html
    assert "<?xml" not in html and "<!DOCTYPE" not in html and "<metadata>" not in html
    assert "Matplotlib v" not in html and not re.search(r"\d{4}-\d\d-\d\dT", html), "no version, no date"
    m = re.match(r"<Figure (\d+)×(\d+) px: loss>$", bundle["text/plain"])
    assert m and int(m.group(1)) <= mplfig.COLUMN_PX and int(m.group(2)) <= 300


def test_the_same_figure_gives_the_same_bytes():
    assert as_shown(curves()) == as_shown(curves())


def test_ids_are_unique_per_figure_and_all_resolve():
    a, b = as_shown(curves())["text/html"], as_shown(curves(title="other"))["text/html"]
    for html in (a, b):
        ids = re.findall(r'\bid="([^"]+)"', html)
        refs = set(re.findall(r'url\(#([^)]+)\)', html)) | set(re.findall(r'href="#([^"]+)"', html))
        assert len(ids) == len(set(ids)) and refs == set(ids), "every id defined once and used"
        assert all(i.startswith("cnnfig-") for i in ids)
    assert not set(re.findall(r'\bid="([^"]+)"', a)) & set(re.findall(r'\bid="([^"]+)"', b)), \
        "two figures on one page must not share an id"


def test_the_chrome_follows_the_theme_and_nothing_paints_a_background():
    html = as_shown(curves())["text/html"]
    assert "fill: currentColor" in html and "stroke: currentColor" in html
    for text in re.findall(r"<text\b[^>]*>", html):
        assert "fill: currentColor" in text, f"text not in the page's colour: {text}"
    assert "#ffffff" not in html.lower() and "fill: #000000" not in html
    assert "var(--pst-color-background" in html, "the legend's box is the page's background"
    assert "svg.cnn-figure-svg *{" in html and "<style type=\"text/css\">*{" not in html, \
        "matplotlib's style rule must not reach the rest of the page"


def test_figures_are_sized_for_the_column_and_never_shrink_below_80_percent():
    html = as_shown(curves())["text/html"]
    w = int(re.search(r'<svg[^>]*\bwidth="(\d+)"', html).group(1))
    style = re.search(r'<svg[^>]*style="([^"]*)"', html).group(1)
    assert f"max-width:{w}px" in style and f"min-width:{round(0.8 * w)}px" in style and "width:100%" in style


def test_small_text_is_raised_to_the_smallest_legible_size():
    fig = curves()
    fig.axes[0].set_xlabel("epoch", fontsize=5)
    fig.axes[0].tick_params(labelsize=4)
    html = as_shown(fig)["text/html"]
    sizes = [float(s) for s in re.findall(r"font-size: ([\d.]+)px", html)]
    assert sizes and min(sizes) >= mplfig.MIN_FONT_PX * 0.75 - 1e-9, sizes  # pt (SVG user units)


def test_a_figure_wider_than_the_column_is_refused():
    fig, _ = plt.subplots(figsize=(9.4, 3))
    with pytest.raises(ValueError, match=r"902 px wide.*column 720 px"):
        mplfig.figure_svg(fig)
    plt.close(fig)
    with pytest.raises(ValueError, match="width"):
        mplfig.size(200, width=800)


def test_show_figure_displays_once_and_closes_the_figure(capsys):
    from ipywidgets import Output

    out = Output()
    fig = curves()
    show_figure(fig, out=out)
    assert not plt.fignum_exists(fig.number)
    (shown,) = out.outputs
    assert shown["data"]["text/html"].startswith('<div class="cnn-figure"')
    show_figure(curves(), alt="two curves")  # no front end: the display goes to stdout
    assert "<Figure" in capsys.readouterr().out
    assert not plt.get_fignums()


def sanitized(text: str) -> str:
    """The stored or re-executed output as nbval compares it (tests/nbval_sanitize.cfg)."""
    from nbval.plugin import get_sanitize_patterns

    for regex, replace in get_sanitize_patterns((ROOT / "tests" / "nbval_sanitize.cfg").read_text()):
        text = re.sub(regex, replace, text)
    return text


def test_nbval_compares_a_figure_whose_data_differ_in_the_last_digits_as_equal():
    a = as_shown(curves())["text/html"]
    b = as_shown(curves(nudge=0.01))["text/html"]  # moves the line and a marker
    assert a != b
    assert sanitized(a) == sanitized(b)
    c = as_shown(curves(title="accuracy"))["text/html"]
    assert sanitized(a) != sanitized(c), "the figure's texts are still compared"
    printed = "dX = [[0.5 1.25]]\nloss 0.123456789, cnnfig-3 id=\"x\""
    assert sanitized(printed) == printed, "printed outputs are compared as they are"


# --- tables --------------------------------------------------------------------------------------
def test_a_table_prints_once_as_html_and_as_aligned_text():
    b = table_bundle([["0", "386 (85.8 %)", "+2"], ["1", "398 (88.4 %)", "+31"]],
                     header=["seed", "max pooling", "difference"], footer=[["mean", "87.1 %", "+16.5"]],
                     caption="Ten seeds <all>")
    assert b["text/plain"].splitlines() == [
        "Ten seeds <all>",
        "seed   max pooling  difference",
        "----  ------------  ----------",
        "0     386 (85.8 %)          +2",
        "1     398 (88.4 %)         +31",
        "----  ------------  ----------",
        "mean        87.1 %       +16.5"]
    html = b["text/html"]
    assert html.startswith('<div class="cnn-table-wrap"') and '<table class="cnn-table">' in html
    assert "<caption>Ten seeds &lt;all&gt;</caption>" in html, "cells are text: HTML is escaped"
    assert '<th style="text-align:right">max pooling</th>' in html and "<th>seed</th>" in html
    assert "<tfoot><tr><td>mean</td>" in html


def test_a_table_names_the_row_that_does_not_fit_its_header():
    with pytest.raises(ValueError, match="row 1 has 2 cells, the header 3"):
        table_bundle([["a", "b", "c"], ["a", "b"]], header=["x", "y", "z"])
    with pytest.raises(ValueError, match="align"):
        table_bundle([["a"]], header=["x"], align="q")


def test_show_table_displays_html_and_text(capsys):
    show_table([[1, 2.5]], header=["n", "value"])
    assert "value" in capsys.readouterr().out


# --- marks in math -------------------------------------------------------------------------------
def test_latex_matrix_marks_entries_for_the_theme():
    tex = latex_matrix(np.array([[1, 2], [3, 4]]), boxed=np.array([[False, True], [False, False]]), color="theme")
    assert tex == r"\begin{bmatrix}1 & " + MARK_TEX % "2" + r" \\ 3 & 4\end{bmatrix}"
    assert r"\class{cnn-max}" in MARK_TEX and "--cnn-max-color" in MARK_TEX and r"\mathbf" in MARK_TEX
    assert r"\color{blue}{\mathbf{2}}" in latex_matrix([[1, 2]], boxed=[[False, True]], color="blue")
    assert MARK_TEX % "2" in latex_matrix([[1, 2]], boxed=[[False, True]]), "the theme's mark by default"
    assert MARK_TEX % "5" in latex_matrix(np.array([4, 5]), boxed=np.array([False, True]), color="theme"), "1-D"
    with pytest.raises(ValueError, match=r"boxed must have M's shape \(2, 2\)"):
        latex_matrix(np.ones((2, 2)), boxed=np.ones((2, 3), bool))


def contrast(a: str, b: str) -> float:
    def lum(h):
        c = [int(h[i:i + 2], 16) / 255 for i in (1, 3, 5)]
        c = [x / 12.92 if x <= 0.03928 else ((x + 0.055) / 1.055) ** 2.4 for x in c]
        return 0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2]
    hi, lo = sorted((lum(a), lum(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def test_the_mark_colour_reads_in_both_themes():
    css = (ROOT / "_static" / "book.css").read_text()
    light = re.search(r"html \{ --cnn-max-color: (#[0-9a-f]{6}); \}", css).group(1)
    dark = re.search(r'html\[data-theme="dark"\] \{ --cnn-max-color: (#[0-9a-f]{6}); \}', css).group(1)
    # the theme's page, surface and code-output backgrounds (pydata-sphinx-theme 0.17)
    for bg in ("#ffffff", "#f3f4f5"):
        assert contrast(light, bg) >= 4.5, (light, bg)
    for bg in ("#14181e", "#222832", "#29313d"):
        assert contrast(dark, bg) >= 4.5, (dark, bg)
    fallback = re.search(r"(#[0-9a-f]{6})\)\)", MARK_TEX).group(1)  # where no theme sets a colour
    assert contrast(fallback, "#ffffff") >= 4.5 and contrast(fallback, "#111111") >= 3.0


def test_where_html_is_sanitized_a_note_replaces_the_drawing_not_its_stray_words():
    """JupyterLab's sanitizer (untrusted notebooks) removes <style> and <svg> tags but keeps
    their text: the drawing's box is `hidden` unless the figure's own style shows it."""
    html = as_shown(curves())["text/html"]
    m = re.match(r'<div class="cnn-figure"[^>]*>(<style>[^<]*</style>)'
                 r'<div class="cnn-figure-draw" hidden="hidden"><svg', html)
    assert m and ".cnn-figure>.cnn-figure-draw{display:block!important}" in m.group(1)
    assert ".cnn-figure>.cnn-figure-untrusted{display:none}" in m.group(1)
    sanitized_view = re.sub(r"<style>.*?</style>", "", html, flags=re.S)
    sanitized_view = re.sub(r"</?(svg|g|path|text|tspan|defs|use|clipPath|rect|image)\b[^>]*>", "", sanitized_view)
    shown = re.sub(r'<div class="cnn-figure-draw" hidden="hidden">.*?</div>', "", sanitized_view, flags=re.S)
    assert re.sub(r"<[^>]+>", "", shown) == "Figure: loss (drawn once this notebook is run or trusted)."


# --- the layout checker finds each kind of offender ------------------------------------------------
WIDE_WHITE_IMAGE = ("data:image/svg+xml,%3Csvg xmlns='http://www.w3.org/2000/svg' width='1000' height='100'%3E"
                    "%3Crect width='1000' height='100' fill='%23fff'/%3E%3C/svg%3E")
SYNTHETIC = """<!doctype html><html data-theme="light"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body {{ margin: 0; font: 16px sans-serif; }}
html[data-theme="dark"] body {{ background: #14181e; color: #ced6dd; }}
main {{ width: 700px; max-width: 100%; margin: 0 auto; }}
.bd-article {{ padding: 0 10px; }}
pre {{ overflow-x: auto; font: 13px monospace; }}
mjx-container {{ display: block; overflow-x: auto; }}
mjx-math {{ display: inline-block; width: 900px; height: 20px; }}
.clip {{ overflow-x: hidden; width: 200px; }}
.wide {{ width: 1000px; height: 10px; background: #888; }}
.cell_output img {{ max-width: 100%; }}
</style></head><body><main><article class="bd-article">
<h2>Code</h2><pre>{long_line}</pre>
<h2>Math</h2><mjx-container display="true"><mjx-math></mjx-math></mjx-container>
<h2>Box</h2><div class="clip"><div class="wide"></div></div>
<h2>Figure</h2><div class="cell_output"><img width="1000" height="100" src="{wide_white_image}"></div>
<div class="cnn-figure"><svg class="cnn-figure-svg" width="300" height="100" viewBox="0 0 300 100"
 style="width:100%;max-width:300px;display:block"><rect width="300" height="60" fill="#ffffff"/>
 <text x="10" y="85" style="font-size: 6px; fill: #000000">tiny black text</text></svg></div>
<h2>Phone</h2><div style="width: 600px; height: 10px; background: #ccc"></div>
<!-- {padding} -->
</article></main></body></html>"""


@pytest.mark.browser
def test_the_layout_checker_finds_each_kind_of_offender(tmp_path):
    """tests/browser/check_layout.js on a page made of one offender of each kind."""
    import base64
    import os
    import subprocess

    from browser_support import CHROMIUM, require_browser, serve

    require_browser()
    page = tmp_path / "site" / "bad.html"
    page.parent.mkdir()
    page.write_text(SYNTHETIC.format(long_line="x = 1  # " + "a" * 120, wide_white_image=WIDE_WHITE_IMAGE,
                                     padding=base64.b64encode(os.urandom(450_000)).decode()))
    out = tmp_path / "out"
    with serve(page.parent) as base:
        res = subprocess.run(["node", str(ROOT / "tests" / "browser" / "check_layout.js"), base, str(out), "bad.html"],
                             capture_output=True, text=True, timeout=300, env={**os.environ, "CHROMIUM": CHROMIUM})
    assert res.returncode == 0, res.stderr[-2000:]
    report = json.loads((out / "layout-report.json").read_text())["pages"]["bad.html"]
    found = {o["check"] for o in report["offenders"]}
    assert found >= {"code-clipped", "equation-clipped", "box-clipped", "figure-shrunk", "figure-text-small",
                     "dark-bright-figure", "text-contrast", "phone-overflow", "phone-figure-shrunk",
                     "page-weight"}, (found, res.stdout)
    code = next(o for o in report["offenders"] if o["check"] == "code-clipped")
    assert "129 characters" in code["detail"] and code["section"] == "Code"
    assert "bad.html: " in res.stdout and "code-clipped" in res.stdout, "the summary is printed"
