"""The book goes online by itself and every chapter opens and runs outside the repository.

- The workflows parse and run the README's commands (CI: `.ci/run`; Pages: the README's build
  command, then the PDF, then the official Pages actions).
- Each chapter page has Colab and Binder buttons that open that very notebook, both following
  `_config.yml`'s one repository setting, and a download menu that offers the `.ipynb`.
- Each chapter's setup cell installs from that same repository, and a chapter copied into an
  empty folder with a fresh virtual environment (the book's requirements, not the project) runs.
- At 390 px width, in light and dark mode, no page scrolls sideways and figures fit (Chromium).
- `scripts/book_pdf.py` prints the whole book to one PDF, chapters in order, math typeset,
  solutions unfolded.

Tests that need the built book use `$BOOK_HTML` (a built `_build/html`) when it is set, and
otherwise build the book once into a temporary folder.
"""
from __future__ import annotations

import functools
import http.server
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import tomllib
import unicodedata
from pathlib import Path

import pytest
import yaml

from browser_support import BROWSER_DIR, CHROMIUM, ROOT, require_browser

CONFIG = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))


def toc_files() -> list[str]:
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text(encoding="utf-8"))
    files = [toc["root"]]
    for part in toc.get("parts", []):
        files += [c["file"] for c in part.get("chapters", [])]
    return files


PAGES = toc_files()
CHAPTERS = [f for f in PAGES if (ROOT / f"{f}.ipynb").exists()]


