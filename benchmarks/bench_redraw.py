"""Control -> redraw time of the book's explorables in Chromium, as a reader meets them.

    python benchmarks/bench_redraw.py            # both, on BOOK_HTML or a fresh build
    python benchmarks/bench_redraw.py --static   # the built pages only (no kernel)
    python benchmarks/bench_redraw.py --live --chapters 02,09  # JupyterLab, a kernel

Static: every page of the built book (BOOK_HTML, default _build/html; built with the
README's command when missing) is opened and every control of every explorable is moved
through all of its options (tests/browser/check_pages.js). Live: JupyterLab runs on a
copy of book/, each chapter with an explorable is Run All'd and every control moved by
keyboard and mouse (tests/browser/check_lab.js); an action button is recomputed in the
kernel. The time of a move is from the control's input event to the next animation frame
(what the reader sees); "redraw" is the synchronous part (the event handlers, which draw
the new state). Prints medians; goals: one frame (16 ms) without a kernel, 100 ms with
one. Timings are never asserted in the tests.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from browser_support import (  # noqa: E402
    BROWSER_DIR,
    CHROMIUM,
    browser_missing,
    jupyter_lab,
    lab_chapters,
    live_summary,
    median_ms,
    run_check_pages,
    static_redraw_summary,
)


def built_book() -> Path:
    html = Path(os.environ.get("BOOK_HTML", ROOT / "_build" / "html"))
    html = html if html.is_absolute() else ROOT / html
    if not (html / "book" / "intro.html").exists():
        subprocess.run(
            ["jupyter-book", "build", str(ROOT), "-W", "-n", "--keep-going"],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        html = ROOT / "_build" / "html"
    return html


def static(work: Path) -> dict:
    html = built_book()
    pages = sorted(str(p.relative_to(html)) for p in (html / "book").glob("*.html"))
    report = run_check_pages(html, pages, work)
    if report["returncode"] != 0:
        print(report["stderr"], file=sys.stderr)
    return static_redraw_summary(report)


def live(work: Path, chapters: str) -> dict:
    os.environ["LAB_CHAPTERS"] = chapters
    names = lab_chapters()
    out = work / "lab_report.json"
    args = [f"{name}={cells},{n}" for name, (cells, n) in names.items()]
    with jupyter_lab(work, work / "jupyter-lab.log") as url:
        res = subprocess.run(
            [
                "node",
                str(BROWSER_DIR / "check_lab.js"),
                "--lab",
                url,
                "--out",
                str(out),
                *args,
            ],
            capture_output=True,
            text=True,
            env={**os.environ, "CHROMIUM": CHROMIUM},
        )
    if res.returncode != 0:
        print(res.stderr[-3000:], file=sys.stderr)
    report = json.loads(out.read_text())
    per = {}
    for name, nb in report["notebooks"].items():
        frames = [t for e in nb.get("explorables", []) for t in e["frame"]]
        acts = [
            a["ms"]
            for e in nb.get("explorables", [])
            for a in e["actions"]
            if a["redrawn"]
        ]
        per[name] = {
            "run_all_s": nb.get("runAllSeconds"),
            "moves": len(frames),
            "median_frame_ms": median_ms(frames),
            "median_action_ms": median_ms(acts),
        }
    return {"chapters": per, **live_summary(report)}


def table_row(cells) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


def fmt(v, unit="ms"):
    return "—" if v is None else f"{v:.1f} {unit}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--static", action="store_true", help="only the built pages")
    ap.add_argument("--live", action="store_true", help="only JupyterLab with a kernel")
    ap.add_argument(
        "--chapters",
        default="",
        help="live: chapter prefixes, e.g. 02,09 (default: all with explorables)",
    )
    ap.add_argument("--json", help="also write the results to this file")
    args = ap.parse_args()
    both = not (args.static or args.live)
    reason = browser_missing()
    if reason:
        sys.exit(reason)
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        if args.static or both:
            (Path(tmp) / "static").mkdir()
            results["static"] = s = static(Path(tmp) / "static")
            print("Static pages (no kernel): control -> next frame")
            print("| page | moves | median to next frame | median redraw |")
            print("|---|---:|---:|---:|")
            for page, r in s["pages"].items():
                row = [
                    page,
                    r["moves"],
                    fmt(r["median_frame_ms"]),
                    fmt(r["median_redraw_ms"]),
                ]
                print(table_row(row))
            print(
                table_row(
                    [
                        "all",
                        s["moves"],
                        fmt(s["median_frame_ms"]),
                        fmt(s["median_redraw_ms"]),
                    ]
                )
            )
            print("goal: median <= 16 ms (one frame)\n")
        if args.live or both:
            (Path(tmp) / "live").mkdir()
            results["live"] = v = live(Path(tmp) / "live", args.chapters)
            print(
                "JupyterLab with a kernel: Run All, control -> next frame, "
                "action -> redrawn"
            )
            print(
                "| chapter | Run All | moves | median to next frame | median action |"
            )
            print("|---|---:|---:|---:|---:|")
            for name, r in v["chapters"].items():
                print(
                    table_row(
                        [
                            name,
                            fmt(r["run_all_s"], "s"),
                            r["moves"],
                            fmt(r["median_frame_ms"]),
                            fmt(r["median_action_ms"]),
                        ]
                    )
                )
            print(
                table_row(
                    [
                        "all",
                        "",
                        v["moves"],
                        fmt(v["median_frame_ms"]),
                        fmt(v["median_action_ms"]),
                    ]
                )
            )
            print("goal: median <= 100 ms per control")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
