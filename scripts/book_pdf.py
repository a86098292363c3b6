"""Print the built book to one PDF for offline reading: a title page, a contents page with page
numbers, then every page of the table of contents, with every explorable drawn.

    python scripts/book_pdf.py [--html _build/html] [--out _build/html/cnn-backprop-book.pdf]

Build the book first (the README's first command). Headless Chromium (Debian's ``chromium``,
driven over the DevTools protocol on a pipe: no extra package) opens each page from a local web
server and waits until the page is drawn: MathJax has typeset every equation, the widget
manager has drawn every explorable from the page's saved state (the page's ``div.cnnx`` roots
are counted against the explorables its widget state holds), fonts and images are loaded. A page
whose explorables are not all drawn within a minute stops the script with an error naming the
page and the explorables missing -- never a PDF without them. Each page is then printed with the
book's print stylesheet (``_static/book.css``: A4, solutions unfolded, code lines wrapped whole
by ``_static/book_print.js``). pypdf joins the pages behind a title page and a contents page
(linked, with page numbers), numbers the pages at their foot and adds a bookmark per chapter.

The pages load MathJax, require.js and the Jupyter widget manager from CDNs. Where local copies
exist (``tests/browser/node_modules``, installed by ``npm ci --prefix tests/browser``, or the
directory given with ``--scripts``) they are served instead, so the PDF can be made offline;
otherwise the CDNs must be reachable. By default the PDF is written next to the pages, where
each page's download menu links it when the book was built with ``BOOK_PDF_LINK=1`` (the Pages
workflow builds it that way and publishes both).
"""
from __future__ import annotations

import argparse
import base64
import html as html_lib
import http.server
import io
import json
import mimetypes
import os
import re
import select
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from export_notebooks import load_config, toc_entries  # the book's configuration and contents, as the export reads them

ROOT = Path(__file__).resolve().parents[1]
LOCAL_SCRIPTS = ROOT / "tests" / "browser" / "node_modules"
BOOK_PDF = "cnn-backprop-book.pdf"  # its name next to the pages, where their download menus link it
# the CDN scripts of the pages and where their copies sit in an npm node_modules directory
CDN_COPIES = [
    (re.compile(r"/mathjax@3[^/]*/es5/(.*)$"), "mathjax/es5/{0}"),
    (re.compile(r"/require\.js/[^/]+/require(?:\.min)?\.js$"), "requirejs/require.js"),
    (re.compile(r"/@jupyter-widgets/html-manager@[^/]*/dist/(.*)$"), "@jupyter-widgets/html-manager/dist/{0}"),
]
DRAW_TIMEOUT_S = 60
A4_MM = (210, 297)


# --- the book's pages ----------------------------------------------------------------------------
def page_title(path: Path) -> str:
    """The page's heading as the reader sees it ("5. Backpropagating through ...")."""
    text = path.read_text(encoding="utf-8")
    article = text.find("<article")
    m = re.search(r"<h1[^>]*>(.*?)</h1>", text[max(article, 0):], re.S)
    if m:
        title = re.sub(r"<[^>]+>", "", m.group(1))
    else:
        m = re.search(r"<title>(.*?)</title>", text, re.S)
        title = m.group(1).split(" \u2014 ")[0] if m else path.stem
    return re.sub(r"\s+", " ", html_lib.unescape(title).replace("#", "")).strip()


def find_chromium(explicit: str | None = None) -> str:
    for candidate in (explicit, os.environ.get("CHROMIUM"), "/usr/bin/chromium",
                      shutil.which("chromium"), shutil.which("chromium-browser")):
        if candidate and Path(candidate).exists():
            return candidate
    raise SystemExit("book_pdf: Chromium not found (install Debian's `chromium` or pass --chromium PATH)")


def local_copy(url: str, scripts: Path | None) -> Path | None:
    """The local copy of a CDN script (None when there is none)."""
    if scripts is None:
        return None
    path = url.split("?")[0].split("#")[0]
    for pattern, rel in CDN_COPIES:
        m = pattern.search(path)
        if m:
            file = (scripts / rel.format(*m.groups())).resolve()
            if file.is_file() and scripts.resolve() in file.parents:
                return file
    return None


def _server(html_dir: Path) -> http.server.ThreadingHTTPServer:
    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(html_dir), **kwargs)

        def log_message(self, *args):  # quiet
            pass

        def send_head(self):
            path = self.path.split("?")[0]
            file = Path(self.translate_path(path))
            if not path.endswith(".html") or not file.is_file():
                return super().send_head()
            # the pages pin the CDNs' bytes with integrity hashes; local copies are other bytes
            body = re.sub(r'\s+integrity="[^"]*"', "", file.read_text(encoding="utf-8")).encode("utf-8")
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            return io.BytesIO(body)

    return http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)


