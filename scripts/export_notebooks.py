#!/usr/bin/env python3
"""Write the chapters as plain notebooks: every notebook chapter of ``_toc.yml`` with the same
code cells and outputs, and Markdown that any CommonMark + ``$…$`` renderer (Colab, JupyterLab,
GitHub) shows as the web page does. Generated, never edited by hand.

    jupyter-book build .                                 # the numbers and labels come from the build
    python scripts/export_notebooks.py OUTDIR            # the Colab edition
    python scripts/export_notebooks.py --edition lab OUTDIR   # the JupyterLab edition (Binder)

It writes ``OUTDIR/<chapter>.ipynb`` (``02_maxpool_mask.ipynb``, ...) and ``OUTDIR/README.md``
(the chapters, with their Colab and web links). The Colab edition is plain CommonMark and links
other chapters to their published pages; the JupyterLab edition, for JupyterLab with
jupyterlab-myst (what Binder runs), links them to the other notebooks of the edition, folds with
MyST's ``{dropdown}`` (jupyterlab-myst leaves the math of a ``<details>`` untypeset) and turns off
jupyterlab-myst's numbering of every equation (front matter in its first cell). The Markdown is
parsed with the book's own MyST parser and written back token by token; MyST syntax becomes:

- ``{cite}``/``{cite:p}``/``{cite:t}``/...: the author–year text of the page (sphinxcontrib-bibtex's
  referencing style, on the entries pybtex read from ``references.bib``), linked to the entry in
  the published bibliography, the full reference as the link's title (shown on hover);
- ``{doc}``, ``{ref}``, ``{numref}``, ``{eq}``, Markdown links to other pages and ``(label)=``
  targets: the page's link text, linked to the published page (JupyterLab edition: a chapter links
  to its notebook in the edition, ``03_gradient_expansion.ipynb``);
- ``{exercise}`` (and ``exercise-start``/``-end``): a heading "Exercise 2.1 (title)", numbered as
  in the built book, one level below the section it is in;
- ``{solution}`` and ``solution-start``…``solution-end``: the Markdown folded in
  ``<details><summary>Solution to Exercise 2.1 (title)</summary>``. A ``<details>`` cannot span
  cells: a solution's code cells stay code cells (same source and outputs), folded — source
  hidden — with ``cellView: form`` (Colab's "Show code") and ``jupyter.source_hidden``
  (JupyterLab), and the folded Markdown before them says that the code follows;
- labelled equations (``$$ … $$ (label)``, ``{math}`` with ``:label:``): ``\\tag{2.1}``, numbered as
  in the built book; equations with ``\\\\`` line breaks are wrapped in ``aligned`` (as Sphinx
  wraps them), amsmath environments become their ``…ed`` forms inside ``$$``; the book's MathJax
  macros (``_config.yml``) are expanded, ``\\class{…}{x}`` becomes ``\\boldsymbol{x}``;
- admonitions (``{note}``, ``{tip}``, ``{admonition}``, ...): a quote with the title in bold (a
  folded one, ``:class: dropdown``, a ``<details>``); ``{figure}``/``{image}``: the image with its
  numbered caption; ``{code-block}``: a fenced block; footnotes: superscripts, the notes in a last
  cell; ``{glue}`` roles and directives: the glued output's value;
- ``%`` comments, ``+++`` breaks and front matter: dropped.

Any role, directive or token this script does not know is an error naming the chapter and the
cell: nothing is written raw.

Code cells: every one is kept, in order, with the same source and outputs. Cells the page hides
stay (later cells may need them) but are folded: ``remove-cell``/``hide-cell`` fold source and
outputs, ``remove-input``/``hide-input`` the source (``cellView: form`` in Colab,
``jupyter.source_hidden``/``outputs_hidden`` in JupyterLab; Colab has no folded outputs, so it
shows them). The first cell, which installs the book's modules where they are missing, stays
first; a first Markdown cell says which chapter and edition this is, links the web page and asks
to run that cell first.

Numbers and labels (chapter and exercise numbers, equation and figure numbers, section titles,
citation anchors) are read from the Sphinx environment of the build (``BUILD/.doctrees``), so
they are the page's. Links go to ``html.baseurl`` of ``_config.yml`` when it is set, otherwise
to the GitHub Pages site of ``repository.url`` (``https://OWNER.github.io/REPO/``).
"""
from __future__ import annotations

import argparse
import base64
import copy
import html
import os
import pickle
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple

import nbformat
import yaml
from markdown_it import MarkdownIt
from markdown_it.tree import SyntaxTreeNode

ROOT = Path(__file__).resolve().parents[1]

EDITION_BRANCH = "notebooks"  # the branch the Pages workflow publishes the Colab edition to
EDITION_DIR = "notebooks"     # the edition's folder in the site (download menu) and in Binder
COLAB_URL = "https://colab.research.google.com"


class ExportError(Exception):
    """Something in a chapter the export cannot write as plain Markdown (or cannot resolve)."""


# --- the book: configuration, table of contents, URLs ------------------------------------------------
def load_config(root: Path = ROOT) -> Dict[str, Any]:
    return yaml.safe_load((root / "_config.yml").read_text(encoding="utf-8")) or {}


def toc_entries(root: Path = ROOT) -> List[Tuple[Optional[str], str]]:
    """``(part caption or None, document)`` for every document of ``_toc.yml`` in reading
    order: the root, then the chapters of each part (with their sections)."""
    toc = yaml.safe_load((root / "_toc.yml").read_text(encoding="utf-8"))

    def docname(file: str) -> str:
        return str(Path(file).with_suffix("")) if Path(file).suffix in (".ipynb", ".md") else file

    entries: List[Tuple[Optional[str], str]] = [(None, docname(toc["root"]))]

    def visit(items, caption):
        for e in items or []:
            if "file" in e:
                entries.append((caption, docname(e["file"])))
            visit(e.get("sections"), caption)
            visit(e.get("chapters"), caption)

    for part in toc.get("parts") or []:
        visit(part.get("chapters"), part.get("caption"))
    visit(toc.get("chapters"), None)
    visit(toc.get("sections"), None)
    return entries


def toc_docnames(root: Path = ROOT) -> List[str]:
    """Every document of ``_toc.yml`` in reading order (root, then the chapters of each part)."""
    return [doc for _, doc in toc_entries(root)]


def repo_parts(url: str) -> Tuple[str, str]:
    m = re.fullmatch(r"https://github\.com/([^/]+)/([^/]+?)(?:\.git)?/?", url.strip())
    if not m:
        raise ExportError(f"repository.url must be a GitHub repository URL, not {url!r}")
    return m.group(1), m.group(2)


def pages_base_url(config: Dict[str, Any]) -> str:
    """Where the book is published: ``html.baseurl`` when set, else the repository's GitHub Pages."""
    base = ((config.get("html") or {}).get("baseurl") or "").strip()
    if not base:
        owner, repo = repo_parts(config["repository"]["url"])
        if repo.lower() == f"{owner.lower()}.github.io":
            base = f"https://{owner.lower()}.github.io/"
        else:
            base = f"https://{owner.lower()}.github.io/{repo}/"
    return base if base.endswith("/") else base + "/"


def colab_url(config: Dict[str, Any], chapter: str) -> str:
    """Colab's URL of a chapter of the edition published on the ``notebooks`` branch."""
    owner, repo = repo_parts(config["repository"]["url"])
    return f"{COLAB_URL}/github/{owner}/{repo}/blob/{EDITION_BRANCH}/{chapter}.ipynb"


def chapter_name(docname: str) -> str:
    return docname.rsplit("/", 1)[-1]


# --- what the build knows ------------------------------------------------------------------------------
@dataclass
class Citation:
    docname: str          # the page with the bibliography
    anchor: str           # the entry's id on that page
    entry: Any            # pybtex Entry
    formatted_entry: Any  # pybtex FormattedEntry (the bibliography style's)
    tooltip: str          # the full reference, as the page's link title


