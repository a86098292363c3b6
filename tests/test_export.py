"""The plain-notebook editions of the chapters (scripts/export_notebooks.py): the Colab edition
(plain CommonMark + ``$…$``, links to the published pages) and the JupyterLab edition (Binder).

- Fast: the renderer on a small hand-made book: CommonMark comes back as it was, each MyST role
  and directive becomes what the page shows (numbers written here by hand, as the book numbers
  them), solutions are folded, hidden cells are folded, unknown syntax is an error.
- ``book`` (needs the built book): every chapter exported from the build; rendered with a plain
  CommonMark renderer (markdown-it-py without MyST plugins) it shows no role or directive syntax, no
  bare citation key and no unfolded solution; its code cells are the chapter's; its exercise
  numbers, solution titles and citation texts are the page's; its links reach published pages.
  A small book with every construct the exporter knows (labelled equations, figures, numbered
  references, footnotes, glue, ...) is built and its export compared with its pages.
"""
from __future__ import annotations

import base64
import copy
import functools
import html
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
import yaml
from markdown_it import MarkdownIt
from mdit_py_plugins.dollarmath import dollarmath_plugin

import export_notebooks as E
from browser_support import STRAIGHT_QUOTES, html_text, solution_titles

ROOT = Path(__file__).resolve().parents[1]

CONFIG = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))
BASE = E.pages_base_url(CONFIG)


# --- a small hand-made book (sources only; its numbers are written here as Sphinx gives them) ----
def write_nb(path: Path, cells) -> None:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = cells
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)


@pytest.fixture
def small(tmp_path):
    shutil.copy(ROOT / "_config.yml", tmp_path)
    (tmp_path / "_toc.yml").write_text("format: jb-book\nroot: book/intro\nparts:\n  - numbered: true\n"
                                       "    chapters:\n      - file: book/01_a\n      - file: book/02_b\n"
                                       "  - chapters:\n      - file: book/bibliography\n")
    (tmp_path / "book").mkdir()
    (tmp_path / "book" / "intro.md").write_text("# The intro\n")
    (tmp_path / "book" / "bibliography.md").write_text("# Bibliography\n")
    (tmp_path / "book" / "fig.png").write_bytes(b"png")
    write_nb(tmp_path / "book" / "01_a.ipynb", [nbformat.v4.new_markdown_cell(
        "# Chapter $A$\n\n(sec-a)=\n## The *rule* for $x_{ij}$\n")])
    write_nb(tmp_path / "book" / "02_b.ipynb", [nbformat.v4.new_markdown_cell("# Chapter B")])
    return tmp_path


@functools.lru_cache(maxsize=1)
def bibliography():
    """The book's references.bib, parsed once per run."""
    import pybtex.database

    return pybtex.database.parse_file(ROOT / "references.bib")


@functools.lru_cache(maxsize=1)
def sample_citations() -> dict:
    """Three of the book's references, formatted once per run (pybtex takes ~50 ms)."""
    import pybtex.plugin

    bib = bibliography()
    formatted = {e.key: e for e in pybtex.plugin.find_plugin("pybtex.style.formatting", "alpha")()
                 .format_entries(bib.entries.values())}
    return {key: E.Citation("book/bibliography", f"id{n}", bib.entries[key], formatted[key], f"Full {key}.")
            for n, key in enumerate(["seo2018maxpool", "so2020simplecnn", "paszke2019pytorch"], 1)}


def small_index(root: Path):
    return E.BookIndex(
        root=root, config=CONFIG,
        docnames=["book/intro", "book/01_a", "book/02_b", "book/bibliography"],
        titles={"book/intro": "The intro", "book/01_a": "Chapter A", "book/02_b": "Chapter B",
                "book/bibliography": "Bibliography"},
        chapter_numbers={"book/01_a": "1", "book/02_b": "2"},
        labels={"sec-a": ("book/01_a", "sec-a", "The rule for x_{ij}"),
                "ex-b-1": ("book/02_b", "ex-b-1", "Exercise"), "ex-b-2": ("book/02_b", "ex-b-2", "Exercise"),
                "fig-b": ("book/02_b", "fig-b", "A map"), "ex-a-1": ("book/01_a", "ex-a-1", "Exercise")},
        fignumbers={"book/02_b": {"exercise": {"ex-b-1": "2.1", "ex-b-2": "2.2"}, "figure": {"fig-b": "2.1"},
                                  "displaymath": {"equation-eq-b": "2.1"}},
                    "book/01_a": {"exercise": {"ex-a-1": "1.1"}}},
        secnumbers={"book/01_a": {"": "1", "#sec-a": "1.1"}, "book/02_b": {"": "2"}},
        exercise_labels={"book/02_b": ["ex-b-1", "ex-b-2"], "book/01_a": ["ex-a-1"]},
        equations={"eq-b": ("book/02_b", "equation-eq-b", "2.1")},
        citations=sample_citations(),
        numfig_format={"section": "Section %s", "figure": "Fig. %s", "table": "Table %s",
                       "code-block": "Listing %s", "exercise": "Exercise %s"},
        math_macros={"R": "\\mathbb{R}", "norm": ["\\lVert #1 \\rVert", 1]},
        myst_extensions=["amsmath", "colon_fence", "deflist", "dollarmath"])


