"""The book's own Sphinx extension: what the static pages need so that they load without a
single JavaScript error and without a request for a missing script or font.

- Each script and stylesheet appears once per page. Sphinx 7.4 registers inline scripts that
  an extension adds while a page is written a second time (sphinx-thebe's ``THEBE_JS_URL``
  constant is then declared twice, which is an error); fixed upstream in Sphinx 8
  (sphinx-doc/sphinx#13402), but Jupyter Book 1 pins Sphinx 7.
- The front end of the book's anywidget explorables ships with the book. The Jupyter widget
  manager of a static page asks require.js for a custom widget's module next to the page
  (``anywidget.js``) before it falls back to a CDN; the build copies it there from the pinned
  ``anywidget`` Python package, whose ``nbextension/index.js`` is that module.
- The widget manager's icon fonts (Font Awesome 5 Free, SIL OFL 1.1) are requested relative to
  the page (``@jupyter-widgets/<name>`` and ``@jupyter-widgets/html-manager/dist/<name>``) under
  the names the manager's build gave them; the build copies the fonts vendored in
  ``_static/widget-fonts/`` (with their license) there.

- Each page's download menu also offers the whole book as one PDF where it is published: only
  when the build is told the PDF will sit next to the pages (``BOOK_PDF_LINK=1``, which the Pages
  workflow sets before it builds and then runs ``scripts/book_pdf.py``), so the link is never a
  404 in a plain build.
- The bibliography is labelled author–year, as the book cites ("Seo, 2018", "Maas et al.,
  2013"): the pybtex style ``book_author_year`` (``bibtex_default_style`` in ``_config.yml``);
  ``_static/book.css`` sets each entry with a hanging indent after its label.

- ``_static/mathjax2_shim.js`` (Jupyter Book puts every script of ``_static/`` on every page)
  runs first, before MathJax's configuration: the widget manager typesets labels with MathJax 2's
  API while the book loads MathJax 3.
"""
from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

from sphinx.application import Sphinx
from sphinx.util import logging

logger = logging.getLogger(__name__)

WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
# The widget manager the pages load (myst-nb's choice) and the names its webpack build gives the
# Font Awesome 5.15.4 webfonts it asks for (woff2 is the format every current browser takes).
HTML_MANAGER_VERSION = "1.0.6"
HTML_MANAGER_RE = re.compile(r"@jupyter-widgets/html-manager@([^/]+)/dist/embed-amd\.js")
WIDGET_FONTS = {
    "1551f4f60c37af51121f.woff2": "fa-solid-900.woff2",
    "7a3337626410ca2f4071.woff2": "fa-regular-400.woff2",
    "d878b0a6a1144760244f.woff2": "fa-brands-400.woff2",
}
FONT_DIRS = ("@jupyter-widgets", "@jupyter-widgets/html-manager/dist")  # relative to the page
FONTS_DIR = Path(__file__).resolve().parents[1] / "_static" / "widget-fonts"


SHIM = "mathjax2_shim.js"


def load_shim_first(app: Sphinx, config) -> None:
    """Give the MathJax 2 shim (added by Jupyter Book like every script in _static/) the first slot."""
    entries = []
    for entry in config.html_js_files:
        name = entry if isinstance(entry, str) else entry[0]
        if name == SHIM:
            attrs = {} if isinstance(entry, str) else dict(entry[1])
            entry = (name, {**attrs, "priority": 100})
        entries.append(entry)
    config.html_js_files = entries


def drop_duplicate_assets(app: Sphinx, pagename, templatename, context, doctree) -> None:
    """Keep the first of each identical script or stylesheet (same file or body, same attributes)."""
    for key in ("script_files", "css_files"):
        assets = context.get(key)
        if not isinstance(assets, list):
            continue
        seen, kept = set(), []
        for asset in sorted(assets, key=lambda a: getattr(a, "priority", 500)):
            # the same inline script comes once with filename None, once with "" (the Sphinx bug)
            ident = (str(getattr(asset, "filename", asset) or ""),
                     tuple(sorted((getattr(asset, "attributes", None) or {}).items())))
            if ident not in seen:
                seen.add(ident)
                kept.append(asset)
        assets[:] = kept


def anywidget_front_end() -> tuple[Path, Path]:
    """The anywidget front end (an AMD module) and its license, from the installed package."""
    import anywidget

    pkg = Path(anywidget.__file__).resolve().parent
    licenses = sorted(pkg.parent.glob(f"anywidget-{anywidget.__version__}.dist-info/licenses/LICENSE*"))
    return pkg / "nbextension" / "index.js", (licenses[0] if licenses else None)


