"""Benchmarks of deep/: ghost batch norm against its alternatives, the trainer against a bare loop.

Ghost BN, forward + backward at B = 4096, ghost size 128, on an F1-width activation
(4096 x 512) and a convolutional one (4096 x 64 x 8 x 8), with ``strategy="auto"`` (on CPU the
compiled kernels of ``deep._ghost_kernels`` for the 2-D activation and the loop of native
kernels for the 4-D one; the reshape on CUDA) against

* ``bn``       plain ``nn.BatchNorm`` on the whole batch (goal on CPU: at most 1.15x slower;
               measured with glibc keeping freed memory, see ``_keep_freed_memory``),
* ``reshape``  the naive vectorisation: reshape to (k, g, C, ...) and reduce with tensor ops,
* ``chunks``   the authors' scheme: forward and backward of each 128-chunk separately through
               a stock BatchNorm, accumulating gradients (goal on a GPU: at least 3x slower
               than ours).

The trainer: :func:`deep.train.train` (distance recorded on a log schedule, final
evaluation) against a minimal hand-written loop on the same model, data and number of
steps with ``torch.optim.SGD`` as one writes it (goal: at least 0.95x its steps/s); against
the same loop with the fused SGD step the trainer uses (``deep.train.bookkeeping``,
informational: what the records, checkpoints and run folder cost); and one record of
||w_t - w_0|| for F1, the compiled pass against tensor operations (informational).
"""

from __future__ import annotations

import ctypes
import functools
import tempfile
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from benchmarks import Benchmark
from deep.data import load_dataset
from deep.ghost_bn import GhostBatchNorm1d, GhostBatchNorm2d
from deep.models import build
from deep.train import Runtime, TrainConfig, _DistanceMeter, _tensor_distances, train

_DEVICE = torch.device("cuda" if torch.cuda.is_available() else "cpu")
_B, _G = 4096, 128
_SHAPES = {"fc": (_B, 512), "conv": (_B, 64, 8, 8)}


def _sync() -> None:
    if _DEVICE.type == "cuda":
        torch.cuda.synchronize()


def _keep_freed_memory() -> bool:
    """Ask glibc's malloc to keep freed memory for reuse; whether it took (glibc only).

    Each forward and backward allocates two fresh 8 MB tensors (the output and the input
    gradient), on both sides alike. With glibc's defaults they often come back from the kernel
    as new pages, and on the 2-core virtual machines these numbers were measured on each of
    the 2,048 page faults of such a tensor cost about 1.2 us: 2.5 ms a tensor, as much as the
    normalisation itself, and which call faults changes from call to call (0, 2,048 or 4,096
    faults). Keeping freed memory (no trimming, no mmap below 32 MB) lets both sides reuse
    it, so that the ratio compares the normalisations, not the allocator. The setting holds
    for the rest of the process; it changes no result.
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3
    return bool(libc.mallopt(m_mmap_threshold, 32 << 20)) and bool(
        libc.mallopt(m_trim_threshold, 1 << 30)
    )


def _gbn_setup(kind: str):
    def setup():
        if _DEVICE.type == "cpu":
            _keep_freed_memory()
        shape = _SHAPES[kind]
        gen = torch.Generator().manual_seed(0)
        x = torch.randn(shape, generator=gen).to(_DEVICE).requires_grad_(True)
        dy = torch.randn(shape, generator=gen).to(_DEVICE)
        ghost_cls, bn_cls = (
            (GhostBatchNorm1d, nn.BatchNorm1d)
            if kind == "fc"
            else (GhostBatchNorm2d, nn.BatchNorm2d)
        )
        c = shape[1]
        return {
            "x": x,
            "dy": dy,
            "auto": ghost_cls(c, _G, strategy="auto").to(_DEVICE),
            "reshape": ghost_cls(c, _G, strategy="vectorized").to(_DEVICE),
            "bn": bn_cls(c).to(_DEVICE),
        }

    return setup


def _fwd_bwd(layer_key: str):
    def run(state):
        x = state["x"]
        x.grad = None
        state[layer_key](x).backward(state["dy"])
        _sync()

    return run


def _chunks(state):
    """The authors' ghost BN: each chunk forward and backward through a stock BN."""
    x, dy, bn = state["x"], state["dy"], state["bn"]
    x.grad = None
    for xc, dyc in zip(x.split(_G), dy.split(_G), strict=True):
        bn(xc).backward(dyc)
    _sync()


