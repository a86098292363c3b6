"""The book builds strictly (-W -n) from the committed notebooks, and the static pages teach
without a kernel: every chapter page has its figures, its math, its exercises with folded
solutions, a Binder button that opens the chapter in JupyterLab, and working citations.
Every page reads well (tests/browser/check_layout.js, run by check_pages.js on each page it
opens): nothing cut off at 1280 px, figures at their drawn size, no bright box and readable text
in dark mode, nothing wider than a 390 px phone, at most 400 KB per page."""
import json
import os
import re
from pathlib import Path

import pytest
import yaml

from browser_support import ROOT, page_explorables, recompute, require_browser, run_check_pages, static_redraw_summary

CHAPTERS = sorted(p.stem for p in (ROOT / "book").glob("*.ipynb"))

pytestmark = pytest.mark.book


@pytest.fixture(scope="module")
def html(book_html):
    """The built book (conftest.book_html: $BOOK_HTML or a fresh strict build)."""
    return book_html


def page(html, name):
    return (html / "book" / f"{name}.html").read_text(encoding="utf-8")


@pytest.mark.parametrize("name", CHAPTERS)
def test_chapter_page_teaches_without_a_kernel(html, name):
    text = page(html, name)
    # images, matplotlib figures shown as inline SVG (cnnviz.show_figure) and figures drawn by the
    # explorables' view (cnnviz.figure)
    figures = (len(re.findall(r'<img[^>]+src="[^"]*_images/', text)) + text.count('class="cnn-figure"')
               + sum(e.get("kind") == "StateFigure" for e in page_explorables(text)))
    appendix = name.endswith("_conformance")
    assert figures >= (1 if appendix else 2), f"the page needs its figures, found {figures}"
    assert "math notranslate" in text or "\\(" in text, "the page needs its equations"
    assert "exercise" in text and "solution" in text, "the chapter ends with exercises and solutions"
    assert re.search(r'class="[^"]*solution[^"]*dropdown', text), "solutions must be folded"
    cfg = yaml.safe_load((ROOT / "_config.yml").read_text())
    repo = cfg["repository"]["url"].split("github.com/")[1]
    lab_edition = f"https://mybinder.org/v2/gh/{repo}/main?urlpath=lab/tree/notebooks/{name}.ipynb"
    assert lab_edition in text
    assert "Traceback" not in text, "a stored error or traceback is shown on the page"


def test_citations_resolve_to_the_bibliography(html):
    bib = (html / "book" / "bibliography.html").read_text(encoding="utf-8")
    for key in ["Seo", "Reboud"]:
        assert key in bib
    intro = (html / "book" / "intro.html").read_text(encoding="utf-8")
    assert "bibliography.html#id" in intro or "bibliography.html#" in intro


@pytest.mark.parametrize("name", ["intro"] + CHAPTERS)
def test_page_ships_what_its_scripts_need(html, name):
    """_ext/local_extensions.py: every script once (Sphinx 7.4 repeats late inline scripts), the
    MathJax 2 shim before MathJax, and next to a page with widgets the widget manager's fonts and,
    for explorables, the anywidget front end (never a CDN)."""
    path = html / "book" / f"{name}.html"
    if not path.exists():
        pytest.skip(f"{name} was not built")
    text = path.read_text(encoding="utf-8")
    scripts = re.findall(r"<script\b[^>]*>.*?</script>", text, re.S)
    repeated = {s[:120] for s in scripts if scripts.count(s) > 1 and "widget-view+json" not in s}
    assert not repeated, f"scripts included twice: {repeated}"
    shim = text.find("mathjax2_shim.js")
    assert shim != -1, "the MathJax 2 shim is missing"
    for later in ("window.MathJax =", "mathjax@3", "embed-amd.js"):
        assert text.find(later) == -1 or shim < text.find(later), f"the shim must come before {later}"
    if "application/vnd.jupyter.widget-state+json" in text:
        for sub in ("@jupyter-widgets", "@jupyter-widgets/html-manager/dist"):
            fonts = list((path.parent / sub).glob("*.woff2"))
            assert len(fonts) == 3, f"the widget fonts are missing in book/{sub}"
    if page_explorables(text):
        front = path.parent / "anywidget.js"
        assert front.exists() and "define(" in front.read_text(encoding="utf-8"), \
            "anywidget.js must sit next to the page"
        assert (path.parent / "anywidget.LICENSE.txt").exists()