@dataclass
class BookIndex:
    """The numbers, labels and titles of the built book, and where it is published."""
    root: Path
    config: Dict[str, Any]
    docnames: List[str]                                   # every page, in the table of contents' order
    titles: Dict[str, str]                                # docname -> plain title
    chapter_numbers: Dict[str, str]                       # docname -> "2" (numbered chapters)
    labels: Dict[str, Tuple[str, str, str]]               # label -> (docname, anchor, plain title)
    fignumbers: Dict[str, Dict[str, Dict[str, str]]]      # docname -> figtype -> id -> "2.1"
    secnumbers: Dict[str, Dict[str, str]]                 # docname -> "#anchor" -> "2.1"
    exercise_labels: Dict[str, List[str]]                 # docname -> ids of its exercises, in document order
    equations: Dict[str, Tuple[str, str, str]]            # label -> (docname, anchor, "2.1")
    citations: Dict[str, Citation]                        # key -> where and what
    numfig_format: Dict[str, str] = field(default_factory=dict)
    eqref_format: str = "({number})"
    math_macros: Dict[str, Any] = field(default_factory=dict)
    reference_style: str = "author_year"
    myst_extensions: Sequence[str] = ()
    math_number_all: bool = False
    base_url: str = ""

    def __post_init__(self):
        if not self.base_url:
            self.base_url = pages_base_url(self.config)

    # -- from a build
    @classmethod
    def from_build(cls, root: Path = ROOT, build: Optional[Path] = None) -> "BookIndex":
        """Read the Sphinx environment that ``jupyter-book build`` left in ``BUILD/.doctrees``."""
        build = Path(build) if build else root / "_build"
        pickled = build / ".doctrees" / "environment.pickle"
        if not pickled.exists():
            raise ExportError(f"no built book in {build} (no .doctrees/environment.pickle): build it first "
                              f"with `jupyter-book build .`")
        with open(pickled, "rb") as f:
            env = pickle.load(f)
        return cls.from_env(root, env, check_fresh=True)

    @classmethod
    def from_env(cls, root: Path, env: Any, check_fresh: bool = False) -> "BookIndex":
        config = load_config(root)
        toc = toc_docnames(root)
        docnames = [d for d in toc if d in env.all_docs]
        missing = [d for d in toc if d not in env.all_docs]
        if missing:
            raise ExportError(f"the build does not have {missing}: rebuild the book")
        if check_fresh:
            for d in docnames:
                src = source_path(root, d)
                read_at = env.all_docs[d] / 1e6  # microseconds since the epoch
                if src.stat().st_mtime > read_at + 1:
                    raise ExportError(f"{src.relative_to(root)} changed after the book was built: rebuild it "
                                      f"(`jupyter-book build .`) so that its numbers and labels are current")
        titles = {d: env.titles[d].astext() for d in docnames}
        chapter_numbers = {}
        for d in docnames:
            num = (env.toc_secnumbers.get(d) or {}).get("")
            if num:
                chapter_numbers[d] = ".".join(map(str, num))
        std = env.domaindata["std"]
        labels = {k: (v[0], v[1], str(v[2])) for k, v in std["labels"].items()}
        for k, v in std["anonlabels"].items():
            labels.setdefault(k, (v[0], v[1], ""))
        fignumbers = {d: {t: {i: ".".join(map(str, n)) for i, n in ids.items()} for t, ids in figs.items()}
                      for d, figs in env.toc_fignumbers.items()}
        secnumbers = {d: {a: ".".join(map(str, n)) for a, n in secs.items()} for d, secs in env.toc_secnumbers.items()}
        registry = getattr(env, "sphinx_exercise_registry", {}) or {}
        exercises: Dict[str, List[str]] = {}
        for label, info in registry.items():  # insertion order is document order within a page
            if info.get("type") in ("exercise", "exercise-start"):
                exercises.setdefault(info["docname"], []).append(label)
        cfg = env.config
        equations = {}
        for label, (docname, eqno) in env.domaindata["math"]["objects"].items():
            anchor = f"equation-{label}"
            number = str(eqno)
            if getattr(cfg, "math_numfig", False) and getattr(cfg, "numfig", False):
                number = fignumbers.get(docname, {}).get("displaymath", {}).get(anchor, number)
            equations[label] = (docname, anchor, number)
        cite = env.domaindata.get("cite", {})
        bibliographies = cite.get("bibliographies", {})
        plaintext = None
        citations = {}
        for c in cite.get("citations", []):
            if bibliographies[c.bibliography_key].list_ != "citation":
                continue
            if plaintext is None:
                import pybtex.plugin
                plaintext = pybtex.plugin.find_plugin("pybtex.backends", "plaintext")()
            tooltip = c.tooltip_entry.text.render(plaintext).replace("\\url ", "") if c.tooltip_entry else ""
            citations.setdefault(c.key, Citation(c.bibliography_key.docname, c.citation_id, c.entry,
                                                 c.formatted_entry, tooltip))
        macros = ((getattr(cfg, "mathjax3_config", None) or {}).get("tex") or {}).get("macros") or {}
        published = {"html": {"baseurl": (cfg.html_baseurl or "").strip()}, "repository": config["repository"]}
        return cls(root=root, config=config, docnames=docnames, titles=titles, chapter_numbers=chapter_numbers,
                   labels=labels, fignumbers=fignumbers, secnumbers=secnumbers, exercise_labels=exercises,
                   equations=equations, citations=citations, numfig_format=dict(cfg.numfig_format or {}),
                   eqref_format=cfg.math_eqref_format or "({number})", math_macros=dict(macros),
                   reference_style=cfg.bibtex_reference_style,
                   myst_extensions=sorted(env.myst_config.enable_extensions),
                   math_number_all=bool(getattr(cfg, "math_number_all", False)), base_url=pages_base_url(published))

    # -- questions the exporter asks
    def page_url(self, docname: str, anchor: str = "") -> str:
        return f"{self.base_url}{docname}.html" + (f"#{anchor.lstrip('#')}" if anchor.lstrip("#") else "")

    def chapters(self) -> List[str]:
        """The pages that are notebooks: the chapters of the edition."""
        if not hasattr(self, "_chapters"):
            self._chapters = [d for d in self.docnames if source_path(self.root, d).suffix == ".ipynb"]
        return self._chapters

    def cite(self, role: str, target: str, fromdoc: str, link: Callable[[str, str], str]) -> str:
        """The Markdown of a citation role: the referencing style's text, each reference linked."""
        from sphinxcontrib.bibtex.citation_target import parse_citation_targets
        from sphinxcontrib.bibtex.plugin import find_plugin
        from sphinxcontrib.bibtex.style.referencing import format_references
        from sphinxcontrib.bibtex.style.template import SphinxReferenceInfo

        style = find_plugin("sphinxcontrib.bibtex.style.referencing", self.reference_style)()
        if role not in style.role_names():
            raise ExportError(f"{{cite:{role}}} is not a role of the {self.reference_style} referencing style")
        refs = []
        for t in parse_citation_targets(target):
            if t.key not in self.citations:
                raise ExportError(f"citation key {t.key!r} is not in the bibliography")
            c = self.citations[t.key]
            info = SphinxReferenceInfo(builder=None, fromdocname=fromdoc, todocname=c.docname,
                                       citation_id=c.anchor, title=c.tooltip, pre_text=t.pre, post_text=t.post)
            refs.append((c.entry, c.formatted_entry, info))
        return rich_to_markdown(format_references(style, role, refs), link)


def source_path(root: Path, docname: str) -> Path:
    for suffix in (".ipynb", ".md"):
        p = root / f"{docname}{suffix}"
        if p.exists():
            return p
    raise ExportError(f"no source for {docname} (.ipynb or .md)")


# --- Markdown text helpers -----------------------------------------------------------------------------
MD_SPECIAL = re.compile(r"([\\`*_\[\]<>#|$~])")


def escape_md(text: str) -> str:
    """Plain text as Markdown that shows it literally (also ``$``, so that no math starts)."""
    return MD_SPECIAL.sub(r"\\\1", text)


def link_md(text_md: str, url: str, title: str = "") -> str:
    url = url.replace(" ", "%20").replace("(", "%28").replace(")", "%29")
    t = f' "{title.replace(chr(92), chr(92) * 2).replace(chr(34), chr(92) + chr(34))}"' if title else ""
    return f"[{text_md}]({url}{t})"


