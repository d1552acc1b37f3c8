"""The table's claims as two-sided checks: each rule against hand-computed verdicts."""

from __future__ import annotations

import math

import numpy as np
import pytest

from deep.checks import (
    RA_TOLERANCE,
    lb_below_sb,
    paired_differences,
    ra_matches_sb,
    sb_converged,
    validation_noise_floor,
)


def test_ra_far_above_sb_fails_ra_matches_sb():
    """The old one-sided rule (RA >= SB - std) passed RA >> SB; the two-sided rule must not.

    Catches the mutant ``mean_ra >= mean_sb - bound`` (one-sided)."""
    sb = [92.5, 92.9, 93.1]  # SB stopped early, as in the former quick profile
    ra = [96.0, 96.3, 96.5]
    check = ra_matches_sb(sb, ra)
    assert check.passed is False
    assert check.numbers["signed_difference"] == pytest.approx(np.mean(ra) - np.mean(sb))
    assert "FAIL" in check.line()


def test_ra_matches_sb_is_symmetric_and_uses_the_larger_std():
    sb = [95.0, 95.6, 96.2]  # std 0.6
    ra_close = [96.0, 96.1, 96.2]  # std 0.1; mean diff 0.5 <= 0.6 + 0.5
    assert ra_matches_sb(sb, ra_close).passed is True
    assert ra_matches_sb(ra_close, sb).passed is True  # symmetric
    mean_sb, std_sb = np.mean(sb), np.std(sb, ddof=1)
    # just inside and just outside the bound, below SB (two-sided)
    inside = [mean_sb - std_sb - RA_TOLERANCE + 0.01 + d for d in (-0.05, 0.0, 0.05)]
    outside = [mean_sb - std_sb - RA_TOLERANCE - 0.05 + d for d in (-0.05, 0.0, 0.05)]
    assert ra_matches_sb(sb, inside).passed is True
    assert ra_matches_sb(sb, outside).passed is False


def test_lb_below_sb_is_paired_by_seed():
    """A gap of 0.9 whose seeds move together passes paired, though unpaired it is ~1.5 sigma.

    Catches an unpaired mutant (difference of means against the pooled spread) and a mutant
    that pairs by position instead of by seed."""
    sb = [95.0, 96.1, 95.6]
    lb = [93.8, 95.4, 94.8]  # per seed 1.2, 0.7, 0.8 (the measured F1 / MNIST-5k pattern)
    check = lb_below_sb(sb, (0, 1, 2), lb, (0, 1, 2))
    d = np.array([1.2, 0.7, 0.8])
    assert check.numbers["differences"] == pytest.approx(d)
    assert check.numbers["se"] == pytest.approx(d.std(ddof=1) / math.sqrt(3))
    assert check.numbers["lower"] == pytest.approx(d.mean() - 2 * d.std(ddof=1) / math.sqrt(3))
    assert check.passed is True
    # the same numbers listed in another seed order must pair the same way
    shuffled = lb_below_sb(sb, (0, 1, 2), [lb[2], lb[0], lb[1]], (2, 0, 1))
    assert shuffled.numbers["differences"] == pytest.approx(d)
    # differences that straddle zero do not pass; LB above SB does not pass (one direction)
    assert lb_below_sb([95.0, 95.0, 95.0], (0, 1, 2), [94.0, 95.5, 94.9], (0, 1, 2)).passed is False
    assert lb_below_sb(lb, (0, 1, 2), sb, (0, 1, 2)).passed is False


def test_checks_that_cannot_be_judged_say_why():
    assert lb_below_sb([95.0], (0,), [94.0], (0,)).passed is None
    assert lb_below_sb([95.0, 95.0], (0, 1), [94.0, 94.0], (2, 3)).passed is None
    assert sb_converged([95.0], [95.0], 32, 64).passed is None
    check = ra_matches_sb([95.0], [95.0, 95.2])
    assert check.passed is None and "two seeds" in check.reason and "not judged" in check.line()


def test_sb_converged_is_two_sided():
    sb = [95.0, 95.6, 96.1]
    assert sb_converged(sb, [95.2, 95.8, 95.7], 32, 64).passed is True
    assert sb_converged(sb, [96.9, 97.2, 97.4], 32, 64).passed is False  # still improving
    assert sb_converged(sb, [93.0, 93.4, 93.8], 32, 64).passed is False  # longer is worse