# --- in a real browser ------------------------------------------------------------------------
PAGES = ["book/intro.html"] + [f"book/{c}.html" for c in CHAPTERS] + ["book/bibliography.html"]
MUST_LOAD = ("script", "font", "stylesheet")


def layout_summary(report) -> str:
    """The layout offenders, page by page, as check_layout.js prints them."""
    lines = []
    for name, info in report["pages"].items():
        offenders = info.get("layout", {}).get("offenders", [])
        lines.append(f"{name}: {len(offenders)} offenders" if offenders else f"{name}: fits")
        lines += [f"  {o['check']:<19} {o['section'][:40]:<40}  {o['detail']}" for o in offenders]
    return "\n".join(lines)


@pytest.fixture(scope="module")
def browser_report(html, tmp_path_factory):
    """tests/browser/check_pages.js over every page, each explorable moved through every option of
    every control and compared with the states the core computes (browser_support.expected_states),
    and check_layout.js's pass on each. Its report (with the redraw timings) is kept at
    BROWSER_REPORT when that is set; the layout offenders of every page at LAYOUT_REPORT (default:
    layout-report.json and layout-report.txt next to the built book, e.g. _build/)."""
    require_browser()
    work = tmp_path_factory.mktemp("browser")
    built = [p for p in PAGES if (html / p).exists()]  # a missing page fails test_chapter_page_...
    report = run_check_pages(html, built, work, shots=work)
    if os.environ.get("BROWSER_REPORT"):
        Path(os.environ["BROWSER_REPORT"]).write_text(json.dumps(
            {"static": static_redraw_summary(report), "report": report}, indent=1))
    layout = Path(os.environ.get("LAYOUT_REPORT") or html.parent / "layout-report.json")
    layout.write_text(json.dumps({name: info.get("layout") for name, info in report["pages"].items()}, indent=1))
    layout.with_suffix(".txt").write_text(layout_summary(report) + "\n")
    return report


def page_info(report, name):
    if name not in report["pages"]:
        pytest.skip(f"{name} was not built")
    return report["pages"][name]


def test_browser_check_ran(html, browser_report):
    built = {p for p in PAGES if (html / p).exists()}
    assert set(browser_report["pages"]) == built, browser_report["stderr"]
    assert browser_report["returncode"] in (0, 1), browser_report["stderr"]  # 1: a page failed, see below


@pytest.mark.parametrize("name", PAGES)
def test_page_has_no_javascript_error(browser_report, name):
    info = page_info(browser_report, name)
    assert not info["errors"], f"JavaScript errors: {info['errors']}"


@pytest.mark.parametrize("name", PAGES)
def test_page_loads_every_script_font_and_stylesheet(browser_report, name):
    info = page_info(browser_report, name)
    failed = [r for r in info["failedRequests"] if r["type"] in MUST_LOAD]
    assert not failed, f"requests that failed: {failed}"


@pytest.mark.parametrize("name", PAGES)
def test_page_renders(browser_report, name):
    info = page_info(browser_report, name)
    assert not info["brokenImages"], f"images that did not load {info['brokenImages']}"
    assert info["mathErrors"] == 0, "MathJax could not typeset some equations"
    if info["mathSource"]:
        assert info["mathRendered"] > 0, "equations were not typeset by MathJax"


@pytest.mark.parametrize("name", CHAPTERS)
def test_solutions_are_folded_until_clicked(browser_report, name):
    info = page_info(browser_report, f"book/{name}.html")
    assert info["solutions"] > 0
    assert not any(info["solutionBodiesVisible"]), "a solution is visible before the reader asks for it"
    assert info["unfolded"] is True, "clicking a solution does not unfold it"


@pytest.mark.parametrize("name", CHAPTERS)
def test_stored_widgets_render(browser_report, name):
    info = page_info(browser_report, f"book/{name}.html")
    if not info["widgetViews"]:
        pytest.skip("this chapter shows no widget")
    assert info["widgetsRendered"] >= info["widgetViews"], \
        f"the page shows {info['widgetViews']} widgets, the widget manager rendered {info['widgetsRendered']}"


