"""Verdicts and checked items: the common currency of every part of the checker.

An assumption (about the loss or the data) *holds*, *fails* or is *undetermined*; a
conclusion of a theorem is *observed* or *not observed* on a run -- or *inconclusive* when
the run has not reached the regime where its tolerance can be judged (a transient that the
predicted rate says is still running) -- and is *guaranteed* or not by the theorem that the
assumptions select. Every item carries its evidence in words and,
where one exists, a counterexample that was checked numerically.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from diffusion.records import to_jsonable

__all__ = ["Verdict", "Counterexample", "CheckItem"]


class Verdict(str, enum.Enum):
    """Outcome of one check."""

    HOLDS = "holds"
    FAILS = "fails"
    UNDETERMINED = "undetermined"
    OBSERVED = "observed"
    NOT_OBSERVED = "not observed"
    INCONCLUSIVE = "inconclusive"

    def __str__(self) -> str:
        return self.value


def _finite_or_text(value: Any) -> Any:
    """Replace non-finite floats (JSON has none) by their text, recursively."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: _finite_or_text(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite_or_text(v) for v in value]
    return value


@dataclass(frozen=True)
class Counterexample:
    """A point where a property fails, with the offending value computed numerically.

    Attributes
    ----------
    point : float
        The argument (``u`` for a loss property, a sample index or a time for the others).
    quantity : str
        What was evaluated there, e.g. ``"l'(u)"``.
    value : float or tuple of float
        Its value (two values for one-sided quantities: left, right).
    violates : str
        The inequality or equality it violates, e.g. ``"l'(u) < 0"``.
    """

    point: float
    quantity: str
    value: float | tuple[float, float]
    violates: str

    def __str__(self) -> str:
        if isinstance(self.value, tuple):
            val = "(" + ", ".join(f"{v:.6g}" for v in self.value) + ")"
        else:
            val = f"{self.value:.6g}"
        return f"at u={self.point:.6g}: {self.quantity} = {val}, violating {self.violates}"

    def as_dict(self) -> dict:
        """JSON-able view."""

        def plain(x: float) -> float | str:
            return float(x) if math.isfinite(x) else str(x)  # JSON has no inf/nan

        value = (
            [plain(v) for v in self.value] if isinstance(self.value, tuple) else plain(self.value)
        )
        return {
            "point": plain(self.point),
            "quantity": self.quantity,
            "value": value,
            "violates": self.violates,
        }


@dataclass(frozen=True)
class CheckItem:
    """One line of a report.

    Attributes
    ----------
    name : str
        Short identifier, e.g. ``"A2 decreasing"`` or ``"Thm 4 rho -> w_tilde"``.
    verdict : Verdict
    evidence : str
        What was computed (a limit, a bound, a fitted rate beside the predicted one).
    guaranteed : bool or None
        For conclusions: whether the applicable theorem guarantees it; ``None`` for
        assumptions and data checks.
    values : mapping
        The numbers behind the evidence (measured, predicted, tolerance, ...).
    counterexample : Counterexample or None
        A numerically checked point where the property fails.
    """

    name: str
    verdict: Verdict
    evidence: str
    guaranteed: bool | None = None
    values: Mapping[str, Any] = field(default_factory=dict)
    counterexample: Counterexample | None = None

    @property
    def ok(self) -> bool:
        """True unless the item fails, or is a guaranteed conclusion not observed."""
        if self.verdict is Verdict.FAILS:
            return False
        return not (self.guaranteed and self.verdict is Verdict.NOT_OBSERVED)

    @property
    def label(self) -> str:
        """The verdict as shown in the table (conclusions say whether they are guaranteed)."""
        if self.guaranteed is False:
            return f"not guaranteed ({self.verdict.value})"
        if self.guaranteed and self.verdict is Verdict.NOT_OBSERVED:
            return "NOT OBSERVED"
        if self.guaranteed and self.verdict is Verdict.INCONCLUSIVE:
            return "INCONCLUSIVE"
        return self.verdict.value

    def as_dict(self) -> dict:
        """JSON-able view."""
        return {
            "name": self.name,
            "verdict": self.verdict.value,
            "label": self.label,
            "evidence": self.evidence,
            "guaranteed": self.guaranteed,
            "values": to_jsonable(_finite_or_text(dict(self.values)), "values"),
            "counterexample": self.counterexample.as_dict() if self.counterexample else None,
        }
