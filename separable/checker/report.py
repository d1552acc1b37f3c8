"""The checker's report: every item in one table (item | verdict | evidence), or JSON.

The exit code (:attr:`CheckReport.exit_code`), also said on the table's last line:

=====  =====================================================================================
0      a theorem applies and every conclusion it guarantees was observed
1      a guaranteed conclusion was contradicted by a run
2      bad input (the command line's own errors; never a report)
3      nothing is guaranteed: an assumption or the step bound fails for every conclusion
4      inconclusive: a guaranteed conclusion is still in its transient at the end of the run,
       or the check ran past its time limit
=====  =====================================================================================
"""

from __future__ import annotations

import json
import textwrap
from dataclasses import dataclass

from diffusion.records import to_jsonable
from separable.checker.assumptions import LossAssumptions
from separable.checker.data_checks import DataChecks, Regime
from separable.checker.verdicts import CheckItem, Verdict

__all__ = ["CheckReport", "format_table"]

REGIME_TEXT = {
    Regime.THM4: "Theorem 4: rho(t) -> w_tilde; Theorem 5 rates (almost every dataset), constants",
    Regime.THM3_BOUNDED: "Theorem 3: w = w_hat log t + rho, rho bounded (SVs do not span data)",
    Regime.DEGENERATE: "Theorem 3, degenerate case: iterated-log terms, ||rho|| = O(log log t)",
    Regime.LEMMA1: "Lemma 1 only: no tight exponential tail, convergence to w_hat not guaranteed",
    Regime.NONE: "nothing: an assumption of Lemma 1 fails or is undetermined",
}


@dataclass(frozen=True)
class CheckReport:
    """Everything the checker found for one loss, data set and step size.

    Attributes
    ----------
    loss : str
        The loss as given.
    expression : str
        Its sympy expression in ``u``.
    eta : float
    data : str
        Name of the data set.
    assumptions : LossAssumptions
    data_checks : DataChecks
    conclusions : tuple of CheckItem
        Observed conclusions of the discrete run and the flow.
    notes : tuple of str
        Warnings raised by the runs and other remarks.
    timed_out : str or None
        The phase during which the check ran past ``timeout`` (None if it finished).
    timeout : float or None
        The time limit of the whole check.
    """

    loss: str
    expression: str
    eta: float
    data: str
    assumptions: LossAssumptions | None
    data_checks: DataChecks | None
    conclusions: tuple[CheckItem, ...]
    notes: tuple[str, ...] = ()
    timed_out: str | None = None
    timeout: float | None = None

    @property
    def regime(self) -> Regime:
        """The result that applies to the discrete run (NONE if the check stopped before)."""
        return self.data_checks.regime if self.data_checks else Regime.NONE

    @property
    def flow_regime(self) -> Regime:
        """The result that applies to the gradient flow."""
        return self.data_checks.flow_regime if self.data_checks else Regime.NONE

    @property
    def items(self) -> tuple[CheckItem, ...]:
        """All items: loss assumptions, data checks, conclusions."""
        head = self.assumptions.items if self.assumptions else ()
        data = self.data_checks.items if self.data_checks else ()
        return head + data + self.conclusions

    def item(self, name: str) -> CheckItem:
        """The item whose name is ``name`` or starts with it."""
        for it in self.items:
            if it.name == name:
                return it
        matches = [it for it in self.items if it.name.startswith(name)]
        if len(matches) == 1:
            return matches[0]
        raise KeyError(f"no single item named {name!r}; names are {[i.name for i in self.items]}")

    @property
    def violations(self) -> tuple[CheckItem, ...]:
        """Conclusions that the theorem guarantees but the runs did not show."""
        return tuple(
            it for it in self.conclusions if it.guaranteed and it.verdict is Verdict.NOT_OBSERVED
        )

    @property
    def inconclusive(self) -> tuple[CheckItem, ...]:
        """Guaranteed conclusions that the runs could not judge yet."""
        return tuple(
            it for it in self.conclusions if it.guaranteed and it.verdict is Verdict.INCONCLUSIVE
        )

    @property
    def guaranteed(self) -> tuple[CheckItem, ...]:
        """The conclusions that the applicable theorem guarantees."""
        return tuple(it for it in self.conclusions if it.guaranteed)

    @property
    def ok(self) -> bool:
        """True when a theorem applies and every conclusion it guarantees was observed."""
        return self.exit_code == 0

    @property
    def exit_code(self) -> int:
        """0 all observed, 1 contradicted, 3 nothing guaranteed, 4 inconclusive (module doc)."""
        if self.violations:
            return 1
        if self.timed_out is not None:
            return 4
        if not self.guaranteed:
            return 3
        return 4 if self.inconclusive else 0

    @property
    def verdict_line(self) -> str:
        """The last line of the table: the exit code in words."""
        code = self.exit_code
        if code == 1:
            return "GUARANTEED BUT NOT OBSERVED: " + "; ".join(it.name for it in self.violations)
        if code == 4 and self.timed_out is not None:
            return (
                f"INCONCLUSIVE: the check ran past its time limit ({self.timeout:g} s) during "
                f"{self.timed_out}"
            )
        if code == 4:
            return "INCONCLUSIVE (transient not over): " + "; ".join(
                it.name for it in self.inconclusive
            )
        if code == 3:
            return (
                "NOTHING GUARANTEED: no theorem applies "
                f"({REGIME_TEXT[self.regime]}); the observations above prove nothing"
            )
        return "every conclusion guaranteed by the theorem was observed"

    def table(self, width: int = 110) -> str:
        """The report as a plain-text table."""
        return format_table(self, width)

    def as_dict(self) -> dict:
        """JSON-able view."""
        return to_jsonable(
            {
                "loss": self.loss,
                "expression": self.expression,
                "eta": self.eta,
                "data": self.data,
                "regime": self.regime.value,
                "flow_regime": self.flow_regime.value,
                "step_limit": self.data_checks.step_limit if self.data_checks else None,
                "assumptions": [it.as_dict() for it in self.assumptions.items]
                if self.assumptions
                else [],
                "data_checks": [it.as_dict() for it in self.data_checks.items]
                if self.data_checks
                else [],
                "conclusions": [it.as_dict() for it in self.conclusions],
                "violations": [it.name for it in self.violations],
                "inconclusive": [it.name for it in self.inconclusive],
                "ok": self.ok,
                "exit_code": self.exit_code,
                "verdict": self.verdict_line,
                "timed_out": self.timed_out,
                "notes": list(self.notes),
            },
            "report",
        )

    def to_json(self) -> str:
        """The report as a JSON string."""
        return json.dumps(self.as_dict(), indent=2)