def ship_widget_assets(app: Sphinx, exception) -> None:
    """After an HTML build, put next to every page with stored widgets what its manager asks for."""
    if exception is not None or app.builder.format != "html":
        return
    outdir = Path(app.outdir)
    dirs_fonts, dirs_anywidget = set(), set()
    for page in outdir.rglob("*.html"):
        text = page.read_text(encoding="utf-8")
        if WIDGET_STATE not in text:
            continue
        versions = set(HTML_MANAGER_RE.findall(text))
        if versions - {HTML_MANAGER_VERSION}:
            logger.warning(f"{page.relative_to(outdir)} loads @jupyter-widgets/html-manager {sorted(versions)}: "
                           f"the widget font names in {__name__}.WIDGET_FONTS are those of "
                           f"{HTML_MANAGER_VERSION}; update them")
        dirs_fonts.add(page.parent)
        if '"model_module": "anywidget"' in text:
            dirs_anywidget.add(page.parent)
    for folder in sorted(dirs_fonts):
        for sub in FONT_DIRS:
            (folder / sub).mkdir(parents=True, exist_ok=True)
            for requested, vendored in WIDGET_FONTS.items():
                shutil.copyfile(FONTS_DIR / vendored, folder / sub / requested)
            shutil.copyfile(FONTS_DIR / "LICENSE.txt", folder / sub / "FONTS-LICENSE.txt")
    if dirs_anywidget:
        module, license_file = anywidget_front_end()
        for folder in sorted(dirs_anywidget):
            shutil.copyfile(module, folder / "anywidget.js")
            if license_file:
                shutil.copyfile(license_file, folder / "anywidget.LICENSE.txt")


BOOK_PDF = "cnn-backprop-book.pdf"  # the whole book, printed by scripts/book_pdf.py next to the pages


def offer_book_pdf(app: Sphinx, pagename, templatename, context, doctree) -> None:
    """Each page's download menu offers the whole book as one PDF too, when it is published
    (config ``book_pdf_link``, from the environment variable ``BOOK_PDF_LINK=1``)."""
    if not app.config.book_pdf_link:
        return
    for group in context.get("header_buttons", []):
        if group.get("label") == "download-buttons":
            group["buttons"].append({"type": "link", "url": context["pathto"](BOOK_PDF, 1),
                                     "text": "book (.pdf)", "tooltip": "The whole book as one PDF",
                                     "icon": "fas fa-book", "label": "download-book-pdf-button"})


# --- the bibliography: author-year labels, as the book cites ------------------------------------
def _plain_text(latex: str) -> str:
    from pybtex.richtext import Text

    return Text.from_latex(latex).render_as("text")


def author_year_label(entry) -> str:
    """The label of a bibliography entry, worded like the book's citations: "Seo, 2018",
    "Kingma and Ba, 2015", "Maas et al., 2013", "Paszke and others, 2019", "Reboud, n.d."."""
    persons = entry.persons.get("author") or entry.persons.get("editor") or []
    names = [_plain_text(" ".join(p.prelast_names + p.last_names)) for p in persons]
    if not names:
        who = _plain_text(entry.fields.get("title", entry.key))
    elif len(names) == 1:
        who = names[0]
    elif len(names) == 2:
        who = f"{names[0]} and {names[1]}"
    else:
        who = f"{names[0]} et al."
    return f"{who}, {entry.fields.get('year', 'n.d.')}"


def register_bibliography_style() -> None:
    from pybtex.plugin import register_plugin
    from pybtex.style.formatting.unsrt import Style as Unsrt
    from pybtex.style.labels import BaseLabelStyle

    class AuthorYearLabels(BaseLabelStyle):
        def format_labels(self, sorted_entries):
            labels = [author_year_label(e) for e in sorted_entries]
            seen = {}
            for label in labels:  # the same authors and year twice: 2018a, 2018b
                if labels.count(label) == 1:
                    yield label
                else:
                    seen[label] = seen.get(label, 0) + 1
                    yield label + "abcdefghijklmnopqrstuvwxyz"[seen[label] - 1]

    class AuthorYearStyle(Unsrt):
        default_label_style = "book_author_year"
        default_sorting_style = "author_year_title"

    register_plugin("pybtex.style.labels", "book_author_year", AuthorYearLabels, force=True)
    register_plugin("pybtex.style.formatting", "book_author_year", AuthorYearStyle, force=True)


def setup(app: Sphinx):
    register_bibliography_style()
    app.add_config_value("book_pdf_link", os.environ.get("BOOK_PDF_LINK", "") == "1", "html", [bool])
    app.connect("config-inited", load_shim_first)
    app.connect("html-page-context", drop_duplicate_assets, priority=900)
    app.connect("html-page-context", offer_book_pdf, priority=600)
    app.connect("build-finished", ship_widget_assets)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
