"""Execute book notebooks in place so their stored outputs are fresh (and widget state
is saved).

    python scripts/run_notebooks.py                 # every notebook in book/
    python scripts/run_notebooks.py book/02_*.ipynb # some of them

Notebooks run with book/ as the working directory, as in Binder and in the nbval tests.
"""

import json
import os
import sys
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]


def run(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb,
        timeout=900,
        kernel_name="python3",
        store_widget_state=True,
        resources={"metadata": {"path": str(path.parent)}},
    )
    client.execute()
    for cell in nb.cells:  # keep diffs small and outputs free of run-dependent metadata
        cell.metadata.pop("execution", None)
    write(nb, path)
    print(f"executed {path.relative_to(ROOT)}")


def write(nb, path: Path) -> None:
    """Write as nbformat does, but the saved widget state on one compact line: the
    explorables' precomputed states are large, and indenting them would more than double
    the file.
    """
    widgets = nb.metadata.pop("widgets", None)
    doc = json.loads(nbformat.writes(nb))  # validated, in nbformat's layout
    if widgets is not None:
        nb.metadata["widgets"] = widgets
        doc["metadata"]["widgets"] = "@widget-state@"
    text = json.dumps(doc, indent=1, sort_keys=True, ensure_ascii=False) + "\n"
    if widgets is not None:
        compact = json.dumps(
            widgets, separators=(",", ":"), sort_keys=True, ensure_ascii=False
        )
        text = text.replace('"@widget-state@"', compact, 1)
    path.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    os.environ.pop("MPLBACKEND", None)  # the kernels need matplotlib's inline backend
    paths = [Path(p).resolve() for p in sys.argv[1:]] or sorted(
        (ROOT / "book").glob("*.ipynb")
    )
    for p in paths:
        run(p)
