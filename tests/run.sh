#!/usr/bin/env bash
# Install everything the test suite needs, then run all of it:
#   unit tests, PyTorch conformance, explorable tests, nbval on every notebook, the static pages
#   of the built book in Chromium (every explorable control moved, no JavaScript error), and the
#   chapters in JupyterLab with a live kernel.
# The book build it checks: $BOOK_HTML when set (.ci/run sets it to the build it has just made),
# otherwise tests/test_book_build.py builds the book strictly into a temporary folder.
# Extra arguments go to pytest (e.g. `bash tests/run.sh -k maxpool`).
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m pip install --progress-bar off -r requirements-test.txt
# The browser check needs Debian's chromium (installed when running as root) and local copies of
# the scripts the static pages load from CDNs (tests/browser/package-lock.json).
if [ ! -x /usr/bin/chromium ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "note: /usr/bin/chromium is missing (installing it needs root): the browser check will be skipped" >&2
  fi
fi
if command -v npm >/dev/null 2>&1; then
  npm ci --prefix tests/browser --no-audit --no-fund --loglevel=error
fi
# The notebook kernels need matplotlib's inline backend: a caller's MPLBACKEND=Agg would
# make plt.show() display nothing and nbval would report missing outputs.
unset MPLBACKEND
python3 -m pytest -n 2 --dist loadfile --nbval "$@"
