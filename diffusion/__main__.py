"""Command line of ``diffusion``.

``python -m diffusion walk ...``    simulate walkers, fit the growth law, print it beside the theory
``python -m diffusion theory ...``  exact values: kesten | mfpt | deff | kramers

The options of ``walk`` are the fields of :class:`diffusion.experiments.WalkConfig`
(:mod:`diffusion.options`). Other subcommands register themselves: a module of
:data:`SUBCOMMAND_MODULES` that is present and defines ``add_parser(subparsers)``.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Sequence

import numpy as np

from diffusion import theory
from diffusion.options import (
    add_config_options,
    add_module_subcommands,
    add_runs_option,
    config_from_args,
)


def _finite(text: str) -> float:
    """A finite float (argparse type): NaN and infinities are refused (exit 2)."""
    try:
        value = float(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from exc
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def _float_list(text: str) -> list[float]:
    try:
        values = [float(x) for x in text.replace(",", " ").split()]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(
            f"expected numbers separated by commas, got {text!r}"
        ) from exc
    bad = [x for x in values if not math.isfinite(x)]
    if bad or not values:
        raise argparse.ArgumentTypeError(
            f"expected finite numbers separated by commas, got {text!r}"
        )
    return values


def _hours(text: str) -> float:
    value = _finite(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"--max-hours must be > 0, got {text!r}")
    return value


SUBCOMMAND_MODULES = ("diffusion.sweep",)
"""Modules that add a subcommand when present: ``add_parser(subparsers)`` adds its parser and
sets ``func`` (``func(args) -> int``, the exit status) with ``set_defaults``."""


def _add_walk(sub: argparse._SubParsersAction) -> None:
    from diffusion.experiments import METHODS, POTENTIALS, WalkConfig

    walk = sub.add_parser(
        "walk",
        help="simulate walkers on a random potential and fit the growth law",
        description="Simulate walkers on a random potential, fit the growth law of the "
        "distance with the shared metrics and print it beside the theory; writes a run "
        "folder under --runs. The options are the fields of diffusion.experiments.WalkConfig.",
    )
    add_config_options(
        walk,
        WalkConfig,
        choices={
            "potential": POTENTIALS,
            "method": METHODS,
            "field_kind": ("short", "fractional"),
        },
        help={
            "potential": "random potential: sinai (Brownian), fbm (fractional Brownian, "
            "--hurst), bounded (i.i.d. on [0, sigma], --correlation-length) or field "
            "(Gaussian field in --dim dimensions, --field-kind)"
        },
    )
    add_runs_option(walk, hidden_aliases=("--out",))
    walk.add_argument("--force", action="store_true", help="recompute even if the run exists")
    walk.add_argument(
        "--max-hours",
        type=_hours,
        default=1.0,
        help="refuse a direct walk estimated (from the measured rate) to take longer (default 1)",
    )
    walk.add_argument("--json", action="store_true", help="print the summary as JSON")
    walk.set_defaults(func=_walk)


def _add_theory(sub: argparse._SubParsersAction) -> None:
    as_json = "print the values as JSON"
    temperature = "temperature T > 0 (default: 1)"
    th = sub.add_parser("theory", help="exact values: kesten | mfpt | deff | kramers")
    th.set_defaults(func=_theory)
    tsub = th.add_subparsers(dest="quantity", metavar="{kesten,mfpt,deff,kramers}")
    k = tsub.add_parser("kesten", help="Kesten's limit law of sigma^2 x_t / (log t)^2")
    k.add_argument(
        "--b", type=_float_list, default=[0.5, 1.0, 2.0], help="points for pdf/cdf, e.g. 0.5,1,2"
    )
    k.add_argument("--json", action="store_true", help=as_json)
    m = tsub.add_parser(
        "mfpt", help="mean first-passage time 0 -> N of a Metropolis chain, reflecting at 0"
    )
    m.add_argument(
        "--potential",
        type=_float_list,
        required=True,
        help="site energies U_0..U_N, e.g. 0,1,2,1,0",
    )
    m.add_argument("--temperature", type=_finite, default=1.0, help=temperature)
    m.add_argument("--json", action="store_true", help=as_json)
    d = tsub.add_parser("deff", help="effective diffusion constant of a periodic Metropolis chain")
    d.add_argument("--potential", type=_float_list, required=True, help="one period U_0..U_{L-1}")
    d.add_argument("--temperature", type=_finite, default=1.0, help=temperature)
    d.add_argument("--json", action="store_true", help=as_json)
    kr = tsub.add_parser("kramers", help="Kramers escape rate (overdamped)")
    kr.add_argument("--barrier", type=_finite, required=True, help="barrier U(max) - U(min) >= 0")
    kr.add_argument(
        "--curvature-min", type=_finite, required=True, help="U'' at the well bottom, > 0"
    )
    kr.add_argument(
        "--curvature-max",
        type=_finite,
        required=True,
        help="U'' at the barrier top (its absolute value is used; non-zero)",
    )
    kr.add_argument("--temperature", type=_finite, default=1.0, help=temperature)
    kr.add_argument("--json", action="store_true", help=as_json)


def build_parser() -> argparse.ArgumentParser:
    """The ``python -m diffusion`` parser: walk, theory and every module of
    :data:`SUBCOMMAND_MODULES` that is present."""
    parser = argparse.ArgumentParser(
        prog="python -m diffusion", description=__import__("diffusion").__doc__
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    _add_walk(sub)
    _add_theory(sub)
    add_module_subcommands(sub, SUBCOMMAND_MODULES)
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


def _kesten_lines(th: dict) -> list[str]:
    """Kesten's law at the last time: raw scale, overshoot-corrected scale, finite-Gamma theory."""
    if "kesten_mean_abs_measured" not in th:
        return []
    if "kesten_mean_abs_corrected" not in th:  # a run saved before the correction existed
        return [
            f"sigma^2 x/(log t)^2 at the last time: E|b| {th['kesten_mean_abs_measured']:.4f}, "
            f"E b^2 {th['kesten_second_moment_measured']:.4f}, "
            f"KS vs Kesten p = {th['kesten_ks_pvalue']:.3g}"
        ]
    row = "{label}: E|b| {m1:.4f} ± {s1:.4f}, E b^2 {m2:.4f} ± {s2:.4f}, KS vs Kesten p = {p:.3g}"
    return [
        row.format(
            label=f"sigma^2 x/Gamma^2, Gamma = log t = {th['kesten_gamma']:.4g}",
            m1=th["kesten_mean_abs_measured"],
            s1=th["kesten_mean_abs_measured_stderr"],
            m2=th["kesten_second_moment_measured"],
            s2=th["kesten_second_moment_measured_stderr"],
            p=th["kesten_ks_pvalue"],
        ),
        f"  finite-Gamma theory (lattice overshoot): E|b| "
        f"{th['kesten_mean_abs_finite_gamma']:.4f}, E b^2 "
        f"{th['kesten_second_moment_finite_gamma']:.4f}; limit 5/6 = 0.8333, 61/45 = 1.3556",
        row.format(
            label=f"  at the corrected scale Gamma_eff = {th['kesten_gamma_effective']:.4g}",
            m1=th["kesten_mean_abs_corrected"],
            s1=th["kesten_mean_abs_corrected_stderr"],
            m2=th["kesten_second_moment_corrected"],
            s2=th["kesten_second_moment_corrected_stderr"],
            p=th["kesten_ks_pvalue_corrected"],
        ),
    ]


