"""Each chapter page's launch buttons and notebook download open the generated editions of the
chapter (``scripts/export_notebooks.py``), not its MyST source:

- **Colab** opens the Colab edition, which the Pages workflow publishes on the repository's
  ``notebooks`` branch: ``colab.research.google.com/github/OWNER/REPO/blob/notebooks/<chapter>.ipynb``
  (Colab opens notebooks from GitHub only).
- **Binder** opens the JupyterLab edition, which Binder's ``postBuild`` writes into ``notebooks/``
  of the image: ``…/v2/gh/OWNER/REPO/BRANCH?urlpath=lab/tree/notebooks/<chapter>.ipynb``.
- The download menu's **.ipynb** is the Colab edition too, published next to the pages
  (``notebooks/<chapter>.ipynb`` of the site; the Pages workflow writes it there).

sphinx-book-theme builds the buttons from ``repository.url``/``branch``/``path_to_book``; this
extension rewrites those of chapter pages (notebooks) after the theme has made them.
"""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

from sphinx.application import Sphinx

ROOT = Path(__file__).resolve().parents[1]


def _exporter():
    """scripts/export_notebooks.py (the names of the edition's branch and folder live there)."""
    if "export_notebooks" in sys.modules:
        return sys.modules["export_notebooks"]
    spec = importlib.util.spec_from_file_location("export_notebooks", ROOT / "scripts" / "export_notebooks.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["export_notebooks"] = module
    spec.loader.exec_module(module)
    return module


EXPORT = _exporter()


def edition_links(app: Sphinx, pagename, templatename, context, doctree) -> None:
    if context.get("page_source_suffix") != ".ipynb":
        return
    chapter = EXPORT.chapter_name(pagename)
    config = {"repository": {"url": app.config.html_theme_options.get("repository_url", "")}}
    owner, repo = EXPORT.repo_parts(config["repository"]["url"])
    branch = app.config.html_theme_options.get("repository_branch") or "main"
    notebook = f"{EXPORT.EDITION_DIR}/{chapter}.ipynb"
    for group in context.get("header_buttons", []):
        if group.get("label") == "launch-buttons":
            for button in group["buttons"]:
                if button.get("text") == "Colab":
                    button["url"] = EXPORT.colab_url(config, chapter)
                    button["tooltip"] = "Launch on Colab (the chapter's Colab edition)"
                elif button.get("text") == "Binder":
                    hub = button["url"].split("/v2/")[0]
                    button["url"] = f"{hub}/v2/gh/{owner}/{repo}/{branch}?urlpath=lab/tree/{notebook}"
                    button["tooltip"] = "Launch on Binder (JupyterLab, a live kernel)"
        if group.get("label") == "download-buttons":
            kept = []
            for button in group["buttons"]:
                if str(button.get("url", "")).endswith(".ipynb"):
                    if any(b.get("label") == "download-notebook-button" for b in kept):
                        continue  # the theme offers the same source twice (notebook and source file)
                    button.update(url=context["pathto"](notebook, 1), text=".ipynb", icon="fas fa-code",
                                  label="download-notebook-button",
                                  tooltip="Download the chapter as a plain notebook (its Colab edition)")
                kept.append(button)
            group["buttons"][:] = kept


def setup(app: Sphinx):
    app.connect("html-page-context", edition_links, priority=550)  # after the theme's buttons (501)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
