"""Command line: ``python -m figures [--full] [--only NAME] [--out DIR] [--runs DIR]``."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from figures.registry import FIGURES, PROFILES, build_figures, set_progress, stderr_sink, titles
from figures.settings import DATA_ENV


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m figures",
        description="Regenerate the package's figures (PNG, PDF and the data of each, .npz). "
        "Finished runs under --runs are reused, so a second call only redraws.",
    )
    parser.add_argument(
        "--only",
        action="append",
        metavar="NAME",
        help=f"build only this figure (repeatable, or a comma list); one of {', '.join(FIGURES)}",
    )
    parser.add_argument("--list", action="store_true", help="list the figures and exit")
    scale = parser.add_mutually_exclusive_group()
    scale.add_argument(
        "--full", action="store_true", help="paper scale (hours) instead of the quick profile"
    )
    scale.add_argument(
        "--profile",
        choices=PROFILES,
        default=None,
        help="scale of the runs: tiny (seconds), quick (default), full (= --full)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("figures/out"),
        help="folder for the figures (default: figures/out)",
    )
    parser.add_argument(
        "--runs",
        type=Path,
        default=Path("runs"),
        help="folder where runs are kept and reused (default: runs)",
    )
    parser.add_argument(
        "--data-root",
        type=Path,
        default=None,
        help=f"folder of MNIST/CIFAR/ImageNet files for --full deep figures (sets {DATA_ENV})",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress lines")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.list:
        for name, title in titles().items():
            print(f"{name:<12} {title}")
        return 0
    profile = "full" if args.full else (args.profile or "quick")
    if args.data_root is not None:
        os.environ[DATA_ENV] = str(args.data_root)
    set_progress(None if args.quiet else stderr_sink)
    start = time.perf_counter()
    try:
        results, failures = build_figures(
            args.only, profile=profile, runs=args.runs, out=args.out, keep_going=True
        )
    except ValueError as exc:  # unknown --only name
        parser.error(str(exc))
    for res in results:
        print(f"{res.name:<12} {res.png}")
    for fail in failures:
        print(f"{fail.name:<12} FAILED: {type(fail.error).__name__}: {fail.error}", file=sys.stderr)
        print(fail.traceback, file=sys.stderr)
    print(
        f"{len(results)} figure(s) in {time.perf_counter() - start:.1f} s "
        f"({profile} profile; runs in {args.runs})"
    )
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
