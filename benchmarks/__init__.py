"""Ratio benchmarks: each times our implementation against the baseline it must beat, in one run.

A benchmark module is any ``benchmarks/bench_*.py`` defining ``BENCHMARKS``, a list of
:class:`Benchmark`. ``python -m benchmarks [NAME ...]`` runs them and prints one line each:
name, our time per unit of work, the baseline's, the speed-up (baseline time / our time) and
the goal. Benchmarks are measurements, not tests: nothing here asserts a timing.

Each timed sample of a side lasts at least :attr:`Benchmark.min_sample_s` (0.2 s): a side
whose call is shorter is called that many times back to back and timed once (as
:func:`timeit.Timer.autorange` chooses its ``number``). Without it a 5 ms call timed after a
400 ms baseline would carry every per-sample cost alone: on the 2-core virtual machines
these numbers come from, the first touch of code and data left idle for 0.4 s costs about
1 ms (a numba call that takes 3 us warm took 0.9-1.5 ms), a fifth of such a call, and a
quarter of a percent of the baseline's sample.
"""

from __future__ import annotations

import importlib
import math
import pkgutil
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["Benchmark", "BenchResult", "discover", "run_benchmark", "format_result"]


@dataclass(frozen=True)
class Benchmark:
    """One timed comparison.

    Parameters
    ----------
    name : str
        Unique, dotted by layer (``diffusion.walker``).
    goal : str
        The goal in words (``>= 6x numpy``; ``<= 1.15x BatchNorm``; ``< 10 s``).
    setup : callable
        ``setup() -> state``; not timed.
    ours : callable
        ``ours(state)``; the timed work.
    baseline : callable or None
        ``baseline(state)``; ``None`` for an absolute goal (then ``max_seconds`` applies).
    work : float
        Units of work done by one call (e.g. walker-steps), for a rate.
    unit : str
        Name of the unit of work.
    min_speedup : float, optional
        Goal as baseline time / our time (``1/1.15`` for "at most 1.15x slower").
    max_seconds : float, optional
        Goal as a wall time for one call of ``ours``.
    repeats : int
        Timed samples of each side; the median time per call is reported.
    warmup : bool
        Whether to make an untimed warm-up call first (``False`` for long runs whose
        ``setup`` already compiles the kernels on a small case; each sample is then one
        call).
    min_sample_s : float
        Shortest timed sample: a side whose call (timed once after the warm-up) is shorter
        is called ``ceil(min_sample_s / call)`` times per sample. ``0`` for benchmarks whose
        calls take seconds: one call per sample, and no call to time it.
    """

    name: str
    goal: str
    setup: Callable[[], Any]
    ours: Callable[[Any], Any]
    baseline: Callable[[Any], Any] | None = None
    work: float = 1.0
    unit: str = "call"
    min_speedup: float | None = None
    max_seconds: float | None = None
    repeats: int = 5
    warmup: bool = True
    min_sample_s: float = 0.2


@dataclass(frozen=True)
class BenchResult:
    """Median seconds per call of each side, the speed-up and whether the goal is met."""

    name: str
    ours_s: float
    baseline_s: float | None
    speedup: float | None
    met: bool | None
    benchmark: Benchmark


def _timed(fn: Callable[[Any], Any], state: Any, number: int = 1) -> float:
    """Seconds per call of ``number`` calls of ``fn(state)`` timed together."""
    start = time.perf_counter()
    for _ in range(number):
        fn(state)
    return (time.perf_counter() - start) / number


def _calls_per_sample(fn: Callable[[Any], Any], state: Any, bench: Benchmark) -> int:
    """Warm ``fn`` up and return how many calls make a sample of ``bench.min_sample_s``."""
    if not bench.warmup:
        return 1
    fn(state)  # JIT compilation, caches
    if bench.min_sample_s <= 0:
        return 1
    return max(1, math.ceil(bench.min_sample_s / max(_timed(fn, state), 1e-9)))


def run_benchmark(bench: Benchmark) -> BenchResult:
    """Time ``ours`` and ``baseline`` in this process, alternating sides across repeats.

    Each side gets an untimed warm-up call (JIT compilation, caches) and a second one that
    sets its calls per sample (see the module docstring); then the samples alternate ours,
    baseline, ours, ... so that a change in machine load during the run biases both sides
    alike. The medians of the time per call are reported.
    """
    state = bench.setup()
    ours_number = _calls_per_sample(bench.ours, state, bench)
    base_number = (
        _calls_per_sample(bench.baseline, state, bench) if bench.baseline is not None else 1
    )
    ours_times, base_times = [], []
    for _ in range(bench.repeats):
        ours_times.append(_timed(bench.ours, state, ours_number))
        if bench.baseline is not None:
            base_times.append(_timed(bench.baseline, state, base_number))
    ours = statistics.median(ours_times)
    base = statistics.median(base_times) if base_times else None
    speedup = base / ours if base is not None else None
    met = None
    if bench.min_speedup is not None and speedup is not None:
        met = speedup >= bench.min_speedup
    if bench.max_seconds is not None:
        met = (met is not False) and ours <= bench.max_seconds
    return BenchResult(bench.name, ours, base, speedup, met, bench)


def _rate(seconds: float, bench: Benchmark) -> str:
    if bench.work == 1.0 and bench.unit == "call":
        return f"{seconds * 1e3:10.2f} ms"
    rate = bench.work / seconds
    for scale, prefix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if rate >= scale:
            return f"{rate / scale:8.2f} {prefix}{bench.unit}/s"
    return f"{rate:8.2f} {bench.unit}/s"


def format_result(r: BenchResult) -> str:
    """One line: name | ours | baseline | speed-up | goal | met."""
    base = _rate(r.baseline_s, r.benchmark) if r.baseline_s is not None else "-"
    ratio = f"{r.speedup:7.2f}x" if r.speedup is not None else "      -"
    verdict = {True: "met", False: "NOT met", None: ""}[r.met]
    ours = _rate(r.ours_s, r.benchmark)
    return f"{r.name:<34} {ours:>20} {base:>20} {ratio}  goal {r.benchmark.goal}  {verdict}"


def discover() -> dict[str, Benchmark]:
    """All benchmarks of all ``benchmarks/bench_*.py`` modules, by name."""
    found: dict[str, Benchmark] = {}
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if not info.name.startswith("bench_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        for bench in getattr(module, "BENCHMARKS", []):
            if bench.name in found:
                raise ValueError(f"duplicate benchmark name {bench.name!r} in {info.name}")
            found[bench.name] = bench
    return found
