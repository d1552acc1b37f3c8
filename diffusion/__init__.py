"""Random potentials, walkers on them, the exact theory -- and the shared ruler.

``diffusion.metrics`` (traces, growth-law fits, the gamma estimate) and
``diffusion.records`` (run folders) are used by every layer of the package.
"""

from diffusion.metrics import Trace, estimate_gamma, fit_growth, fit_law, local_slope, log_schedule

__all__ = ["Trace", "estimate_gamma", "fit_growth", "fit_law", "local_slope", "log_schedule"]