def exporter(root, doc="book/02_b", edition="colab"):
    return E.ChapterExporter(small_index(root), doc, edition, outdir=root / "edition")


def render(root, text, doc="book/02_b", edition="colab", ex=None) -> str:
    ex = ex or exporter(root, doc, edition)
    return "\n".join(ex.render_source(text))


def commonmark_html(text: str) -> str:
    md = MarkdownIt("commonmark").enable("table").use(dollarmath_plugin)
    return md.render(text)


# --- fast: Markdown without MyST comes back as it was -------------------------------------------
COMMONMARK = r"""# Title with *emphasis* and `code`

A paragraph with \*escaped stars\*, an entity &amp; a [link](https://example.org "its title"),
an autolink <https://example.org>, <span class="x">inline HTML</span>, $x_{ij}^2$ and a hard\
break; `` a `tick` ``; ~~not strikethrough in CommonMark~~.

1. first, tight
2. second
   - nested *bullet*
   - another

3) loose ordered, starting at 3
4) with a code block inside:

   ```python
   x = "```"
   ```

* star bullet

> A quote with a list:
> - one
> - two

    indented code

| left | centre | right |
|:-----|:------:|------:|
| a \| b | `c` | $d$ |

<div class="block">
raw HTML block
</div>

---

$$
\frac{\partial L}{\partial x} = 1
$$

![an image](https://example.org/a.png)
"""


def test_commonmark_comes_back_as_it_was(small):
    out = render(small, COMMONMARK)
    assert commonmark_html(out) == commonmark_html(COMMONMARK)


PLAIN_TOKENS = {"paragraph_open", "paragraph_close", "inline", "text", "text_special", "softbreak", "hardbreak",
                "heading_open", "heading_close", "em_open", "em_close", "strong_open", "strong_close", "code_inline",
                "bullet_list_open", "bullet_list_close", "ordered_list_open", "ordered_list_close", "list_item_open",
                "list_item_close", "blockquote_open", "blockquote_close", "fence", "code_block", "hr", "html_block",
                "html_inline", "math_inline", "math_block", "table_open", "table_close", "thead_open", "thead_close",
                "tbody_open", "tbody_close", "tr_open", "tr_close", "th_open", "th_close", "td_open", "td_close",
                "link_open", "link_close"}


def is_plain(md, source: str) -> bool:
    """Whether a cell holds only CommonMark (+ tables and $ math) that the export leaves as it is:
    no role, directive, target, footnote, definition list, labelled equation or link to a page."""
    for tok in md.parse(source, {}):
        for t in [tok, *(tok.children or [])]:
            if t.type not in PLAIN_TOKENS or (t.type == "fence" and t.info.strip().startswith("{")):
                return False
            if t.type == "link_open" and not re.match(r"^[a-z]+:", str(t.attrs.get("href", ""))):
                return False
    return True


def test_chapter_markdown_without_myst_comes_back_as_it_was():
    """Every Markdown cell of the book without MyST syntax renders to the same HTML after export."""
    index = small_index(ROOT)
    md = E.myst_parser(index.myst_extensions)
    checked = 0
    for path in sorted((ROOT / "book").glob("*.ipynb")):
        ex = E.ChapterExporter(index, "book/02_b", md=md)
        for cell in nbformat.read(path, as_version=4).cells:
            if cell.cell_type != "markdown" or not is_plain(md, cell.source):
                continue
            out = "\n".join(ex.render_source(cell.source))
            expected = re.sub(r"\\R(?![A-Za-z])", lambda m: "\\mathbb{R}", cell.source)  # the book's macro, written out
            assert commonmark_html(out) == commonmark_html(expected), f"{path.name}: {cell.source[:200]}"
            checked += 1
    assert checked > 50


