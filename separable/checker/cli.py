"""The ``check`` subcommand of ``python -m separable``.

``python -m separable check --loss "log(1+exp(-u))" --data fig1 --eta 0.05`` prints the
table (item | verdict | evidence); ``--json`` prints the report as JSON. Exit status:

  0  a theorem applies and every conclusion it guarantees was observed
  1  a guaranteed conclusion was contradicted
  2  bad input (the error names the option and the value)
  3  nothing is guaranteed (an assumption or the step bound fails for every conclusion)
  4  inconclusive: a guaranteed conclusion is still in its transient, or --timeout passed
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from separable.checker.conclusions import Tolerances
from separable.checker.pipeline import check
from separable.data import Dataset, fig1, fig3, load, random_separable

__all__ = ["add_parser", "main", "load_dataset"]


def load_dataset(spec: str, seed: int = 0, n: int = 40, d: int = 5) -> Dataset:
    """``fig1``, ``fig3``, ``random`` (``n`` samples in ``d`` dimensions) or a .npz/.csv path.

    Raises
    ------
    ValueError
        For a missing or malformed file, naming the path and what is wrong.
    """
    if spec == "fig1":
        return fig1(seed)
    if spec == "fig3":
        return fig3(seed)
    if spec == "random":
        return random_separable(n, d, seed=seed)
    try:
        return load(spec)
    except FileNotFoundError:
        raise ValueError(
            f"--data {spec!r}: no such file (give fig1, fig3, random or a .npz/.csv path)"
        ) from None
    except (ValueError, TypeError, OSError) as exc:
        raise ValueError(f"--data {spec!r} is malformed: {exc}") from None


def _vector(text: str) -> np.ndarray:
    try:
        return np.array([float(v) for v in text.split(",")])
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated numbers, got {text!r}"
        ) from None


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not (value > 0 and value < float("inf")):
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, got {text!r}")
    return value


def _run(args: argparse.Namespace) -> int:
    ds = load_dataset(args.data, args.seed, args.n, args.d)
    tol = Tolerances(window_decades=args.window_decades)
    report = check(
        args.loss,
        ds.X,
        ds.y,
        eta=args.eta,
        w0=args.w0,
        t_max=args.t_max,
        flow_t_max=args.flow_t_max,
        tolerances=tol,
        per_decade=args.per_decade,
        seconds=min(args.step_timeout, args.timeout),
        timeout=args.timeout,
        data_name=ds.name,
    )
    print(report.to_json() if args.json else report.table())
    return report.exit_code


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register the ``check`` subcommand (its handler is ``args.func``)."""
    p = subparsers.add_parser(
        "check",
        help="check the JMLR 2018 assumptions and observe the guaranteed conclusions",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--loss",
        required=True,
        help='loss name (logistic, exp, poly, superexp) or expression in u, e.g. "log(1+exp(-u))"',
    )
    p.add_argument(
        "--data",
        required=True,
        help="fig1, fig3, random, or a .npz (X, y) / .csv (label last) file",
    )
    p.add_argument("--eta", type=float, required=True, help="step size of gradient descent (> 0)")
    p.add_argument("--seed", type=int, default=0, help="seed of the built-in data (default 0)")
    p.add_argument("--n", type=int, default=40, help="samples of --data random (default 40)")
    p.add_argument("--d", type=int, default=5, help="dimension of --data random (default 5)")
    p.add_argument(
        "--w0", type=_vector, default=None, help="start, comma-separated (default zeros)"
    )
    p.add_argument(
        "--t-max",
        type=float,
        default=None,
        help="steps of gradient descent (default 1e6; 1e5 for losses given as expressions)",
    )
    p.add_argument(
        "--flow-t-max",
        type=float,
        default=1e100,
        help="end time of the gradient flow (default 1e100)",
    )
    p.add_argument(
        "--per-decade", type=int, default=20, help="recorded steps per decade (default 20)"
    )
    p.add_argument(
        "--window-decades",
        type=float,
        default=2.0,
        help="late window of the fits, in decades (default 2)",
    )
    p.add_argument(
        "--timeout",
        type=_seconds,
        default=600.0,
        help="seconds for the whole check; past it the report says so and exits 4 (default 600)",
    )
    p.add_argument(
        "--step-timeout",
        type=_seconds,
        default=10.0,
        help="seconds per symbolic step before it falls back to numerical evidence (default 10)",
    )
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=_run)
    return p


def main(argv: list[str] | None = None) -> int:
    """Run ``check`` on its own (``python -m separable check ...`` is the usual entry)."""
    parser = argparse.ArgumentParser(prog="python -m separable")
    add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except (ValueError, TypeError) as exc:
        parser.exit(2, f"{parser.prog}: error: {exc}\n")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
