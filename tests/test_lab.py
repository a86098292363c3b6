"""The chapters as a Binder reader gets them: the JupyterLab edition that Binder's postBuild
writes (scripts/export_notebooks.py --edition lab, from the built book), in JupyterLab with
jupyterlab-myst in Chromium, a live kernel. For every chapter with an explorable
(tests/browser/check_lab.js): the markdown shows no raw MyST markup and no citation or reference
that jupyterlab-myst marks "Not Found", every link to another chapter names a notebook the server
has, solutions are titled as on the built page ("Solution to Exercise 2.1 …"), no output shows a
widget's repr before or after Run All, Run All ends without an error output, and every control of
every explorable, moved with the keyboard and with the mouse, redraws the figure while JupyterLab
keeps its active cell (arrow keys are the control's, not the notebook's); an action button is
recomputed in the kernel and redrawn; a saved and reloaded notebook draws its explorables again;
clicking a link to another chapter opens that chapter.

JupyterLab runs on the edition written into a temporary folder (autosave never touches the
repository).
LAB_CHAPTERS=02,09 limits the chapters; LAB_REPORT=path keeps the report (with the Run All
times and the redraw timings) for benchmarks/bench_redraw.py."""
import json
import os
import re
import subprocess

import pytest

import export_notebooks as E
from browser_support import (
    BROWSER_DIR,
    CHROMIUM,
    ROOT,
    STRAIGHT_QUOTES,
    jupyter_lab,
    lab_chapters,
    live_summary,
    require_browser,
    solution_titles,
)

pytestmark = [pytest.mark.lab, pytest.mark.book]


CHAPTERS = lab_chapters()


@pytest.fixture(scope="module")
def edition(book_html, tmp_path_factory):
    """The JupyterLab edition of every chapter, as Binder's postBuild writes it."""
    folder = tmp_path_factory.mktemp("binder") / E.EDITION_DIR
    E.export_book(folder, E.BookIndex.from_build(ROOT, book_html.parent), "lab")
    return folder


def cell_count(edition, name):
    return len(json.loads((edition / name).read_text(encoding="utf-8"))["cells"])


@pytest.fixture(scope="module")
def lab_report(edition, tmp_path_factory):
    require_browser()
    work = tmp_path_factory.mktemp("lab")
    out = work / "lab_report.json"
    args = [f"{name}={cell_count(edition, name)},{n}" for name, (_cells, n) in CHAPTERS.items()]
    first = next(iter(CHAPTERS))
    with jupyter_lab(work, work / "jupyter-lab.log", notebooks=edition) as url:
        res = subprocess.run(["node", str(BROWSER_DIR / "check_lab.js"), "--lab", url, "--out", str(out),
                              "--shots", str(work), "--reopen", first, "--follow", first, *args],
                             capture_output=True, text=True, timeout=1800, env={**os.environ, "CHROMIUM": CHROMIUM})
    report = json.loads(out.read_text()) if out.exists() else {"notebooks": {}}
    report.update(returncode=res.returncode, stderr=res.stderr[-6000:])
    if os.environ.get("LAB_REPORT"):
        with open(os.environ["LAB_REPORT"], "w") as f:
            json.dump({"live": live_summary(report), "report": report}, f, indent=1)
    return report


def chapter(report, name):
    assert name in report["notebooks"], report["stderr"]
    info = report["notebooks"][name]
    assert "runAllSeconds" in info, info["problems"]
    return info


def test_there_are_chapters_to_read():
    assert CHAPTERS, "no chapter shows an explorable (or LAB_CHAPTERS matches none)"


@pytest.mark.parametrize("name", list(CHAPTERS))
def test_markdown_renders_without_raw_myst(lab_report, name):
    info = chapter(lab_report, name)
    assert info["beforeRun"]["markdownCells"] > 0
    assert info["beforeRun"]["unrendered"] == 0, "every markdown cell is rendered before it is read"
    assert not info["beforeRun"]["rawMyst"], f"MyST markup shown as text: {info['beforeRun']['rawMyst'][:5]}"


@pytest.mark.parametrize("name", list(CHAPTERS))
def test_citations_and_references_resolve(lab_report, name):
    info = chapter(lab_report, name)
    assert not info["beforeRun"]["notFound"], info["beforeRun"]["notFound"][:5]