# --- fast: roles -----------------------------------------------------------------------------
def test_doc_and_ref_roles_link_the_published_pages_with_the_pages_text(small):
    page = BASE + "book/01_a.html"
    assert render(small, "see {doc}`01_a`") == f"see [Chapter $A$]({page})"
    assert render(small, "see {doc}`the first one <01_a>`") == f"see [the first one]({page})"
    assert render(small, "{doc}`bibliography`") == f"[Bibliography]({BASE}book/bibliography.html)"
    assert render(small, "{ref}`sec-a`") == f"[The *rule* for $x_{{ij}}$]({page}#sec-a)"
    assert render(small, "{ref}`this rule <sec-a>`") == f"[this rule]({page}#sec-a)"
    # an exercise reads as the page's numbered reference (sphinx-exercise turns {ref} into numref)
    assert render(small, "see {ref}`ex-b-2`") == f"see [Exercise 2.2]({BASE}book/02_b.html#ex-b-2)"
    assert render(small, "{numref}`fig-b`") == f"[Fig. 2.1]({BASE}book/02_b.html#fig-b)"
    assert render(small, "{numref}`Figure %s <fig-b>`") == f"[Figure 2.1]({BASE}book/02_b.html#fig-b)"
    assert render(small, "{numref}`ex-a-1`") == f"[Exercise 1.1]({page}#ex-a-1)"
    assert render(small, "{eq}`eq-b`") == f"[(2.1)]({BASE}book/02_b.html#equation-eq-b)"
    assert render(small, "{math}`\\R^n`") == "$\\mathbb{R}^n$"
    assert render(small, "H{sub}`2`O, x{sup}`2`") == "H<sub>2</sub>O, x<sup>2</sup>"
    assert render(small, "[the rule](01_a.ipynb#sec-a) and [](01_a.ipynb)") == \
        f"[the rule]({page}#sec-a) and [Chapter $A$]({page})"


def test_lab_edition_links_chapters_to_their_notebooks(small):
    assert render(small, "{doc}`01_a`", edition="lab") == "[Chapter $A$](01_a.ipynb)"
    assert render(small, "{ref}`sec-a`", edition="lab") == "[The *rule* for $x_{ij}$](01_a.ipynb)"
    # pages that are not chapters (and places in this chapter) stay on the web
    assert render(small, "{doc}`bibliography`", edition="lab") == f"[Bibliography]({BASE}book/bibliography.html)"
    assert render(small, "{ref}`ex-b-1`", edition="lab") == f"[Exercise 2.1]({BASE}book/02_b.html#ex-b-1)"


def test_citations_read_author_year_linked_to_the_bibliography(small):
    bib = BASE + "book/bibliography.html"
    seo = f'[Seo, 2018]({bib}#id1 "Full seo2018maxpool.")'
    assert render(small, "{cite}`seo2018maxpool`") == f"\\[{seo}\\]"
    assert render(small, "{cite:p}`seo2018maxpool`") == f"\\[{seo}\\]"
    assert render(small, "{cite:t}`seo2018maxpool`") == f'Seo \\[[2018]({bib}#id1 "Full seo2018maxpool.")\\]'
    two = render(small, "{cite}`seo2018maxpool,paszke2019pytorch`")
    assert two == f'\\[{seo}, [Paszke and others, 2019]({bib}#id3 "Full paszke2019pytorch.")\\]'
    assert render(small, "{cite:p}`{see}seo2018maxpool{p. 3}`") == f"\\[see {seo}, p. 3\\]"


# --- fast: math ---------------------------------------------------------------------------------
def test_labelled_equations_get_the_books_numbers(small):
    assert render(small, "$$\nx = 1\n$$ (eq-b)") == "$$\nx = 1 \\tag{2.1}\n$$"
    assert render(small, "```{math}\n:label: eq-b\n\na = b\n```") == "$$\na = b \\tag{2.1}\n$$"
    # unlabelled: no number (the page has none either)
    assert render(small, "$$\nx = 1\n$$") == "$$\nx = 1\n$$"


def test_equations_are_wrapped_as_sphinx_wraps_them_and_macros_expanded(small):
    # line breaks outside an environment: aligned (Sphinx: split); parts: one aligned block
    assert render(small, "$$\na &= b \\\\\nc &= d\n$$") == \
        "$$\n\\begin{aligned}\na &= b \\\\\nc &= d\n\\end{aligned}\n$$"
    assert render(small, "$$\na = b\n\nc = d\n$$") == "$$\n\\begin{aligned}\na = b \\\\\nc = d\n\\end{aligned}\n$$"
    # inside an environment: unchanged
    cases = "$$\n|x| = \\begin{cases} x \\\\ -x \\end{cases}\n$$"
    assert render(small, cases) == cases
    assert render(small, "\\begin{align}\na &= b \\label{x} \\\\\nc &= d\n\\end{align}") == \
        "$$\n\\begin{aligned}\na &= b  \\\\\nc &= d\n\\end{aligned}\n$$"
    assert render(small, "$x \\in \\R$, $\\norm{v}$, $\\class{cnn-max}{9} + 1$") == \
        "$x \\in \\mathbb{R}$, ${\\lVert v \\rVert}$, $\\boldsymbol{9} + 1$"
    assert render(small, "$\\Rightarrow$") == "$\\Rightarrow$", "a macro name inside a longer name is left alone"


# --- fast: exercises, solutions, admonitions, figures, footnotes ---------------------------------
def test_exercise_is_a_numbered_heading_and_its_solution_folded(small):
    ex = exporter(small)
    ex.heading_level = 2
    text = ("```{exercise} The *mask*\n:label: ex-b-1\n\nDo $x$.\n```\n\n"
            "```{solution} ex-b-1\n:class: dropdown\n\nIt is $y$.\n```")
    assert render(small, text, ex=ex) == (
        "### Exercise 2.1 (The *mask*)\n\nDo $x$.\n\n"
        "<details><summary>Solution to Exercise 2.1 (The <em>mask</em>)</summary>\n\nIt is $y$.\n\n</details>")


