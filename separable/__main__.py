"""Command line of ``separable``: ``python -m separable --help``.

Subcommands
-----------
``svm``  the hard-margin SVM of a data set (w_hat, alpha, support, margin, KKT residuals).
``run``  an optimiser on a data set; final gaps beside their predictions; writes a run.

Other subcommands register themselves through :func:`register_extensions`: a module
``separable.<name>.cli`` in :data:`EXTENSIONS` that defines ``add_parser(subparsers)`` is
added when it can be imported (the parser it adds must set ``func`` via
``set_defaults(func=...)``, a callable taking the parsed arguments and returning the exit
status).
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys

import numpy as np

from diffusion.options import add_config_options, add_runs_option, config_from_args
from separable.data import Dataset, fig1, fig3, load, random_separable

EXTENSIONS = ("separable.checker.cli",)
"""Modules that may add subcommands (``add_parser(subparsers)``), when present."""


def _dataset(spec: str, seed: int = 0, bias: bool = False) -> Dataset:
    from separable.data import with_bias

    if spec in ("fig1", "fig3", "random"):
        ds = {"fig1": fig1, "fig3": fig3}.get(spec, lambda s: random_separable(40, 5, seed=s))(seed)
        return Dataset(with_bias(ds.X), ds.y, name=ds.name + " +bias") if bias else ds
    return load(spec, bias=bias)


def _fmt(v) -> str:
    if isinstance(v, (list, tuple, np.ndarray)):
        return "[" + ", ".join(_fmt(x) for x in v) + "]"
    if v is None:
        return "-"
    v = float(v)
    return "0" if abs(v) < 1e-14 else f"{v:.6g}"


# ----------------------------------------------------------------------------- svm
def _cmd_svm(args: argparse.Namespace) -> int:
    from separable.svm import NotSeparableError, hard_margin_svm
    from separable.theory import which_theorem

    ds = _dataset(args.data, args.seed, args.bias)
    try:
        res = hard_margin_svm(ds.X, ds.y)
    except NotSeparableError as exc:
        if args.json:
            print(
                json.dumps(
                    {
                        "separable": False,
                        "lam": exc.certificate.lam.tolist(),
                        "residual": exc.certificate.residual,
                    }
                )
            )
        else:
            print(f"{ds.name}: {exc}")
        return 1
    doc = res.as_dict()
    doc["theorem"] = which_theorem(ds.X, ds.y, svm=res)
    if args.json:
        print(json.dumps(doc, indent=2))
        return 0
    print(f"data     {ds.name}  (N={ds.n}, d={ds.d})")
    print(f"w_hat    {_fmt(res.w)}")
    print(f"margin   {res.margin:.12g}   (1/||w_hat||)")
    print(f"support  {res.support.tolist()}")
    print(f"alpha_S  {_fmt(res.alpha[res.support])}")
    print(f"theta    {_fmt(res.theta)}   (min margin off the support)")
    print(f"KKT      max residual {res.kkt.max:.2e}")
    print(f"theorem  {doc['theorem']}")
    return 0


# ----------------------------------------------------------------------------- run
def _cmd_run(args: argparse.Namespace) -> int:
    from separable.experiments import SeparableRunConfig, run_optimizer

    config = config_from_args(SeparableRunConfig, args)
    run = run_optimizer(config, args.runs, force=args.force)
    s = run.summary
    if args.json:
        print(json.dumps({"path": str(run.path), **s}, indent=2))
        return 0 if s["status"] == "finished" else 2
    c = s["comparison"]
    m, p = c["measured"], c["predicted"] or {}
    print(
        f"data {s['data']} (N={s['n']}, d={s['d']})  method {s['method']}  loss {s['loss']}  "
        f"eta {s['eta']:.6g}  steps {s['steps']}  {s['status']}"
        + (f" at step {s['stopped_at']}" if s["stopped_at"] is not None else "")
    )
    if s["prediction"]:
        print(
            f"theory: {s['prediction']['description']} (eta_eff {p.get('eta', float('nan')):.6g})"
        )
    else:
        print("theory: no GD-like prediction for this method/loss")
    print(f"{'quantity':<26}{'measured':>16}{'predicted':>16}")
    rows = [
        ("t L(t)", m["tL"], p.get("tL"), "||w_hat||^2/eta"),
        ("direction gap", m["direction_gap"], p.get("direction_gap"), "asymptote"),
        ("log t * direction gap", m["logt_direction_gap"], p.get("logt_direction_gap"), "t -> inf"),
        ("margin gap", m["margin_gap"], p.get("margin_gap"), "asymptote"),
        ("log t * margin gap", m["logt_margin_gap"], p.get("logt_margin_gap"), "t -> inf"),
        ("angle gap", m["angle_gap"], p.get("angle_gap"), "asymptote"),
    ]
    for name, meas, pred, note in rows:
        print(f"{name:<26}{_fmt(meas):>16}{_fmt(pred):>16}   {note if pred is not None else ''}")
    print(f"{'rho = w - w_hat log t':<26}{_fmt(m['rho'])}")
    if p:
        print(f"{'w_tilde':<26}{_fmt(p['w_tilde'])}   |rho - w_tilde|_inf = {c['rho_error']:.3g}")
    print(f"run: {run.path}")
    return 0 if s["status"] == "finished" else 2


# ----------------------------------------------------------------------------- parser
def register_extensions(subparsers: argparse._SubParsersAction) -> list[str]:
    """Add the subcommands of every importable module in :data:`EXTENSIONS`; return their names."""
    added = []
    for name in EXTENSIONS:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name is not None and name.startswith(exc.name):
                continue  # the extension is not installed
            raise
        add = getattr(module, "add_parser", None)
        if callable(add):
            add(subparsers)
            added.append(name)
    return added


def _add_run(sub: argparse._SubParsersAction) -> None:
    """``run``: its options are the fields of :class:`separable.experiments.SeparableRunConfig`."""
    from separable.experiments import SeparableRunConfig
    from separable.losses import LOSSES
    from separable.optim import METHODS

    p = sub.add_parser(
        "run",
        help="run an optimiser; final gaps beside their predictions",
        description="Run an optimiser on a data set and print its final gaps beside their "
        "predictions; writes a run folder under --runs. The options are the fields of "
        "separable.experiments.SeparableRunConfig.",
    )
    add_config_options(
        p,
        SeparableRunConfig,
        choices={"method": sorted([*METHODS, "nesterov"]), "loss": sorted(LOSSES)},
        exclude=("data_digest",),  # filled in from the data file
        names={"data_seed": "--data-seed"},  # --seed is the run's seed (SGD sampling)
        aliases={"seed": ("--sgd-seed",)},  # an older spelling
    )
    add_runs_option(p, hidden_aliases=("--out",))
    p.add_argument("--force", action="store_true", help="recompute even if the run exists")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(func=_cmd_run)


def build_parser() -> argparse.ArgumentParser:
    """The ``python -m separable`` parser."""
    parser = argparse.ArgumentParser(
        prog="python -m separable", description=__import__("separable").__doc__
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p_svm = sub.add_parser("svm", help="hard-margin SVM of a data set")
    p_svm.add_argument(
        "--data",
        required=True,
        help="fig1, fig3, random, or a .npz (X, y) / .csv (label last) file",
    )
    p_svm.add_argument(
        "--data-seed",
        "--seed",
        dest="seed",
        type=int,
        default=0,
        help="seed of the built-in random data (default 0)",
    )
    p_svm.add_argument(
        "--bias",
        action="store_true",
        help="append a constant feature (a different problem: the bias is penalised)",
    )
    p_svm.add_argument("--json", action="store_true", help="print JSON")
    p_svm.set_defaults(func=_cmd_svm)

    _add_run(sub)
    register_extensions(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except (ValueError, TypeError, FileNotFoundError) as exc:
        parser.exit(2, f"{parser.prog}: error: {exc}\n")


if __name__ == "__main__":
    sys.exit(main())