# --- Chromium over the DevTools protocol on a pipe ----------------------------------------------
class BrowserError(RuntimeError):
    pass


class Chromium:
    """Headless Chromium driven over ``--remote-debugging-pipe`` (JSON messages ending in NUL on
    file descriptors 3 and 4): one page, requests to the CDNs answered from local copies."""

    def __init__(self, executable: str, profile: Path, scripts: Path | None, base: str):
        cmd_r, self._cmd_w = os.pipe()
        self._res_r, res_w = os.pipe()

        def remap():  # the child reads commands on fd 3 and writes replies on fd 4
            a, b = os.dup(cmd_r), os.dup(res_w)
            os.dup2(a, 3)
            os.dup2(b, 4)

        args = [executable, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-dev-shm-usage", "--hide-scrollbars", "--remote-debugging-pipe",
                f"--user-data-dir={profile}", "about:blank"]
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, preexec_fn=remap, pass_fds=(3, 4))
        os.close(cmd_r)
        os.close(res_w)
        self._buf = b""
        self._id = 0
        self._events: list[dict] = []
        self.scripts, self.base = scripts, base
        self.errors: list[str] = []          # JavaScript errors of the current page
        self.failed: list[str] = []          # requests of the current page that failed
        target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        self.page_id = self.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for method, params in [("Page.enable", {}), ("Runtime.enable", {}), ("Network.enable", {}),
                               ("Fetch.enable", {"patterns": [{"urlPattern": "*"}]}),
                               ("Emulation.setDeviceMetricsOverride",
                                {"width": 1280, "height": 900, "deviceScaleFactor": 1, "mobile": False})]:
            self.call(method, params, on_page=True)

    # messages
    def _send(self, method: str, params: dict, on_page: bool) -> int:
        self._id += 1
        msg = {"id": self._id, "method": method, "params": params}
        if on_page:
            msg["sessionId"] = self.page_id
        os.write(self._cmd_w, json.dumps(msg).encode("utf-8") + b"\0")
        return self._id

    def _read(self, timeout: float) -> dict | None:
        while b"\0" not in self._buf:
            ready, _, _ = select.select([self._res_r], [], [], timeout)
            if not ready:
                return None
            chunk = os.read(self._res_r, 1 << 20)
            if not chunk:
                raise BrowserError(f"Chromium exited: {self.proc.stderr.read().decode(errors='replace')[-2000:]}")
            self._buf += chunk
        raw, self._buf = self._buf.split(b"\0", 1)
        return json.loads(raw)

    def _handle(self, msg: dict) -> None:
        method, params = msg.get("method"), msg.get("params", {})
        if method == "Fetch.requestPaused":
            self._route(params)
        elif method == "Runtime.exceptionThrown":
            d = params["exceptionDetails"]
            self.errors.append((d.get("exception") or {}).get("description") or d.get("text", "error"))
        elif method == "Network.loadingFailed" and not params.get("canceled"):
            self.failed.append(f"{params.get('type', '?')} {params.get('errorText', '')}")
        else:
            self._events.append(msg)

    def _route(self, params: dict) -> None:
        url, rid = params["request"]["url"], params["requestId"]
        file = None if url.startswith(self.base) else local_copy(url, self.scripts)
        if file is None:
            self._send("Fetch.continueRequest", {"requestId": rid}, on_page=True)
            return
        ctype = mimetypes.guess_type(file.name)[0] or "application/octet-stream"
        if file.suffix == ".js":
            ctype = "application/javascript"
        self._send("Fetch.fulfillRequest", {
            "requestId": rid, "responseCode": 200,
            "responseHeaders": [{"name": "Content-Type", "value": ctype},
                                {"name": "Access-Control-Allow-Origin", "value": "*"}],
            "body": base64.b64encode(file.read_bytes()).decode("ascii")}, on_page=True)

    def call(self, method: str, params: dict | None = None, on_page: bool = False, timeout: float = 120) -> dict:
        wanted = self._send(method, params or {}, on_page)
        deadline = time.monotonic() + timeout
        while True:
            msg = self._read(max(0.0, deadline - time.monotonic()))
            if msg is None:
                raise BrowserError(f"{method}: no reply within {timeout} s")
            if msg.get("id") == wanted:
                if "error" in msg:
                    raise BrowserError(f"{method}: {msg['error'].get('message')}")
                return msg.get("result", {})
            if "method" in msg:
                self._handle(msg)

    def wait_event(self, method: str, timeout: float) -> dict:
        for i, msg in enumerate(self._events):
            if msg["method"] == method:
                return self._events.pop(i)
        deadline = time.monotonic() + timeout
        while True:
            msg = self._read(max(0.0, deadline - time.monotonic()))
            if msg is None:
                raise BrowserError(f"no {method} within {timeout} s")
            if "method" in msg:
                if msg["method"] == method:
                    return msg
                self._handle(msg)

    # a page
    def open(self, url: str) -> None:
        self.errors, self.failed, self._events = [], [], []
        self.call("Page.navigate", {"url": url}, on_page=True)
        self.wait_event("Page.loadEventFired", timeout=120)

    def evaluate(self, expression: str, timeout: float = 120):
        res = self.call("Runtime.evaluate", {"expression": expression, "awaitPromise": True,
                                             "returnByValue": True}, on_page=True, timeout=timeout)
        if "exceptionDetails" in res:
            raise BrowserError(res["exceptionDetails"].get("exception", {}).get("description", "error"))
        return res["result"].get("value")

    def set_content(self, html: str) -> None:
        self.open("about:blank")
        frame = self.call("Page.getFrameTree", on_page=True)["frameTree"]["frame"]["id"]
        self.call("Page.setDocumentContent", {"frameId": frame, "html": html}, on_page=True)
        self.evaluate("document.fonts.ready.then(() => true)")

    def pdf(self) -> bytes:
        res = self.call("Page.printToPDF", {"printBackground": True, "preferCSSPageSize": True,
                                            "displayHeaderFooter": False}, on_page=True, timeout=300)
        return base64.b64decode(res["data"])

    def close(self) -> None:
        try:
            self._send("Browser.close", {}, on_page=False)
            self.proc.wait(timeout=20)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait()
        finally:
            os.close(self._cmd_w)
            os.close(self._res_r)


