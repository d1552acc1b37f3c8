"""Figure ``sharpness`` at the tiny profile: the numbers drawn are the runs' own, recomputed.

Each test names in its docstring the wrong implementation (mutant) it was seen to catch.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from deep.sharpness import load_run_data
from figures import sharpness
from figures.output import load_data


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    runs, out = tmp_path_factory.mktemp("runs"), tmp_path_factory.mktemp("out")
    torch.set_num_threads(1)
    data = sharpness.compute("tiny", runs)
    result = sharpness.render(data, out)
    return result, data, load_data(result.data_file)[0]


def _top_eigenvalue(model, x, y) -> float:
    """Top Hessian eigenvalue from ``torch.autograd.functional.hvp`` (float64) and ARPACK."""
    from scipy.sparse.linalg import LinearOperator, eigsh

    model = model.double().eval()
    names = [n for n, _ in model.named_parameters()]
    params = tuple(p.detach() for p in model.parameters())
    sizes = [p.numel() for p in params]
    x = x.double()

    def loss(*ps):
        out = torch.func.functional_call(model, dict(zip(names, ps, strict=True)), (x,))
        return F.cross_entropy(out, y)

    def matvec(v):
        parts = torch.from_numpy(np.asarray(v).ravel()).split(sizes)
        vs = tuple(t.view_as(p) for t, p in zip(parts, params, strict=True))
        _, hv = torch.autograd.functional.hvp(loss, params, vs)
        return torch.cat([h.reshape(-1) for h in hv]).numpy()

    n = sum(sizes)
    v0 = np.random.default_rng(7).standard_normal(n)
    op = LinearOperator((n, n), matvec=matvec, dtype=np.float64)
    return float(eigsh(op, k=1, which="LA", v0=v0, tol=1e-8, return_eigenvectors=False)[0])


def test_bars_hold_each_seed_of_each_regime_in_order(built):
    """The (regime, seed) entry is the top eigenvalue of that cell's run, found again with
    autograd's Hessian-vector products; the SB and LB entries differ.

    Mutants caught: regimes or seeds drawn in another order than the table's.
    """
    result, data, arrays = built
    row = data.table.rows[0]
    name = row.recipe.name
    top = arrays[f"{name}.top_eigenvalue"]
    assert top.shape == (len(data.table.regimes), 1)  # the tiny profile measures one seed
    assert list(arrays["regimes"]) == list(data.table.regimes)
    s = sharpness.SETTINGS["tiny"]
    i = len(data.table.regimes) - 1  # the last column (+RA), so that a reversed order shows
    run = load_run_data(row.cells[data.table.regimes[i]].runs[0], n_samples=s.n_samples)
    exact = _top_eigenvalue(run.model, run.x, run.y)
    assert top[i, 0] == pytest.approx(exact, rel=2e-3)  # float32 and tol 1e-2 in the figure
    assert not np.allclose(top[0], top[1])
    assert result.runs[0] == Path(row.cells["SB"].runs[0])
    assert np.all(arrays[f"{name}.eps_sharpness"] >= 0)


def test_predicted_diffusion_at_w0_scales_as_lr_squared_over_b(built):
    """Every run of the sweep starts from the same w_0 and is measured on the same samples, so
    D differs between batch sizes by eta^2 / B alone.

    Mutant caught: measuring the noise at the final weights (tr(Sigma) then differs per run).
    """
    _, _, arrays = built
    b, lr, d = arrays["sweep.batch_sizes"], arrays["sweep.lr"], arrays["sweep.diffusion"]
    np.testing.assert_allclose(d / d[0], (lr**2 / b) / (lr[0] ** 2 / b[0]), rtol=1e-6)
    assert np.all(np.isfinite(arrays["sweep.slope"]))
