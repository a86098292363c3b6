"""Shared fixtures, hypothesis strategies and helpers for the test suite, and its tiers.

The hypothesis profile "core" is registered and loaded here so that every run
(local and CI) is reproducible: ``derandomize=True`` draws the same examples each
time, ``deadline=None`` avoids flaky timing failures on slow CI machines and
``print_blob=True`` prints a reproduction blob when a test fails.

Test modules import the strategies with ``from conftest import ...`` (pytest puts
this directory on ``sys.path``).  ``LAYERS`` runs a test over the teaching core and the
fast module; ``pytest_collection_modifyitems`` marks the tiers (the end of this file).
"""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Tuple

import numpy as np
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# the core lives at the project root; the build's scripts (export_notebooks, ...) in scripts/
for _path in (os.path.join(_ROOT, "scripts"), _ROOT):
    if _path not in sys.path:
        sys.path.insert(0, _path)

settings.register_profile(
    "core",
    deadline=None,
    derandomize=True,
    print_blob=True,
    max_examples=100,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
# a longer, randomised run for local bug hunting: HYPOTHESIS_PROFILE=thorough pytest
# tests/
settings.register_profile(
    "thorough",
    parent=settings.get_profile("core"),
    derandomize=False,
    max_examples=1000,
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "core"))


# ---------------------------------------------------------------------------
# The two implementations of the layers: one suite proves both
# ---------------------------------------------------------------------------

import mlp_cnn_core  # noqa: E402  (after the sys.path line above)
import mlp_cnn_fast  # noqa: E402


class _LargePaths:
    """mlp_cnn_fast with its paths for small arrays switched off and its convolution
    columns cut into chunks of 16 outputs, so that the tests' small examples
    reach the code that large arrays take (max pooling: one map at a time)."""

    _LIMITS = {"_SMALL": -1, "_COLUMN_BYTES": 1, "_MAPS_BYTES": 1}

    def __getattr__(self, name):
        attr = getattr(mlp_cnn_fast, name)
        if not callable(attr) or isinstance(attr, type):
            return attr

        def call(*args, **kwargs):
            saved = {k: getattr(mlp_cnn_fast, k) for k in self._LIMITS}
            vars(mlp_cnn_fast).update(self._LIMITS)
            try:
                return attr(*args, **kwargs)
            finally:
                vars(mlp_cnn_fast).update(saved)

        return call


#: ``@LAYERS`` runs a test with ``layers`` = the teaching core, the fast module, and the
#: fast module on the paths it takes for large arrays
LAYERS = pytest.mark.parametrize(
    "layers",
    [mlp_cnn_core, mlp_cnn_fast, _LargePaths()],
    ids=["core", "fast", "fast-large"],
)


# ---------------------------------------------------------------------------
# Array helpers
# ---------------------------------------------------------------------------

VALUE_KINDS = ("float", "ints", "halves")


def make_array(
    rng: np.random.Generator, shape, kind: str = "float", dtype=np.float64
) -> np.ndarray:
    """A random array.

    ``"float"``: standard normal (ties have probability 0);
    ``"ints"``: integers from {-2, ..., 2} (full of ties, exactly representable);
    ``"halves"``: multiples of 0.5 in [-2, 2] (ties, exactly representable).
    """
    if kind == "float":
        a = rng.standard_normal(shape)
    elif kind == "ints":
        a = rng.integers(-2, 3, size=shape).astype(np.float64)
    elif kind == "halves":
        a = rng.integers(-4, 5, size=shape) / 2.0
    else:  # pragma: no cover - test bug
        raise ValueError(kind)
    return np.asarray(a, dtype=dtype)


def assert_close(
    actual, expected, atol: float = 1e-10, rtol: float = 0.0, err_msg: str = ""
) -> None:
    """Shapes equal and values within tolerance (NaNs in the same places)."""
    actual = np.asarray(actual)
    expected = np.asarray(expected)
    assert actual.shape == expected.shape, (
        f"{err_msg}: shape {actual.shape} != {expected.shape}"
    )
    np.testing.assert_allclose(
        actual, expected, rtol=rtol, atol=atol, err_msg=err_msg, equal_nan=True
    )


