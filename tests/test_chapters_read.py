"""The chapters keep to the book's notation and shape (issue 15) and fit the column (issue 14).

What a reader can rely on in every chapter: a stated goal at the top, a summary before the
exercises, one gradient symbol (∂L/∂X: no G_X, no δ for a gradient — Reboud's δ is quoted only
beside his name —, no Kronecker δ), the stride written s and nothing else, and code and printed
lines of at most 88 characters (the column at 1280 px, _static/book.css). The notation table
itself is in book/intro.md.
"""

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "book").glob("*.ipynb"))
WIDTH = 88  # characters of a code or printed line that fit the column


def cells(path, kind):
    return [c for c in json.loads(path.read_text(encoding="utf-8"))["cells"] if c["cell_type"] == kind]


def source(cell):
    return "".join(cell["source"])


def math_of(path):
    """Every piece of TeX a chapter shows: its Markdown, and the LaTeX its code cells display."""
    for cell in cells(path, "markdown"):
        yield "markdown", source(cell)
    for cell in cells(path, "code"):
        for out in cell.get("outputs", []):
            latex = out.get("data", {}).get("text/latex")
            if latex:
                yield "output", "".join(latex)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_chapter_states_its_goal_and_ends_with_a_summary(path):
    markdown = [source(c) for c in cells(path, "markdown")]
    assert any(re.search(r"\*\*Goal[.:]?\*\*", m) for m in markdown[:3]), "a stated goal near the top"
    headings = [line for m in markdown for line in m.splitlines() if line.startswith("## ")]
    assert "## Summary" in headings, "a summary section"
    if "## Exercises" in headings:
        assert headings.index("## Summary") < headings.index("## Exercises"), "the summary comes before the exercises"


# TeX that writes a gradient with another symbol than ∂L/∂X, or s for something else than the stride
NOT_THE_NOTATION = {
    r"G_\{?[A-Za-z]": "G_X for a gradient (write \\partial L/\\partial X)",
    r"\\delta_\{?[a-z]*[ij]": "a Kronecker delta (write the indicator \\mathbb{1}[\\cdot])",
    r"\\hat\\delta": "δ for a gradient (write \\partial L/\\partial Y)",
    r"[KW]_\{[a-z]*rs\}": "kernel offsets r, s (write \\alpha, \\beta: s is the stride)",
    r"\bs_\{?[kjm]\}?(?![a-z])": "s for the logits (write z)",
}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_one_gradient_symbol_and_s_only_for_the_stride(path):
    found = []
    for where, tex in math_of(path):
        for pattern, why in NOT_THE_NOTATION.items():
            for m in re.finditer(pattern, tex):
                found.append(f"{where}: {why}: …{tex[max(0, m.start() - 30):m.end() + 20]!r}…")
        # δ appears only where a cell quotes Reboud, who writes δ for a gradient
        if re.search(r"\\delta|δ", tex) and "reboud" not in tex.lower():
            found.append(f"{where}: δ outside a quotation of Reboud: {tex[:120]!r}")
    assert not found, "\n".join(found[:10])


def explorable_titles(path):
    nb = json.loads(path.read_text(encoding="utf-8"))
    models = nb["metadata"].get("widgets", {}).get("application/vnd.jupyter.widget-state+json", {})
    for model in models.get("state", {}).values():
        st = model["state"]
        if isinstance(st.get("states"), str):
            for state in json.loads(st["states"]).values():
                for panel in state.get("panels", []):
                    yield panel["title"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_figure_and_explorable_titles_use_the_gradient_symbol(path):
    bad = sorted({t for t in explorable_titles(path) if re.search(r"\bdL/d|\bG_|\bd[A-Z]\w*\b|_\{?\w", t)})
    assert not bad, f"panel titles not in the book's notation (∂L/∂X, subscripts as <sub>): {bad[:8]}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_code_and_printed_lines_fit_the_column(path):
    long = []
    for n, cell in enumerate(cells(path, "code")):
        for line in source(cell).splitlines():
            if len(line) > WIDTH:
                long.append(f"code cell {n}: {line[:60]}… ({len(line)})")
        for out in cell.get("outputs", []):
            text = "".join(out.get("text", "")) if out["output_type"] == "stream" else ""
            if not text and set(out.get("data", {})) == {"text/plain"}:
                text = "".join(out["data"]["text/plain"])
            for line in text.splitlines():
                if len(line) > WIDTH:
                    long.append(f"output of code cell {n}: {line[:60]}… ({len(line)})")
    assert not long, f"{len(long)} lines wider than {WIDTH} characters:\n" + "\n".join(long[:10])


def test_the_intro_holds_the_notation_table():
    intro = (ROOT / "book" / "intro.md").read_text(encoding="utf-8")
    assert re.search(r"^#+ .*[Nn]otation", intro, re.M), "a notation section in the intro"
    for symbol in (r"\partial L", r"\mathbb{1}", "stride"):
        assert symbol in intro, f"the notation table must define {symbol}"
