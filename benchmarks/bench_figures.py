"""Benchmark of ``python -m figures``: redrawing every figure from finished runs.

Ours: build all figures at the tiny profile when every run behind them exists (only the
fits and the drawing are done). Baseline: the same build from an empty runs folder, which
computes every run first. The goal is the issue's "under a minute when the runs exist".
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

from benchmarks import Benchmark
from figures.registry import FIGURES, build_figures


@dataclass
class _State:
    root: Path
    runs: Path
    count: int = 0


def _setup() -> _State:
    root = Path(tempfile.mkdtemp(prefix="bench-figures-"))
    state = _State(root, root / "runs")
    build_figures(None, profile="tiny", runs=state.runs, out=root / "out")
    return state


def _ours(state: _State) -> None:
    build_figures(None, profile="tiny", runs=state.runs, out=state.root / "out")


def _baseline(state: _State) -> None:
    state.count += 1  # a fresh, empty runs folder each call
    build_figures(
        None, profile="tiny", runs=state.root / f"fresh-{state.count}", out=state.root / "out"
    )


BENCHMARKS = [
    Benchmark(
        name="figures.redraw",
        goal="< 60 s to redraw every figure from existing (tiny) runs; ratio: recompute/redraw",
        setup=_setup,
        ours=_ours,
        baseline=_baseline,
        work=len(FIGURES),
        unit="figure",
        max_seconds=60.0,
        repeats=1,
        min_sample_s=0.0,  # minutes a call
    ),
]
