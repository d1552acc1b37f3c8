"""Command line of ``diffusion``.

``python -m diffusion walk ...``    simulate walkers, fit the growth law, print it beside the theory
``python -m diffusion theory ...``  exact values: kesten | mfpt | deff | kramers
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

import numpy as np

from diffusion import theory


def _float_list(text: str) -> list[float]:
    try:
        return [float(x) for x in text.replace(",", " ").split()]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(
            f"expected numbers separated by commas, got {text!r}"
        ) from exc


def _t_max(text: str) -> float:
    try:
        return float(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(
            f"--t-max must be a number such as 1e8, got {text!r}"
        ) from exc


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m diffusion", description=__import__("diffusion").__doc__
    )
    sub = parser.add_subparsers(dest="command", metavar="{walk,theory}")

    walk = sub.add_parser(
        "walk", help="simulate walkers on a random potential and fit the growth law"
    )
    walk.add_argument("--potential", choices=["sinai", "fbm", "bounded", "field"], default="sinai")
    walk.add_argument(
        "--hurst", type=float, default=0.5, help="H in (0, 1) for fbm / fractional field"
    )
    walk.add_argument(
        "--dim", type=int, default=1, help="lattice dimension 1-3 (2, 3 need --potential field)"
    )
    walk.add_argument("--walkers", type=int, default=1000)
    walk.add_argument(
        "--t-max", type=_t_max, default=1e8, help="last time, e.g. 1e8 (coarse: 1e30 and beyond)"
    )
    walk.add_argument("--method", choices=["direct", "coarse"], default="direct")
    walk.add_argument("--temperature", type=float, default=1.0)
    walk.add_argument("--sigma", type=float, default=1.0, help="scale of the potential U")
    walk.add_argument("--correlation-length", type=float, default=0.0)
    walk.add_argument("--field-kind", choices=["short", "fractional"], default="short")
    walk.add_argument("--per-decade", type=int, default=10)
    walk.add_argument("--seed", type=int, default=0)
    walk.add_argument("--out", default="runs", help="folder of run folders (default: runs/)")
    walk.add_argument("--force", action="store_true", help="recompute even if the run exists")
    walk.add_argument("--json", action="store_true", help="print the summary as JSON")

    th = sub.add_parser("theory", help="exact values")
    tsub = th.add_subparsers(dest="quantity", metavar="{kesten,mfpt,deff,kramers}")
    k = tsub.add_parser("kesten", help="Kesten's limit law of sigma^2 x_t / (log t)^2")
    k.add_argument(
        "--b", type=_float_list, default=[0.5, 1.0, 2.0], help="points for pdf/cdf, e.g. 0.5,1,2"
    )
    k.add_argument("--json", action="store_true")
    m = tsub.add_parser(
        "mfpt", help="mean first-passage time 0 -> N of a Metropolis chain, reflecting at 0"
    )
    m.add_argument(
        "--potential",
        type=_float_list,
        required=True,
        help="site energies U_0..U_N, e.g. 0,1,2,1,0",
    )
    m.add_argument("--temperature", type=float, default=1.0)
    m.add_argument("--json", action="store_true")
    d = tsub.add_parser("deff", help="effective diffusion constant of a periodic Metropolis chain")
    d.add_argument("--potential", type=_float_list, required=True, help="one period U_0..U_{L-1}")
    d.add_argument("--temperature", type=float, default=1.0)
    d.add_argument("--json", action="store_true")
    kr = tsub.add_parser("kramers", help="Kramers escape rate (overdamped)")
    kr.add_argument("--barrier", type=float, required=True)
    kr.add_argument("--curvature-min", type=float, required=True)
    kr.add_argument("--curvature-max", type=float, required=True)
    kr.add_argument("--temperature", type=float, default=1.0)
    kr.add_argument("--json", action="store_true")
    return parser


def _emit(values: dict, as_json: bool, lines: Sequence[str]) -> None:
    if as_json:
        print(json.dumps(values, indent=2, sort_keys=True))
    else:
        print("\n".join(lines))


def _theory(args: argparse.Namespace) -> int:
    if args.quantity == "kesten":
        b = np.asarray(args.b, float)
        pdf, cdf = theory.kesten_pdf(b), theory.kesten_cdf(b)
        values = {
            "normalisation": "b = sigma^2 x_t / (log t)^2, sigma^2 = Var of one increment of U/T",
            "mean_abs": theory.KESTEN_MEAN_ABS,
            "second_moment": theory.KESTEN_SECOND_MOMENT,
            "b": b.tolist(),
            "pdf": pdf.tolist(),
            "cdf": cdf.tolist(),
        }
        lines = [
            f"Kesten's law of {values['normalisation']}",
            f"E|b| = 5/6 = {theory.KESTEN_MEAN_ABS:.12g}",
            f"E b^2 = 61/45 = {theory.KESTEN_SECOND_MOMENT:.12g}",
            f"{'b':>10} {'pdf':>14} {'cdf':>14}",
        ]
        lines += [f"{x:10.4g} {p:14.10f} {c:14.10f}" for x, p, c in zip(b, pdf, cdf, strict=True)]
    elif args.quantity == "mfpt":
        right, left = theory.metropolis_rates(args.potential, args.temperature)
        times = theory.mfpt(right, left)
        split = theory.splitting_probability(right, left)
        values = {
            "mfpt_from": times.tolist(),
            "mfpt_0_to_N": float(times[0]),
            "splitting_probability": split.tolist(),
        }
        lines = [
            f"mean first-passage time 0 -> {len(args.potential) - 1} "
            f"(reflecting at 0): {times[0]:.10g}",
            "from each start: " + ", ".join(f"{x:.6g}" for x in times),
            "P(reach N before 0): " + ", ".join(f"{x:.6g}" for x in split),
        ]
    elif args.quantity == "deff":
        value = theory.effective_diffusion(args.potential, args.temperature)
        values = {"d_eff": value, "d_free": 0.5}
        lines = [f"D_eff = 1/(<1/c><pi>) = {value:.10g}   (free walker: 0.5; MSD = 2 D t)"]
    elif args.quantity == "kramers":
        res = theory.kramers_rate(
            args.barrier, args.curvature_min, args.curvature_max, args.temperature
        )
        values = {"rate": res.rate, "time": res.time}
        lines = [
            f"Kramers rate = sqrt(U''min |U''max|)/(2 pi) exp(-dU/T) = {res.rate:.10g}",
            f"escape time = {res.time:.10g}",
        ]
    else:
        print(
            "python -m diffusion theory: choose one of kesten, mfpt, deff, kramers (see --help)",
            file=sys.stderr,
        )
        return 2
    _emit(values, args.json, lines)
    return 0


def _walk(args: argparse.Namespace) -> int:
    from diffusion.experiments import WalkConfig, run_walk

    cfg = WalkConfig(
        potential=args.potential,
        hurst=args.hurst,
        dim=args.dim,
        walkers=args.walkers,
        t_max=args.t_max,
        method=args.method,
        temperature=args.temperature,
        sigma=args.sigma,
        correlation_length=args.correlation_length,
        field_kind=args.field_kind,
        per_decade=args.per_decade,
        seed=args.seed,
    )
    run = run_walk(cfg, args.out, force=args.force)
    s = run.summary
    if args.json:
        print(json.dumps({"run": str(run.path), "summary": s}, indent=2, sort_keys=True))
        return 0
    th = s["theory"]
    trace = run.trace()
    print(f"run: {run.path}")
    print(
        f"{cfg.potential} {cfg.method}, {cfg.walkers} walkers, T = {cfg.temperature:g}, "
        f"sigma = {cfg.sigma:g}, "
        f"t up to {cfg.t_max:.3g}; axis: {s['axis']}"
    )
    print(f"fitted laws (shared metrics, t >= {'1e3' if s['fit_window_t_min'] else 'start'}):")
    print(s["fit_table"])
    measured = s.get("polylog_exponent_measured")
    print(f"theory: {th['law']}")
    if th.get("polylog_exponent") is not None and measured is not None:
        print(f"polylog exponent: measured {measured:.4g}, theory {th['polylog_exponent']:.4g}")
    if "rms_predicted_last" in th:
        print(
            f"rms at the last time: measured {trace.distance[-1]:.6g}, "
            f"theory {th['rms_predicted_last']:.6g}"
        )
    if "kesten_mean_abs_measured" in th:
        print(
            f"sigma^2 x/(log t)^2 at the last time: "
            f"E|b| {th['kesten_mean_abs_measured']:.4f} (5/6 = 0.8333), "
            f"E b^2 {th['kesten_second_moment_measured']:.4f} (61/45 = 1.3556), "
            f"KS vs Kesten p = {th['kesten_ks_pvalue']:.3g}"
        )
    if "d_eff" in th:
        print(f"D_eff (exact) = {th['d_eff']:.6g}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    try:
        return _walk(args) if args.command == "walk" else _theory(args)
    except (ValueError, TypeError) as exc:
        print(f"python -m diffusion: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