def assert_close32(actual, expected, rtol: float = 1e-5, err_msg: str = "") -> None:
    """float32 comparison: relative 1e-5, with an absolute floor scaled to the data."""
    expected = np.asarray(expected, dtype=np.float64)
    scale = float(np.max(np.abs(expected))) if expected.size else 0.0
    assert_close(
        np.asarray(actual, dtype=np.float64),
        expected,
        rtol=rtol,
        atol=rtol * (1.0 + scale),
        err_msg=err_msg,
    )


def as_pair(v) -> Tuple[int, int]:
    return (v, v) if isinstance(v, int) else (int(v[0]), int(v[1]))


def out_size(size: int, k: int, s: int, p: int) -> int:
    return (size + 2 * p - k) // s + 1


# ---------------------------------------------------------------------------
# Independent references for one 2-D map: loops over the cells
# ---------------------------------------------------------------------------


def conv_loops(x, w, b=0.0):
    """The valid cross-correlation of the map ``x`` with the square kernel ``w``, plus ``b``."""
    H, Wd = x.shape
    k = w.shape[0]
    out = np.full((H - k + 1, Wd - k + 1), float(b))
    for i in range(out.shape[0]):
        for j in range(out.shape[1]):
            for a in range(k):
                for c in range(k):
                    out[i, j] += x[i + a, j + c] * w[a, c]
    return out


def first_max(a, i, j, k=2):
    """The first maximum of window (i, j) (k×k, stride k) in row-major order (a strict >
    while scanning)."""
    best = (k * i, k * j)
    for r in range(k * i, k * i + k):
        for c in range(k * j, k * j + k):
            if a[r, c] > a[best]:
                best = (r, c)
    return best


# ---------------------------------------------------------------------------
# Geometry strategies
# ---------------------------------------------------------------------------

#: a seed for ``np.random.default_rng``
SEEDS = st.integers(0, 2**31)


def shapes(max_side: int, min_dims: int, max_dims: int):
    """Array shapes of ``min_dims`` to ``max_dims`` axes, each of length 1 to ``max_side``."""
    return st.lists(st.integers(1, max_side), min_size=min_dims, max_size=max_dims).map(tuple)


def _side(draw, k: int, p: int, max_size: int) -> int:
    """An input side that a window of size ``k`` with padding ``p`` fits in, up to ``max_size``
    (or ``k``)."""
    return draw(st.integers(max(1, k - 2 * p), max(max_size, k)))


@dataclass
class PoolCase:
    shape: Tuple[int, ...]  # (..., H, W)
    kernel_size: object  # int or (kh, kw)
    stride: object  # None, int or (sh, sw)
    padding: object  # int or (ph, pw)
    kind: str
    seed: int

    @property
    def k(self) -> Tuple[int, int]:
        return as_pair(self.kernel_size)

    @property
    def s(self) -> Tuple[int, int]:
        return self.k if self.stride is None else as_pair(self.stride)

    @property
    def p(self) -> Tuple[int, int]:
        return as_pair(self.padding)

    @property
    def out_hw(self) -> Tuple[int, int]:
        (kh, kw), (sh, sw), (ph, pw) = self.k, self.s, self.p
        return out_size(self.shape[-2], kh, sh, ph), out_size(
            self.shape[-1], kw, sw, pw
        )

    @property
    def out_shape(self) -> Tuple[int, ...]:
        return tuple(self.shape[:-2]) + self.out_hw

    def x(self, dtype=np.float64) -> np.ndarray:
        return make_array(
            np.random.default_rng(self.seed), self.shape, self.kind, dtype
        )

    def dout(self, dtype=np.float64, kind: Optional[str] = None) -> np.ndarray:
        rng = np.random.default_rng(self.seed + 1)
        return make_array(
            rng,
            self.out_shape,
            kind or ("float" if self.kind == "float" else "ints"),
            dtype,
        )


def _int_or_pair(a: int, b: int, as_int: bool):
    return a if as_int and a == b else (a, b)


