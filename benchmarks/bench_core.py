"""Speed of mlp_cnn_fast against PyTorch CPU, the teaching core and the loops, one run.

    python benchmarks/bench_core.py             # full sizes (a minute or two)
    python benchmarks/bench_core.py --quick     # tiny sizes, a smoke run (the tests')
    python benchmarks/bench_core.py --markdown  # the table as markdown (for the README)
    python benchmarks/bench_core.py --threads 1 # numpy's BLAS and PyTorch on one thread
                                                # each, timed as the CPU time of that
                                                # thread: a busy machine hardly matters

Each case times one forward + backward pass. The fast module, PyTorch and the teaching
core (mlp_cnn_core) are timed in alternating rounds (so a busy machine slows all alike)
and each keeps its best round. Ratios above 1 mean the fast module is slower than
PyTorch; the "goal" column is the target ratio. The naive loops (the core's *_naive
layers) are timed on a slice of the batch and scaled up to the full batch (they are
linear in the batch size); that is said under the table. PyTorch is optional: without it
those columns read "n/a".
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from typing import List, Optional

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import mlp_cnn_core as core  # noqa: E402
import mlp_cnn_fast as fast  # noqa: E402
import mlp_cnn_train as train  # noqa: E402

try:
    import torch
    import torch.nn.functional as F
except ImportError:  # the benchmark still runs, without the PyTorch column
    torch = None


# wall time; --threads 1 switches to the calling thread's CPU time
CLOCK = time.perf_counter


def per_call(fn, min_time: float) -> float:
    """Time of one call of ``fn`` (seconds), averaged over a round of at least
    ``min_time``."""
    n, t0 = 0, CLOCK()
    while True:
        fn()
        n += 1
        elapsed = CLOCK() - t0
        if elapsed >= min_time or n >= 1000:
            return elapsed / n


def best_times(fns, repeats: int, min_time: float):
    """Best round of each function in ``fns`` (None entries give None), rounds
    interleaved."""
    live = [f for f in fns if f is not None]
    for f in live:
        f()  # warm-up
    best = {id(f): float("inf") for f in live}
    for _ in range(repeats):
        for f in live:
            best[id(f)] = min(best[id(f)], per_call(f, min_time))
    return [best[id(f)] if f is not None else None for f in fns]


# The loops: the core with its naive layers in place of the vectorised ones.
NAIVE = SimpleNamespace(**{name: getattr(core, name) for name in core.__all__})
NAIVE.conv2d_forward, NAIVE.conv2d_backward = (
    core.conv2d_forward_naive,
    core.conv2d_backward_naive,
)
NAIVE.maxpool2d_forward = core.maxpool2d_forward_naive
NAIVE.maxpool2d_backward = core.maxpool2d_backward_naive


def make_cases(quick: bool):
    """``(name, batch, goal, (step, ref), loops)``: ``step(layers, m)`` runs one forward
    + backward pass with the layer functions of ``layers`` on the first ``m`` samples;
    ``ref()`` runs the same pass in PyTorch; ``loops`` says whether a layer of the case
    has a naive loop version (ReLU has none: its "loops" would be the core's ReLU).
    """
    rng = np.random.default_rng(0)
    n = 2 if quick else 64

    def pool_case(shape, k, s, dtype):
        x = rng.standard_normal(shape).astype(dtype)
        g = rng.standard_normal(fast.maxpool2d_forward(x, k, s)[0].shape).astype(dtype)

        def step(layers, m):
            layers.maxpool2d_backward(g[:m], layers.maxpool2d_forward(x[:m], k, s)[1])

        def ref():
            xt = torch.from_numpy(x).requires_grad_()
            F.max_pool2d(xt, k, s).backward(torch.from_numpy(g))

        return step, ref

    def conv_case(shape, f, k, s, p, dtype):
        x = rng.standard_normal(shape).astype(dtype)
        w = (rng.standard_normal((f, shape[1], k, k)) * 0.1).astype(dtype)
        b = rng.standard_normal(f).astype(dtype)
        g = rng.standard_normal(fast.conv2d_forward(x, w, b, s, p)[0].shape).astype(
            dtype
        )

        def step(layers, m):
            layers.conv2d_backward(g[:m], layers.conv2d_forward(x[:m], w, b, s, p)[1])

        def ref():
            xt = torch.from_numpy(x).requires_grad_()
            wt = torch.from_numpy(w).requires_grad_()
            bt = torch.from_numpy(b).requires_grad_()
            F.conv2d(xt, wt, bt, s, p).backward(torch.from_numpy(g))

        return step, ref

    def relu_case(shape):
        x = rng.standard_normal(shape)
        g = rng.standard_normal(shape)

        def step(layers, m):
            layers.relu_backward(g[:m], layers.relu_forward(x[:m])[1])

        def ref():
            xt = torch.from_numpy(x).requires_grad_()
            F.relu(xt).backward(torch.from_numpy(g))

        return step, ref

    def tiny_net_case():
        x = rng.standard_normal((1, 1, 6, 6))
        w1 = rng.standard_normal((1, 1, 3, 3))
        w2 = rng.standard_normal((4, 1))
        target = np.array([[1.0]])

        def step(layers, m):
            v = train.small_cnn_forward(x, w1, w2, layers=layers)
            _, d = layers.l2_loss(v["out"], target)
            train.small_cnn_backward(d, v, layers=layers)

        def ref():
            xt = torch.from_numpy(x).requires_grad_()
            w1t = torch.tensor(w1, requires_grad=True)
            w2t = torch.tensor(w2, requires_grad=True)
            a = F.max_pool2d(F.relu(F.conv2d(xt, w1t)), 2).reshape(1, -1) @ w2t
            (0.5 * ((a - torch.from_numpy(target)) ** 2).sum()).backward()

        return step, ref

    s = 8 if quick else 28
    f32, f64 = np.float32, np.float64
    cases = []  # (name, batch, goal as a ratio to PyTorch, case)
    for k, size, channels in ((2, s, 8), (3, s + 4, 16)):
        for dtype in (f64, f32):
            shape = (n, channels, size, size)
            name = f"max pool {k}×{k}/2, {'×'.join(map(str, shape))}, {np.dtype(dtype)}"
            cases.append((name, n, 0.8, pool_case(shape, k, 2, dtype), True))
    for dtype, goal in ((f64, 1.1), (f32, 1.3)):
        for stride in (1, 2):
            name = (
                f"conv 8→16 3×3 pad 1 stride {stride}, {n}×8×{s}×{s}, "
                f"{np.dtype(dtype).name}"
            )
            cases.append((name, n, goal, conv_case((n, 8, s, s), 16, 3, stride, 1, dtype), True))
    cases += [
        (f"ReLU, {n}×16×{s}×{s}", n, 2.5, relu_case((n, 16, s, s)), False),
        ("tiny net 1×1×6×6 → conv 3×3 → ReLU → pool → 4×1 → L2 (per call)", 1, 0.55, tiny_net_case(), True),
    ]
    return cases


def fmt_time(t: Optional[float]) -> str:
    if t is None:
        return "n/a"
    return f"{t * 1e6:.0f} µs" if t < 1e-3 else f"{t * 1e3:.2f} ms"


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--quick", action="store_true", help="tiny sizes, few repeats (a smoke run)"
    )
    ap.add_argument("--markdown", action="store_true", help="print a markdown table")
    ap.add_argument(
        "--no-naive", action="store_true", help="skip the naive loop versions"
    )
    ap.add_argument(
        "--threads", type=int, help="threads for numpy's BLAS and for PyTorch"
    )
    args = ap.parse_args(argv)
    if args.threads:
        from threadpoolctl import threadpool_limits

        threadpool_limits(args.threads)
        if torch is not None:
            torch.set_num_threads(args.threads)
        if args.threads == 1:  # all the work runs on this thread: its CPU time ignores other load
            global CLOCK
            CLOCK = time.thread_time
    repeats = 2 if args.quick else 15
    naive_slice = 1 if args.quick else 2

    rows = []
    for name, n, goal, (step, ref), loops in make_cases(args.quick):
        t_fast, t_ref, t_core = best_times(
            [
                lambda: step(fast, n),
                ref if torch is not None else None,
                lambda: step(core, n),
            ],
            repeats,
            0.002 if args.quick else 0.05,
        )
        t_naive = None
        if loops and not args.no_naive:
            m = min(naive_slice, n)
            t_naive = per_call(lambda: step(NAIVE, m), 0.0) * (n / m)
        rows.append((name, goal, t_fast, t_ref, t_core, t_naive))

    load = (
        " ".join(f"{v:.1f}" for v in os.getloadavg())
        if hasattr(os, "getloadavg")
        else "n/a"
    )
    threads = (
        f"torch {torch.__version__}, {torch.get_num_threads()} threads"
        if torch is not None
        else "torch absent"
    )
    if args.threads:
        threads += f", numpy's BLAS {args.threads} thread(s)"
        threads += ", CPU time" if args.threads == 1 else ""
    head = (
        f"numpy {np.__version__}, {threads}, Python {platform.python_version()}, "
        f"{platform.machine()}, {os.cpu_count()} cores, load average {load}; "
        f"forward + backward, best of {repeats} interleaved rounds"
    )
    cols = [
        "case",
        "fast",
        "PyTorch CPU",
        "fast / PyTorch",
        "goal",
        "core (teaching)",
        "naive loops",
    ]
    table = []
    for name, goal, t_fast, t_ref, t_core, t_naive in rows:
        table.append(
            [
                name,
                fmt_time(t_fast),
                fmt_time(t_ref),
                f"{t_fast / t_ref:.2f}×" if t_ref else "n/a",
                f"≤ {goal:.2g}×",
                fmt_time(t_core),
                fmt_time(t_naive) if t_naive else "—",
            ]
        )
    if args.markdown:
        print(head + "\n")
        print("| " + " | ".join(cols) + " |")
        print("|" + "|".join(["---"] + ["---:"] * (len(cols) - 1)) + "|")
        for r in table:
            print("| " + " | ".join(r) + " |")
    else:
        print(head)
        widths = [max(len(c), *(len(r[i]) for r in table)) for i, c in enumerate(cols)]
        print("  ".join(c.ljust(w) for c, w in zip(cols, widths)))
        for r in table:
            print("  ".join(v.ljust(w) for v, w in zip(r, widths)))
    if not args.no_naive:
        print(f"(naive loops timed on {naive_slice} sample(s) of the batch and scaled to the full batch;"
              " ReLU has no loop version)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