def test_admonitions_figures_footnotes_and_definitions(small):
    assert render(small, "```{note}\nMind the *gap*.\n```") == "> **Note**\n>\n> Mind the *gap*."
    assert render(small, ":::{admonition} Why $x$?\n:class: dropdown\nBecause.\n:::") == \
        "<details><summary>Why $x$?</summary>\n\nBecause.\n\n</details>"
    owner, repo = E.repo_parts(CONFIG["repository"]["url"])
    raw = f"https://raw.githubusercontent.com/{owner}/{repo}/main/book/fig.png"
    assert render(small, "```{figure} fig.png\n:name: fig-b\n:alt: a map\n\nA *map*.\n```") == \
        f"![a map]({raw})\n\n*Fig. 2.1* A *map*."
    ex = exporter(small)
    assert render(small, "A claim[^n] and another[^m].\n\n[^m]: Second.\n[^n]: First, with $x$.", ex=ex) == \
        "A claim<sup>1</sup> and another<sup>2</sup>."
    assert {f.number: f.lines for f in ex.footnotes.values()} == {1: ["First, with $x$."], 2: ["Second."]}
    assert render(small, "Term\n: Its *definition*.") == "- **Term**\n\n  Its *definition*."
    assert render(small, "(lbl)=\n% a comment\n+++\nText") == "Text"


def gated_notebook():
    md, code = nbformat.v4.new_markdown_cell, nbformat.v4.new_code_cell
    cells = [
        code("print('setup')", metadata={"tags": ["remove-cell"]}),
        md("## Exercises\n\n```{exercise} First\n:label: ex-b-1\nDo it.\n```"),
        code("def f(): pass", metadata={"tags": ["hide-input"]}),
        md("```{solution-start} ex-b-1\n:class: dropdown\n```\n\nWe loop.",
           metadata={"jupyter": {"source_hidden": True}}),
        code("f()", metadata={"jupyter": {"source_hidden": True}}),
        md("And check $x$."),
        code("assert True"),
        md("```{solution-end}\n```"),
        md("```{exercise}\nUnlabelled.\n```"),
        md("```{solution-start} ex-b-1\n```\n```{solution-end}\n```\n\nAfter the solution."),
    ]
    for n, c in enumerate(cells):
        c["id"] = f"c{n}"
        if c.cell_type == "code":
            c.outputs = [nbformat.v4.new_output("stream", text=f"out {n}\n")]
            c.execution_count = n
    nb = nbformat.v4.new_notebook()
    nb.cells = cells
    return nb


def test_gated_solution_spanning_cells_is_folded_with_its_code(small):
    nb = gated_notebook()
    out = exporter(small).export(nb)
    src = {c["id"]: c for c in nb.cells}
    got = [(c.cell_type, c.source, c.metadata.get("cellView"), c.metadata.get("jupyter", {})) for c in out.cells]
    fold = E.CODE_FOLLOWS
    summary = "<details><summary>Solution to Exercise 2.1 (First)</summary>"
    assert got == [
        ("code", "print('setup')", "form", {"source_hidden": True, "outputs_hidden": True}),
        ("markdown", "## Exercises\n\n### Exercise 2.1 (First)\n\nDo it.", None, {}),
        ("code", "def f(): pass", "form", {"source_hidden": True}),
        ("markdown", f"{summary}\n\nWe loop.\n\n{fold}\n\n</details>", None, {}),
        ("code", "f()", "form", {"source_hidden": True}),
        ("markdown", "<details><summary>Solution to Exercise 2.1 (First) (continued)</summary>\n\n"
                     f"And check $x$.\n\n{fold}\n\n</details>", None, {}),
        ("code", "assert True", "form", {"source_hidden": True}),
        ("markdown", "### Exercise 2.2\n\nUnlabelled.", None, {}),
        ("markdown", f"{summary}\n\n</details>\n\nAfter the solution.", None, {}),
    ]
    for c in out.cells:  # code cells: the same source, outputs and execution count
        if c.cell_type == "code":
            assert (c.source, c.outputs, c.execution_count) == \
                   (src[c["id"]].source, src[c["id"]].outputs, src[c["id"]].execution_count)
    assert nb.cells[3].metadata == {"jupyter": {"source_hidden": True}}, "the source notebook is not modified"


def test_lab_edition_folds_solutions_in_myst_dropdowns(small):
    out = exporter(small, edition="lab").export(gated_notebook())
    assert out.cells[3].source == f":::{{dropdown}} Solution to Exercise 2.1 (First)\nWe loop.\n\n{E.CODE_FOLLOWS}\n:::"