def test_paired_differences_keep_only_shared_seeds():
    seeds, d = paired_differences([1.0, 2.0, 3.0], (0, 1, 2), [0.5, 1.0], (2, 0))
    assert seeds == [0, 2] and d.tolist() == [0.0, 2.5]


def test_validation_noise_floor_is_the_binomial_standard_error():
    assert validation_noise_floor(95.0, 1000) == pytest.approx(100 * math.sqrt(0.95 * 0.05 / 1000))
    with pytest.raises(ValueError, match="n_val"):
        validation_noise_floor(95.0, 0)
    with pytest.raises(ValueError, match="accuracy"):
        validation_noise_floor(0.95e3, 10)


# ----------------------------------------------------------------------------- distance checks
from deep.checks import ADAPTED_SPREAD, adapted_agree, log_law, slope_decreases  # noqa: E402
from diffusion.metrics import Trace, fit_growth, log_schedule  # noqa: E402


def _noisy(t, d, seed=0, sigma=0.02):
    return Trace(t, d + np.random.default_rng(seed).normal(0, sigma, t.size))


def test_log_law_accepts_log_growth_and_rejects_power_and_saturation():
    """Synthetic traces over three decades: a + b log t passes; t^0.5 and a curve that levels
    off (a + b t^-0.3) fail. Catches a mutant that passes on |dBIC| (one-sided sign error)
    or that reads the best law's BIC instead of the log law's."""
    t = log_schedule(5000, 20)
    t = t[t >= 5]
    log = log_law(fit_growth(_noisy(t, 1 + 2 * np.log(t))), batch_size=32)
    assert log.passed is True and log.numbers["log_slope"] == pytest.approx(2, rel=0.02)
    power = log_law(fit_growth(_noisy(t, 0.5 * t**0.5)))
    assert power.passed is False and power.numbers["delta_bic_log"] > 2
    saturating = log_law(fit_growth(_noisy(t, 10 - 8 * t**-0.3, sigma=0.005)))
    assert saturating.passed is False
    assert "best law" in log.summary() and "dBIC(log)" in log.summary()


def test_slope_decreases_is_strict():
    assert slope_decreases({32: (2.0, 0.1), 128: (1.2, 0.1), 1024: (0.5, 0.1)}).passed is True
    assert slope_decreases({32: (2.0, 0.1), 128: (2.0, 0.1)}).passed is False
    assert slope_decreases({32: (1.0, 0.1), 128: (2.0, 0.1)}).passed is False
    assert slope_decreases({32: (1.0, 0.1)}).passed is None


def test_adapted_agree_compares_every_common_step():
    """Curves equal up to 10% pass; curves that agree at the end but differ by 40% in the
    middle fail (catches a mutant that compares only the last step)."""
    t = log_schedule(2000, 20)
    base = 1 + np.log(t)
    same = {32: Trace(t, base), 128: Trace(t, 1.05 * base), 1024: Trace(t, 0.95 * base)}
    check = adapted_agree(same, t_min=10)
    assert check.passed is True and check.numbers["worst"] == pytest.approx(0.1, abs=1e-9)
    bulge = 1 + 0.4 * np.exp(-((np.log(t) - np.log(100)) ** 2))
    apart = {32: Trace(t, base), 1024: Trace(t, base * bulge)}
    check = adapted_agree(apart, t_min=10)
    assert check.passed is False and check.numbers["last"] < ADAPTED_SPREAD
    assert 60 <= check.numbers["worst_step"] <= 160
    # the bulge has died down well before the end: the curves agree from some step on
    assert 200 <= check.numbers["agree_from"] < 2000
    assert adapted_agree(same, t_min=10).numbers["agree_from"] == 10
    assert adapted_agree({32: Trace(t, base)}, t_min=10).passed is None


def test_log_law_is_not_judged_on_a_window_shorter_than_two_decades():
    """Catches a mutant that judges the law on 63 steps (the large batch at equal epochs)."""
    t = np.arange(10, 64)
    check = log_law(fit_growth(_noisy(t, 1 + 2 * np.log(t))), batch_size=1024)
    assert check.passed is None
    assert "decades" in check.reason and check.numbers["decades"] < 1
