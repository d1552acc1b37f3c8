"""Random potentials, walkers on them, the exact theory -- and the shared ruler.

``diffusion.metrics`` (traces, growth-law fits, the gamma estimate), ``diffusion.records``
(run folders, atomic writes, kept measurements) and ``diffusion.validation`` (boundary checks)
are shared by every layer of the package -- ``separable/`` and ``deep/`` import them -- and
import no layer themselves. They live here because the design fixes the top-level folders.
"""

from diffusion.metrics import Trace, estimate_gamma, fit_growth, fit_law, local_slope, log_schedule

__all__ = ["Trace", "estimate_gamma", "fit_growth", "fit_law", "local_slope", "log_schedule"]