# In the page: wait until it is drawn; returns what the page's widget state holds and what it drew.
DRAWN_JS = r"""
(async (timeoutMs) => {
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
  const until = async (cond) => {
    const t0 = Date.now();
    while (!cond() && Date.now() - t0 < timeoutMs) await sleep(100);
    return cond();
  };
  if (document.querySelector('script[src*="mathjax@"]')) {
    await until(() => window.MathJax && MathJax.startup && MathJax.startup.promise);
    if (window.MathJax && MathJax.startup && MathJax.startup.promise) await MathJax.startup.promise;
  }
  // the explorables the page stores: anywidget models with a kind, reached from a displayed view
  const state = document.querySelector('script[type="application/vnd.jupyter.widget-state+json"]');
  const models = state ? JSON.parse(state.textContent).state : {};
  const expected = [];
  const visit = (id) => {
    const m = models[id]; if (!m) return;
    const st = m.state || {};
    if (m.model_module === "anywidget" && st.kind) expected.push(st.kind);
    for (const v of Object.values(st)) for (const x of (Array.isArray(v) ? v : [v]))
      if (typeof x === "string" && x.startsWith("IPY_MODEL_")) visit(x.slice(10));
  };
  for (const s of document.querySelectorAll('script[type="application/vnd.jupyter.widget-view+json"]'))
    visit(JSON.parse(s.textContent).model_id);
  const drawn = () => Array.from(document.querySelectorAll("div.cnnx[data-key]")).map((e) => e.dataset.kind || "?");
  await until(() => drawn().length >= expected.length);
  await until(() => Array.from(document.images).every((i) => i.complete));
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) await MathJax.startup.promise;
  await document.fonts.ready;
  await sleep(expected.length ? 500 : 50);  // late typesetting of the explorables' labels
  if (window.cnnBookPrintLines) window.cnnBookPrintLines();
  return { expected, drawn: drawn() };
})(%d)
"""


def missing_explorables(expected: list[str], drawn: list[str]) -> list[str]:
    left = list(drawn)
    missing = []
    for kind in expected:
        if kind in left:
            left.remove(kind)
        else:
            missing.append(kind)
    return missing


# --- front matter and page numbers ---------------------------------------------------------------
def _page_css(margin_mm: str = "0") -> str:
    return (f"@page {{ size: A4; margin: {margin_mm}; }} html, body {{ margin: 0; padding: 0; }} "
            "body { font-family: 'DejaVu Sans', system-ui, sans-serif; color: #14181e; }")


ROW_MM, TOP_MM, LEFT_MM, RIGHT_MM = 8.0, 52.0, 25.0, 25.0  # the contents page's fixed layout


