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
    """``warmup=False`` times every call it makes; the default adds one untimed call per side.

    Mutant caught: the flag ignored (a 1e300 run would be made twice)."""
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
        )
        run_benchmark(bench)
        assert calls == {"ours": expected, "base": expected}
