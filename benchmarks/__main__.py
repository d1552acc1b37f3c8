"""``python -m benchmarks [NAME ...]``: run the ratio benchmarks and print one line each."""

from __future__ import annotations

import argparse
import sys

from benchmarks import discover, format_result, run_benchmark


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Time ours against each baseline in one run and print the ratios.",
    )
    parser.add_argument(
        "names",
        nargs="*",
        help="benchmarks to run (a name or a prefix such as 'diffusion'); all if omitted",
    )
    parser.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    args = parser.parse_args(argv)
    available = discover()
    if args.list:
        for name, bench in available.items():
            print(f"{name:<34} goal {bench.goal}")
        return 0
    chosen = [
        n
        for n in available
        if not args.names or any(n == p or n.startswith(p + ".") for p in args.names)
    ]
    unknown = [p for p in args.names if not any(n == p or n.startswith(p + ".") for n in available)]
    if unknown:
        parser.error(f"unknown benchmark(s) {unknown}; available: {sorted(available)}")
    print(f"{'benchmark':<34} {'ours':>20} {'baseline':>20} {'speed-up':>8}")
    for name in chosen:
        print(format_result(run_benchmark(available[name])), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