def front_matter_html(config: dict, chapters: list[tuple[str | None, str, int]]) -> str:
    """The title page and the contents page (one row per page of the book, at fixed heights so
    that their links can be placed without measuring)."""
    esc = html_lib.escape
    title, author = config.get("title", "The book"), config.get("author", "")
    repo = (config.get("repository") or {}).get("url", "")
    rows, y, last_caption = [], TOP_MM, None
    for caption, name, page in chapters:
        if caption and caption != last_caption:
            rows.append(f'<div class="part" style="top:{y:.1f}mm">{esc(caption)}</div>')
            y += ROW_MM
            last_caption = caption
        rows.append(f'<div class="row" style="top:{y:.1f}mm"><span class="t">{esc(name)}</span>'
                    f'<span class="n">{page}</span></div>')
        y += ROW_MM
    return f"""<!doctype html><html><head><meta charset="utf-8"><style>{_page_css()}
.sheet {{ position: relative; width: {A4_MM[0]}mm; height: {A4_MM[1]}mm; overflow: hidden; break-after: page; }}
.title {{ position: absolute; top: 80mm; left: {LEFT_MM}mm; right: {RIGHT_MM}mm; }}
.title h1 {{ font-size: 28pt; line-height: 1.2; margin: 0 0 10mm; font-weight: 600; }}
.title p {{ font-size: 12pt; margin: 0 0 3mm; color: #3a4250; }}
.foot {{ position: absolute; bottom: 25mm; left: {LEFT_MM}mm; right: {RIGHT_MM}mm;
         font-size: 9.5pt; color: #3a4250; line-height: 1.5; }}
h2 {{ position: absolute; top: 30mm; left: {LEFT_MM}mm; font-size: 20pt; margin: 0; font-weight: 600; }}
.row, .part {{ position: absolute; left: {LEFT_MM}mm; right: {RIGHT_MM}mm;
               height: {ROW_MM}mm; line-height: {ROW_MM}mm; font-size: 11pt; }}
.part {{ font-weight: 600; color: #3a4250; }}
.row {{ display: flex; padding-left: 5mm; }}
.row .t {{ flex: 1; white-space: nowrap; overflow: hidden; text-overflow: clip; }}
.row .t::after {{ content: "{' .' * 52}"; color: #9aa3ad; }}
.row .n {{ padding-left: 3mm; font-variant-numeric: tabular-nums; }}
</style></head><body>
<div class="sheet"><div class="title"><h1>{esc(title)}</h1><p>{esc(author)}</p></div>
<div class="foot">Printed from the web edition. Each explorable is shown in the state it opens in;
on the web page{' (' + esc(repo) + ')' if repo else ''} every control of it can be moved, and every
chapter runs in Binder or Colab.</div></div>
<div class="sheet"><h2>Contents</h2>{''.join(rows)}</div>
</body></html>"""


def contents_links(chapters: list[tuple[str | None, str, int]], height_pt: float) -> list[tuple[tuple, int]]:
    """Rectangles (PDF points) of the contents rows and the page index each one opens."""
    mm = 72 / 25.4
    out, y, last_caption = [], TOP_MM, None
    for caption, _, page in chapters:
        if caption and caption != last_caption:
            y += ROW_MM
            last_caption = caption
        top, bottom = height_pt - y * mm, height_pt - (y + ROW_MM) * mm
        out.append(((LEFT_MM * mm, bottom, (A4_MM[0] - RIGHT_MM) * mm, top), page - 1))
        y += ROW_MM
    return out


def numbers_html(count: int, skip: int) -> str:
    """``count`` A4 sheets, each with its page number at the foot (none on the first ``skip``)."""
    sheets = "".join(f'<div class="sheet"><span>{"" if i < skip else i + 1}</span></div>' for i in range(count))
    return f"""<!doctype html><html><head><meta charset="utf-8"><style>{_page_css()}
.sheet {{ position: relative; width: {A4_MM[0]}mm; height: {A4_MM[1]}mm; break-after: page; }}
.sheet span {{ position: absolute; bottom: 8mm; left: 0; right: 0;
               text-align: center; font-size: 9pt; color: #4a5260; }}
</style></head><body>{sheets}</body></html>"""


