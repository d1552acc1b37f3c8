"""Profiles: the paper's recipe as configs, the five columns, a one-step smoke test per network."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st

from deep.ghost_bn import convert_to_ghost
from deep.models import MODELS, build
from deep.profiles import (
    PAPER,
    PROFILES,
    QUICK,
    REGIMES,
    Profile,
    Recipe,
    get_profile,
    regime_settings,
)
from deep.regime import scale_lr
from deep.train import TrainConfig

PAPER_NETWORKS = {"F1", "C1", "C3", "ResNet44", "VGG", "WResNet16-4", "AlexNet"}


def test_paper_profile_has_the_seven_networks_with_their_recipe():
    names = {r.name.split("-")[0] if r.model == "alexnet" else r.name for r in PAPER.recipes}
    assert names == PAPER_NETWORKS
    for r in PAPER.recipes:
        assert r.model in MODELS
        assert r.ghost_size == 128
        assert r.small_batch == (256 if r.model == "alexnet" else 128)
        assert r.large_batch in (4096, 8192)
        assert r.paper is not None and len(r.paper) == 5
    assert {r.large_batch for r in PAPER.recipes if r.model == "alexnet"} == {4096, 8192}
    # the paper's batch ratio is kept in the quick profile
    assert all(r.ratio == 32 for r in QUICK.recipes)
    assert QUICK.seeds >= 3 and QUICK.device == "cpu"


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_every_cell_is_a_valid_train_config(profile):
    for recipe in PROFILES[profile].recipes:
        for regime in REGIMES:
            kw = regime_settings(recipe, regime)
            cfg = TrainConfig(**kw, seed=0)
            assert cfg.model == recipe.model and cfg.data == recipe.data


@given(st.sampled_from([r for p in PROFILES.values() for r in p.recipes]), st.sampled_from(REGIMES))
def test_regime_settings_follow_the_table_definition(recipe, regime):
    kw = regime_settings(recipe, regime)
    large = regime != "SB"
    assert kw["batch_size"] == (recipe.large_batch if large else recipe.small_batch)
    assert kw["base_batch_size"] == recipe.small_batch  # lr base is always B_S
    assert kw["lr"] == recipe.lr
    assert kw["lr_scaling"] == ("sqrt" if regime in REGIMES[2:] else "none")
    assert kw["ghost_size"] == (recipe.ghost_size if regime in REGIMES[3:] else None)
    assert kw["regime_adaptation"] is (regime == REGIMES[4])
    assert kw["grad_clip"] == recipe.grad_clip and kw["momentum"] == recipe.momentum
    # the trainer's scaled rate is the paper's sqrt(B_L / B_S) rule from B_S
    if kw["lr_scaling"] == "sqrt":
        assert scale_lr(kw["lr"], kw["batch_size"], kw["base_batch_size"], "sqrt") == pytest.approx(
            recipe.lr * math.sqrt(recipe.large_batch / recipe.small_batch)
        )


def test_recipe_and_profile_validation():
    good = QUICK.recipes[0]
    with pytest.raises(ValueError, match="large_batch"):
        dataclasses.replace(good, large_batch=good.small_batch)
    with pytest.raises(ValueError, match="ghost_size"):
        dataclasses.replace(good, ghost_size=100)
    with pytest.raises(ValueError, match="milestones"):
        dataclasses.replace(good, milestones=(6, 4))
    with pytest.raises(TypeError, match="epochs"):
        dataclasses.replace(good, epochs=2.5)
    with pytest.raises(ValueError, match="lr_decay"):
        dataclasses.replace(good, lr_decay=1.5)
    with pytest.raises(ValueError, match="paper"):
        dataclasses.replace(good, paper=(1.0, 2.0))
    with pytest.raises(ValueError, match="unique"):
        Profile("x", (good, good))
    with pytest.raises(ValueError, match="profile must be one of"):
        get_profile("slow")
    with pytest.raises(ValueError, match="regime"):
        regime_settings(good, "LB+RA")
    with pytest.raises(ValueError, match="not in profile"):
        QUICK.select(["resnet44"])
    assert QUICK.select(["f1"]).recipes == (good,)
    assert isinstance(good, Recipe)


def _smoke_batch(model_name: str) -> int:
    return 2 if model_name in ("alexnet", "vgg16") else 4


@pytest.mark.parametrize(
    "recipe", PAPER.recipes[:-1], ids=lambda r: r.name
)  # the two AlexNets share a net
def test_one_step_of_each_paper_network_on_random_data(recipe):
    """One LB+LR+GBN step (sqrt-scaled lr, ghost BN, clipping) on random data of the right shape."""
    torch.manual_seed(0)
    model = build(recipe.model)
    batch = _smoke_batch(recipe.model)
    convert_to_ghost(model, 2)  # batch 4: two ghost batches per BN layer
    kw = regime_settings(recipe, "LB+LR+GBN")
    lr = scale_lr(kw["lr"], kw["batch_size"], kw["base_batch_size"], kw["lr_scaling"])
    opt = torch.optim.SGD(
        model.parameters(), lr=lr, momentum=recipe.momentum, weight_decay=recipe.weight_decay
    )
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(batch, *model.input_shape, generator=gen)
    y = torch.randint(0, model.num_classes, (batch,), generator=gen)
    before = [p.detach().clone() for p in model.parameters()]
    model.train()
    out = model(x)
    assert out.shape == (batch, model.num_classes)
    loss = F.cross_entropy(out, y)
    assert math.isfinite(loss.item())
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), recipe.grad_clip)
    opt.step()
    moved = sum(
        float((p.detach() - b).norm()) for p, b in zip(model.parameters(), before, strict=True)
    )
    assert math.isfinite(moved) and moved > 0
    with torch.no_grad():
        assert torch.isfinite(model.eval()(x)).all()


def test_the_extra_columns_set_warm_up_against_clipping():
    """Goyal et al.: linear scaling reached by a 5-epoch warm-up, no clipping; the sqrt rule
    without clipping. Catches a Goyal column that keeps the recipe's clipping or scales by
    sqrt, and a -CLIP column that still clips."""
    from deep.profiles import ALL_REGIMES, EXTRA_REGIMES, GOYAL_WARMUP_EPOCHS

    recipe = QUICK.recipes[0]
    assert recipe.grad_clip == 5.0 and QUICK.regimes == ALL_REGIMES
    goyal = regime_settings(recipe, "LB+LIN+WU")
    assert goyal["batch_size"] == recipe.large_batch and goyal["lr_scaling"] == "linear"
    assert goyal["warmup_epochs"] == GOYAL_WARMUP_EPOCHS == 5.0 and goyal["grad_clip"] is None
    assert goyal["ghost_size"] is None and goyal["regime_adaptation"] is False
    noclip = regime_settings(recipe, "LB+LR-CLIP")
    assert noclip["lr_scaling"] == "sqrt" and noclip["grad_clip"] is None
    assert regime_settings(recipe, "LB+LR")["grad_clip"] == 5.0  # the paper's +LR clips
    assert set(EXTRA_REGIMES) == {"LB+LIN+WU", "LB+LR-CLIP"}
