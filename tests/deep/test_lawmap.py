"""The distance-law map: a grid of short runs, each fitted by the shared ruler."""

from __future__ import annotations

import math

import pytest
import torch

from deep.lawmap import LawMapConfig, run_lawmap
from deep.train import Runtime
from diffusion.metrics import fit_growth
from diffusion.records import load_run


@pytest.fixture(scope="module")
def lawmap(tmp_path_factory):
    root = tmp_path_factory.mktemp("lawmap")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        config = LawMapConfig(
            datasets=("mnist1d",),
            lrs=(0.02, 0.1),
            weight_decays=(0.0,),
            batch_norm=(True, False),
            steps=120,
            t_min=1,
            trace_per_decade=10,
        )
        return run_lawmap(config, root, runtime=Runtime(device="cpu", progress=False))
    finally:
        torch.set_num_threads(threads)


def test_every_cell_is_its_settings_run_for_the_stated_steps(lawmap):
    assert len(lawmap.cells) == 4
    assert [(c.batch_norm, c.lr) for c in lawmap.cells] == [
        (True, 0.02),
        (True, 0.1),
        (False, 0.02),
        (False, 0.1),
    ]
    for cell in lawmap.cells:
        run = load_run(cell.run)
        assert run.config["model"] == ("mlp1d" if cell.batch_norm else "mlp1d_nobn")
        assert run.config["lr"] == cell.lr and run.config["weight_decay"] == 0.0
        assert run.summary["steps"] == 120 == int(cell.trace.t[-1])
        # epochs: the steps' share of the training split, from the run's own count
        assert cell.epochs == pytest.approx(120 * 32 / run.summary["n_train"])


def test_cells_carry_the_rulers_verdict_on_their_trace(lawmap):
    for cell in lawmap.cells:
        ref = fit_growth(load_run(cell.run).trace(""), t_min=1)
        assert cell.best == ref.best.law
        assert cell.delta_bic_log == pytest.approx(ref.delta("log"))
        nu = ref.fits["power_offset"].params["nu"]
        assert cell.nu == pytest.approx(nu)
        assert cell.log_law.numbers["delta_bic_log"] == pytest.approx(ref.delta("log"))
    assert "log law holds in" in lawmap.table()


def test_the_map_is_a_run_folder(lawmap):
    doc = load_run(lawmap.path).summary
    assert doc["n_cells"] == 4 and len(doc["cells"]) == 4
    assert doc["cells"][0]["best"] == lawmap.cells[0].best
    assert math.isclose(doc["cells"][1]["lr"], 0.1)


def test_boundary_errors():
    with pytest.raises(ValueError, match="datasets"):
        LawMapConfig(datasets=("mnist5k",))
    with pytest.raises(ValueError, match="t_min"):
        LawMapConfig(steps=100, t_min=100)
    with pytest.raises(ValueError, match="lrs"):
        LawMapConfig(lrs=())
    with pytest.raises(TypeError, match="batch_norm"):
        LawMapConfig(batch_norm=("yes",))
    with pytest.raises(ValueError, match="lr"):
        LawMapConfig(lrs=(-1.0,))


def test_a_collapsed_network_is_not_judged(tmp_path):
    """A pure log trace from a network stuck at chance: the ruler sees log, the check does not
    count it (catches a map that reports collapsed cells as log-law cells)."""
    import numpy as np

    from deep.lawmap import _cell
    from diffusion.metrics import Trace, log_schedule
    from diffusion.records import Run

    t = log_schedule(4000, 20)
    trace = Trace(t, 1 + 2 * np.log(t))
    records = trace.to_arrays("")
    settings = (True, 0.0, "mnist1d", 0.1)
    for acc, expected in ((0.10, None), (0.80, True)):
        summary = {"final_train_acc": acc, "final_val_acc": acc}
        cell = _cell(settings, 1.0, Run(tmp_path, {}, {}, records, summary), t_min=10)
        assert cell.best == "log"
        assert cell.log_law.passed is expected
        if expected is None:
            assert "collapsed" in cell.log_law.reason
