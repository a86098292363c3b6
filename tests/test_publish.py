"""The book goes online by itself and every chapter opens and runs outside the repository.

- The workflows parse and run the README's commands (CI: `.ci/run`; Pages: the README's build
  command, then the PDF, then the official Pages actions).
- Each chapter page has Colab and Binder buttons that open that chapter's generated editions
  (scripts/export_notebooks.py), both following `_config.yml`'s one repository setting: Colab the
  Colab edition on the `notebooks` branch, which the Pages workflow publishes there; Binder the
  JupyterLab edition, which Binder's `postBuild` writes into `notebooks/`. The download menu offers
  the Colab edition, published next to the pages.
- Each chapter's setup cell installs from that same repository, and a chapter copied into an
  empty folder with a fresh virtual environment (the book's requirements, not the project) runs.
- The download menu links the whole book's PDF only where the Pages workflow publishes it.
- `scripts/book_pdf.py` prints the whole book to one PDF: a title page, a contents page with
  page numbers and links, the chapters in order with every explorable drawn, math typeset,
  solutions unfolded; it fails, naming the page and the explorable, rather than print without it.

(The pages at 390 px, in dark mode and at 1280 px are checked by tests/test_book_build.py.)

Tests that need the built book use `$BOOK_HTML` (a built `_build/html`) when it is set, and
otherwise build the book once into a temporary folder.
"""
from __future__ import annotations

import functools
import importlib.util
import io
import json
import os
import re
import shutil
import subprocess
import sys
import types
import unicodedata
from pathlib import Path

import pytest
import tomllib
import yaml

import export_notebooks as E
from browser_support import CHROMIUM, ROOT, require_browser

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


def jobs_with_step(doc: dict, matches) -> list[dict]:
    """The jobs of a workflow that have a step for which ``matches(step)`` holds."""
    return [job for job in doc["jobs"].values() if any(matches(s) for s in job.get("steps", []))]


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
    deploy = jobs_with_step(pages, lambda s: s.get("uses", "").startswith("actions/deploy-pages"))
    assert deploy and deploy[0]["environment"]["name"] == "github-pages"
    # the PDF is printed after the build and published inside the site, where the pages link to it
    lines = run_lines(pages)
    pdf = [line for line in lines if line.startswith("python scripts/book_pdf.py")]
    assert pdf and lines.index(pdf[0]) > lines.index(build)
    assert re.search(r"--out _build/html/\S+\.pdf", pdf[0])
    assert "--html _build/html" in pdf[0]
    # ... and the build that precedes it adds the link to every page's download menu
    (build_step,) = [s for s in steps(pages) if build in s.get("run", "")]
    assert str(build_step.get("env", {}).get("BOOK_PDF_LINK")) == "1"


def test_pages_workflow_publishes_the_colab_edition_where_the_buttons_point():
    pages = workflow("pages.yml")
    assert pages["permissions"]["contents"] == "read", "only the job that pushes the edition may write"
    lines = run_lines(pages)
    build = readme_commands()[0]
    export = [line for line in lines if line.startswith("python scripts/export_notebooks.py")]
    assert export == [f"python scripts/export_notebooks.py _build/html/{E.EDITION_DIR}"], \
        "the Colab edition goes next to the pages, where the download menu links it"
    assert lines.index(export[0]) > lines.index(build), "the export reads the build"
    (build_job,) = jobs_with_step(pages, lambda s: build in s.get("run", ""))
    (upload,) = [s for s in build_job["steps"] if s.get("uses", "").startswith("actions/upload-artifact")]
    assert upload["with"]["path"] == f"_build/html/{E.EDITION_DIR}"
    assert build_job["steps"].index(upload) < [s.get("uses", "").split("@")[0] for s in build_job["steps"]].index(
        "actions/upload-pages-artifact"), "the edition is in the site's artifact too"
    (push_job,) = jobs_with_step(pages, lambda s: "git push" in s.get("run", ""))
    assert push_job["permissions"] == {"contents": "write"}
    (download,) = [s for s in push_job["steps"] if s.get("uses", "").startswith("actions/download-artifact")]
    assert download["with"]["name"] == upload["with"]["name"]
    push_lines = [line for s in push_job["steps"] for line in s.get("run", "").splitlines()]
    push = [line for line in push_lines if "git push" in line]
    assert push and push[0].strip().endswith(f" {E.EDITION_BRANCH}"), "pushed to the branch the Colab buttons open"
    assert [line for line in push_lines if "git init" in line] == [f"git init -q -b {E.EDITION_BRANCH}"]