# --- fast: what is not known is an error, never written raw ------------------------------------
@pytest.mark.parametrize("text, message", [
    ("{foo}`x`", "unknown role {foo}"),
    ("```{foo}\nx\n```", "unknown directive {foo}"),
    ("```{eval-rst}\n.. note:: x\n```", "unknown directive {eval-rst}"),
    ("{cite}`no_such_key`", "no_such_key"),
    ("{ref}`no-such-label`", "no-such-label"),
    ("{doc}`no_such_page`", "no_such_page"),
    ("{eq}`no-such-eq`", "no-such-eq"),
    ("$$\nx\n$$ (no-such-eq)", "no-such-eq"),
    ("```{note}\n:nosuchoption: 1\nx\n```", "nosuchoption"),
    ("```{solution} ex-b-1\nx\n```", "comes before that exercise"),
])
def test_unknown_syntax_is_an_error(small, text, message):
    with pytest.raises(E.ExportError, match=re.escape(message)):
        render(small, text)


def test_a_solution_that_never_ends_is_an_error(small):
    nb = gated_notebook()
    nb.cells = [c for c in nb.cells if "solution-end" not in c.source]
    with pytest.raises(E.ExportError, match="never ended"):
        exporter(small).export(nb)


# --- the built book ---------------------------------------------------------------------------
def book_index(book_html: Path):
    return E.BookIndex.from_build(ROOT, book_html.parent)


@pytest.fixture(scope="module")
def editions(book_html, tmp_path_factory):
    index = book_index(book_html)
    out = {}
    for edition in E.EDITIONS:
        folder = tmp_path_factory.mktemp(edition)
        E.export_book(folder, index, edition)
        out[edition] = folder
    return out


def toc_chapters():
    return [d for d in E.toc_docnames(ROOT) if (ROOT / f"{d}.ipynb").exists()]


CHAPTERS = toc_chapters()


def exported(editions, chapter, edition="colab"):
    return nbformat.read(editions[edition] / f"{E.chapter_name(chapter)}.ipynb", as_version=4)


def rendered_markdown(nb) -> list[str]:
    """Each Markdown cell as a plain CommonMark renderer (no MyST, no math plugin) shows it."""
    md = MarkdownIt("commonmark")
    return [md.render(c.source) for c in nb.cells if c.cell_type == "markdown"]


def visible_text(rendered: str) -> str:
    """The text a reader sees, without code (where MyST may be taught) and without link targets."""
    text = re.sub(r"<code>.*?</code>", "", rendered, flags=re.S)
    text = re.sub(r"<[^>]+>", " ", text)
    return html.unescape(text)


@pytest.mark.book
def test_every_chapter_is_exported_in_both_editions(editions):
    for edition, folder in editions.items():
        assert sorted(p.stem for p in folder.glob("*.ipynb")) == sorted(E.chapter_name(c) for c in CHAPTERS)
        readme = (folder / "README.md").read_text(encoding="utf-8")
        for c in CHAPTERS:
            assert E.chapter_name(c) in readme


@pytest.mark.book
@pytest.mark.parametrize("chapter", CHAPTERS)
def test_code_cells_are_the_chapters(editions, chapter):
    source = nbformat.read(ROOT / f"{chapter}.ipynb", as_version=4)
    code = [c for c in source.cells if c.cell_type == "code"]
    assert code[0] is source.cells[0], "the setup cell comes first in the chapter"
    for edition in E.EDITIONS:
        nb = exported(editions, chapter, edition)
        got = [c for c in nb.cells if c.cell_type == "code"]
        assert [(c.source, c.outputs, c.execution_count) for c in got] == \
               [(c.source, c.outputs, c.execution_count) for c in code]
        assert nb.cells[0].cell_type == "markdown" and nb.cells[1].source == code[0].source, \
            "a note on the edition, then the setup cell"
        assert nb.metadata.get("widgets") == source.metadata.get("widgets"), "the explorables' saved state"
        nbformat.validate(nb)


@pytest.mark.book
@pytest.mark.parametrize("chapter", CHAPTERS)
def test_colab_edition_shows_no_myst_to_a_commonmark_renderer(editions, chapter):
    keys = list(bibliography().entries.keys())
    nb = exported(editions, chapter)
    for rendered in rendered_markdown(nb):
        text = visible_text(rendered)
        # a role reads {name} followed by its content as code
        role = re.search(r"\{[a-z][\w:-]*\}(`|<code>)", rendered)
        assert not role, f"a role is left: {rendered[max(0, role.start() - 60):role.end() + 40]!r}"
        assert not re.search(r'class="language-\{', rendered), "a directive is left (shown as a code block)"
        assert not re.search(r"^\s*(`{3,}|:{3,})\s*\{", text, re.M), "a directive fence is left"
        assert not re.search(r"^\s*\([\w-]+\)=\s*$", text, re.M), "a (label)= target is left"
        assert not re.search(r"\$\$\s*\([\w-]+\)", text), "an equation label is left as text"
        shown = html.unescape(re.sub(r"<[^>]+>", " ", rendered))  # with code: a key is not code either
        for key in keys:
            assert not re.search(rf"(?<![\w/#.-]){re.escape(key)}(?![\w-])", shown), f"citation key {key} shown bare"
        assert "Citation Not Found" not in text