def _rows(items: tuple[CheckItem, ...], name_w: int, verdict_w: int, ev_w: int) -> list[str]:
    lines = []
    for it in items:
        wrapped = textwrap.wrap(it.evidence, ev_w) or [""]
        name = textwrap.wrap(it.name, name_w) or [""]
        for i in range(max(len(wrapped), len(name))):
            n = name[i] if i < len(name) else ""
            v = it.label if i == 0 else ""
            e = wrapped[i] if i < len(wrapped) else ""
            lines.append(f"{n:<{name_w}} | {v:<{verdict_w}} | {e}")
    return lines


def format_table(report: CheckReport, width: int = 110) -> str:
    """Render ``report`` as sections of ``item | verdict | evidence`` rows."""
    name_w, verdict_w = 30, 29
    ev_w = max(width - name_w - verdict_w - 6, 30)
    rule = "-" * width
    head = f"{'item':<{name_w}} | {'verdict':<{verdict_w}} | evidence"
    out = [
        f"loss {report.loss!r} = {report.expression}; data {report.data}; eta = {report.eta:g}",
        rule,
        head,
        rule,
    ]
    if report.assumptions:
        out += ["# loss (JMLR A2, A3)"]
        out += _rows(report.assumptions.items, name_w, verdict_w, ev_w)
    dc = report.data_checks
    if dc:
        out += ["# data and step"] + _rows(dc.items, name_w, verdict_w, ev_w)
        out += [f"# applies to the discrete run: {REGIME_TEXT[dc.regime]}"]
        if dc.flow_regime != dc.regime:
            out += [f"# applies to the gradient flow: {REGIME_TEXT[dc.flow_regime]}"]
    out += ["# conclusions"] + _rows(report.conclusions, name_w, verdict_w, ev_w)
    out.append(rule)
    for note in report.notes:
        out += textwrap.wrap("note: " + note, width)
    out.append(report.verdict_line)
    return "\n".join(out)
