"""Execute book notebooks in place so their stored outputs are fresh (and widget state
is saved).

    python scripts/run_notebooks.py                 # every notebook in book/
    python scripts/run_notebooks.py book/02_*.ipynb # some of them

Notebooks run with book/ as the working directory, as in Binder and in the nbval tests.

The saved widget state is made deterministic, so that re-executing an unchanged chapter gives
no diff: the kernel names widget models with random ids, so every model is renamed after the
order in which the chapter's outputs reach it (models that no output reaches are dropped), and
each model is stored on a line of its own (a changed explorable changes one line).
"""
import hashlib
import json
import os
import re
import sys
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]


def run(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    # coalesce_streams: consecutive prints become one output, however the kernel split them
    client = NotebookClient(nb, timeout=900, kernel_name="python3", store_widget_state=True,
                            coalesce_streams=True, resources={"metadata": {"path": str(path.parent)}})
    client.execute()
    for cell in nb.cells:  # keep diffs small and outputs free of run-dependent metadata
        cell.metadata.pop("execution", None)
    stable_widget_ids(nb, path.stem)
    write(nb, path)
    print(f"executed {path.relative_to(ROOT)}")


WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
MODEL_REF = re.compile(r"IPY_MODEL_([0-9a-f]{32})")


def _refs(value):
    """The model ids a saved widget state refers to (``"IPY_MODEL_<id>"``), in order."""
    if isinstance(value, str):
        return MODEL_REF.findall(value)
    if isinstance(value, dict):
        return [r for k in sorted(value) for r in _refs(value[k])]
    if isinstance(value, list):
        return [r for v in value for r in _refs(v)]
    return []


def stable_widget_ids(nb, name: str) -> None:
    """Rename the widget models of ``nb`` in place: model ``n`` (in the order the outputs, then the
    models' references, reach them) gets an id made from ``name`` and ``n``; unreached models go."""
    models = nb.metadata.get("widgets", {}).get(WIDGET_STATE, {}).get("state")
    if not models:
        return
    views = [o["data"][WIDGET_VIEW] for cell in nb.cells for o in cell.get("outputs", [])
             if WIDGET_VIEW in o.get("data", {})]
    order, todo = [], [v["model_id"] for v in views]
    while todo:  # depth first, in output order
        mid = todo.pop(0)
        if mid in models and mid not in order:
            order.append(mid)
            todo[:0] = _refs(models[mid]["state"])
    new = {old: hashlib.sha1(f"{name}:{n}".encode()).hexdigest()[:32] for n, old in enumerate(order)}

    def rename(value):
        if isinstance(value, str):
            return MODEL_REF.sub(lambda m: "IPY_MODEL_" + new.get(m.group(1), m.group(1)), value)
        if isinstance(value, dict):
            return {k: rename(v) for k, v in value.items()}
        if isinstance(value, list):
            return [rename(v) for v in value]
        return value

    nb.metadata["widgets"][WIDGET_STATE]["state"] = {new[old]: rename(models[old]) for old in order}
    for view in views:
        view["model_id"] = new.get(view["model_id"], view["model_id"])


def write(nb, path: Path) -> None:
    """Write as nbformat does, but the saved widget state compactly, one model per line: the
    explorables' precomputed states are large, and indenting them would more than double the file."""
    widgets = nb.metadata.pop("widgets", None)
    doc = json.loads(nbformat.writes(nb))  # validated, in nbformat's layout
    if widgets is not None:
        nb.metadata["widgets"] = widgets
        doc["metadata"]["widgets"] = "@widget-state@"
    text = json.dumps(doc, indent=1, sort_keys=True, ensure_ascii=False) + "\n"
    if widgets is not None:
        def compact(v):
            return json.dumps(v, separators=(",", ":"), sort_keys=True, ensure_ascii=False)
        saved = widgets[WIDGET_STATE]
        lines = [f"{compact(mid)}:{compact(model)}" for mid, model in sorted(saved["state"].items())]
        rest = compact({k: v for k, v in saved.items() if k != "state"})[1:-1]  # version_major, ...
        text = text.replace('"@widget-state@"', '{"' + WIDGET_STATE + '":{' + (rest + "," if rest else "")
                            + '"state":{\n' + ",\n".join(lines) + "\n}}}", 1)
    path.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    os.environ.pop("MPLBACKEND", None)  # the kernels need matplotlib's inline backend
    paths = [Path(p).resolve() for p in sys.argv[1:]] or sorted(
        (ROOT / "book").glob("*.ipynb")
    )
    for p in paths:
        run(p)
