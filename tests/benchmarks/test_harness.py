"""The benchmark harness: discovery, timing and the printed ratio (no timing assertions)."""

from __future__ import annotations

import time

from benchmarks import Benchmark, discover, format_result, run_benchmark


def test_discover_finds_every_module_and_unique_names():
    import pkgutil

    import benchmarks

    found = discover()
    modules = [
        m.name for m in pkgutil.iter_modules(benchmarks.__path__) if m.name.startswith("bench_")
    ]
    assert all(isinstance(b, Benchmark) for b in found.values())
    # every benchmark module contributes at least one benchmark, each named by its layer
    assert len(found) >= len(modules)
    assert all("." in name for name in found)


def test_ratio_is_baseline_over_ours():
    bench = Benchmark(
        name="demo",
        goal=">= 1x",
        setup=lambda: 0.002,
        ours=lambda s: time.sleep(s),
        baseline=lambda s: time.sleep(4 * s),
        min_speedup=1.0,
        repeats=3,
    )
    res = run_benchmark(bench)
    assert res.speedup > 1.5 and res.met is True
    line = format_result(res)
    assert line.startswith("demo") and "x" in line and "met" in line


def test_absolute_goal_without_baseline():
    bench = Benchmark(
        name="abs",
        goal="< 10 s",
        setup=lambda: None,
        ours=lambda s: None,
        max_seconds=10.0,
        repeats=2,
    )
    res = run_benchmark(bench)
    assert res.baseline_s is None and res.speedup is None and res.met is True


def test_warmup_call_can_be_left_out():
    """``warmup=False`` times every call it makes, one per sample; the default adds an
    untimed warm-up call per side, and a call to time it unless ``min_sample_s`` is 0.

    Mutants caught: the flag ignored (a 1e300 run would be made twice or three times); the
    timing call made when one call per sample is asked for."""
    for warmup, expected in ((True, 3), (False, 2)):
        calls = {"ours": 0, "base": 0}
        bench = Benchmark(
            name="count",
            goal=">= 1x",
            setup=lambda calls=calls: calls,
            ours=lambda s: s.__setitem__("ours", s["ours"] + 1),
            baseline=lambda s: s.__setitem__("base", s["base"] + 1),
            min_speedup=0.0,
            repeats=2,
            warmup=warmup,
            min_sample_s=0.0,
        )
        run_benchmark(bench)
        assert calls == {"ours": expected, "base": expected}


def test_a_short_call_is_repeated_to_fill_a_sample():
    """Calls shorter than ``min_sample_s`` are made back to back, the same number in every
    sample, so that each sample lasts at least ``min_sample_s`` on both sides.

    Mutants caught: one call per sample whatever its length; the number of calls taken from
    the warm-up call (which includes compilation) instead of a warm one."""
    log: list[tuple[str, float]] = []

    def ours(state):
        log.append(("ours", time.perf_counter()))
        # the warm-up call is slow, as a first call that compiles would be
        time.sleep(0.2 if len(log) == 1 else 0.01)

    bench = Benchmark(
        name="short",
        goal=">= 1x",
        setup=lambda: None,
        ours=ours,
        baseline=lambda s: log.append(("base", time.perf_counter())) or time.sleep(0.05),
        min_speedup=0.0,
        repeats=3,
        min_sample_s=0.05,
    )
    res = run_benchmark(bench)
    runs, sides = [], [side for side, _ in log]
    for side in sides[2:]:  # after the warm-up and calibration calls of ours
        if runs and runs[-1][0] == side:
            runs[-1][1] += 1
        else:
            runs.append([side, 1])
    ours_runs = [n for side, n in runs if side == "ours"]
    assert len(ours_runs) == 3 and len(set(ours_runs)) == 1 and 4 <= ours_runs[0] <= 5
    # runs[0] is the baseline's warm-up and calibration; its 50 ms calls fill a sample alone
    assert all(n == 1 for side, n in runs[1:] if side == "base")
    assert 0.009 < res.ours_s < 0.02  # seconds per call, not per sample