def _running_line(running: dict, limit: float | None) -> str:
    """The fBm running exponent at the largest Gamma and its extrapolation to Gamma -> inf."""
    lo, hi = running["k_extrapolated_interval"]
    target = "" if limit is None else f"; limit theory 1/H = {limit:.4g}"
    return (
        f"running exponent d log E|x| / d log Gamma: {running['k_eff'][0]:.3g} at Gamma = "
        f"{running['gamma'][0]:.3g} ... {running['k_eff'][-1]:.3g} at "
        f"{running['gamma'][-1]:.3g}; extrapolated (E|x| = C (Gamma + c)^k, c = "
        f"{running['shift']:.3g}) {running['k_extrapolated']:.4g}, 95% [{lo:.4g}, {hi:.4g}]{target}"
    )


def _too_long(cfg, args: argparse.Namespace) -> str:
    """Why a direct walk is refused before it starts ('' if it is not)."""
    from diffusion.records import IncompleteRunError, load_run, run_dir
    from diffusion.walk import estimate_walk_seconds, measured_rate

    if cfg.method != "direct":
        return ""
    if not args.force:
        try:
            load_run(run_dir(args.runs, cfg))
            return ""  # finished already: it is only loaded
        except IncompleteRunError:
            pass
    rate = measured_rate()
    hours = estimate_walk_seconds(cfg.walkers, cfg.t_max, rate) / 3600.0
    if hours <= args.max_hours:
        return ""
    return (
        f"a direct walk of {cfg.walkers} walkers to t = {cfg.t_max:.3g} is "
        f"{cfg.walkers * cfg.t_max:.2g} walker-steps: about {hours:.3g} hours at the "
        f"{rate:.3g} walker-steps/s measured now, over --max-hours {args.max_hours:g}. "
        "Use --method coarse (the renormalised valley-to-valley walker, any t such as 1e30, "
        "for sinai/fbm), or fewer walkers, or a larger --max-hours"
    )


def _walk(args: argparse.Namespace) -> int:
    from diffusion.experiments import WalkConfig, run_walk

    cfg = config_from_args(WalkConfig, args)
    refusal = _too_long(cfg, args)
    if refusal:
        print(f"python -m diffusion: error: {refusal}", file=sys.stderr)
        return 2
    run = run_walk(cfg, args.runs, force=args.force)
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
        interval = s.get("polylog_exponent_interval")
        spread = f", bootstrap 95% [{interval[0]:.4g}, {interval[1]:.4g}]" if interval else ""
        print(
            f"polylog exponent: fit {measured:.4g}{spread}; "
            f"limit theory {th['polylog_exponent']:.4g}"
        )
    if "rms_predicted_last" in th:
        print(
            f"rms at the last time: measured {trace.distance[-1]:.6g}, "
            f"theory {th['rms_predicted_last']:.6g}"
        )
    for line in _kesten_lines(th):
        print(line)
    if s.get("bootstrap_text"):
        print(s["bootstrap_text"])
    if s.get("running_exponent"):
        print(_running_line(s["running_exponent"], th.get("polylog_exponent")))
    if "d_eff" in th:
        print(f"D_eff (exact) = {th['d_eff']:.6g}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "func", None) is None:
        parser.print_help()
        return 0
    try:
        return int(args.func(args) or 0)
    except (ValueError, TypeError) as exc:
        print(f"python -m diffusion: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