def solution_spans(nb) -> list[list[int]]:
    """The cells of each solution of a source notebook ({solution} blocks, solution-start … -end)."""
    spans, current = [], None
    for i, c in enumerate(nb.cells):
        if c.cell_type != "markdown":
            if current is not None:
                current.append(i)
            continue
        for line in c.source.splitlines():
            if re.match(r"^(`{3,}|:{3,})\{solution\}", line):
                spans.append([i])
            elif re.match(r"^(`{3,}|:{3,})\{solution-start\}", line):
                current = [i]
            elif re.match(r"^(`{3,}|:{3,})\{solution-end\}", line):
                if i not in current:
                    current.append(i)
                spans.append(current)
                current = None
        if current is not None and current[-1] != i:
            current.append(i)
    return spans


@pytest.mark.book
@pytest.mark.parametrize("chapter", CHAPTERS)
def test_solutions_are_folded_with_the_pages_titles(editions, chapter, book_html):
    source = nbformat.read(ROOT / f"{chapter}.ipynb", as_version=4)
    page = (book_html / f"{chapter}.html").read_text(encoding="utf-8")
    page_titles = solution_titles(page)
    nb = exported(editions, chapter)
    md = [c.source for c in nb.cells if c.cell_type == "markdown"]
    summaries = [html_text(s) for s in re.findall(r"<details><summary>(.*?)</summary>", "\n".join(md))
                 if not s.endswith("(continued)")]
    spans = solution_spans(source)
    assert len(summaries) == len(spans) == len(page_titles) > 0
    # the same titles, up to typography (the page curls quotes)
    assert [s.translate(STRAIGHT_QUOTES) for s in summaries] == [t.translate(STRAIGHT_QUOTES) for t in page_titles]
    # nothing of a solution outside a fold: its prose only inside <details>, its code cells folded
    outside = "\n".join(re.sub(r"<details>.*?</details>", "", s, flags=re.S) for s in md)
    by_id = {c["id"]: c for c in nb.cells}
    for span in spans:
        for i in span:
            cell = source.cells[i]
            if cell.cell_type == "code":
                assert by_id[cell["id"]].metadata.get("cellView") == "form"
                assert by_id[cell["id"]].metadata["jupyter"]["source_hidden"] is True
                continue
            body = re.sub(r"(?s)^.*?\{solution(-start)?\}[^\n]*\n(:[\w-]+:.*\n)*(```|:::)?", "", cell.source)
            for line in body.splitlines():
                words = line.strip()
                if len(words) > 30 and not re.search(r"[{}`$\\*_\[\]]", words):
                    assert words not in outside, f"solution text outside a fold: {words!r}"


@pytest.mark.book
@pytest.mark.parametrize("chapter", CHAPTERS)
def test_exercise_numbers_are_the_pages(editions, chapter, book_html):
    page = (book_html / f"{chapter}.html").read_text(encoding="utf-8")
    on_page = [n.strip() for n in re.findall(r'<span class="caption-number">(Exercise [\d.]+) </span>', page)]
    nb = exported(editions, chapter)
    headings = re.findall(r"^#{2,6} (Exercise [\d.]+)\b", "\n".join(c.source for c in nb.cells
                                                                    if c.cell_type == "markdown"), re.M)
    assert headings == on_page and on_page


LINK = re.compile(r'\[((?:[^\[\]]|\\\[|\\\])*)\]\((\S+?)(?: "((?:[^"\\]|\\.)*)")?\)')


@pytest.mark.book
@pytest.mark.parametrize("chapter", CHAPTERS)
def test_citations_and_links_are_the_pages(editions, chapter, book_html):
    page = (book_html / f"{chapter}.html").read_text(encoding="utf-8")
    citation = r'<a class="reference internal" href="bibliography\.html#(id\d+)"[^>]*>(.*?)</a>'
    cited = {(m.group(1), html.unescape(re.sub(r"<[^>]+>", "", m.group(2))))
             for m in re.finditer(citation, page)}
    nb = exported(editions, chapter)
    text = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    ours, anchors_needed = set(), []
    for m in LINK.finditer(text):
        shown, url = m.group(1), m.group(2)
        if url.startswith(BASE):
            path, _, anchor = url[len(BASE):].partition("#")
            target = book_html / path
            assert target.exists(), f"{url} is not a page of the book"
            if anchor:
                anchors_needed.append((target, anchor))
            if path == "book/bibliography.html":
                ours.add((anchor, re.sub(r"\\(.)", r"\1", shown.replace("*", ""))))  # *et al.* is <em> on the page
    assert ours == cited, "the citations must read as on the page"
    for target, anchor in anchors_needed:
        assert f'id="{anchor}"' in target.read_text(encoding="utf-8"), f"no #{anchor} in {target.name}"


