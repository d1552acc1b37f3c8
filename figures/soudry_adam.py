"""Figure ``soudry_adam``: JMLR 2018 Fig. 3 -- Adam does not find the L2 max-margin direction.

The Fig. 1 data with the second coordinate multiplied by 20; logistic loss from the origin.
GD and GDMO (momentum 0.9, default step ``1/sigma_max(X)^2``) approach the SVM direction;
Adam (step 1e-3, beta = (0.9, 0.999)) drives the loss to zero as well but settles on another
direction, so its angle and margin gaps stop falling. Dotted: the predictions of
:func:`separable.theory.predict` for GD and GDMO (Adam has none).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from figures import _soudry
from figures.registry import FigureResult, check_profile
from separable.experiments import SeparableRunConfig

NAME = "soudry_adam"
TITLE = "JMLR Fig. 3: Adam vs GD and momentum on stretched data -- Adam misses the SVM direction"


def configs(profile: str) -> dict[str, SeparableRunConfig]:
    """The runs behind the figure: label -> configuration."""
    check_profile(profile)
    runs = _soudry.gd_and_momentum("fig3", profile)
    adam = replace(runs["GD"], method="adam", eta=1e-3)
    return {**runs, "Adam": adam}


def build(profile: str, runs: Path, out: Path) -> FigureResult:
    """Build the figure: see the module docstring."""
    caption = __doc__.split("\n\n")[1].replace("\n", " ")
    return _soudry.build(
        NAME, configs(profile), runs, out, title=r"Fig. 1 data with $x_2\times 20$", caption=caption
    )
