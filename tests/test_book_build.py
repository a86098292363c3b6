"""The book builds strictly (-W -n) from the committed notebooks, and the static pages teach
without a kernel: every chapter page has its figures, its math, its exercises with folded
solutions, a Binder button that opens that very notebook in JupyterLab, and working citations."""
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted(p.stem for p in (ROOT / "book").glob("*.ipynb"))


@pytest.fixture(scope="module")
def html(tmp_path_factory):
    out = tmp_path_factory.mktemp("book")
    jb = Path(sys.executable).with_name("jupyter-book")
    cmd = [str(jb) if jb.exists() else "jupyter-book", "build", str(ROOT), "--path-output", str(out),
           "-W", "-n", "--keep-going"]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-4000:]
    return out / "_build" / "html"


def page(html, name):
    return (html / "book" / f"{name}.html").read_text(encoding="utf-8")


@pytest.mark.parametrize("name", CHAPTERS)
def test_chapter_page_teaches_without_a_kernel(html, name):
    text = page(html, name)
    assert len(re.findall(r'<img[^>]+src="[^"]*_images/', text)) >= 2, "the page needs its figures"
    assert "math notranslate" in text or "\\(" in text, "the page needs its equations"
    assert "exercise" in text and "solution" in text, "the chapter ends with exercises and solutions"
    assert re.search(r'class="[^"]*solution[^"]*dropdown', text), "solutions must be folded"
    cfg = yaml.safe_load((ROOT / "_config.yml").read_text())
    repo = cfg["repository"]["url"].split("github.com/")[1]
    assert f"https://mybinder.org/v2/gh/{repo}/main?urlpath=lab/tree/book/{name}.ipynb" in text
    assert "Traceback" not in text, "a stored error or traceback is shown on the page"


def test_citations_resolve_to_the_bibliography(html):
    bib = (html / "book" / "bibliography.html").read_text(encoding="utf-8")
    for key in ["Seo", "Reboud"]:
        assert key in bib
    intro = (html / "book" / "intro.html").read_text(encoding="utf-8")
    assert "bibliography.html#id" in intro or "bibliography.html#" in intro
