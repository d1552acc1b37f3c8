"""Figure ``soudry_fig1``: JMLR 2018 Fig. 1 -- GD and momentum on the Fig. 1 data set.

Logistic loss, start at the origin, step ``eta = 1/sigma_max(X)^2`` for GD and the same step
with momentum 0.9 (GDMO). Panels as in the paper: the data with the SVM separator and the
separators reached; ``||w(t)||`` growing like ``log t`` (normalised to 1 at the last step);
the loss falling like ``1/t``; the angle gap and the margin gap. Dotted: the predictions of
:func:`separable.theory.predict` (momentum moves like GD with ``eta / (1 - beta)``).
"""

from __future__ import annotations

from pathlib import Path

from figures import _soudry
from figures.registry import FigureResult, check_profile
from separable.experiments import SeparableRunConfig

NAME = "soudry_fig1"
TITLE = (
    "JMLR Fig. 1: GD and momentum -> SVM direction; ||w|| ~ log t, loss ~ 1/t, angle/margin gaps"
)


def configs(profile: str) -> dict[str, SeparableRunConfig]:
    """The runs behind the figure: label -> configuration."""
    check_profile(profile)
    return _soudry.gd_and_momentum("fig1", profile)


def build(profile: str, runs: Path, out: Path) -> FigureResult:
    """Build the figure: see the module docstring."""
    caption = __doc__.split("\n\n")[1].replace("\n", " ")
    return _soudry.build(
        NAME, configs(profile), runs, out, title="JMLR Fig. 1 data, logistic loss", caption=caption
    )
