"""What the browser checks share (tests/test_book_build.py, tests/test_lab.py and
benchmarks/bench_redraw.py): serving a built book, reading the explorables a page
stores and the text of its solution titles, recomputing the states with the core, running
the node scripts of tests/browser/, starting JupyterLab on a copy of the chapters,
choosing the chapters it opens and summing up its report."""

from __future__ import annotations

import contextlib
import functools
import html
import http.server
import json
import os
import re
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional

ROOT = Path(__file__).resolve().parents[1]
BROWSER_DIR = ROOT / "tests" / "browser"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")

STATE_RE = re.compile(
    r'<script type="application/vnd\.jupyter\.widget-state\+json">(.*?)</script>', re.S
)
VIEW_RE = re.compile(
    r'<script type="application/vnd\.jupyter\.widget-view\+json">(.*?)</script>', re.S
)
SOLUTION_TITLE_RE = re.compile(r'<p class="admonition-title">(Solution to.*?)</p>', re.S)
# the page curls quotes (Sphinx's smartquotes), JupyterLab and the exported Markdown may not
STRAIGHT_QUOTES = str.maketrans({"\u201c": '"', "\u201d": '"', "\u2018": "'", "\u2019": "'"})


def html_text(fragment: str) -> str:
    """The text of an HTML fragment: tags dropped, entities decoded, whitespace collapsed."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", "", fragment)).split())


def solution_titles(page_html: str) -> List[str]:
    """The titles of a built page's solutions, as its reader sees them ("Solution to
    Exercise 2.1 (The mask by hand)", unnumbered for a ``:nonumber:`` exercise)."""
    return [html_text(t) for t in SOLUTION_TITLE_RE.findall(page_html)]


def browser_missing() -> Optional[str]:
    """Why the browser checks cannot run here (None when they can)."""
    missing = [
        str(p)
        for p in (Path(CHROMIUM), BROWSER_DIR / "node_modules" / "playwright-core")
        if not p.exists()
    ]
    if not shutil.which("node"):
        missing.append("node")
    if missing:
        return (
            "the browser checks need node, Debian's chromium and "
            f"`npm ci --prefix tests/browser` (missing: {missing})"
        )
    return None