@st.composite
def pool_cases(draw, kinds=VALUE_KINDS, max_lead: int = 2, max_size: int = 11, allow_none_stride=True,
               max_kernel: int = 5, max_stride: int = 4) -> PoolCase:
    """Pooling geometry: kernel 1..5 (kh != kw allowed), stride None/int/pair 1..4,
    padding 0..k//2, sizes not necessarily divisible by the stride, 0..max_lead leading
    dims.
    """
    kh = draw(st.integers(1, max_kernel))
    kw = draw(st.integers(1, max_kernel))
    square = draw(st.booleans())
    if square:
        kw = kh
    ph = draw(st.integers(0, kh // 2))
    pw = draw(st.integers(0, kw // 2))
    stride_kind = draw(
        st.sampled_from(
            ["none", "int", "pair"] if allow_none_stride else ["int", "pair"]
        )
    )
    if stride_kind == "none":
        stride = None
    elif stride_kind == "int":
        stride = draw(st.integers(1, max_stride))
    else:
        stride = (draw(st.integers(1, max_stride)), draw(st.integers(1, max_stride)))
    H, W = _side(draw, kh, ph, max_size), _side(draw, kw, pw, max_size)
    lead = tuple(draw(st.lists(st.integers(1, 3), min_size=0, max_size=max_lead)))
    kernel = _int_or_pair(kh, kw, draw(st.booleans()))
    padding = _int_or_pair(ph, pw, draw(st.booleans()))
    kind = draw(st.sampled_from(kinds))
    seed = draw(SEEDS)
    return PoolCase(lead + (H, W), kernel, stride, padding, kind, seed)


@dataclass
class ConvCase:
    x_shape: Tuple[int, int, int, int]
    w_shape: Tuple[int, int, int, int]
    stride: object
    padding: object
    bias: bool
    kind: str
    seed: int

    @property
    def s(self):
        return as_pair(self.stride)

    @property
    def p(self):
        return as_pair(self.padding)

    @property
    def out_shape(self):
        N, C, H, W = self.x_shape
        F, _, kh, kw = self.w_shape
        (sh, sw), (ph, pw) = self.s, self.p
        return (N, F, out_size(H, kh, sh, ph), out_size(W, kw, sw, pw))

    def arrays(self, dtype=np.float64):
        """x, w, b (or None), dout."""
        rng = np.random.default_rng(self.seed)
        x = make_array(rng, self.x_shape, self.kind, dtype)
        w = make_array(rng, self.w_shape, self.kind, dtype)
        b = make_array(rng, (self.w_shape[0],), self.kind, dtype) if self.bias else None
        dout = make_array(rng, self.out_shape, self.kind, dtype)
        return x, w, b, dout

    def run(self, layers, dtype=np.float64):
        """The arrays, then one pass of ``layers`` (a module): ``(x, w, b, dout), out,
        (dx, dw, db)``."""
        x, w, b, dout = self.arrays(dtype)
        out, cache = layers.conv2d_forward(x, w, b, self.stride, self.padding)
        return (x, w, b, dout), out, layers.conv2d_backward(dout, cache)


@st.composite
def conv_cases(draw, kinds=VALUE_KINDS, max_n: int = 3, max_c: int = 3, max_f: int = 3, max_size: int = 9,
               max_kernel: int = 5, max_stride: int = 4, max_pad: int = 3, bias=None) -> ConvCase:
    """Convolution geometry: kernel 1..5 (kh != kw), stride 1..4 (int or pair), padding
    0..3."""
    kh = draw(st.integers(1, max_kernel))
    kw = draw(st.integers(1, max_kernel))
    ph = draw(st.integers(0, max_pad))
    pw = draw(st.integers(0, max_pad))
    # stride 1 (the common case, with its own fast path in the core) gets a third of the
    # draws
    stride_mode = draw(st.sampled_from(["one", "int", "pair"]))
    if stride_mode == "one":
        sh = sw = 1
    elif stride_mode == "int":
        sh = sw = draw(st.integers(1, max_stride))
    else:
        sh, sw = draw(st.integers(1, max_stride)), draw(st.integers(1, max_stride))
    H, W = _side(draw, kh, ph, max_size), _side(draw, kw, pw, max_size)
    N = draw(st.integers(1, max_n))
    C = draw(st.integers(1, max_c))
    F = draw(st.integers(1, max_f))
    stride = _int_or_pair(sh, sw, draw(st.booleans()))
    padding = _int_or_pair(ph, pw, draw(st.booleans()))
    has_bias = draw(st.booleans()) if bias is None else bias
    kind = draw(st.sampled_from(kinds))
    seed = draw(SEEDS)
    return ConvCase((N, C, H, W), (F, C, kh, kw), stride, padding, has_bias, kind, seed)


# ---------------------------------------------------------------------------
# Fixtures
# ---------------------------------------------------------------------------


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(20240501)


@pytest.fixture(autouse=True)
def no_figure_left_open():
    """pyplot keeps every figure it makes open in the process until it is closed: a test that
    leaves one open would change what a later test in the same worker sees (the figures'
    numbers, ``plt.get_fignums()``).  So each test closes what it draws; one that does not
    fails here, at its source, and its figures are closed before the next test starts."""
    yield
    plt = sys.modules.get("matplotlib.pyplot")
    left = plt.get_fignums() if plt is not None else []
    if left:
        plt.close("all")
        pytest.fail(f"the test left {len(left)} matplotlib figure(s) open: close what it draws")


@pytest.fixture(scope="session")
def core():
    import mlp_cnn_core

    return mlp_cnn_core


@pytest.fixture(scope="session")
def book_html(tmp_path_factory) -> Path:
    """The built book (its ``_build/html``): ``$BOOK_HTML`` when set (``.ci/run`` sets
    it to the build it has just made with the README's command), otherwise one strict
    build of the repository into a temporary folder per test run, shared by the xdist
    workers (the first worker that needs it builds it, under a file lock; the others
    wait and reuse it).
    """
    given = os.environ.get("BOOK_HTML")
    if given:
        html = Path(given) if Path(given).is_absolute() else Path(_ROOT) / given
        assert (html / "book" / "intro.html").exists(), (
            f"BOOK_HTML={given} holds no built book"
        )
        return html
    shared = tmp_path_factory.getbasetemp()
    if os.environ.get(
        "PYTEST_XDIST_WORKER"
    ):  # each worker has its own basetemp in the run's folder
        shared = shared.parent
    out = shared / "book"
    html = out / "_build" / "html"
    with open(shared / "book.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file is closed
        if not (html / "book" / "intro.html").exists():
            jb = Path(sys.executable).with_name("jupyter-book")
            cmd = [
                str(jb) if jb.exists() else "jupyter-book",
                "build",
                _ROOT,
                "--path-output",
                str(out),
                "-W",
                "-n",
                "--keep-going",
            ]
            res = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
            assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-4000:]
    return html


# ---------------------------------------------------------------------------
# Test tiers: plain ``pytest`` runs the fast tier (pyproject.toml deselects the markers
# below);
# ``pytest -m ""`` (tests/run.sh, .ci/run) runs everything.  Tests are marked here by
# the
# fixtures they use and the file they are in, so that a new test lands in the right
# tier.
# ---------------------------------------------------------------------------

_MARKS_BY_FIXTURE = {
    "book_html": ("book",),  # needs the built book
    "browser_report": ("browser",),  # the pages in Chromium, a phone, dark mode (check_pages.js)
    "book_pdf": ("browser", "slow"),  # the book printed to PDF by Chromium
    "lab_report": ("browser", "lab"),  # JupyterLab with a live kernel
}
_MARKS_BY_FILE = {
    "test_lab.py": ("lab",),
    "test_explorable_view.py": ("browser",),
}
_MARKS_BY_NAME = {
    "test_a_chapter_runs_on_its_own_in_a_fresh_environment": (
        "slow",
    ),  # pip into a fresh venv
}


# The longest files first: under `-n 2 --dist loadfile --no-loadscope-reorder` (run.sh)
# the two workers start with them, and no long file starts last to keep the run waiting.
_LONGEST_FIRST = (
    "test_lab.py",
    "test_publish.py",
    "test_book_build.py",
    "test_explorable_view.py",
)


def _file_rank(item) -> int:
    name = item.path.name
    return _LONGEST_FIRST.index(name) if name in _LONGEST_FIRST else len(_LONGEST_FIRST)


def pytest_collection_modifyitems(config, items):
    items.sort(key=_file_rank)  # stable: each file keeps its order
    for item in items:
        names = set(getattr(item, "fixturenames", ()))
        marks = [
            m for f in names & set(_MARKS_BY_FIXTURE) for m in _MARKS_BY_FIXTURE[f]
        ]
        marks += _MARKS_BY_FILE.get(item.path.name, ())
        marks += _MARKS_BY_NAME.get(getattr(item, "originalname", item.name), ())
        for mark in sorted(set(marks)):
            item.add_marker(getattr(pytest.mark, mark))
