"""Benchmarks of the sharpness and gradient-noise measurements (deep/sharpness.py, deep/noise.py).

``deep.hessian_top``
    The top Hessian eigenvalue of ``f1_small`` (118k weights) on 512 random 28x28 inputs,
    in float32, by Lanczos (:func:`deep.sharpness.top_hessian_eigenvalues`, relative tolerance
    1e-4) against power iteration on the same Hessian-vector products until the eigenvalue
    changes by less than 1e-4 relatively (the usual choice, e.g. PyHessian's). Goal: Lanczos
    at least as fast.
``deep.noise_scale``
    ``tr(Sigma)`` and ``|G|^2`` over 512 samples from per-example gradients by
    ``torch.func.vmap`` (:func:`deep.noise.gradient_noise_scale`) against one backward pass per
    sample. Goal: at least as fast (measured on a 2-core CPU: not met, 0.4-0.6x: for a
    network this small a backward pass per sample costs less than vmap's batched copies).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from benchmarks import Benchmark
from deep.models import build
from deep.noise import gradient_noise_scale
from deep.sharpness import _Objective, top_hessian_eigenvalues

_N = 512


def _setup():
    torch.manual_seed(0)
    model = build("f1_small").eval()
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(_N, 1, 28, 28, generator=gen)
    y = torch.randint(0, 10, (_N,), generator=gen)
    return model, (x, y)


def _lanczos(state) -> float:
    model, data = state
    return float(
        top_hessian_eigenvalues(
            model, F.cross_entropy, data, dtype="float32", tol=1e-4
        ).eigenvalues[0]
    )


def _power(state, rtol: float = 1e-4, max_iter: int = 1000) -> float:
    model, data = state
    obj = _Objective(model, F.cross_entropy, data, torch.float32, 512)
    v = np.random.default_rng(0).standard_normal(obj.n_params)
    v /= np.linalg.norm(v)
    value = 0.0
    for _ in range(max_iter):
        hv = obj.hvp(v)
        new = float(v @ hv)
        v = hv / np.linalg.norm(hv)
        if abs(new - value) < rtol * abs(new):
            return new
        value = new
    return value


def _vmap(state) -> float:
    model, data = state
    return gradient_noise_scale(model, F.cross_entropy, data).trace_sigma


def _loop(state) -> float:
    model, (x, y) = state
    params = [p for p in model.parameters() if p.requires_grad]
    total = torch.zeros(sum(p.numel() for p in params), dtype=torch.float64)
    sq = 0.0
    for i in range(len(y)):
        loss = F.cross_entropy(model(x[i : i + 1]), y[i : i + 1])
        g = torch.cat([t.reshape(-1) for t in torch.autograd.grad(loss, params)]).double()
        total += g
        sq += float(g @ g)
    mean = total / len(y)
    return sq / len(y) - float(mean @ mean)


BENCHMARKS = [
    Benchmark(
        name="deep.hessian_top",
        goal=">= 1x power iteration",
        setup=_setup,
        ours=_lanczos,
        baseline=_power,
        min_speedup=1.0,
        repeats=3,
    ),
    Benchmark(
        name="deep.noise_scale",
        goal=">= 1x a per-sample backward loop",
        setup=_setup,
        ours=_vmap,
        baseline=_loop,
        work=_N,
        unit="sample",
        min_speedup=1.0,
        repeats=3,
    ),
]
