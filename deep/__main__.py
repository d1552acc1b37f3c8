"""Command line of ``deep``: ``python -m deep train ...`` (and the subcommands of other modules).

Subcommands are registered by modules that define ``add_parser(subparsers)``: this module's
``train``, and, when present, ``deep.table``, ``deep.distance``, ``deep.gamma``,
``deep.sharpness`` and ``deep.noise``. Each
``add_parser`` adds its sub-parser and sets ``func`` (``func(args) -> int``) as its default.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys

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

    p = subparsers.add_parser(
        "train",
        help="train one network and record ||w_t - w_0||",
        description="Train one network, recording the distance travelled by its "
        "weights; writes a run folder under --root.",
    )
    p.add_argument("--model", required=True, help=f"one of {sorted(MODELS)}")
    p.add_argument("--data", required=True, help=f"one of {list(DATASETS)}")
    p.add_argument(
        "--data-root", default=None, help="folder of user data files (mnist, cifar10, cifar100)"
    )
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--epochs", type=float, default=10.0, help="epochs of the base regime")
    p.add_argument("--lr", type=float, default=0.1, help="learning rate at --base-batch-size")
    p.add_argument("--base-batch-size", type=int, default=128)
    p.add_argument("--lr-scaling", choices=LR_RULES, default="none")
    p.add_argument("--ghost-size", type=int, default=None, help="ghost batch size per replica")
    p.add_argument(
        "--regime-adaptation",
        action="store_true",
        help="multiply epochs and milestones by batch-size / base-batch-size",
    )
    p.add_argument("--milestones", type=float, nargs="*", default=(), help="epochs of the lr drops")
    p.add_argument("--lr-decay", type=float, default=0.1)
    p.add_argument("--momentum", type=float, default=0.9)
    p.add_argument("--weight-decay", type=float, default=1e-4)
    p.add_argument("--warmup-epochs", type=float, default=0.0)
    p.add_argument("--grad-clip", type=float, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--trace-per-decade", type=int, default=20)
    p.add_argument(
        "--eval-every", type=_eval_every, default="epoch", help="steps, 'epoch' or 'none'"
    )
    p.add_argument("--augment", choices=("auto", *AUGMENTATIONS), default="auto")
    p.add_argument("--max-steps", type=int, default=None)
    p.add_argument(
        "--replicas",
        type=int,
        default=None,
        help="data-parallel replicas (default: WORLD_SIZE under torchrun, else 1)",
    )
    p.add_argument(
        "--bn-mode",
        choices=BN_MODES,
        default="replica",
        help="under DDP: batch norm per replica (B/K samples) or synchronised over B",
    )
    p.add_argument("--json", action="store_true", help="print the run folder and summary as JSON")
    p.add_argument(
        "--ghost-running-stats",
        choices=RUNNING_STATS,
        default="mean",
        help="ghost BN running statistics: once per step from the size-weighted mean of the "
        "ghost batches (mean, the default) or once per ghost batch as in the paper (sequential)",
    )
    p.add_argument(
        "--checkpoint-interval",
        type=float,
        default=60.0,
        help="seconds between checkpoints (always one at the end; default 60)",
    )
    p.add_argument("--checkpoint-every", type=int, default=None, help="also every so many steps")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    p.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    p.add_argument(
        "--runs",
        "--root",
        dest="runs",
        default="runs",
        help="parent folder of run folders (default: runs)",
    )
    p.add_argument("--no-resume", action="store_true", help="ignore an existing checkpoint")
    p.add_argument("--force", action="store_true", help="train again even if the run is finished")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=_run_train)


def _run_train(args: argparse.Namespace) -> int:
    from deep.train import NonFiniteLossError, Runtime, TrainConfig, train

    config = TrainConfig(
        model=args.model,
        data=args.data,
        batch_size=args.batch_size,
        epochs=args.epochs,
        lr=args.lr,
        base_batch_size=args.base_batch_size,
        lr_scaling=args.lr_scaling,
        ghost_size=args.ghost_size,
        regime_adaptation=args.regime_adaptation,
        milestones=tuple(args.milestones),
        lr_decay=args.lr_decay,
        momentum=args.momentum,
        weight_decay=args.weight_decay,
        warmup_epochs=args.warmup_epochs,
        grad_clip=args.grad_clip,
        seed=args.seed,
        trace_per_decade=args.trace_per_decade,
        eval_every=args.eval_every,
        augment=args.augment,
        max_steps=args.max_steps,
        replicas=args.replicas,
        bn_mode=args.bn_mode,
        ghost_running_stats=args.ghost_running_stats,
    )
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
    for name in SUBCOMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            continue
        if hasattr(module, "add_parser"):
            module.add_parser(subparsers)
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
