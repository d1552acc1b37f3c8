"""The convex-case proofs checker of JMLR 2018 (Soudry et al., "The implicit bias of gradient
descent on separable data").

Given a loss, a data set and a step size, it checks the loss assumptions A2 and A3
symbolically (sympy), the data and step conditions numerically, decides which result
applies (Lemma 1, Theorem 3, Theorem 4 or the degenerate case) and observes that result's
conclusions on a discrete run and on the gradient flow, with the measured rates and
constants beside the predicted ones::

    from separable.checker import check
    report = check("log(1+exp(-u))", X, y, eta=0.05)
    print(report.table()); report.exit_code

Command line: ``python -m separable check --loss "log(1+exp(-u))" --data fig1 --eta 0.05``.
"""

from separable.checker.assumptions import LossAssumptions, check_loss
from separable.checker.conclusions import Tolerances
from separable.checker.data_checks import DataChecks, Regime, check_data
from separable.checker.loss_input import loss_expression, parse_loss
from separable.checker.pipeline import check
from separable.checker.report import CheckReport
from separable.checker.verdicts import CheckItem, Counterexample, Verdict

__all__ = [
    "check",
    "CheckReport",
    "check_loss",
    "LossAssumptions",
    "check_data",
    "DataChecks",
    "Regime",
    "Tolerances",
    "CheckItem",
    "Counterexample",
    "Verdict",
    "loss_expression",
    "parse_loss",
]
