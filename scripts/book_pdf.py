"""Print the built book to one PDF for offline reading.

    python scripts/book_pdf.py [--html _build/html] [--out _build/html/cnn-backprop-book.pdf]

Build the book first (the README's first command). Every page of the table of contents is
printed by headless Chromium (``chromium --headless --print-to-pdf``) in table-of-contents
order, with its equations typeset by MathJax and its exercise solutions unfolded (the book's
print stylesheet, ``_static/book.css``, shows folded content on paper). The pages are then
joined into one PDF with a bookmark per chapter (pypdf). By default the PDF is written next to
the pages, where each page's download menu links it (the Pages workflow publishes it there).

The pages are served from a local web server while they print. MathJax normally comes from its
CDN; where a local copy exists (``tests/browser/node_modules/mathjax``, installed by
``tests/run.sh``) or ``--mathjax DIR`` names one, that copy is served instead, so the PDF can
be made offline.
"""
from __future__ import annotations

import argparse
import html as html_lib
import http.server
import io
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
MATHJAX_CDN = re.compile(r"https://cdn\.jsdelivr\.net/npm/mathjax@3[^/\"']*/es5/")
LOCAL_MATHJAX = ROOT / "tests" / "browser" / "node_modules" / "mathjax" / "es5"
LOCAL_PREFIX = "/__book_pdf_mathjax__/"
BOOK_PDF = "cnn-backprop-book.pdf"  # its name next to the pages, where their download menus link it
# Printed pages wait for MathJax: Chromium prints once the page is loaded and this much
# (virtual) time has passed without pending work.
VIRTUAL_TIME_BUDGET_MS = 60000


def toc_pages(root: Path = ROOT) -> list[str]:
    """The documents of ``_toc.yml`` in reading order (root first), without suffixes."""
    toc = yaml.safe_load((root / "_toc.yml").read_text(encoding="utf-8"))
    pages = [toc["root"]]

    def walk(entries):
        for entry in entries or []:
            if "file" in entry:
                pages.append(entry["file"])
            walk(entry.get("sections"))

    for part in toc.get("parts", []):
        walk(part.get("chapters"))
    walk(toc.get("chapters"))
    return [re.sub(r"\.(md|ipynb)$", "", p) for p in pages]


def find_chromium(explicit: str | None = None) -> str:
    for candidate in (explicit, os.environ.get("CHROMIUM"), "/usr/bin/chromium",
                      shutil.which("chromium"), shutil.which("chromium-browser")):
        if candidate and Path(candidate).exists():
            return candidate
    raise SystemExit("book_pdf: Chromium not found (install Debian's `chromium` or pass --chromium PATH)")


def page_title(path: Path) -> str:
    m = re.search(r"<title>(.*?)</title>", path.read_text(encoding="utf-8"), re.S)
    title = html_lib.unescape(m.group(1)).split(" \u2014 ")[0].strip() if m else path.stem
    return title


def _handler(html_dir: Path, mathjax_dir: Path | None):
    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(html_dir), **kwargs)

        def log_message(self, *args):  # quiet
            pass

        def translate_path(self, path):
            if mathjax_dir is not None and path.startswith(LOCAL_PREFIX):
                rel = path[len(LOCAL_PREFIX):].split("?")[0].split("#")[0]
                target = (mathjax_dir / rel).resolve()
                if mathjax_dir.resolve() in target.parents:
                    return str(target)
            return super().translate_path(path)

        def send_head(self):
            path = self.path.split("?")[0]
            if mathjax_dir is None or not path.endswith(".html"):
                return super().send_head()
            file = Path(self.translate_path(path))
            if not file.is_file():
                return super().send_head()
            # serve MathJax from the local copy (the CDN's integrity hash belongs to other bytes)
            text = file.read_text(encoding="utf-8")
            text = MATHJAX_CDN.sub(LOCAL_PREFIX, text)
            text = re.sub(r'\s+integrity="[^"]*"', "", text)
            body = text.encode("utf-8")
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            return io.BytesIO(body)

    return Handler


def print_page(chromium: str, url: str, out: Path, profile: Path) -> None:
    cmd = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           "--hide-scrollbars", f"--user-data-dir={profile}", "--no-pdf-header-footer",
           "--run-all-compositor-stages-before-draw", f"--virtual-time-budget={VIRTUAL_TIME_BUDGET_MS}",
           f"--print-to-pdf={out}", url]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    if res.returncode != 0 or not out.exists() or out.stat().st_size == 0:
        raise SystemExit(f"book_pdf: chromium could not print {url}:\n{res.stderr[-2000:]}")


def build_pdf(html_dir: Path, out: Path, chromium: str | None = None, mathjax_dir: Path | None = None,
              root: Path = ROOT) -> Path:
    from pypdf import PdfReader, PdfWriter

    html_dir = html_dir.resolve()
    pages = toc_pages(root)
    missing = [p for p in pages if not (html_dir / f"{p}.html").exists()]
    if missing:
        raise SystemExit(f"book_pdf: {html_dir} lacks {missing}; build the book first")
    chromium = find_chromium(chromium)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _handler(html_dir, mathjax_dir))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_port}"
    writer = PdfWriter()
    try:
        with tempfile.TemporaryDirectory(prefix="book_pdf_") as tmp:
            tmp = Path(tmp)
            for i, page in enumerate(pages):
                part = tmp / f"{i:02d}.pdf"
                print_page(chromium, f"{base}/{page}.html", part, tmp / "profile")
                start = len(writer.pages)
                writer.append(PdfReader(part))
                writer.add_outline_item(title=page_title(html_dir / f"{page}.html"), page_number=start)
                print(f"  {page}: {len(writer.pages) - start} pages", file=sys.stderr)
    finally:
        server.shutdown()
    writer.add_metadata({"/Title": page_title(html_dir / f"{pages[0]}.html")})
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
    ap.add_argument("--mathjax", type=Path, default=LOCAL_MATHJAX if LOCAL_MATHJAX.is_dir() else None,
                    help="a local MathJax 3 es5/ directory to serve instead of the CDN")
    args = ap.parse_args(argv)
    out = build_pdf(args.html, args.out or args.html / BOOK_PDF, args.chromium, args.mathjax)
    from pypdf import PdfReader
    print(f"wrote {out} ({len(PdfReader(out).pages)} pages)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