def rich_to_markdown(text: Any, link: Callable[[str, str], str]) -> str:
    """A pybtex rich text (what sphinxcontrib-bibtex formats a citation into) as Markdown; each
    reference becomes a link made by ``link(todocname, anchor)``, with the full reference as title."""
    from pybtex import richtext
    from sphinxcontrib.bibtex.richtext import BaseReferenceText

    def inner(t) -> str:
        if isinstance(t, BaseReferenceText):
            info = t.info[0]
            return link_md("".join(inner(p) for p in t.parts), link(info.todocname, info.citation_id),
                           info.title or "")
        if isinstance(t, richtext.String):
            return escape_md(t.value)
        if isinstance(t, richtext.Symbol):
            return {"ndash": "–", "nbsp": "\u00a0", "newblock": " "}.get(t.name, "")
        if isinstance(t, richtext.HRef):
            return link_md("".join(inner(p) for p in t.parts), t.url)
        if isinstance(t, richtext.Tag):
            body = "".join(inner(p) for p in t.parts)
            marks = {"em": "*", "i": "*", "strong": "**", "b": "**"}
            return f"{marks[t.name]}{body}{marks[t.name]}" if t.name in marks and body else body
        if isinstance(t, richtext.BaseMultipartText):
            return "".join(inner(p) for p in t.parts)
        if isinstance(t, str):
            return escape_md(t)
        raise ExportError(f"cannot write citation text {t!r}")

    return inner(text)


# --- math ------------------------------------------------------------------------------------------
AMS_ENVS = {"align": "aligned", "align*": "aligned", "gather": "gathered", "gather*": "gathered",
            "alignat": "alignedat", "alignat*": "alignedat", "flalign": "aligned", "flalign*": "aligned",
            "multline": "gathered", "multline*": "gathered", "equation": None, "equation*": None,
            "eqnarray": "aligned", "eqnarray*": "aligned", "split": "aligned"}


def _braced(s: str, i: int) -> Tuple[str, int]:
    """The group starting at ``s[i] == '{'`` and the index after it."""
    if i >= len(s) or s[i] != "{":
        raise ExportError(f"expected a {{ group in math: {s[max(0, i - 20):i + 20]!r}")
    depth, j = 0, i
    while j < len(s):
        if s[j] == "\\":
            j += 2
            continue
        if s[j] == "{":
            depth += 1
        elif s[j] == "}":
            depth -= 1
            if depth == 0:
                return s[i + 1:j], j + 1
        j += 1
    raise ExportError(f"unbalanced braces in math: {s!r}")


def expand_macros(tex: str, macros: Dict[str, Any]) -> str:
    """The book's MathJax macros (``_config.yml``) written out; ``\\class{c}{x}`` (a MathJax
    extension that KaTeX and Colab do not know) as ``\\boldsymbol{x}``; ``\\cssId``/``\\style`` dropped."""
    for _ in range(10):
        before = tex
        for name, body in macros.items():
            nargs = 0
            if isinstance(body, (list, tuple)):
                body, nargs = body[0], int(body[1]) if len(body) > 1 else 0
            pat = re.compile(r"(?<!\\)\\" + re.escape(name) + r"(?![A-Za-z])")
            out, pos = [], 0
            for m in pat.finditer(tex):
                if m.start() < pos:
                    continue
                j = m.end()
                args = []
                for _a in range(nargs):
                    while j < len(tex) and tex[j] == " ":
                        j += 1
                    a, j = _braced(tex, j)
                    args.append(a)
                rep = body
                for k, a in enumerate(args, 1):
                    rep = rep.replace(f"#{k}", a)
                out.append(tex[pos:m.start()] + ("{" + rep + "}" if nargs else rep))
                pos = j
            tex = "".join(out) + tex[pos:]
        for cmd, keep in (("class", r"\boldsymbol"), ("cssId", ""), ("style", "")):
            pat = re.compile(r"(?<!\\)\\" + cmd + r"(?![A-Za-z])\s*")
            while True:
                m = pat.search(tex)
                if not m:
                    break
                _first, j = _braced(tex, m.end())
                while j < len(tex) and tex[j] == " ":
                    j += 1
                body, k = _braced(tex, j)
                tex = tex[:m.start()] + keep + "{" + body + "}" + tex[k:]
        if tex == before:
            return tex
    return tex


def _top_level_breaks(tex: str) -> bool:
    """Whether ``\\\\`` occurs outside every ``\\begin…\\end`` environment."""
    depth = 0
    for m in re.finditer(r"\\begin\{|\\end\{|\\\\", tex):
        if m.group(0) == "\\begin{":
            depth += 1
        elif m.group(0) == "\\end{":
            depth -= 1
        elif depth == 0:
            return True
    return False


def display_math(tex: str, macros: Dict[str, Any], number: Optional[str] = None) -> List[str]:
    """A display equation as ``$$ … $$`` lines: Sphinx's wrapping (parts separated by blank lines
    aligned, ``\\\\`` outside an environment in ``aligned``), macros expanded, ``\\tag`` for a number."""
    tex = expand_macros(tex.strip("\n"), macros)
    parts = [p.strip("\n") for p in re.split(r"\n\s*\n", tex) if p.strip()]
    if len(parts) > 1 or (parts and _top_level_breaks(parts[0])):
        body = " \\\\\n".join(parts)
        tex = "\\begin{aligned}\n" + body + "\n\\end{aligned}"
    else:
        tex = parts[0] if parts else ""
    if number:
        tex += f" \\tag{{{number}}}"
    return ["$$"] + tex.split("\n") + ["$$"]


def amsmath_env(tex: str, macros: Dict[str, Any]) -> List[str]:
    """A top-level amsmath environment inside ``$$``: ``align`` as ``aligned`` and so on (the book
    does not number them: MathJax runs without equation tags), ``\\label`` dropped."""
    m = re.match(r"\s*\\begin\{([a-zA-Z]+\*?)\}", tex)
    env = m.group(1) if m else None
    if env not in AMS_ENVS:
        raise ExportError(f"amsmath environment {env!r} has no plain-math form here")
    new = AMS_ENVS[env]
    body = tex.strip()
    body = re.sub(r"\\label\{[^}]*\}", "", body)
    body = re.sub(r"\\(nonumber|notag)\b", "", body)
    inner = body[len(m.group(0).strip()):]
    inner = re.sub(r"\\end\{" + re.escape(env) + r"\}\s*$", "", inner)
    if env.startswith("alignat"):
        cols, k = _braced(inner.lstrip(), 0)
        inner = "{" + cols + "}" + inner.lstrip()[k:]
    tex = inner.strip("\n") if new is None else f"\\begin{{{new}}}{inner}\\end{{{new}}}"
    return ["$$"] + expand_macros(tex, macros).split("\n") + ["$$"]


# --- directives: the classes whose option and argument rules the book parses with ---------------------
def directive_classes() -> Dict[str, Any]:
    from docutils.parsers.rst.directives import admonitions, images, tables
    from sphinx.directives import code, other, patches
    from sphinx_exercise import directive as ex

    classes: Dict[str, Any] = {
        "exercise": ex.ExerciseDirective, "exercise-start": ex.ExerciseStartDirective,
        "exercise-end": ex.ExerciseEndDirective, "solution": ex.SolutionDirective,
        "solution-start": ex.SolutionStartDirective, "solution-end": ex.SolutionEndDirective,
        "figure": patches.Figure, "image": images.Image, "math": patches.MathDirective,
        "code-block": code.CodeBlock, "code": code.CodeBlock, "sourcecode": code.CodeBlock,
        "list-table": tables.ListTable, "table": tables.RSTTable,
        "admonition": admonitions.Admonition, "seealso": other.SeeAlso,
        "epigraph": __import__("docutils.parsers.rst.directives.body", fromlist=["Epigraph"]).Epigraph,
        "topic": __import__("docutils.parsers.rst.directives.body", fromlist=["Topic"]).Topic,
        "sidebar": __import__("docutils.parsers.rst.directives.body", fromlist=["Sidebar"]).Sidebar,
        "rubric": __import__("docutils.parsers.rst.directives.body", fromlist=["Rubric"]).Rubric,
    }
    for name in ("attention", "caution", "danger", "error", "hint", "important", "note", "tip", "warning"):
        classes[name] = getattr(admonitions, name.capitalize())
    try:
        from sphinx_design.dropdown import DropdownDirective
        classes["dropdown"] = DropdownDirective
    except ImportError:  # pragma: no cover - jupyter-book installs it
        pass
    try:
        from sphinx_togglebutton import Toggle
        classes["toggle"] = Toggle
    except ImportError:  # pragma: no cover
        pass
    try:
        from sphinx_book_theme.directives import Margin
        classes["margin"] = Margin
    except ImportError:  # pragma: no cover
        pass
    from myst_nb.ext.glue import directives as glue
    classes.update({"glue": glue.PasteAnyDirective, "glue:any": glue.PasteAnyDirective,
                    "glue:figure": glue.PasteFigureDirective, "glue:math": glue.PasteMathDirective,
                    "glue:md": glue.PasteMarkdownDirective})
    return classes