def _gbn_benchmarks(kind: str) -> list[Benchmark]:
    work = float(_B)
    gpu = _DEVICE.type == "cuda"
    return [
        Benchmark(
            f"deep.gbn.{kind}.vs_bn",
            f"<= 1.15x plain BatchNorm ({_DEVICE.type}; GPU part skipped without CUDA)"
            if not gpu
            else "<= 1.15x plain BatchNorm (cuda)",
            _gbn_setup(kind),
            _fwd_bwd("auto"),
            _fwd_bwd("bn"),
            work,
            "sample",
            min_speedup=1 / 1.15,
            repeats=25,
        ),
        Benchmark(
            f"deep.gbn.{kind}.vs_reshape",
            "informational (>= 1x naive reshape)",
            _gbn_setup(kind),
            _fwd_bwd("auto"),
            _fwd_bwd("reshape"),
            work,
            "sample",
            min_speedup=1.0,
            repeats=25,
        ),
        Benchmark(
            f"deep.gbn.{kind}.vs_chunks",
            ">= 3x the authors' chunk loop (GPU)"
            if gpu
            else "informational on CPU (>= 1x chunk loop)",
            _gbn_setup(kind),
            _fwd_bwd("auto"),
            _chunks,
            work,
            "sample",
            min_speedup=3.0 if gpu else 1.0,
            repeats=25,
        ),
    ]


# ----------------------------------------------------------------------------- trainer
_STEPS = 150
_ON_DEVICE = "cuda" if _DEVICE.type == "cuda" else "cpu; GPU part skipped without CUDA"
_TRAIN = dict(
    model="f1",
    data="mnist5k",
    batch_size=256,
    epochs=100.0,
    lr=0.05,
    max_steps=_STEPS,
    eval_every=None,
    trace_per_decade=20,
)


def _train_setup():
    load_dataset("mnist5k")  # warm the in-process cache for both sides
    # the run folders are deleted with this object, when the process ends: deleting them is
    # the benchmark's housekeeping, not the trainer's work, and stays out of the timings
    return {"seed": 0, "runs": tempfile.TemporaryDirectory()}


def _ours_train(state):
    state["seed"] += 1  # a new configuration each call: a real run, never a reused folder
    train(
        TrainConfig(**_TRAIN, seed=state["seed"]),
        state["runs"].name,
        runtime=Runtime(device=_DEVICE.type, progress=False),
    )


def _bare_loop(state, fused: bool = False):
    """What one would write by hand: same model, data, optimiser, steps and final evaluation;
    no distance records, no run folder. ``fused``: torch's fused SGD step, as the trainer's."""
    state["seed"] += 1
    data = load_dataset("mnist5k", seed=state["seed"])
    torch.manual_seed(state["seed"])
    model = build("f1", data.num_classes).to(_DEVICE)
    opt = torch.optim.SGD(
        model.parameters(), lr=_TRAIN["lr"], momentum=0.9, weight_decay=1e-4, fused=fused
    )
    gen = torch.Generator().manual_seed(state["seed"])
    perm = torch.randperm(len(data.train), generator=gen)
    bs = _TRAIN["batch_size"]
    pos = 0
    for _ in range(_STEPS):
        if pos + bs > len(perm):
            perm, pos = torch.randperm(len(data.train), generator=gen), 0
        idx = perm[pos : pos + bs]
        pos += bs
        x, y = data.train.x[idx].to(_DEVICE), data.train.y[idx].to(_DEVICE)
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    # the same final report as the trainer: train and validation accuracy and loss
    model.eval()
    with torch.no_grad():
        for split in (data.train, data.val):
            out = model(split.x.to(_DEVICE))
            F.cross_entropy(out, split.y.to(_DEVICE)).item()
            (out.argmax(1) == split.y.to(_DEVICE)).float().mean().item()


def _distance_setup():
    """F1's parameters moved a little away from their initial copy."""
    model = build("f1", 10)
    params = [p.detach() for p in model.parameters()]
    initial = [p.clone() for p in params]
    gen = torch.Generator().manual_seed(0)
    for p in params:
        p.add_(1e-2 * torch.randn(p.shape, generator=gen))
    return {
        "meter": _DistanceMeter(params, initial),  # checks and cuts the pairs at its first call
        "params": params,
        "initial": initial,
        "buffers": [torch.empty_like(p) for p in params],
    }


def _distance_ours(state):
    state["meter"]()


def _distance_tensor_ops(state):
    _tensor_distances(state["params"], state["initial"], state["buffers"])


def _trainer_benchmark(name: str, goal: str, baseline: Callable[[dict], None]) -> Benchmark:
    """The trainer against ``baseline`` (a bare loop): at least 0.95x its steps per second."""
    return Benchmark(
        name,
        goal,
        _train_setup,
        _ours_train,
        baseline,
        float(_STEPS),
        "step",
        min_speedup=0.95,
        repeats=9,
        min_sample_s=0.0,  # seconds a call
    )


BENCHMARKS = [
    *_gbn_benchmarks("fc"),
    *_gbn_benchmarks("conv"),
    _trainer_benchmark(
        "deep.train.steps", f">= 0.95x a bare PyTorch loop ({_ON_DEVICE})", _bare_loop
    ),
    _trainer_benchmark(
        "deep.train.bookkeeping",
        f"informational (>= 0.95x a bare loop with the trainer's fused SGD step; {_ON_DEVICE})",
        functools.partial(_bare_loop, fused=True),
    ),
    Benchmark(
        "deep.train.distance",
        "informational (>= 1x subtraction into a buffer + torch._foreach_norm)",
        _distance_setup,
        _distance_ours,
        _distance_tensor_ops,
        1.0,
        "record",
        min_speedup=1.0,
        repeats=50,
    ),
]