def test_binder_writes_the_jupyterlab_edition_that_its_buttons_open():
    post = ROOT / "postBuild"
    assert post.exists() and os.access(post, os.X_OK), "repo2docker runs an executable postBuild"
    assert not (ROOT / "binder").exists() and not (ROOT / ".binder").exists(), \
        "a binder/ folder would make repo2docker ignore requirements.txt and postBuild at the root"
    lines = [line.strip() for line in post.read_text(encoding="utf-8").splitlines()
             if line.strip() and not line.startswith("#")]
    build = [line for line in lines if line.startswith("jupyter-book build .")]
    export = [line for line in lines if line.startswith("python scripts/export_notebooks.py")]
    assert build and export and lines.index(build[0]) < lines.index(export[0])
    assert export[0] == f"python scripts/export_notebooks.py --edition lab {E.EDITION_DIR}"
    assert f"/{E.EDITION_DIR}/" in (ROOT / ".gitignore").read_text().splitlines(), "the edition is never committed"


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
def test_chapter_page_launches_its_editions_in_colab_and_binder(book_html, chapter):
    org, repo, branch = repo_parts()
    name = chapter.rsplit("/", 1)[-1]
    text = (book_html / f"{chapter}.html").read_text(encoding="utf-8")
    links = set(re.findall(r'href="([^"]+)"', text))
    colab = f"https://colab.research.google.com/github/{org}/{repo}/blob/{E.EDITION_BRANCH}/{name}.ipynb"
    binder = f"https://mybinder.org/v2/gh/{org}/{repo}/{branch}?urlpath=lab/tree/{E.EDITION_DIR}/{name}.ipynb"
    assert colab in links, [link for link in links if "colab" in link]
    assert binder in links, [link for link in links if "binder" in link]


@pytest.fixture(scope="module")
def colab_edition(book_html, tmp_path_factory):
    """The Colab edition written from this build, as the Pages workflow writes it."""
    out = tmp_path_factory.mktemp("site") / E.EDITION_DIR
    E.export_book(out, E.BookIndex.from_build(ROOT, book_html.parent), "colab")
    return out


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_download_menu_offers_the_colab_edition_with_its_setup_cell(book_html, colab_edition, chapter):
    text = (book_html / f"{chapter}.html").read_text(encoding="utf-8")
    name = chapter.rsplit("/", 1)[-1]
    href = "../" * chapter.count("/") + f"{E.EDITION_DIR}/{name}.ipynb"
    assert re.search(rf'<a href="{re.escape(href)}"[^>]*download-notebook-button[^>]*title="[^"]*Colab edition',
                     text), "the download menu offers the chapter's Colab edition, and says so"
    assert "_sources/" + chapter + ".ipynb" not in text, "the MyST source is not offered as the notebook"
    nb = json.loads((colab_edition / f"{name}.ipynb").read_text(encoding="utf-8"))
    assert nb["cells"][0]["cell_type"] == "markdown" and "Colab edition" in "".join(nb["cells"][0]["source"])
    assert nb["cells"][1]["source"] == setup_cell(ROOT / f"{chapter}.ipynb")["source"], \
        "the downloaded notebook runs the setup cell first, so it runs on its own"


def test_every_page_loads_the_book_stylesheet(book_html):
    for page in PAGES:
        text = (book_html / f"{page}.html").read_text(encoding="utf-8")
        assert re.search(r'<link[^>]+href="[^"]*_static/book\.css', text), page