ADMONITION_TITLES = {"attention": "Attention", "caution": "Caution", "danger": "Danger", "error": "Error",
                     "hint": "Hint", "important": "Important", "note": "Note", "tip": "Tip",
                     "warning": "Warning", "seealso": "See also"}


@dataclass
class Directive:
    name: str
    arguments: List[str]
    options: Dict[str, Any]
    body: str


def parse_directive(name: str, info_rest: str, content: str, classes: Dict[str, Any]) -> Directive:
    from myst_parser.parsers.directives import parse_directive_text

    if name not in classes:
        raise ExportError(f"unknown directive {{{name}}}: the export does not know how to write it as plain "
                          f"Markdown (teach scripts/export_notebooks.py)")
    res = parse_directive_text(classes[name], info_rest, content)
    bad = [w for w in res.warnings if "Unknown option" in str(w) or "Invalid" in str(w) or "error" in str(w).lower()]
    if bad:
        raise ExportError(f"directive {{{name}}}: {'; '.join(str(getattr(w, 'msg', w)) for w in bad)}")
    return Directive(name, list(res.arguments), dict(res.options), "\n".join(res.body))


# --- the renderer: MyST tokens back to CommonMark ------------------------------------------------------
def myst_parser(extensions: Iterable[str]) -> MarkdownIt:
    """The book's MyST parser (as MyST-NB makes it), keeping escapes and entities as written."""
    from markdown_it.renderer import RendererHTML
    from myst_parser.config.main import MdParserConfig
    from myst_parser.parsers.mdit import create_md_parser

    md = create_md_parser(MdParserConfig(enable_extensions=set(extensions)), RendererHTML)
    md.disable("text_join", ignoreInvalid=True)
    return md


def plain_html_inline(md_text: str) -> str:
    """Inline CommonMark (with ``$…$``) as HTML, for a ``<summary>`` (where Markdown is not read)."""
    from mdit_py_plugins.dollarmath import dollarmath_plugin

    md = MarkdownIt("commonmark").use(dollarmath_plugin)
    def math(fence: str):  # the TeX as written, between its dollars
        return lambda self, tokens, idx, options, env: fence + html.escape(tokens[idx].content, quote=False) + fence

    md.add_render_rule("math_inline", math("$"))
    md.add_render_rule("math_inline_double", math("$$"))
    return md.renderInline(md_text).strip()


def fence_for(content: str, char: str = "`") -> str:
    longest = max([len(m) for m in re.findall(re.escape(char) + "+", content)] + [0])
    return char * max(3, longest + 1)


def indent(lines: List[str], first: str, rest: str) -> List[str]:
    out = []
    for i, line in enumerate(lines):
        prefix = first if i == 0 else rest
        out.append((prefix + line) if line.strip() else prefix.rstrip() if prefix.strip() else "")
    return out


def join_blocks(blocks: List[List[str]], tight: bool = False) -> List[str]:
    out: List[str] = []
    for b in blocks:
        if not b:
            continue
        if out and not tight:
            out.append("")
        out.extend(b)
    return out


def blockquote(lines: List[str]) -> List[str]:
    """Markdown lines as a block quote (an empty line stays in it as a bare ``>``)."""
    return [("> " + line) if line else ">" for line in lines]


HEADINGS: Dict[Tuple[str, str, str, Optional[str]], Optional[str]] = {}  # (root, edition, docname, label) -> Markdown
CODE_FOLLOWS = "*The code of this solution is the next cell, folded: run it, or unfold it to read it.*"
EDITIONS = {"colab": "Colab edition", "lab": "JupyterLab edition"}
# jupyterlab-myst numbers every display equation; the page numbers labelled ones only (\\tag)
LAB_FRONTMATTER = "---\nnumbering:\n  equation: false\n---\n"


@dataclass
class Footnote:
    number: int
    lines: List[str]