@pytest.mark.parametrize("name", list(CHAPTERS))
def test_links_to_other_chapters_name_their_notebooks(lab_report, name):
    links = chapter(lab_report, name)["beforeRun"]["chapterLinks"]
    broken = [link for link in links if link["found"] != "notebook"]
    assert not broken, broken[:5]


@pytest.mark.parametrize("name", list(CHAPTERS))
def test_solutions_are_titled_as_on_the_page(lab_report, book_html, name):
    shown = chapter(lab_report, name)["beforeRun"]["solutions"]
    titles = [" ".join(t.split()).translate(STRAIGHT_QUOTES) for t in shown]
    assert titles, "the chapter's solutions are folded under their titles"
    # a solution that spans code cells is folded once per Markdown cell: its later parts are
    # titled "... (continued)", right after the part before them
    for before, t in zip(titles, titles[1:]):
        if t.endswith(" (continued)"):
            assert before.removesuffix(" (continued)") == t.removesuffix(" (continued)"), (before, t)
    assert not titles[0].endswith(" (continued)"), titles[0]
    page = (book_html / "book" / name).with_suffix(".html").read_text(encoding="utf-8")
    on_page = [t.translate(STRAIGHT_QUOTES) for t in solution_titles(page)]
    assert [t for t in titles if not t.endswith(" (continued)")] == on_page


def test_a_link_to_another_chapter_opens_it(lab_report):
    followed = chapter(lab_report, next(iter(CHAPTERS)))["followed"]
    assert followed["opened"], followed
    target = ROOT / "book" / followed["target"]
    title = next(c for c in json.loads(target.read_text(encoding="utf-8"))["cells"] if c["cell_type"] == "markdown")
    assert followed["title"] == re.match(r"# (.+)", "".join(title["source"])).group(1).replace("`", "").strip()


@pytest.mark.parametrize("name", list(CHAPTERS))
def test_no_widget_repr_is_shown(lab_report, name):
    info = chapter(lab_report, name)
    for stage in ("beforeRun", "afterRun", "afterUse", "reopened"):
        if stage in info:
            assert not info[stage]["reprs"], f"{stage}: {info[stage]['reprs'][:3]}"


@pytest.mark.parametrize("name", list(CHAPTERS))
def test_run_all_ends_without_errors(lab_report, name):
    info = chapter(lab_report, name)
    assert info["afterRun"]["running"] == 0 and info["afterRun"]["kernel"] == "idle"
    for stage in ("afterRun", "afterUse"):
        assert not info[stage]["errors"], f"{stage}: {info[stage]['errors'][:3]}"
    assert not info["pageErrors"], info["pageErrors"][:5]


@pytest.mark.parametrize("name", list(CHAPTERS))
def test_every_control_redraws_from_keyboard_and_mouse(lab_report, name):
    info = chapter(lab_report, name)
    assert len(info["explorables"]) == CHAPTERS[name][1], info["problems"]
    for e in info["explorables"]:
        assert e["kernel"] == "yes", f"{e['kind']} does not see the kernel"
        if e["kind"] == "StateFigure":  # a figure has no controls to move
            continue
        hows = {m["how"] for m in e["moves"]}
        assert hows == {"keyboard", "mouse"}, f"{e['kind']}: moved by {hows}"
        for m in e["moves"]:
            assert m["changed"], f"{e['kind']}: {m}"
            if m["how"] == "keyboard":
                assert m["activeCellKept"], f"{e['kind']}: the arrow key moved JupyterLab's active cell: {m}"


@pytest.mark.parametrize("name", list(CHAPTERS))
def test_actions_are_recomputed_in_the_kernel(lab_report, name):
    info = chapter(lab_report, name)
    acted = [a for e in info["explorables"] for a in e["actions"]]
    if not acted:
        pytest.skip("no explorable here has a kernel action without a text field")
    for a in acted:
        assert a["redrawn"], a


def test_saved_and_reloaded_notebook_draws_its_explorables(lab_report):
    name = next(iter(CHAPTERS))
    info = chapter(lab_report, name)
    assert info["reopened"]["explorables"] == CHAPTERS[name][1]
    assert not info["reopened"]["reprs"], info["reopened"]["reprs"][:3]