# --- the book ------------------------------------------------------------------------------------
def build_pdf(html_dir: Path, out: Path, chromium: str | None = None, scripts: Path | None = None,
              root: Path = ROOT, log=sys.stderr) -> Path:
    from pypdf import PdfReader, PdfWriter
    from pypdf.annotations import Link

    html_dir = html_dir.resolve()
    entries = toc_entries(root)
    missing = [doc for _, doc in entries if not (html_dir / f"{doc}.html").exists()]
    if missing:
        raise SystemExit(f"book_pdf: {html_dir} lacks {missing}; build the book first")
    config = load_config(root)
    executable = find_chromium(chromium)
    if scripts is None:
        print("book_pdf: no local copies of the CDN scripts (npm ci --prefix tests/browser): "
              "MathJax, require.js and the widget manager come from their CDNs", file=log)
    server = _server(html_dir)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_port}/"
    parts: list[tuple[str | None, str, bytes]] = []
    with tempfile.TemporaryDirectory(prefix="book_pdf_") as tmp:
        browser = Chromium(executable, Path(tmp) / "profile", scripts, base)
        try:
            for caption, doc in entries:
                started = time.monotonic()
                browser.open(base + f"{doc}.html")
                result = browser.evaluate(DRAWN_JS % (DRAW_TIMEOUT_S * 1000), timeout=DRAW_TIMEOUT_S + 120)
                lost = missing_explorables(result["expected"], result["drawn"])
                if lost:
                    hint = "; failed requests: " + ", ".join(browser.failed[:5]) if browser.failed else ""
                    errors = "; JavaScript errors: " + " | ".join(e.splitlines()[0] for e in browser.errors[:3]) \
                        if browser.errors else ""
                    raise SystemExit(f"book_pdf: {doc}.html: the explorable(s) {lost} were not drawn within "
                                     f"{DRAW_TIMEOUT_S} s ({len(result['drawn'])} of {len(result['expected'])} "
                                     f"drawn){hint}{errors}. No PDF was written.")
                parts.append((caption, page_title(html_dir / f"{doc}.html"), browser.pdf()))
                n = len(PdfReader(io.BytesIO(parts[-1][2])).pages)
                print(f"  {doc}: {n} pages, {len(result['expected'])} explorables "
                      f"({time.monotonic() - started:.1f} s)", file=log)
            # the front matter: a title page and a contents page, then page numbers on every page
            front_pages = 2
            start, chapters = front_pages + 1, []
            for caption, name, data in parts:
                chapters.append((caption, name, start))
                start += len(PdfReader(io.BytesIO(data)).pages)
            browser.set_content(front_matter_html(config, chapters))
            front = browser.pdf()
            if len(PdfReader(io.BytesIO(front)).pages) != front_pages:
                raise SystemExit("book_pdf: the contents do not fit one page")
            browser.set_content(numbers_html(start - 1, skip=front_pages))
            numbers = PdfReader(io.BytesIO(browser.pdf()))
        finally:
            browser.close()
            server.shutdown()
            server.server_close()

    writer = PdfWriter()
    writer.append(PdfReader(io.BytesIO(front)))
    writer.add_outline_item(title="Contents", page_number=1)
    for (caption, name, data), (_, _, first) in zip(parts, chapters):
        writer.append(PdfReader(io.BytesIO(data)))
        writer.add_outline_item(title=name, page_number=first - 1)
    for i, page in enumerate(writer.pages):
        if i >= front_pages:
            page.merge_page(numbers.pages[i])
    height = float(writer.pages[1].mediabox.height)
    for rect, target in contents_links(chapters, height):
        writer.add_annotation(page_number=1, annotation=Link(rect=rect, target_page_index=target))
    writer.add_metadata({"/Title": config.get("title", ""), "/Author": config.get("author", "")})
    writer.page_mode = "/UseOutlines"
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "wb") as fh:
        writer.write(fh)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--html", type=Path, default=ROOT / "_build" / "html", help="the built book (default _build/html)")
    ap.add_argument("--out", type=Path, help=f"the PDF to write (default HTML/{BOOK_PDF})")
    ap.add_argument("--chromium", help="Chromium executable (default $CHROMIUM or /usr/bin/chromium)")
    ap.add_argument("--scripts", type=Path, default=LOCAL_SCRIPTS if LOCAL_SCRIPTS.is_dir() else None,
                    help="an npm node_modules directory with mathjax, requirejs and @jupyter-widgets/html-manager "
                         "to serve instead of the CDNs (default tests/browser/node_modules when it exists)")
    args = ap.parse_args(argv)
    try:
        out = build_pdf(args.html, args.out or args.html / BOOK_PDF, args.chromium, args.scripts)
    except BrowserError as e:
        raise SystemExit(f"book_pdf: {e}")
    from pypdf import PdfReader
    print(f"wrote {out} ({len(PdfReader(out).pages)} pages)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