def require_browser() -> None:
    """Skip the calling test where the browser checks cannot run; fail under CI=1."""
    import pytest

    reason = browser_missing()
    if reason:
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def serve(directory: Path) -> Iterator[str]:
    """Serve ``directory`` over HTTP on 127.0.0.1; yields the base URL."""

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    handler = functools.partial(Quiet, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


# --- the explorables a page stores ----------------------------------------------------
def widget_state(html_text: str) -> Dict[str, Any]:
    """The page's stored widget models by id ({} when it stores none)."""
    m = STATE_RE.search(html_text)
    return json.loads(m.group(1))["state"] if m else {}


def _children(model_state: Dict[str, Any]) -> List[str]:
    ids = []
    for value in model_state.values():
        for v in value if isinstance(value, list) else [value]:
            if isinstance(v, str) and v.startswith("IPY_MODEL_"):
                ids.append(v[len("IPY_MODEL_") :])
    return ids


def page_explorables(html_text: str) -> List[Dict[str, Any]]:
    """The explorables a page draws, in document order: each displayed widget's model
    and, depth first, the models it contains, keeping those with a ``kind`` and a
    ``config``.
    """
    models = widget_state(html_text)
    found: List[Dict[str, Any]] = []

    def visit(model_id: str) -> None:
        model = models.get(model_id)
        if model is None:
            return
        st = model.get("state", {})
        if model.get("model_module") == "anywidget" and "kind" in st and "config" in st:
            if isinstance(st.get("states"), str):  # stored as one JSON text
                st = {**st, "states": json.loads(st["states"])}
            found.append(st)
        for child in _children(st):
            visit(child)

    for view in VIEW_RE.findall(html_text):
        visit(json.loads(view)["model_id"])
    return found


def drawn_texts(state: Dict[str, Any]) -> Dict[str, Any]:
    """What the view writes for one state: each panel's cell texts, or the message."""
    if "message" in state:
        return {"message": state["message"]}
    return {"panels": {p["id"]: p["text"] for p in state["panels"]}}


def recompute(saved: Dict[str, Any]):
    """The saved explorable rebuilt from its kind and config with the current core."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from cnnviz.explorable import rebuild  # imports the module that defines the kind

    return rebuild(saved["kind"], saved["config"])


def expected_states(html: Path, pages: List[str]) -> Dict[str, Any]:
    """For check_pages.js --expect: per page, per explorable, the controls and every
    state's cell texts, recomputed with the core (never read from the page).
    """
    out: Dict[str, Any] = {}
    for name in pages:
        entries = []
        for saved in page_explorables((html / name).read_text(encoding="utf-8")):
            widget = recompute(saved)
            entries.append(
                {
                    "kind": saved["kind"],
                    "controls": [
                        {"name": c["name"], "kind": c["kind"], "keys": c["keys"]}
                        for c in widget.controls
                    ],
                    "states": {
                        key: drawn_texts(st) for key, st in widget.states.items()
                    },
                }
            )
        if entries:
            out[name] = entries
    return {"pages": out}


# --- node scripts ---------------------------------------------------------------------
def run_check_pages(
    html: Path,
    pages: List[str],
    workdir: Path,
    shots: Optional[Path] = None,
    timeout: int = 900,
) -> Dict[str, Any]:
    """Run tests/browser/check_pages.js on ``pages`` of the built book ``html`` with the
    explorables' expected states; returns its report plus ``returncode`` and ``stderr``.
    """
    expect = workdir / "expected_states.json"
    expect.write_text(json.dumps(expected_states(html, pages)))
    out = workdir / "static_report.json"
    cmd = [
        "node",
        str(BROWSER_DIR / "check_pages.js"),
        "--out",
        str(out),
        "--expect",
        str(expect),
    ]
    if shots:
        cmd += ["--shots", str(shots)]
    with serve(html) as base:
        res = subprocess.run(
            cmd + ["--base", base, *pages],
            capture_output=True,
            text=True,
            timeout=timeout,
            env={**os.environ, "CHROMIUM": CHROMIUM},
        )
    report = json.loads(out.read_text()) if out.exists() else {"pages": {}}
    report.update(returncode=res.returncode, stderr=res.stderr[-6000:])
    return report


def median_ms(samples: List[float]) -> Optional[float]:
    return round(statistics.median(samples), 2) if samples else None


def static_redraw_summary(report: Dict[str, Any]) -> Dict[str, Any]:
    """Median control -> next frame and control -> redrawn (synchronous) times, per page
    and overall."""
    per_page, frames, syncs = {}, [], []
    for name, info in report["pages"].items():
        f = [t for e in info.get("explorables", []) for t in e["frame"]]
        s = [t for e in info.get("explorables", []) for t in e["sync"]]
        if f:
            per_page[name] = {
                "moves": len(f),
                "median_frame_ms": median_ms(f),
                "median_redraw_ms": median_ms(s),
            }
        frames += f
        syncs += s
    return {
        "pages": per_page,
        "moves": len(frames),
        "median_frame_ms": median_ms(frames),
        "median_redraw_ms": median_ms(syncs),
        "max_frame_ms": round(max(frames), 2) if frames else None,
    }


# --- JupyterLab on a copy of the chapters ---------------------------------------------
LAB_SETTINGS = {
    # every cell in the page (JupyterLab 4 otherwise only renders the cells in view), so
    # the
    # check sees every markdown cell and output without scrolling through the notebook
    "@jupyterlab/notebook-extension/tracker": {"windowingMode": "none"},
    # no "get notified about Jupyter news?" toast over the notebook (and no request for
    # news)
    "@jupyterlab/apputils-extension/notification": {
        "fetchNews": "false",
        "checkForUpdates": False,
    },
}


@contextlib.contextmanager
def jupyter_lab(workdir: Path, log: Path, notebooks: Optional[Path] = None) -> Iterator[str]:
    """Start JupyterLab on a copy of book/ (autosave never touches the repository), or on the
    folder ``notebooks`` (e.g. the JupyterLab edition of the chapters, as Binder opens it); yields
    the base URL with its token (``http://127.0.0.1:PORT/lab?token=...``). Stopped on exit."""
    if notebooks is None:
        notebooks = workdir / "book"
        shutil.copytree(ROOT / "book", notebooks, ignore=shutil.ignore_patterns(".ipynb_checkpoints", "_build"))
    port, token = free_port(), secrets.token_hex(16)
    cmd = [
        sys.executable,
        "-m",
        "jupyter",
        "lab",
        "--no-browser",
        "--ip=127.0.0.1",
        f"--port={port}",
        f"--ServerApp.token={token}",
        f"--notebook-dir={notebooks}",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")
    env = {
        k: v for k, v in os.environ.items() if k != "MPLBACKEND"
    }  # the kernels need the inline backend
    env["JUPYTER_CONFIG_DIR"] = str(
        workdir / "jupyter-config"
    )  # no user settings but these:
    env["JUPYTERLAB_WORKSPACES_DIR"] = str(workdir / "workspaces")
    for plugin, settings in LAB_SETTINGS.items():
        path = (
            workdir
            / "jupyter-config"
            / "lab"
            / "user-settings"
            / f"{plugin}.jupyterlab-settings"
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(settings))
    with open(log, "w") as logf:
        proc = subprocess.Popen(
            cmd, stdout=logf, stderr=subprocess.STDOUT, env=env, cwd=str(notebooks)
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 120
        while True:
            try:
                urllib.request.urlopen(
                    f"{base}/api/status?token={token}", timeout=2
                ).read()
                break
            except OSError:
                if proc.poll() is not None or time.time() > deadline:
                    raise RuntimeError(
                        f"jupyter lab did not start: {log.read_text()[-3000:]}"
                    )
                time.sleep(0.5)
        yield f"{base}/lab?token={token}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# ---------------------------------------------------------------------------
# JupyterLab: which chapters to open, and what a run reports
# ---------------------------------------------------------------------------


def explorable_count(nb: Dict[str, Any]) -> int:
    """How many explorables the notebook's outputs show (anywidget views, a `kind`)."""
    state = (
        nb.get("metadata", {})
        .get("widgets", {})
        .get("application/vnd.jupyter.widget-state+json", {})
    )
    models = state.get("state", {})
    count = 0
    for cell in nb["cells"]:
        for out in cell.get("outputs", []):
            view = out.get("data", {}).get("application/vnd.jupyter.widget-view+json")
            model = models.get(view["model_id"], {}) if view else {}
            if model.get("model_module") == "anywidget" and "kind" in model.get(
                "state", {}
            ):
                count += 1
    return count


def lab_chapters() -> Dict[str, Any]:
    """The chapters with an explorable (``LAB_CHAPTERS=02,09`` limits them): file name
    -> (number of cells, number of explorables).
    """
    chosen = [
        c.strip() for c in os.environ.get("LAB_CHAPTERS", "").split(",") if c.strip()
    ]
    out = {}
    for path in sorted((ROOT / "book").glob("*.ipynb")):
        if chosen and not any(path.stem.startswith(c) for c in chosen):
            continue
        nb = json.loads(path.read_text(encoding="utf-8"))
        n = explorable_count(nb)
        if n:
            out[path.name] = (len(nb["cells"]), n)
    return out


def live_summary(report: Dict[str, Any]) -> Dict[str, Any]:
    """Run All seconds per chapter; median input -> next frame of the controls; action
    -> redraw.
    """
    frames = [
        t
        for nb in report["notebooks"].values()
        for e in nb.get("explorables", [])
        for t in e["frame"]
    ]
    actions = [
        a["ms"]
        for nb in report["notebooks"].values()
        for e in nb.get("explorables", [])
        for a in e["actions"]
        if a["redrawn"]
    ]
    return {
        "run_all_seconds": {
            k: v.get("runAllSeconds") for k, v in report["notebooks"].items()
        },
        "moves": len(frames),
        "median_frame_ms": median_ms(frames),
        "max_frame_ms": round(max(frames), 1) if frames else None,
        "actions": len(actions),
        "median_action_ms": median_ms(actions),
    }