def readme_commands() -> list[str]:
    """The commands of the README's first ```bash block, comments stripped."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"```bash\n(.*?)```", readme, re.S).group(1)
    return [line.split("#")[0].strip() for line in block.splitlines() if line.split("#")[0].strip()]


def workflow(name: str) -> dict:
    doc = yaml.safe_load((ROOT / ".github" / "workflows" / name).read_text(encoding="utf-8"))
    doc["on"] = doc.pop(True, doc.get("on"))  # YAML 1.1 reads the key `on` as True
    return doc


def steps(doc: dict) -> list[dict]:
    return [s for job in doc["jobs"].values() for s in job.get("steps", [])]


def run_lines(doc: dict) -> list[str]:
    return [line.strip() for s in steps(doc) for line in s.get("run", "").splitlines() if line.strip()]


def uses(doc: dict, action: str) -> list[dict]:
    return [s for s in steps(doc) if s.get("uses", "").split("@")[0] == action]


def repo_parts() -> tuple[str, str, str]:
    url = CONFIG["repository"]["url"].rstrip("/")
    m = re.fullmatch(r"https://github\.com/([^/]+)/([^/]+)", url)
    assert m, f"repository.url must be a GitHub repository URL, not {url!r}"
    return m.group(1), m.group(2), CONFIG["repository"]["branch"]


# --- the workflows ---------------------------------------------------------------------------
def test_ci_workflow_runs_ci_run_on_every_push_and_pull_request():
    ci = workflow("ci.yml")
    assert "push" in ci["on"] and "pull_request" in ci["on"]
    assert "branches" not in (ci["on"]["push"] or {}), "CI runs on every branch"
    (job,) = ci["jobs"].values()
    assert job["runs-on"] == "ubuntu-latest"
    assert uses(ci, "actions/checkout")
    (py,) = uses(ci, "actions/setup-python")
    assert str(py["with"]["python-version"]) == "3.11"
    assert run_lines(ci) == ["bash .ci/run"], "CI runs .ci/run and nothing else (it installs what it needs)"
    assert (ROOT / ".ci" / "run").exists()


def test_pages_workflow_builds_with_the_readme_command_and_deploys():
    pages = workflow("pages.yml")
    assert pages["on"]["push"]["branches"] == ["main"] == [CONFIG["repository"]["branch"]]
    assert "workflow_dispatch" in pages["on"]
    perms = pages["permissions"]
    assert perms["pages"] == "write" and perms["id-token"] == "write" and perms["contents"] == "read"
    build = readme_commands()[0]
    assert "jupyter-book build" in build
    assert build in run_lines(pages), "Pages must build the book with the README's first command"
    assert uses(pages, "actions/configure-pages")
    (upload,) = uses(pages, "actions/upload-pages-artifact")
    assert upload["with"]["path"] == "_build/html"
    assert uses(pages, "actions/deploy-pages")
    deploy = [j for j in pages["jobs"].values() if any(s.get("uses", "").startswith("actions/deploy-pages") for s in j["steps"])]
    assert deploy and deploy[0]["environment"]["name"] == "github-pages"
    # the PDF is printed after the build and published inside the site, where the pages link to it
    lines = run_lines(pages)
    pdf = [l for l in lines if l.startswith("python scripts/book_pdf.py")]
    assert pdf and lines.index(pdf[0]) > lines.index(build)
    assert re.search(r"--out _build/html/\S+\.pdf", pdf[0])
    assert "--html _build/html" in pdf[0]


def test_readme_documents_the_pdf_command():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "python scripts/book_pdf.py" in readme


# --- launch buttons and the setup cell -------------------------------------------------------
def test_launch_settings_follow_the_one_repository_setting():
    org, repo, branch = repo_parts()
    assert branch == "main"
    assert CONFIG["repository"]["path_to_book"] == ""
    lb = CONFIG["launch_buttons"]
    assert lb["colab_url"] == "https://colab.research.google.com"
    assert lb["binderhub_url"] == "https://mybinder.org"
    assert lb["notebook_interface"] == "jupyterlab"


def setup_cell(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))["cells"][0]


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_setup_cell_installs_from_the_configured_repository(chapter):
    org, repo, branch = repo_parts()
    cell = setup_cell(ROOT / f"{chapter}.ipynb")
    src = "".join(cell["source"])
    assert cell["cell_type"] == "code" and "remove-cell" in cell["metadata"].get("tags", [])
    assert f'"git+https://github.com/{org}/{repo}@{branch}"' in src, \
        "the setup cell must install from _config.yml's repository.url and branch"
    assert "CNN_BOOK_SOURCE" in src
    # everything the chapter imports from the project is checked by the cell and installed by pip
    nb = json.loads((ROOT / f"{chapter}.ipynb").read_text(encoding="utf-8"))
    code = "\n".join("".join(c["source"]) for c in nb["cells"][1:] if c["cell_type"] == "code")
    used = set(re.findall(r"^\s*(?:from|import)\s+(mlp_cnn_\w+|cnnviz)\b", code, re.M))
    checked = set(re.findall(r"\b(mlp_cnn_\w+|cnnviz)\b", src.split("except ImportError")[0]))
    assert used <= checked, f"the setup cell does not check {sorted(used - checked)}"
    tool = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]
    packaged = set(tool.get("py-modules", [])) | set(tool.get("packages", []))
    assert checked <= packaged, f"pyproject.toml does not package {sorted(checked - packaged)}"


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_chapter_page_launches_its_own_notebook_in_colab_and_binder(book_html, chapter):
    org, repo, branch = repo_parts()
    text = (book_html / f"{chapter}.html").read_text(encoding="utf-8")
    links = set(re.findall(r'href="([^"]+)"', text))
    colab = f"https://colab.research.google.com/github/{org}/{repo}/blob/{branch}/{chapter}.ipynb"
    binder = f"https://mybinder.org/v2/gh/{org}/{repo}/{branch}?urlpath=lab/tree/{chapter}.ipynb"
    assert colab in links, [l for l in links if "colab" in l]
    assert binder in links, [l for l in links if "binder" in l]


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_download_menu_offers_the_notebook_with_its_setup_cell(book_html, chapter):
    text = (book_html / f"{chapter}.html").read_text(encoding="utf-8")
    depth = chapter.count("/")
    href = "../" * depth + f"_sources/{chapter}.ipynb"
    assert f'href="{href}"' in text, "the download menu must offer the .ipynb"
    downloaded = book_html / "_sources" / f"{chapter}.ipynb"
    assert setup_cell(downloaded) == setup_cell(ROOT / f"{chapter}.ipynb"), \
        "the downloaded notebook must start with the setup cell, so it runs on its own"


def test_every_page_loads_the_book_stylesheet(book_html):
    for page in PAGES:
        text = (book_html / f"{page}.html").read_text(encoding="utf-8")
        assert re.search(r'<link[^>]+href="[^"]*_static/book\.css', text), page


def test_download_menu_offers_the_book_pdf_where_the_workflow_publishes_it(book_html):
    pdf = re.search(r"--out _build/html/(\S+\.pdf)", "\n".join(run_lines(workflow("pages.yml")))).group(1)
    for page in PAGES:
        text = (book_html / f"{page}.html").read_text(encoding="utf-8")
        href = "../" * page.count("/") + pdf
        assert f'href="{href}"' in text, f"{page}: the download menu must offer the whole book's PDF"


# --- a chapter on its own, in a fresh virtual environment ------------------------------------
# The book's requirements a chapter needs, not the project itself (pins from requirements.txt).
STANDALONE_REQS = ["numpy", "matplotlib", "ipywidgets", "anywidget", "ipykernel", "scikit-learn"]
STANDALONE_CHAPTERS = ["book/04_relu_derivative", "book/01_tiny_cnn_forward"]


def pinned(names: list[str]) -> list[str]:
    reqs = {}
    for line in (ROOT / "requirements.txt").read_text(encoding="utf-8").splitlines():
        if "==" in line and not line.startswith("#"):
            name, version = line.strip().split("==")
            reqs[name.lower()] = f"{name}=={version}"
    return [reqs.get(n, n) for n in names]


def project_source(dest: Path) -> Path:
    """The project as pip sees it: pyproject.toml and the modules and packages it lists, copied
    from the working tree (so the test installs the code under test, and builds nothing in it)."""
    dest.mkdir()
    shutil.copy(ROOT / "pyproject.toml", dest)
    tool = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]
    for mod in tool.get("py-modules", []):
        shutil.copy(ROOT / f"{mod}.py", dest)
    for pkg in tool.get("packages", []):
        shutil.copytree(ROOT / pkg, dest / pkg, ignore=shutil.ignore_patterns("__pycache__"))
    return dest


RUN_NOTEBOOK = """
import sys, nbformat
from nbclient import NotebookClient
path, kernel = sys.argv[1], sys.argv[2]
nb = nbformat.read(path, as_version=4)
NotebookClient(nb, timeout=900, kernel_name=kernel, resources={"metadata": {"path": "."}}).execute()
errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.output_type == "error"]
assert not errors, errors
nbformat.write(nb, path)
print("executed", path)
"""


def test_a_chapter_runs_on_its_own_in_a_fresh_environment(tmp_path):
    venv = tmp_path / "venv"
    made = subprocess.run([sys.executable, "-m", "venv", str(venv)], capture_output=True, text=True)
    if made.returncode != 0:
        pytest.skip(f"cannot create a virtual environment here: {made.stderr.strip()[-300:]}")
    py = venv / "bin" / "python"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "MPLBACKEND", "VIRTUAL_ENV")}
    env.update(PATH=f"{venv / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}", PYTHONNOUSERSITE="1",
               PIP_DISABLE_PIP_VERSION_CHECK="1", CNN_BOOK_SOURCE=str(project_source(tmp_path / "src")))
    pip = [str(py), "-m", "pip", "install", "--quiet", "--progress-bar", "off"]
    res = subprocess.run(pip + pinned(STANDALONE_REQS) + ["nbclient", "nbformat"], capture_output=True,
                         text=True, env=env, timeout=1200)
    assert res.returncode == 0, res.stderr[-3000:]
    res = subprocess.run([str(py), "-m", "ipykernel", "install", "--sys-prefix", "--name", "standalone"],
                         capture_output=True, text=True, env=env)
    assert res.returncode == 0, res.stderr[-2000:]
    probe = [str(py), "-c", "import mlp_cnn_core, mlp_cnn_train, cnnviz; print(mlp_cnn_core.__file__)"]
    work = tmp_path / "reader"
    work.mkdir()
    assert subprocess.run(probe, capture_output=True, text=True, env=env, cwd=work).returncode != 0, \
        "the fresh environment must not see the project before the setup cell runs"
    # the first chapter installs the project through its setup cell; the second finds it installed
    for chapter in STANDALONE_CHAPTERS:
        nb = work / Path(chapter).name
        shutil.copy(ROOT / f"{chapter}.ipynb", nb.with_suffix(".ipynb"))
        res = subprocess.run([str(py), "-c", RUN_NOTEBOOK, nb.with_suffix(".ipynb").name, "standalone"],
                             capture_output=True, text=True, env=env, cwd=work, timeout=1800)
        assert res.returncode == 0, f"{chapter}:\n{res.stdout[-2000:]}\n{res.stderr[-4000:]}"
    where = subprocess.run(probe, capture_output=True, text=True, env=env, cwd=work)
    assert where.returncode == 0, where.stderr
    assert Path(where.stdout.strip()).resolve().is_relative_to(venv.resolve()), \
        f"the setup cell must install the modules into the fresh environment, found {where.stdout}"


# --- in Chromium: a phone, dark mode, the PDF ------------------------------------------------
@pytest.fixture(scope="module")
def layout_report(book_html, tmp_path_factory):
    require_browser()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(book_html))
    handler.log_message = lambda *a, **k: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    shots = tmp_path_factory.mktemp("layout")
    try:
        res = subprocess.run(["node", str(BROWSER_DIR / "check_layout.js"), f"http://127.0.0.1:{server.server_port}",
                              str(shots), *[f"{p}.html" for p in PAGES]], capture_output=True, text=True,
                             timeout=1200, env={**os.environ, "CHROMIUM": CHROMIUM})
    finally:
        server.shutdown()
    assert res.returncode == 0, res.stderr[-3000:]
    return json.loads(res.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("mode", ["light", "dark"])
@pytest.mark.parametrize("page", PAGES)
def test_page_fits_a_phone(layout_report, page, mode):
    info = layout_report["pages"][f"{page}.html {mode}"]
    assert info["theme"] == mode
    assert info["innerWidth"] == 390
    assert info["scrollWidth"] <= info["innerWidth"] + 1, f"the page scrolls sideways: {info['sticking']}"
    assert not info["sticking"], f"sticks out of the screen: {info['sticking']}"
    assert not info["clipped"], f"cut off at the edge of its box: {info['clipped']}"
    assert not info["brokenImages"], info["brokenImages"]
    assert not info["wideImages"], f"images wider than the screen: {info['wideImages']}"


@pytest.mark.parametrize("page", CHAPTERS)
def test_figures_keep_a_white_framed_background_in_dark_mode(layout_report, page):
    info = layout_report["pages"][f"{page}.html dark"]
    assert info["figureImages"], "a chapter has figures"
    for fig in info["figureImages"]:
        assert fig["background"] == "rgb(255, 255, 255)", fig
        assert fig["filter"] == "none", f"a figure is dimmed in dark mode: {fig}"
        assert fig["padding"] >= 4 and fig["border"] >= 1, f"a figure needs its white frame: {fig}"


def normalized(text: str) -> str:
    text = unicodedata.normalize("NFKC", text)  # ligatures (ﬁ) -> fi
    text = text.replace("\u2019", "'").replace("\u2018", "'").replace("\u201c", '"').replace("\u201d", '"')
    return re.sub(r"\s+", " ", text)


def chapter_title(path: Path) -> str:
    """The first level-1 heading of a notebook or markdown page, as written by its authors."""
    if path.suffix == ".ipynb":
        nb = json.loads(path.read_text(encoding="utf-8"))
        text = "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown")
    else:
        text = path.read_text(encoding="utf-8")
    title = re.search(r"^# (.+)$", text, re.M).group(1)
    return re.sub(r"[*_`]", "", title).strip()


@pytest.fixture(scope="module")
def book_pdf(book_html, tmp_path_factory):
    require_browser()
    pypdf = pytest.importorskip("pypdf")
    out = tmp_path_factory.mktemp("pdf") / "book.pdf"
    res = subprocess.run([sys.executable, str(ROOT / "scripts" / "book_pdf.py"), "--html", str(book_html),
                          "--out", str(out)], capture_output=True, text=True, timeout=1800,
                         env={**os.environ, "CHROMIUM": CHROMIUM})
    assert res.returncode == 0, res.stderr[-3000:]
    return pypdf.PdfReader(out)


@functools.lru_cache(maxsize=1)
def pdf_texts(reader) -> tuple:
    """Each page's text, extracted once (pypdf takes tens of seconds for the book)."""
    return tuple(normalized(p.extract_text()) for p in reader.pages)