class ChapterExporter:
    """Writes one chapter notebook as the edition's notebook."""

    def __init__(self, index: BookIndex, docname: str, edition: str = "colab",
                 outdir: Optional[Path] = None, md: Optional[MarkdownIt] = None,
                 classes: Optional[Dict[str, Any]] = None):
        if edition not in EDITIONS:
            raise ValueError(f"edition must be one of {sorted(EDITIONS)}, not {edition!r}")
        self.index = index
        self.docname = docname
        self.edition = edition
        self.chapter_links = "notebook" if edition == "lab" else "web"
        self.outdir = outdir
        self.md = md or myst_parser(index.myst_extensions)
        self.classes = classes or directive_classes()
        self.where = docname
        self.footnotes: Dict[str, Footnote] = {}
        self.heading_level = 1
        self.enum_seen: Dict[str, int] = {}
        self.exercise_seen = 0
        self.exercises: Dict[str, Dict[str, str]] = {}   # label -> {"number": "2.1", "title": md}
        self.glue: Dict[str, Dict[str, Any]] = {}
        self.md_env: Dict[str, Any] = {}  # shared by the cells of a notebook, as in MyST-NB

    # -- errors name the place
    def fail(self, msg: str):
        raise ExportError(f"{self.where}: {msg}")

    # -- links
    def doc_link(self, docname: str, anchor: str = "") -> str:
        """Where a link to a page (and a place in it) goes: the published page; in the JupyterLab
        edition another chapter's notebook (a place in this chapter stays on the web page)."""
        if self.chapter_links == "notebook" and docname in self.index.chapters():
            if docname != self.docname or not anchor:
                return chapter_name(docname) + ".ipynb"
        return self.index.page_url(docname, anchor)

    def resolve_doc(self, target: str) -> str:
        target = target.strip()
        base = "" if target.startswith("/") else str(Path(self.docname).parent)
        path = os.path.normpath(os.path.join(base, target.lstrip("/"))).replace(os.sep, "/")
        for suffix in (".ipynb", ".md"):
            if path.endswith(suffix):
                path = path[: -len(suffix)]
        if path not in self.index.titles:
            self.fail(f"no page {target!r} (from {self.docname})")
        return path

    # -- roles
    def role(self, name: str, content: str) -> str:
        explicit = re.fullmatch(r"(?s)(.*?)\s*<([^<>]+)>", content)
        text, target = (explicit.group(1), explicit.group(2)) if explicit and explicit.group(1) else (None, content)
        if name == "doc":
            doc = self.resolve_doc(target)
            return link_md(escape_md(text) if text else self.title_md(doc), self.doc_link(doc))
        if name in ("ref", "numref"):
            return self.ref(name, target.strip(), text)
        if name == "eq":
            label = target.strip()
            if label not in self.index.equations:
                self.fail(f"{{eq}}`{label}`: no such equation label")
            doc, anchor, number = self.index.equations[label]
            shown = escape_md(text) if text else escape_md(self.index.eqref_format.format(number=number))
            return link_md(shown, self.doc_link(doc, anchor))
        if name == "math":
            return "$" + expand_macros(content, self.index.math_macros) + "$"
        if name == "cite" or name.startswith("cite:"):
            role = "p" if name == "cite" else name.split(":", 1)[1]
            try:
                return self.index.cite(role, content, self.docname, self.doc_link)
            except ExportError as e:
                self.fail(str(e))
        if name in ("sub", "sup"):
            return f"<{name}>{html.escape(content)}</{name}>"
        if name == "abbr":
            m = re.fullmatch(r"(?s)(.*?)\s*\((.*)\)", content)
            return escape_md(m.group(1) if m else content)
        if name in ("code", "samp", "literal", "file", "command", "program", "envvar", "option", "mimetype"):
            ticks = "`" * (max([len(m) for m in re.findall("`+", content)] + [0]) + 1)
            pad = " " if content.startswith("`") or content.endswith("`") else ""
            return f"{ticks}{pad}{content}{pad}{ticks}"
        if name == "kbd":
            return f"<kbd>{html.escape(content)}</kbd>"
        if name in ("index", "term", "dfn", "guilabel", "menuselection", "strong", "emphasis"):
            if text and name == "term":
                shown = text
            else:
                shown = re.sub(r"^!?\s*(?:single|pair|see|seealso|triple):\s*", "", content)
            if name == "strong":
                return f"**{escape_md(shown)}**"
            if name == "emphasis":
                return f"*{escape_md(shown)}*"
            return escape_md(shown.replace("-->", "→").split(";")[0].strip() if name == "index" else shown)
        if name == "download":
            path = target.strip()
            return link_md(escape_md(text or Path(path).name), self.repo_file_url(path))
        if name in ("glue", "glue:", "glue:any", "glue:text", "glue:md", "glue:math"):
            return self.glue_inline(name, content)
        self.fail(f"unknown role {{{name}}}: the export does not know how to write it as plain Markdown "
                  f"(teach scripts/export_notebooks.py)")

    def title_md(self, docname: str) -> str:
        """A page's title as it reads on the page, in Markdown (its first heading, with its math)."""
        heading = self.heading_md(docname, None)
        return heading if heading is not None else escape_md(self.index.titles[docname])

    def heading_md(self, docname: str, label: Optional[str]) -> Optional[str]:
        """The Markdown of a page's first heading, or of the heading a ``(label)=`` target marks."""
        key = (str(self.index.root), self.edition, docname, label)
        if key not in HEADINGS:
            HEADINGS[key] = None
            path = source_path(self.index.root, docname)
            if path.suffix == ".ipynb":
                nb = nbformat.read(path, as_version=4)
                text = "\n\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
            else:
                text = path.read_text(encoding="utf-8")
            nodes = SyntaxTreeNode(self.md.parse(text, {})).children
            for n, node in enumerate(nodes):
                if label is None and node.type == "heading":
                    HEADINGS[key] = self.inline_children(node)
                    break
                if label is not None and node.type == "myst_target" and node.content == label:
                    following = nodes[n + 1] if n + 1 < len(nodes) else None
                    if following is not None and following.type == "heading":
                        HEADINGS[key] = self.inline_children(following)
                    break
        return HEADINGS[key]

    def ref(self, role: str, label: str, text: Optional[str]) -> str:
        idx = self.index
        if label not in idx.labels:
            self.fail(f"{{{role}}}`{label}`: no such label in the built book")
        doc, anchor, title = idx.labels[label]
        figtype, number = self.number_of(doc, anchor)
        if role == "numref":
            if number is None:
                self.fail(f"{{numref}}`{label}`: the target has no number")
            fmt = text if text else idx.numfig_format.get(figtype, "%s")
            shown = fmt.replace("{name}", title).replace("{number}", number)
            shown = shown % number if "%s" in shown else shown
            shown_md = escape_md(shown)
        elif text:
            shown_md = escape_md(text)
        elif figtype == "exercise" and number is not None:
            shown_md = escape_md(idx.numfig_format.get("exercise", "Exercise %s") % number)
        else:
            heading = self.heading_md(doc, label)
            shown_md = heading if heading is not None else escape_md(title)
        return link_md(shown_md, self.doc_link(doc, anchor))

    def number_of(self, doc: str, anchor: str) -> Tuple[Optional[str], Optional[str]]:
        for figtype, ids in self.index.fignumbers.get(doc, {}).items():
            if anchor in ids:
                return figtype, ids[anchor]
        sec = self.index.secnumbers.get(doc, {}).get("#" + anchor)
        if sec is not None:
            return "section", sec
        return None, None

    def repo_file_url(self, path: str) -> str:
        """A file of the repository given relative to the chapter: raw on GitHub (the edition's
        folder does not hold it), or relative to the JupyterLab edition's folder."""
        rel = os.path.normpath(os.path.join(str(Path(self.docname).parent), path)).replace(os.sep, "/")
        if not (self.index.root / rel).exists():
            self.fail(f"{path!r} does not exist (from {self.docname})")
        if self.chapter_links == "notebook" and self.outdir is not None:
            return os.path.relpath(self.index.root / rel, self.outdir).replace(os.sep, "/")
        owner, repo = repo_parts(self.index.config["repository"]["url"])
        branch = self.index.config["repository"].get("branch", "main")
        return f"https://raw.githubusercontent.com/{owner}/{repo}/{branch}/{rel}"

    # -- glue
    def glue_data(self, key: str) -> Dict[str, Any]:
        if key not in self.glue:
            self.fail(f"glue key {key!r} is not glued in this notebook")
        return self.glue[key]

    def glue_inline(self, name: str, content: str) -> str:
        from myst_nb.core.variables import format_plain_text

        key, fmt = (content.rsplit(":", 1) + [""])[:2] if name == "glue:text" else (content, "")
        data = self.glue_data(key.strip())
        if name == "glue:md":
            if "text/markdown" not in data:
                self.fail(f"{{glue:md}}`{key}`: the glued value has no text/markdown")
            return self.render_inline_source(data["text/markdown"])
        if name == "glue:math":
            if "text/latex" not in data:
                self.fail(f"{{glue:math}}`{key}`: the glued value has no text/latex")
            return "$" + expand_macros(data["text/latex"].strip().strip("$"), self.index.math_macros) + "$"
        if "text/plain" not in data:
            self.fail(f"{{{name}}}`{key}`: only text values can be shown inline here")
        return escape_md(format_plain_text(data["text/plain"], fmt) if name == "glue:text" else data["text/plain"])

    def glue_block(self, d: Directive) -> List[str]:
        key = d.arguments[0]
        data = self.glue_data(key)
        if d.name == "glue:math":
            if "text/latex" not in data:
                self.fail(f"{{glue:math}} {key}: the glued value has no text/latex")
            label = d.options.get("label")
            number = self.equation_number(label) if label else None
            return display_math(data["text/latex"].strip().strip("$"), self.index.math_macros, number)
        if d.name == "glue:md":
            return self.render_source(data.get("text/markdown", ""))
        lines = self.glued_output(data, key)
        if d.name == "glue:figure":
            caption = self.render_source(d.body) if d.body.strip() else []
            number = self.next_number("figure", d.options.get("name"))
            if caption and number:
                label = self.index.numfig_format.get("figure", "Fig. %s") % number
                caption[0] = f"*{escape_md(label)}* " + caption[0]
            return join_blocks([lines, caption])
        return lines

    def glued_output(self, data: Dict[str, Any], key: str) -> List[str]:
        for mime in ("image/png", "image/jpeg", "image/svg+xml"):
            if mime in data:
                payload = data[mime]
                if mime == "image/svg+xml":
                    payload = base64.b64encode("".join(payload).encode()).decode()
                return [f"![{escape_md(key)}](data:{mime};base64,{''.join(payload).strip()})"]
        if "text/markdown" in data:
            return self.render_source(data["text/markdown"])
        if "text/latex" in data:
            return display_math(data["text/latex"].strip().strip("$"), self.index.math_macros)
        if "text/plain" in data:
            return ["```", *"".join(data["text/plain"]).split("\n"), "```"]
        self.fail(f"glue {key!r}: no image or text to show")

    # -- numbering of enumerated things in document order
    def next_number(self, figtype: str, label: Optional[str]) -> Optional[str]:
        """The number the book gave the next ``figtype`` of this page (they are numbered in
        document order); checked against the label's number when there is a label."""
        numbers = sorted(self.index.fignumbers.get(self.docname, {}).get(figtype, {}).items(),
                         key=lambda kv: [int(x) for x in kv[1].split(".")])
        k = self.enum_seen.get(figtype, 0)
        self.enum_seen[figtype] = k + 1
        if label:
            anchor = self.index.labels.get(label, (None, label, None))[1]
            got = self.index.fignumbers.get(self.docname, {}).get(figtype, {}).get(anchor)
            if got is None:
                self.fail(f"{figtype} {label!r} has no number in the built book")
            return got
        if k >= len(numbers):
            return None
        return numbers[k][1]

    def equation_number(self, label: str) -> str:
        if label not in self.index.equations:
            self.fail(f"equation label {label!r} is not in the built book")
        return self.index.equations[label][2]

    # -- inline rendering
    def render_inline_source(self, text: str) -> str:
        tokens = self.md.parseInline(text, {})
        node = SyntaxTreeNode(tokens)
        return "".join(self.inline(c) for c in node.children[0].children) if node.children else ""

    def inline(self, node: SyntaxTreeNode) -> str:
        t = node.type
        if t == "text":
            return node.content
        if t == "text_special":
            return node.markup or node.content
        if t == "softbreak":
            return "\n"
        if t == "hardbreak":
            return "\\\n"
        if t == "code_inline":
            c = node.content
            touches_backtick = c.startswith("`") or c.endswith("`")
            pad = " " if (touches_backtick or (c.startswith(" ") and c.endswith(" ") and c.strip())) else ""
            return f"{node.markup}{pad}{c}{pad}{node.markup}"
        if t in ("em", "strong", "s"):
            return node.markup + "".join(self.inline(c) for c in node.children) + node.markup
        if t == "math_inline":
            return "$" + expand_macros(node.content, self.index.math_macros) + "$"
        if t == "math_inline_double":
            return "$$" + expand_macros(node.content, self.index.math_macros) + "$$"
        if t == "myst_role":
            return self.role(node.meta["name"], node.content)
        if t == "html_inline":
            return node.content
        if t == "link":
            return self.link(node)
        if t == "image":
            src = node.attrs.get("src", "")
            alt = "".join(self.inline(c) for c in node.children)
            title = node.attrs.get("title", "")
            return "!" + link_md(alt, self.image_url(str(src)), str(title or ""))
        if t == "footnote_ref":
            fn = self.footnote(node.meta["label"])
            return f"<sup>{fn.number}</sup>"
        self.fail(f"unknown inline Markdown {t!r}")

    def image_url(self, src: str) -> str:
        if re.match(r"^[a-z][a-z0-9+.-]*:", src) or src.startswith("attachment:"):
            return src
        return self.repo_file_url(src)

    def link(self, node: SyntaxTreeNode) -> str:
        href = str(node.attrs.get("href", ""))
        title = str(node.attrs.get("title", "") or "")
        text = "".join(self.inline(c) for c in node.children)
        if node.markup == "autolink":
            return f"<{href}>"
        scheme = re.match(r"^([a-z][a-z0-9+.-]*):", href)
        if scheme and scheme.group(1) not in ("project", "path", "inv"):
            return link_md(text, href, title)
        if scheme and scheme.group(1) == "inv":
            self.fail(f"link {href!r}: intersphinx links are not supported")
        target = re.sub(r"^(project|path):", "", href)
        if target.startswith("#"):
            label = target[1:]
            if label in self.index.labels:
                return self.ref("ref", label, None) if not text else link_md(
                    text, self.index.page_url(*self.index.labels[label][:2]))
            self.fail(f"link {href!r}: no such label")
        path, _, anchor = target.partition("#")
        try:
            doc = self.resolve_doc(path)
        except ExportError:
            return link_md(text or escape_md(Path(path).name), self.repo_file_url(path), title)
        return link_md(text or self.title_md(doc), self.doc_link(doc, anchor), title)

    def footnote(self, label: str) -> Footnote:
        if label not in self.footnotes:
            self.footnotes[label] = Footnote(len(self.footnotes) + 1, [])
        return self.footnotes[label]

    # -- block rendering
    def render_source(self, text: str) -> List[str]:
        return self.blocks(SyntaxTreeNode(self.md.parse(text, self.md_env)).children)

    def blocks(self, nodes: Sequence[SyntaxTreeNode], tight: bool = False) -> List[str]:
        return join_blocks([self.block(n) for n in nodes], tight)

    def block(self, node: SyntaxTreeNode) -> List[str]:
        t = node.type
        if t == "paragraph":
            return self.inline_children(node).split("\n")
        if t == "inline":
            return "".join(self.inline(c) for c in node.children).split("\n")
        if t == "heading":
            level = int(node.tag[1])
            return ["#" * level + " " + self.inline_children(node).replace("\n", " ")]
        if t in ("bullet_list", "ordered_list"):
            tight = self.is_tight(node)
            items = []
            for c in node.children:
                if t == "bullet_list":
                    marker = (node.markup or "-") + " "
                else:
                    marker = f"{c.info or '1'}{node.markup or '.'} "
                body = self.blocks(c.children, tight) or [""]
                items.append(indent(body, marker, " " * len(marker)))
            return join_blocks(items, tight)
        if t == "blockquote":
            return blockquote(self.blocks(node.children))
        if t == "hr":
            return ["---"]
        if t == "code_block":
            return ["    " + line if line else "" for line in node.content.rstrip("\n").split("\n")]
        if t in ("fence", "colon_fence"):
            return self.fence(node)
        if t == "html_block":
            return node.content.rstrip("\n").split("\n")
        if t == "math_block":
            return display_math(node.content, self.index.math_macros)
        if t == "math_block_label":
            return display_math(node.content, self.index.math_macros, self.equation_number(node.info))
        if t == "amsmath":
            return amsmath_env(node.content, self.index.math_macros)
        if t == "table":
            return self.table(node)
        if t in ("myst_target", "myst_line_comment", "myst_block_break", "front_matter"):
            return []
        if t == "footnote_reference":
            fn = self.footnote(node.meta["label"])
            fn.lines = self.blocks(node.children)
            return []
        if t == "footnote_block":
            return []
        if t == "dl":
            items = []
            for c in node.children:
                if c.type == "dt":
                    items.append(["- **" + self.inline_children(c).replace("\n", " ") + "**"])
                elif c.type == "dd":
                    items[-1] = items[-1] + [""] + indent(self.blocks(c.children), "  ", "  ")
            return join_blocks(items)
        self.fail(f"unknown Markdown block {t!r}")

    @staticmethod
    def is_tight(node: SyntaxTreeNode) -> bool:
        """markdown-it hides the paragraphs of a tight list."""
        paragraphs = [c for item in node.children for c in item.children if c.type == "paragraph"]
        return all(p.nester_tokens.opening.hidden for p in paragraphs)

    def inline_children(self, node: SyntaxTreeNode) -> str:
        """The Markdown of a paragraph, heading or table cell (one ``inline`` child)."""
        return "".join(self.inline(c) for inline in node.children for c in inline.children)

    def table(self, node: SyntaxTreeNode) -> List[str]:
        rows, aligns = [], []
        for section in node.children:
            for tr in section.children:
                cells = []
                for cell in tr.children:
                    text = self.inline_children(cell).replace("\n", " ").replace("|", "\\|") if cell.children else ""
                    # a | that was an escape is written back as \| already; undo the doubling
                    text = text.replace("\\\\|", "\\|")
                    cells.append(text)
                    if section.type == "thead":
                        style = str(cell.attrs.get("style", ""))
                        aligns.append(":---:" if "center" in style else "---:" if "right" in style
                                      else ":---" if "left" in style else "---")
                rows.append(cells)
        out = ["| " + " | ".join(rows[0]) + " |", "| " + " | ".join(aligns) + " |"]
        out += ["| " + " | ".join(r) + " |" for r in rows[1:]]
        return out

    def fence(self, node: SyntaxTreeNode) -> List[str]:
        info = node.info.strip()
        m = re.match(r"^\{([^}\s]+)\}\s*(.*)$", info)
        if not m:
            f = fence_for(node.content, "`" if node.markup.startswith("`") else "~")
            return [f + info] + node.content.rstrip("\n").split("\n") + [f]
        return self.directive(parse_directive(m.group(1), m.group(2), node.content, self.classes))

    # -- directives
    def directive(self, d: Directive) -> List[str]:
        name = d.name
        if name in ("exercise", "exercise-start"):
            return self.exercise(d)
        if name == "exercise-end":
            return []
        if name == "solution":
            return self.solution_block(d)
        if name in ("solution-start", "solution-end"):
            self.fail(f"{{{name}}} must stand at the top level of a Markdown cell")
        if name in ADMONITION_TITLES or name in ("admonition", "dropdown", "toggle", "topic", "sidebar", "margin"):
            title = ADMONITION_TITLES.get(name) or (d.arguments[0] if d.arguments else "")
            if name in ADMONITION_TITLES and d.arguments:  # content on the first line
                d.body = d.arguments[0] + ("\n" + d.body if d.body else "")
            title_md = self.render_inline_source(title) if title and name not in ADMONITION_TITLES else escape_md(title)
            body = self.render_source(d.body)
            classes = d.options.get("class") or []
            if name in ("dropdown", "toggle") or "dropdown" in classes:
                return self.details(title_md or "Show", body, open_="open" in d.options)
            head = [f"**{title_md}**"] if title_md else []
            return blockquote(join_blocks([head, body]))
        if name == "epigraph":
            return blockquote(self.render_source(d.body))
        if name == "rubric":
            return [f"**{self.render_inline_source(d.arguments[0])}**"]
        if name in ("figure", "image"):
            return self.figure(d)
        if name == "math":
            label = d.options.get("label") or d.options.get("name")
            return display_math(d.body, self.index.math_macros, self.equation_number(label) if label else None)
        if name in ("code-block", "code", "sourcecode"):
            lang = d.arguments[0] if d.arguments else ""
            f = fence_for(d.body)
            return [f + lang] + d.body.rstrip("\n").split("\n") + [f]
        if name in ("table", "list-table"):
            return self.table_directive(d)
        if name.startswith("glue"):
            return self.glue_block(d)
        self.fail(f"directive {{{name}}} has no plain-Markdown form here")

    def details(self, summary_md: str, body: List[str], open_: bool = False) -> List[str]:
        """Folded content: ``<details>`` (Colab and any CommonMark renderer), or MyST's
        ``{dropdown}`` in the JupyterLab edition (jupyterlab-myst leaves the math of a
        ``<details>`` untypeset)."""
        if self.edition == "lab":
            inner = max([len(m) for m in re.findall(r"^\s*(:{3,})", "\n".join(body), re.M)] + [2])
            fence = ":" * (inner + 1)
            return [f"{fence}{{dropdown}} {summary_md}"] + ([":open:"] if open_ else []) + body + [fence]
        head = f"<details{' open' if open_ else ''}><summary>{plain_html_inline(summary_md)}</summary>"
        return [head, ""] + body + (["", "</details>"] if body else ["</details>"])

    def exercise(self, d: Directive) -> List[str]:
        label = d.options.get("label")
        ids = self.index.exercise_labels.get(self.docname, [])
        k = self.exercise_seen
        self.exercise_seen += 1
        if k >= len(ids):
            self.fail("more exercises here than in the built book: rebuild it")
        node_id = ids[k]
        if label and label != node_id:
            self.fail(f"exercise {label!r} is the built book's {node_id!r}: rebuild the book")
        number = self.index.fignumbers.get(self.docname, {}).get("exercise", {}).get(node_id)
        word = "Exercise"
        title_md = self.render_inline_source(d.arguments[0]) if d.arguments else ""
        shown = f"{word} {number}" if number and "nonumber" not in d.options else word
        heading = shown + (f" ({title_md})" if title_md else "")
        self.exercises[node_id] = {"number": number or "", "heading": heading}
        if "hidden" in d.options:
            return []
        level = min(self.heading_level + 1, 6)
        return join_blocks([["#" * level + " " + heading], self.render_source(d.body) if d.body.strip() else []])

    def solution_summary(self, exercise_label: str) -> str:
        if exercise_label not in self.exercises:
            if exercise_label in self.index.labels and self.index.labels[exercise_label][0] != self.docname:
                self.fail(f"a solution to {exercise_label!r}, an exercise of another page, is not supported")
            self.fail(f"a solution to {exercise_label!r} comes before that exercise (or it does not exist)")
        return "Solution to " + self.exercises[exercise_label]["heading"]

    def solution_block(self, d: Directive) -> List[str]:
        summary = self.solution_summary(d.arguments[0])
        if "hidden" in d.options:
            return []
        return self.details(summary, self.render_source(d.body))

    def figure(self, d: Directive) -> List[str]:
        src = d.arguments[0]
        alt = d.options.get("alt", "")
        img = "!" + link_md(escape_md(alt), self.image_url(src))
        if d.name == "image":
            return [img]
        label = d.options.get("name") or d.options.get("label")
        body = self.render_source(d.body) if d.body.strip() else []
        number = self.next_number("figure", label) if body else None
        if body and number:
            body[0] = f"*{escape_md(self.index.numfig_format.get('figure', 'Fig. %s') % number)}* " + body[0]
        return join_blocks([[img], body])

    def table_directive(self, d: Directive) -> List[str]:
        label = d.options.get("name") or d.options.get("label")
        title_md = self.render_inline_source(d.arguments[0]) if d.arguments else ""
        number = self.next_number("table", label) if title_md else None
        if d.name == "table":
            table = self.render_source(d.body)
        else:
            table = self.list_table(d)
        caption = []
        if title_md:
            caption = [(f"*{escape_md(self.index.numfig_format.get('table', 'Table %s') % number)}* " if number else "")
                       + title_md]
        return join_blocks([caption, table])

    def list_table(self, d: Directive) -> List[str]:
        tree = SyntaxTreeNode(self.md.parse(d.body, self.md_env))
        if len(tree.children) != 1 or tree.children[0].type != "bullet_list":
            self.fail("{list-table} must hold one bullet list of rows")
        rows = []
        for row in tree.children[0].children:
            if len(row.children) != 1 or row.children[0].type != "bullet_list":
                self.fail("{list-table}: each row must be a bullet list of cells")
            cells = []
            for cell in row.children[0].children:
                lines = self.blocks(cell.children, tight=True)
                if len(lines) > 1 and any(line.strip() == "" for line in lines):
                    self.fail("{list-table}: a cell with several paragraphs has no Markdown table form")
                cells.append(" ".join(lines).replace("|", "\\|").replace("\\\\|", "\\|"))
            rows.append(cells)
        header = int(d.options.get("header-rows", 0) or 0)
        width = max(len(r) for r in rows)
        rows = [r + [""] * (width - len(r)) for r in rows]
        head = rows[0] if header else [""] * width
        body = rows[1:] if header else rows
        return (["| " + " | ".join(head) + " |", "|" + "|".join(["---"] * width) + "|"]
                + ["| " + " | ".join(r) + " |" for r in body])

    # -- the notebook
    def export(self, nb: Any) -> Any:
        """The edition's notebook of ``nb`` (a copy; ``nb`` is not modified)."""
        nb = copy.deepcopy(nb)
        self.md_env = {}
        self.collect_glue(nb)
        cells = nb.cells
        trees = {i: SyntaxTreeNode(self.md.parse(c.source, self.md_env))
                 for i, c in enumerate(cells) if c.cell_type == "markdown"}
        out_cells = []
        open_solution: Optional[Dict[str, Any]] = None  # a gated solution spanning cells
        for i, cell in enumerate(cells):
            self.where = f"{self.docname}.ipynb, cell {i}"
            if cell.cell_type == "code":
                out_cells.append(self.code_cell(cell, in_solution=open_solution is not None))
                continue
            if cell.cell_type == "raw":
                out_cells.append(copy.deepcopy(cell))  # not shown on the page either; kept as it is
                continue
            segments: List[Dict[str, Any]] = []
            current = {"solution": open_solution, "continued": open_solution is not None, "blocks": []}
            for node in trees[i].children:
                name = self.gated_name(node)
                if name == "solution-start":
                    if open_solution is not None:
                        self.fail("a solution starts inside another solution")
                    segments.append(current)
                    d = parse_directive(name, self.fence_rest(node), node.content, self.classes)
                    open_solution = {"summary": self.solution_summary(d.arguments[0]),
                                     "hidden": "hidden" in d.options}
                    current = {"solution": open_solution, "continued": False, "blocks": []}
                elif name == "solution-end":
                    if open_solution is None:
                        self.fail("{solution-end} without a {solution-start}")
                    current["open_after"] = False
                    segments.append(current)
                    open_solution = None
                    current = {"solution": None, "continued": False, "blocks": []}
                else:
                    current["blocks"].append(self.block(node))
                    if node.type == "heading" and open_solution is None:
                        self.heading_level = int(node.tag[1])
            current["open_after"] = open_solution is not None
            segments.append(current)
            text_blocks = []
            for seg in segments:
                body = join_blocks(seg["blocks"])
                sol = seg["solution"]
                if sol is None:
                    text_blocks.append(body)
                    continue
                if sol["hidden"]:
                    continue
                if seg.get("open_after") and self.code_follows(cells, i):
                    body = join_blocks([body, [CODE_FOLLOWS]])
                if not body and seg["continued"]:
                    continue
                summary = sol["summary"] + (" (continued)" if seg["continued"] else "")
                text_blocks.append(self.details(summary, body))
            source = "\n".join(join_blocks(text_blocks)).strip("\n")
            if not source:
                continue  # nothing to show (a cell that only ends a solution)
            out_cells.append(self.markdown_cell(cell, source))
        if open_solution is not None:
            self.fail("a solution is never ended ({solution-end} is missing)")
        if self.footnotes:
            notes = ["**Notes**"]
            for fn in sorted(self.footnotes.values(), key=lambda f: f.number):
                body = fn.lines or [""]
                notes += ["", f"<sup>{fn.number}</sup> " + body[0], *body[1:]]
            out_cells.append(nbformat.v4.new_markdown_cell("\n".join(notes)))
            out_cells[-1]["id"] = "edition-notes"
        nb.cells = out_cells
        return nb

    @staticmethod
    def markdown_cell(cell: Any, source: str) -> Any:
        new = nbformat.v4.new_markdown_cell(source)
        if "id" in cell:
            new["id"] = cell["id"]
        meta = copy.deepcopy(dict(cell.metadata))
        jup = dict(meta.get("jupyter", {}))
        jup.pop("source_hidden", None)  # solutions are folded by <details> now
        meta.pop("jupyter", None)
        if jup:
            meta["jupyter"] = jup
        new.metadata = nbformat.from_dict(meta)
        if "attachments" in cell:
            new["attachments"] = copy.deepcopy(cell["attachments"])
        return new

    def code_follows(self, cells, i) -> bool:
        """Whether a code cell comes after markdown cell ``i`` before the solution ends."""
        for cell in cells[i + 1:]:
            if cell.cell_type == "code":
                return True
            if cell.cell_type == "markdown" and re.search(r"\{solution-end\}", cell.source):
                return False
        return False

    @staticmethod
    def gated_name(node: SyntaxTreeNode) -> Optional[str]:
        if node.type in ("fence", "colon_fence"):
            m = re.match(r"^\{(solution-start|solution-end)\}", node.info.strip())
            if m:
                return m.group(1)
        return None

    @staticmethod
    def fence_rest(node: SyntaxTreeNode) -> str:
        return re.sub(r"^\{[^}]+\}\s*", "", node.info.strip())

    def code_cell(self, cell: Any, in_solution: bool) -> Any:
        cell = copy.deepcopy(cell)
        tags = set(cell.metadata.get("tags", []))
        jup = dict(cell.metadata.get("jupyter", {}))
        hide_source = in_solution or bool(tags & {"remove-cell", "hide-cell", "remove-input", "hide-input"})
        hide_outputs = bool(tags & {"remove-cell", "hide-cell", "remove-output", "hide-output"})
        if hide_source:
            jup["source_hidden"] = True
            cell.metadata["cellView"] = "form"  # Colab: the code folded behind "Show code"
        if hide_outputs:
            jup["outputs_hidden"] = True
        if jup:
            cell.metadata["jupyter"] = jup
        return cell

    def collect_glue(self, nb: Any) -> None:
        for cell in nb.cells:
            for out in cell.get("outputs", []) if cell.cell_type == "code" else []:
                meta = out.get("metadata", {}).get("scrapbook")
                if meta:
                    prefix = len(meta.get("mime_prefix", ""))
                    self.glue[meta["name"]] = {k[prefix:]: v for k, v in out.get("data", {}).items()}