@pytest.mark.book
def test_lab_edition_links_chapters_to_notebooks_that_exist(editions):
    folder = editions["lab"]
    linked = 0
    for path in folder.glob("*.ipynb"):
        nb = nbformat.read(path, as_version=4)
        assert nb.cells[0].source.startswith(E.LAB_FRONTMATTER), "jupyterlab-myst must not number every equation"
        text = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
        assert "<details>" not in text, "jupyterlab-myst does not typeset the math of a <details>"
        for m in LINK.finditer(text):
            url = m.group(2)
            if not re.match(r"^[a-z]+:", url):
                assert (folder / url.split("#")[0]).exists(), f"{path.name}: {url} is not in the edition"
                linked += 1
    assert linked > 20


@pytest.mark.book
def test_export_refuses_a_build_older_than_a_chapter(book_html, tmp_path):
    root = tmp_path / "repo"
    root.mkdir()
    for name in ("_config.yml", "_toc.yml"):
        shutil.copy(ROOT / name, root / name)
    shutil.copytree(ROOT / "book", root / "book", ignore=shutil.ignore_patterns("_build", ".ipynb_checkpoints"))
    build = tmp_path / "build"
    shutil.copytree(book_html.parent / ".doctrees", build / ".doctrees")
    chapter = root / f"{CHAPTERS[0]}.ipynb"
    chapter.touch()
    with pytest.raises(E.ExportError, match="changed after the book was built"):
        E.BookIndex.from_build(root, build)


# --- a small book with every construct the exporter knows, built, exported, compared -----------
MINI_CH1 = [
    ("code", "print('setup')", {"tags": ["remove-cell"]}),
    ("markdown", r"""# First chapter

Intro {cite:t}`seo2018maxpool` and {cite}`so2020simplecnn,reboud_maxpool`; see {doc}`02_two` and {ref}`sec-rule`.

(sec-rule)=
## The rule for $x_{ij}$

$$
y = \max(a, b)
$$ (eq-max)

By {eq}`eq-max` and {eq}`eq-sum`, with $\R^n$ and $\class{cnn-max}{9}$.

```{math}
:label: eq-sum
s = \sum_i x_i
```

```{figure} fig.png
:name: fig-map
:alt: a map

A *map* of $x$.
```

{numref}`fig-map` shows it; {numref}`Figure %s <fig-map>` too.

A claim[^note].

[^note]: The note.

```{note}
A note with $x$.
```

Term
: Definition.
""", {}),
    ("code", "from myst_nb import glue\nglue('answer', 0.12345)", {}),
    ("markdown", "The answer is {glue:text}`answer:.2f`.", {}),
    ("markdown", "## Exercises\n\n```{exercise} First\n:label: ex-1\nDo it.\n```", {}),
    ("markdown", "```{solution-start} ex-1\n:class: dropdown\n```\nProse of the first solution.", {}),
    ("code", "x = 1", {}),
    ("markdown", "```{solution-end}\n```", {}),
    ("markdown", "```{exercise}\nUnlabelled, numbered.\n```\n\n```{exercise} Not numbered\n:label: ex-nonum\n"
                 ":nonumber:\nFree.\n```\n\n```{solution} ex-nonum\nAnswer.\n```", {}),
]
MINI_CH2 = [
    ("markdown", "# Second chapter\n\nBack to {ref}`sec-rule`, {numref}`ex-1`, {eq}`eq-max`, {ref}`ex-1`.\n\n"
                 "$$\na = 1\n$$ (eq-two)\n\n```{exercise-start} Gated\n:label: ex-2-1\n```\nText of the gated "
                 "exercise.", {}),
    ("code", "y = 2", {}),
    ("markdown", "```{exercise-end}\n```\n\nSee {eq}`eq-two`.", {}),
]


def mini_notebook(cells):
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    for kind, source, meta in cells:
        cell = (nbformat.v4.new_code_cell if kind == "code" else nbformat.v4.new_markdown_cell)(source, metadata=meta)
        if kind == "code":
            cell.execution_count = 1
            if "glue(" in source:
                cell.outputs = [nbformat.v4.new_output(
                    "display_data", data={"application/papermill.record/text/plain": "0.12345"},
                    metadata={"scrapbook": {"name": "answer", "mime_prefix": "application/papermill.record/"}})]
        nb.cells.append(cell)
    return nb