def test_book_pdf_holds_every_chapter_in_order(book_pdf):
    pages = list(pdf_texts(book_pdf))
    assert len(pages) >= 2 * len(PAGES), f"{len(pages)} PDF pages for {len(PAGES)} book pages"
    outline = [(item.title, book_pdf.get_destination_page_number(item)) for item in book_pdf.outline]
    assert len(outline) == len(PAGES), "one bookmark per page of the table of contents"
    starts = [n for _, n in outline]
    assert starts == sorted(starts) and starts[0] == 0
    ends = starts[1:] + [len(pages)]
    for file, start, end in zip(PAGES, starts, ends):
        src = ROOT / f"{file}.ipynb" if (ROOT / f"{file}.ipynb").exists() else ROOT / f"{file}.md"
        title = normalized(chapter_title(src))
        assert title in pages[start], f"{file}: the title {title!r} does not open its part of the PDF"
        assert end - start >= 1


def solution_texts(path: Path) -> list[list[str]]:
    """The prose lines of each sphinx-exercise solution of a notebook (``{solution}`` blocks and
    ``{solution-start}`` ... ``{solution-end}`` spans), without directive lines and options."""
    nb = json.loads(path.read_text(encoding="utf-8"))
    lines = "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown").splitlines()
    solutions, current, fence = [], None, None
    for line in lines:
        opening = re.match(r"^(`{3,}|:{3,})\{solution(-start)?\}", line)
        if current is None and opening:
            current, fence = [], None if opening.group(2) else opening.group(1)
            continue
        if current is None:
            continue
        if re.search(r"\{solution-end\}", line) or (fence and line.strip() == fence):
            solutions.append(current)
            current = None
        elif not re.match(r"^\s*(:\w[\w-]*:|`{3,}|:{3,})", line):
            current.append(line)
    return solutions


def test_book_pdf_has_typeset_math_and_unfolded_solutions(book_pdf):
    text = normalized(" ".join(pdf_texts(book_pdf)))
    # math that MathJax did not typeset keeps the delimiters Sphinx writes around it (code cells
    # may well show TeX commands such as \\frac in strings, but not these)
    for raw in ["\\(", "\\[", "$$", "\\begin{"]:
        assert raw not in text, f"untypeset math {raw!r} in the PDF"
    checked = 0
    for chapter in CHAPTERS:
        # the first plain line (no markup) of each solution is printed: the solutions are unfolded
        for body in solution_texts(ROOT / f"{chapter}.ipynb"):
            plain = [l for l in body if l.strip() and not re.search(r"[`$\\{}\[\]*_|<>#]", l)]
            if plain:
                words = " ".join(normalized(plain[0]).split()[:6])
                assert words in text, f"{chapter}: the solution text {words!r} is not in the PDF (folded?)"
                checked += 1
    assert checked >= len(CHAPTERS), f"only {checked} solutions had a plain line to look for"