# --- the edition -----------------------------------------------------------------------------------
def banner(index: BookIndex, docname: str, edition: str) -> str:
    """The first cell: which book, chapter and edition this is, where the page is, what to run first."""
    title = index.config.get("title", "The book")
    number = index.chapter_numbers.get(docname)
    which = f", chapter {number}" if number else ""
    page = index.page_url(docname)
    if edition == "colab":
        what = ("This notebook is the book's **Colab edition** of the chapter: generated from its source, with "
                "the same code and outputs. ")
        first = ("**Run the first code cell first** (folded, below): it installs the book's modules and turns on "
                 "Colab's widget manager, so that the explorables work.")
    else:
        what = ("This notebook is the book's **JupyterLab edition** of the chapter: generated from its source, with "
                "the same code and outputs; a link to another chapter opens its notebook. ")
        first = ("The first code cell (folded, below) installs the book's modules where they are missing; here "
                 "they are installed already.")
    text = (f"> *{escape_md(title)}*{which}: **{escape_md(index.titles[docname])}**.  \n"
            f"> {what}The chapter as a web page, whose explorables work without a kernel: <{page}>.  \n"
            f"> {first}")
    return (LAB_FRONTMATTER if edition == "lab" else "") + text


def export_chapter(index: BookIndex, docname: str, edition: str = "colab",
                   outdir: Optional[Path] = None, md: Optional[MarkdownIt] = None) -> Any:
    path = source_path(index.root, docname)
    nb = nbformat.read(path, as_version=4)
    exporter = ChapterExporter(index, docname, edition, outdir=outdir, md=md)
    out = exporter.export(nb)
    first = nbformat.v4.new_markdown_cell(banner(index, docname, edition))
    first["id"] = "edition-banner"
    out.cells.insert(0, first)
    nbformat.validate(out)
    return out