@pytest.fixture(scope="module")
def mini(tmp_path_factory):
    root = tmp_path_factory.mktemp("mini")
    config = copy.deepcopy(CONFIG)
    config["title"] = "A small book"
    config["sphinx"].pop("local_extensions", None)  # the site's extensions, and the style they register
    config["sphinx"]["config"].pop("bibtex_default_style", None)
    (root / "_config.yml").write_text(yaml.safe_dump(config))
    (root / "_toc.yml").write_text("format: jb-book\nroot: book/intro\nparts:\n  - numbered: true\n    chapters:\n"
                                   "      - file: book/01_one\n      - file: book/02_two\n  - chapters:\n"
                                   "      - file: book/bibliography\n")
    shutil.copy(ROOT / "references.bib", root)
    book = root / "book"
    book.mkdir()
    (book / "intro.md").write_text("# A small book\n")
    (book / "bibliography.md").write_text("# Bibliography\n\n```{bibliography}\n:all:\n```\n")
    (book / "fig.png").write_bytes(base64.b64decode(  # one white pixel
        "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGP4//8/AAX+Av4N70a4AAAAAElFTkSuQmCC"))
    nbformat.write(mini_notebook(MINI_CH1), book / "01_one.ipynb")
    nbformat.write(mini_notebook(MINI_CH2), book / "02_two.ipynb")
    jb = Path(sys.executable).with_name("jupyter-book")
    res = subprocess.run([str(jb) if jb.exists() else "jupyter-book", "build", str(root), "-n", "--keep-going"],
                         capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    index = E.BookIndex.from_build(root, root / "_build")
    out = root / "edition"
    E.export_book(out, index, "colab")
    pages = {d: (root / "_build" / "html" / f"book/{d}.html").read_text(encoding="utf-8") for d in ("01_one", "02_two")}
    md = {d: "\n\n".join(c.source for c in nbformat.read(out / f"{d}.ipynb", as_version=4).cells
                        if c.cell_type == "markdown") for d in ("01_one", "02_two")}
    return {"pages": pages, "md": md, "root": root, "out": out}


@pytest.mark.book
def test_small_book_equations_are_numbered_as_on_its_pages(mini):
    for doc, label in [("01_one", "eq-max"), ("01_one", "eq-sum"), ("02_two", "eq-two")]:
        number = re.search(rf'<span class="eqno">\(([\d.]+)\)<a class="headerlink" href="#equation-{label}"',
                           mini["pages"][doc]).group(1)
        assert f"\\tag{{{number}}}" in mini["md"][doc], (label, number)
    # {eq} references read as on the page, in both chapters
    for doc in ("01_one", "02_two"):
        on_page = [html_text(t) for t in re.findall(r'href="[^"]*#equation-[\w-]+">(.*?)</a>', mini["pages"][doc])]
        ours = re.findall(r"\[(\([\d.]+\))\]\(\S+#equation-[\w-]+\)", mini["md"][doc])
        assert ours == on_page and ours


@pytest.mark.book
def test_small_book_figures_exercises_and_references_read_as_on_its_pages(mini):
    page, md = mini["pages"]["01_one"], mini["md"]["01_one"]
    fig = html_text(re.search(r'<span class="caption-number">(Fig\. [\d.]+) </span>', page).group(1))
    assert f"*{fig}* A *map* of $x$." in md
    numrefs = [html_text(t) for t in re.findall(r'<span class="std std-numref">(.*?)</span>', page)]
    assert numrefs == ["Fig. 1.1", "Figure 1.1"]
    assert re.findall(r"\[(Fig\. 1\.1|Figure 1\.1)\]", md) == numrefs
    titles = re.findall(r'<p class="admonition-title">(<span class="caption-number">.*?|Exercise.*?)</p>', page)
    exercises = [html_text(t) for t in titles]
    assert exercises == ["Exercise 1.1 (First)", "Exercise 1.2", "Exercise (Not numbered)"]
    assert re.findall(r"^#{2,6} (Exercise\b(?!s).*)$", md, re.M) == exercises
    solutions = solution_titles(page)
    assert solutions == ["Solution to Exercise 1.1 (First)", "Solution to Exercise (Not numbered)"]
    assert [html_text(s) for s in re.findall(r"<details><summary>(.*?)</summary>", md)] == solutions
    # the section reference, the glued value, the note, the footnote
    section = html_text(re.search(r'<a class="reference internal" href="#sec-rule">(.*?)</a>', page).group(1))
    assert section == "The rule for x_{ij}"  # Sphinx writes a section's title as text there; the edition typesets it
    assert "[The rule for $x_{ij}$](" in md
    assert "The answer is 0.12" in html_text(page) and "The answer is 0.12." in md
    assert "> **Note**\n>\n> A note with $x$." in md
    assert "A claim<sup>1</sup>" in md and "<sup>1</sup> The note." in md
    assert "$\\mathbb{R}^n$" in md and "\\boldsymbol{9}" in md and "\\class" not in md
    two = mini["md"]["02_two"]
    assert re.findall(r"^#{2,6} (Exercise\b(?!s).*)$", two, re.M) == \
        [html_text(t) for t in re.findall(r'<p class="admonition-title">(<span class="caption-number">.*?)</p>',
                                          mini["pages"]["02_two"])] == ["Exercise 2.1 (Gated)"]
    refs = [html_text(t) for t in re.findall(r'<a class="reference internal" href="01_one\.html#[\w-]+">(.*?)</a>',
                                             mini["pages"]["02_two"])]
    ours = [m.replace("$", "") for m in re.findall(r"\[([^\]]*)\]\(\S*01_one\.html#[\w-]+\)", two)]
    assert ours == refs and len(refs) == 4
