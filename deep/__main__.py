"""Command line of ``deep``: ``python -m deep train ...`` (and the subcommands of other modules).

Subcommands are registered by modules that define ``add_parser(subparsers)``: this module's
``train``, and, when present, ``deep.table``, ``deep.distance``, ``deep.gamma``,
``deep.sharpness`` and ``deep.noise``. Each
``add_parser`` adds its sub-parser and sets ``func`` (``func(args) -> int``) as its default.
"""

from __future__ import annotations

import argparse
import json
import sys

from diffusion.options import (
    add_config_options,
    add_module_subcommands,
    add_runs_option,
    config_from_args,
)

SUBCOMMAND_MODULES = (
    "deep.table",
    "deep.distance",
    "deep.lawmap",
    "deep.gamma",
    "deep.sharpness",
    "deep.noise",
)


def _eval_every(text: str) -> int | str | None:
    if text in ("epoch", "none"):
        return None if text == "none" else "epoch"
    try:
        return int(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(
            f"--eval-every must be an integer, 'epoch' or 'none', got {text!r}"
        ) from exc


def add_parser(subparsers) -> None:
    """Register ``train``."""
    from deep.data import AUGMENTATIONS, DATASETS
    from deep.distributed import BN_MODES
    from deep.ghost_bn import RUNNING_STATS
    from deep.models import MODELS
    from deep.regime import LR_RULES
    from deep.train import TrainConfig

    p = subparsers.add_parser(
        "train",
        help="train one network and record ||w_t - w_0||",
        description="Train one network, recording the distance travelled by its "
        "weights; writes a run folder under --runs. The recipe options are the fields of "
        "deep.train.TrainConfig; the others say where and how the run executes.",
    )
    add_config_options(
        p,
        TrainConfig,
        choices={
            "model": sorted(MODELS),
            "data": list(DATASETS),
            "lr_scaling": LR_RULES,
            "augment": ("auto", *AUGMENTATIONS),
            "bn_mode": BN_MODES,
            "ghost_running_stats": RUNNING_STATS,
        },
        converters={"eval_every": _eval_every},
        help={
            "eval_every": "steps between evaluations, epoch (every epoch end) or none (at the end)"
        },
    )
    p.add_argument(
        "--data-root", default=None, help="folder of user data files (mnist, cifar10, cifar100)"
    )
    p.add_argument("--json", action="store_true", help="print the run folder and summary as JSON")
    p.add_argument(
        "--checkpoint-interval",
        type=float,
        default=60.0,
        help="seconds between checkpoints (always one at the end; default 60)",
    )
    p.add_argument("--checkpoint-every", type=int, default=None, help="also every so many steps")
    p.add_argument(
        "--device",
        choices=("auto", "cpu", "cuda"),
        default="auto",
        help="where to train; auto is CUDA when available (default: auto)",
    )
    p.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    add_runs_option(p, hidden_aliases=("--root",))
    p.add_argument("--no-resume", action="store_true", help="ignore an existing checkpoint")
    p.add_argument("--force", action="store_true", help="train again even if the run is finished")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_run_train)


def _run_train(args: argparse.Namespace) -> int:
    from deep.train import NonFiniteLossError, Runtime, TrainConfig, train

    config = config_from_args(TrainConfig, args)
    runtime = Runtime(
        device=args.device,
        data_root=args.data_root,
        threads=args.threads,
        progress=not args.no_progress,
        checkpoint_interval_s=args.checkpoint_interval,
        checkpoint_every=args.checkpoint_every,
    )
    try:
        run = train(config, args.runs, runtime=runtime, resume=not args.no_resume, force=args.force)
    except NonFiniteLossError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    s = run.summary
    shown = {
        k: s[k]
        for k in (
            "steps",
            "epochs",
            "peak_lr",
            "final_distance",
            "final_train_acc",
            "final_val_acc",
            "wall_time_s",
            "device",
            "world_size",
            "bn_mode",
        )
        if k in s
    }
    if args.json:
        print(json.dumps({"run": str(run.path), **shown}, indent=1))
        return 0
    print(f"run: {run.path}")
    print(json.dumps(shown, indent=1))
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The parser with every available subcommand registered."""
    parser = argparse.ArgumentParser(prog="python -m deep", description=__import__("deep").__doc__)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    add_parser(subparsers)
    add_module_subcommands(subparsers, SUBCOMMAND_MODULES)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "func", None) is None:
        parser.print_help()
        return 0
    try:
        return int(args.func(args) or 0)
    except (ValueError, TypeError, FileNotFoundError) as exc:
        parser.exit(2, f"python -m deep {args.command}: error: {exc}\n")


if __name__ == "__main__":
    sys.exit(main())
