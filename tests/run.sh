#!/usr/bin/env bash
# Install what the test suite needs and is missing, then run all of it (every tier: `-m ""`):
#   unit tests, PyTorch conformance, explorable tests, nbval on every notebook, the static pages
#   of the built book in Chromium (every explorable control moved, no JavaScript error), a phone
#   and dark mode, the PDF, and the chapters in JupyterLab with a live kernel.
# Plain `python3 -m pytest` runs only the fast tier (see pyproject.toml and tests/conftest.py).
# The book build it checks: $BOOK_HTML when set (.ci/run sets it to the build it has just made),
# otherwise the first test that needs it builds the book strictly into a temporary folder, once.
# Extra arguments go to pytest (e.g. `bash tests/run.sh -k maxpool`).
set -euo pipefail
cd "$(dirname "$0")/.."
# pip: only when a requirement is missing or at another version (scripts/missing_requirements.py)
if ! missing=$(python3 scripts/missing_requirements.py requirements-test.txt); then
  echo "installing the test requirements (missing: ${missing//$'\n'/, })"
  python3 -m pip install --progress-bar off -r requirements-test.txt
fi
# The browser check needs Debian's chromium (installed when running as root) and local copies of
# the scripts the static pages load from CDNs (tests/browser/package-lock.json).
if [ ! -x /usr/bin/chromium ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "note: /usr/bin/chromium is missing (installing it needs root): the browser check will be skipped" >&2
  fi
fi
# npm: only when tests/browser/node_modules does not hold exactly what package-lock.json pins
node_modules_current() {
  python3 - <<'PY'
import json, pathlib, sys
want = pathlib.Path("tests/browser/package-lock.json")
have = pathlib.Path("tests/browser/node_modules/.package-lock.json")
if not have.exists():
    sys.exit(1)
pinned = lambda p: {k: v.get("version") for k, v in json.loads(p.read_text())["packages"].items() if k}
sys.exit(0 if pinned(want) == pinned(have) else 1)
PY
}
if command -v npm >/dev/null 2>&1 && ! node_modules_current; then
  npm ci --prefix tests/browser --no-audit --no-fund --loglevel=error
fi
# The notebook kernels need matplotlib's inline backend: a caller's MPLBACKEND=Agg would
# make plt.show() display nothing and nbval would report missing outputs.
unset MPLBACKEND
# --no-loadscope-reorder: keep conftest.py's order, the longest files first
python3 -m pytest -n 2 --dist loadfile --no-loadscope-reorder --nbval -m "" "$@"