def local_extensions():
    spec = importlib.util.spec_from_file_location("local_extensions", ROOT / "_ext" / "local_extensions.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class FakeApp:
    def __init__(self, link=None):
        self.config = types.SimpleNamespace(book_pdf_link=link)
        self.values = {}

    def add_config_value(self, name, default, rebuild, types=()):
        self.values[name] = default

    def connect(self, *args, **kwargs):
        pass


def test_download_menu_links_the_book_pdf_only_where_it_is_published(book_html, monkeypatch):
    ext = local_extensions()
    pdf = re.search(r"--out _build/html/(\S+\.pdf)", "\n".join(run_lines(workflow("pages.yml")))).group(1)
    assert pdf == ext.BOOK_PDF, "the pages link the file the Pages workflow prints"
    # a build without BOOK_PDF_LINK=1 (the README's command, the tests') links no PDF: no 404
    if os.environ.get("BOOK_PDF_LINK") != "1":
        for page in PAGES:
            assert pdf not in (book_html / f"{page}.html").read_text(encoding="utf-8"), page
    for env, expected in (("1", True), ("", False)):
        monkeypatch.setenv("BOOK_PDF_LINK", env)
        app = FakeApp()
        ext.setup(app)
        assert app.values["book_pdf_link"] is expected
    for link in (True, False):
        context = {"header_buttons": [{"label": "download-buttons", "buttons": []}],
                   "pathto": lambda name, resource: "../" + name}
        ext.offer_book_pdf(FakeApp(link), "book/intro", "page.html", context, None)
        urls = [b["url"] for b in context["header_buttons"][0]["buttons"]]
        assert urls == (["../" + pdf] if link else [])


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


# --- the PDF ------------------------------------------------------------------------------------


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
def raw_pdf_texts(reader) -> tuple:
    """Each page's text with its line breaks, extracted once (pypdf takes tens of seconds
    for the book)."""
    return tuple(p.extract_text() for p in reader.pages)


def pdf_texts(reader) -> tuple:
    """Each page's text, normalized (:func:`normalized`)."""
    return tuple(normalized(t) for t in raw_pdf_texts(reader))


def chapter_starts(book_pdf) -> list[int]:
    """The first PDF page (0-based) of each page of the table of contents, from the bookmarks."""
    outline = [(item.title, book_pdf.get_destination_page_number(item)) for item in book_pdf.outline]
    assert outline[0] == ("Contents", 1), "the contents page is bookmarked first"
    assert len(outline) == 1 + len(PAGES), "one bookmark per page of the table of contents"
    return [n for _, n in outline[1:]]


def test_book_pdf_opens_with_a_title_page_and_a_contents_page(book_pdf):
    pages = pdf_texts(book_pdf)
    title = normalized(CONFIG["title"])
    assert title in pages[0] and normalized(CONFIG["author"]) in pages[0], "the title page"
    assert pages[1].startswith("Contents")
    starts = chapter_starts(book_pdf)
    assert starts[0] == 2, "the book starts after its title and contents pages"
    links = [a.get_object() for a in book_pdf.pages[1].get("/Annots", [])]
    targets = [book_pdf.get_destination_page_number(book_pdf.named_destinations[a["/Dest"]])
               if isinstance(a["/Dest"], str) else book_pdf.get_page_number(a["/Dest"][0].get_object())
               for a in links if a.get("/Subtype") == "/Link"]
    assert targets == starts, "each contents entry links its chapter's first page"
    for file, start in zip(PAGES, starts):
        src = ROOT / f"{file}.ipynb" if (ROOT / f"{file}.ipynb").exists() else ROOT / f"{file}.md"
        name = normalized(chapter_title(src))
        assert re.search(re.escape(name) + r"[ .…]*" + str(start + 1) + r"\b", pages[1]), \
            f"the contents page must list {name!r} on page {start + 1}"
    for i in (starts[1], len(pages) - 1):
        assert str(i + 1) in pages[i].split(), f"PDF page {i + 1} carries its number"


def test_book_pdf_holds_every_chapter_in_order(book_pdf):
    pages = pdf_texts(book_pdf)
    assert len(pages) >= 2 * len(PAGES), f"{len(pages)} PDF pages for {len(PAGES)} book pages"
    starts = chapter_starts(book_pdf)
    assert starts == sorted(starts)
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
    # math that MathJax did not typeset keeps the delimiters Sphinx writes around it; code cells
    # may show TeX in a string (Math(r"\\begin{aligned}" ...)), so a delimiter right after a quote
    # is code, not math
    for raw in ["\\(", "\\[", "$$", "\\begin{"]:
        bare = re.search(r"(?<![\"'])" + re.escape(raw), text)
        assert not bare, f"untypeset math {raw!r} in the PDF: {text[max(bare.start() - 80, 0):bare.end() + 80]!r}"
    # code lines wrap whole (_static/book_print.js): never a comment's "#" alone at a line's end
    for i, page in enumerate(raw_pdf_texts(book_pdf)):
        alone = [line for line in page.splitlines() if re.search(r"(^|\s)#$", line)]
        assert not alone, f"PDF page {i + 1}: a line ends with a lone '#': {alone[:2]}"
    checked = 0
    for chapter in CHAPTERS:
        # the first plain line (no markup) of each solution is printed: the solutions are unfolded
        for body in solution_texts(ROOT / f"{chapter}.ipynb"):
            plain = [line for line in body if line.strip() and not re.search(r"[`$\\{}\[\]*_|<>#]", line)]
            if plain:
                words = " ".join(normalized(plain[0]).split()[:6])
                assert words in text, f"{chapter}: the solution text {words!r} is not in the PDF (folded?)"
                checked += 1
    assert checked >= len(CHAPTERS), f"only {checked} solutions had a plain line to look for"


def test_book_pdf_prints_every_explorable(book_html, book_pdf):
    from browser_support import page_explorables

    pages = pdf_texts(book_pdf)
    starts = chapter_starts(book_pdf)
    ends = starts[1:] + [len(pages)]
    printed = 0
    for file, start, end in zip(PAGES, starts, ends):
        text = " ".join(pages[start:end])
        for saved in page_explorables((book_html / f"{file}.html").read_text(encoding="utf-8")):
            assert normalized(saved["title"]) in text, f"{file}: the explorable {saved['kind']} is not printed"
            printed += 1
    assert printed >= 7, f"only {printed} explorables in the book"


def test_book_pdf_fails_naming_an_explorable_it_cannot_draw(book_html, tmp_path):
    """Without the anywidget front end the explorables cannot be drawn: no PDF, and an error that
    names the page and the explorable."""
    require_browser()
    pytest.importorskip("pypdf")
    spec = importlib.util.spec_from_file_location("book_pdf", ROOT / "scripts" / "book_pdf.py")
    book_pdf_module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(book_pdf_module)
    html = tmp_path / "html"
    shutil.copytree(book_html, html, ignore=shutil.ignore_patterns("*.pdf", "_sources", "_images"))
    (html / "book" / "anywidget.js").unlink()
    root = tmp_path / "root"
    root.mkdir()
    (root / "_toc.yml").write_text("format: jb-book\nroot: book/02_maxpool_mask\n")
    shutil.copy(ROOT / "_config.yml", root)
    book_pdf_module.DRAW_TIMEOUT_S = 3
    out = tmp_path / "book.pdf"
    # the page's explorable and its figures (drawn by the same view) are all named
    with pytest.raises(SystemExit, match=r"book/02_maxpool_mask\.html: the explorable\(s\) \[[^]]*'MaxPoolRouting'"):
        book_pdf_module.build_pdf(html, out, CHROMIUM, book_pdf_module.LOCAL_SCRIPTS, root=root, log=io.StringIO())
    assert not out.exists()
