"""Which lines of a pip requirements file are not installed here, so that installing
can be skipped when nothing is missing (tests/run.sh and .ci/run call it).

    python scripts/missing_requirements.py requirements-test.txt  # exit 1 if any

A requirement must be installed at a version its specifier accepts (as pip decides it:
``2.13.0+cpu`` satisfies ``==2.13.0``); ``-r other.txt`` is read too; ``-e .`` must be
this repository, installed in editable mode from this very folder with every module
pyproject.toml lists (a clone elsewhere, or an install from before a module was added,
does not count).
"""

from __future__ import annotations

import json
import sys
from importlib import metadata
from pathlib import Path
from typing import Iterator, List

import tomllib

ROOT = Path(__file__).resolve().parents[1]
PROJECT = "cnn-backprop-book"


def requirement_lines(path: Path) -> Iterator[str]:
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.split("#", 1)[0].strip()
        if line.startswith("-r "):
            yield from requirement_lines(path.parent / line[3:].strip())
        elif line:
            yield line


def project_installed() -> bool:
    """This folder, installed in editable mode with all modules pyproject.toml lists."""
    tool = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"][
        "setuptools"
    ]
    wanted = set(tool.get("py-modules", [])) | set(tool.get("packages", []))
    for dist in metadata.distributions(name=PROJECT):
        url = json.loads(dist.read_text("direct_url.json") or "{}")
        here = url.get("url") == ROOT.as_uri() and url.get("dir_info", {}).get(
            "editable"
        )
        if here and wanted <= set((dist.read_text("top_level.txt") or "").split()):
            return True
    return False


def installed(requirement: str) -> bool:
    if requirement == "-e .":
        return project_installed()
    try:
        from packaging.requirements import Requirement
    except ImportError:  # a bare machine: let pip decide
        return False
    req = Requirement(requirement)
    try:
        have = metadata.version(req.name)
    except metadata.PackageNotFoundError:
        return False
    return req.specifier.contains(
        have, prereleases=True
    )  # 2.13.0+cpu satisfies ==2.13.0


def missing(path: Path) -> List[str]:
    return [r for r in requirement_lines(path) if not installed(r)]


if __name__ == "__main__":
    gaps = [r for arg in sys.argv[1:] for r in missing(Path(arg))]
    print("\n".join(gaps))
    sys.exit(1 if gaps else 0)