@pytest.mark.parametrize("name", CHAPTERS)
def test_explorables_redraw_the_core_states_without_a_kernel(html, browser_report, name):
    """Every control of every explorable, moved as a reader would, draws the numbers the core
    computes for the new control values (recomputed here, not read from the page)."""
    info = page_info(browser_report, f"book/{name}.html")
    stored = page_explorables((html / "book" / f"{name}.html").read_text(encoding="utf-8"))
    if not stored:
        pytest.skip("this chapter has no explorable")
    info = page_info(browser_report, f"book/{name}.html")
    assert info["explorablesRendered"] == len(stored), "not every stored explorable was drawn"
    assert len(info["explorables"]) == len(stored)
    for e in info["explorables"]:
        assert not e["problems"], f"{e['kind']}: {e['problems']}"
        if e["kind"] != "StateFigure":  # a figure has no controls
            assert e["moves"] >= 2, f"{e['kind']}: its controls were not moved"


@pytest.mark.parametrize("name", CHAPTERS)
def test_saved_explorables_hold_the_core_states(html, name):
    """The states a page stores (what a reader without a kernel sees) are the ones the current
    core computes: re-run the notebook (scripts/run_notebooks.py) when this fails."""
    if not (html / "book" / f"{name}.html").exists():
        pytest.skip(f"{name} was not built")
    stored = page_explorables((html / "book" / f"{name}.html").read_text(encoding="utf-8"))
    if not stored:
        pytest.skip("this chapter has no explorable")
    for saved in stored:
        fresh = recompute(saved)
        assert saved["controls"] == fresh.controls, f"{saved['kind']}: stored controls differ"
        states = fresh.page_states()  # as a page stores them
        stale = [k for k, st in states.items() if saved["states"].get(k) != st]
        assert not stale and set(saved["states"]) == set(states), \
            f"{saved['kind']}: {len(stale)} stored states differ from the core's, e.g. {stale[:3]}"


# --- every page reads well: check_layout.js's pass on each page ---------------------------------
# `node tests/browser/check_layout.js BASE OUTDIR book/NN_name.html` lists a page's offenders.


def offenders(report, name, *checks):
    info = page_info(report, name)
    assert "layout" in info, "check_pages.js ran without its layout pass"
    found = [o for o in info["layout"]["offenders"] if o["check"] in checks]
    return found, "\n".join(f"{o['check']}: {o['section']}: {o['detail']}" for o in found)


# The rules a page must keep: the checks of check_layout.js that find
# what breaks a rule, and what the failure says to do (before the offenders it lists).
LAYOUT_RULES = {
    # at 1280 px no code cell, printed output or code block scrolls: lines are at most 88
    # characters (the rule, _static/book.css)
    "code": (("code-clipped",), "lines too long for the column"),
    "equations": (("equation-clipped",), "display equations wider than the column (break or stack them)"),
    "boxes": (("box-clipped", "sticks-out"), ""),  # nothing else is cut off at 1280 px
    # at 1280 px a figure shows at 80 % of its drawn width or more, an SVG figure's text at 11 px or more
    "figures": (("figure-shrunk", "figure-text-small"), ""),
    "contrast": (("text-contrast",), "below 4.5:1 (mark maxima with latex_matrix(..., color='theme'), not \\color)"),
    "phone figures": (("phone-figure-shrunk",), ""),  # on a phone a figure scrolls rather than shrink
    # at most 400 KB: the page's HTML gzipped (with its widget state and inline figures) plus its own images
    "weight": (("page-weight",), ""),
}


@pytest.mark.browser
@pytest.mark.parametrize("concern, name", [(concern, page) for concern in LAYOUT_RULES for page in PAGES])
def test_page_keeps_the_layout_rule(browser_report, concern, name):
    checks, advice = LAYOUT_RULES[concern]
    found, text = offenders(browser_report, name, *checks)
    assert not found, f"{advice}:\n{text}" if advice else text


@pytest.mark.browser
@pytest.mark.parametrize("name", PAGES)
def test_no_bright_figure_box_in_dark_mode(browser_report, name):
    info = page_info(browser_report, name)["layout"]["info"]
    assert (info["lightTheme"], info["darkTheme"]) == ("light", "dark"), "the page did not switch themes"
    found, text = offenders(browser_report, name, "dark-bright-figure")
    assert not found, f"draw them with cnnviz.show_figure (inline SVG in the page's colours):\n{text}"


@pytest.mark.browser
@pytest.mark.parametrize("name", PAGES)
def test_page_fits_a_phone(browser_report, name):
    """At 390 px, in light and dark mode, the page never scrolls sideways: what is wider scrolls
    inside its own box."""
    info = page_info(browser_report, name)["layout"]["info"]
    assert info["phone"]["innerWidth"] == 390
    found, text = offenders(browser_report, name, "phone-overflow")
    assert not found, text