def readme(index: BookIndex, edition: str) -> str:
    title = index.config.get("title", "The book")
    lines = [f"# {title}: the chapters as notebooks", "",
             f"Generated from the book's notebooks by `scripts/export_notebooks.py`; do not edit. "
             f"The book: <{index.base_url}>.", "",
             "| chapter | open | web page |", "| --- | --- | --- |"]
    for doc in index.chapters():
        number = index.chapter_numbers.get(doc)
        name = chapter_name(doc)
        shown = (f"{number}. " if number else "") + index.titles[doc]
        where = (f"[Colab]({colab_url(index.config, name)})" if edition == "colab"
                 else f"[{name}.ipynb]({name}.ipynb)")
        lines.append(f"| {escape_md(shown)} | {where} | [page]({index.page_url(doc)}) |")
    return "\n".join(lines) + "\n"


def export_book(outdir: Path, index: BookIndex, edition: str = "colab") -> List[Path]:
    """Write every chapter of the edition and its README into ``outdir``; returns the notebooks."""
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    HEADINGS.clear()
    md = myst_parser(index.myst_extensions)
    names = [chapter_name(d) for d in index.chapters()]
    if len(set(names)) != len(names):
        raise ExportError(f"two chapters have the same file name: {names}")
    if index.math_number_all:
        raise ExportError("math_number_all numbers every equation: the export numbers labelled ones only")
    # written as the chapters are (run_notebooks imports nbclient: here, not when Sphinx loads this module)
    from run_notebooks import write

    written = []
    for doc in index.chapters():
        nb = export_chapter(index, doc, edition, outdir=outdir.resolve(), md=md)
        path = outdir / f"{chapter_name(doc)}.ipynb"
        write(nb, path)
        written.append(path)
    (outdir / "README.md").write_text(readme(index, edition), encoding="utf-8")
    return written


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("outdir", type=Path, help="where to write <chapter>.ipynb and README.md")
    p.add_argument("--build", type=Path, default=None,
                   help="the book's build folder, with .doctrees/ (default: _build of the repository)")
    p.add_argument("--edition", choices=sorted(EDITIONS), default="colab",
                   help="colab (the default): plain CommonMark, chapters linked to the published pages; lab: for "
                        "JupyterLab with jupyterlab-myst (Binder), chapters linked to the edition's other notebooks, "
                        "solutions folded in MyST dropdowns")
    p.add_argument("--base-url", default="", help="the published book's URL (default: html.baseurl of "
                                                  "_config.yml, else the GitHub Pages site of repository.url)")
    args = p.parse_args(argv)
    try:
        index = BookIndex.from_build(ROOT, args.build)
        if args.base_url:
            index.base_url = args.base_url if args.base_url.endswith("/") else args.base_url + "/"
        written = export_book(args.outdir, index, args.edition)
    except ExportError as e:
        print(f"export_notebooks: {e}", file=sys.stderr)
        return 1
    print(f"wrote {len(written)} chapters to {args.outdir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
