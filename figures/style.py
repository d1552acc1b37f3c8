"""The one look of every figure: Agg backend, sizes, fonts, colours, and law labels.

Figures are sized for a two-column paper: :data:`COLUMN` inches for one column and
:data:`PAGE` for a figure across the page, with fonts that stay readable at that width.
Colours come from the Okabe-Ito palette, which stays distinct for colour-blind readers and
in greyscale print.
"""

from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")  # figures are files; never open a window

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from diffusion.metrics import LawFit  # noqa: E402

__all__ = [
    "COLUMN",
    "PAGE",
    "DPI",
    "PALETTE",
    "RC",
    "apply",
    "color",
    "new_figure",
    "new_mosaic",
    "law_text",
    "plot_fit",
    "panel_label",
]

COLUMN = 3.4
"""Width of one column in inches."""
PAGE = 7.0
"""Width of a figure spanning both columns, in inches."""
DPI = 110
"""Resolution of the PNG files (the PDF is vector)."""

PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442", "#000000")
"""Okabe-Ito colours: blue, vermillion, green, purple, orange, sky blue, yellow, black."""

RC = {
    "font.size": 8,
    "axes.titlesize": 8.5,
    "axes.labelsize": 8,
    "xtick.labelsize": 7,
    "ytick.labelsize": 7,
    "legend.fontsize": 6.5,
    "legend.frameon": False,
    "legend.handlelength": 1.8,
    "lines.linewidth": 1.3,
    "lines.markersize": 3.5,
    "axes.linewidth": 0.7,
    "axes.grid": True,
    "grid.alpha": 0.25,
    "grid.linewidth": 0.5,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.prop_cycle": matplotlib.cycler(color=list(PALETTE)),
    "figure.dpi": DPI,
    "savefig.dpi": DPI,
    "savefig.bbox": "tight",
    "savefig.pad_inches": 0.03,
    "pdf.fonttype": 42,
    "mathtext.fontset": "dejavusans",
    "figure.constrained_layout.use": True,
}
"""matplotlib settings applied to every figure of the package."""


def color(i: int) -> str:
    """The ``i``-th colour of the palette (cycling)."""
    return PALETTE[int(i) % len(PALETTE)]


def new_figure(
    nrows: int = 1, ncols: int = 1, *, width: str | float = "column", aspect: float = 0.75, **kwargs
) -> tuple[Figure, np.ndarray]:
    """A figure in the package style with a grid of axes.

    Parameters
    ----------
    nrows, ncols : int
        Grid of panels.
    width : {'column', 'page'} or float
        Figure width: one column, the whole page, or inches.
    aspect : float
        Height of one panel over its width.
    **kwargs
        Passed to :func:`matplotlib.pyplot.subplots`.

    Returns
    -------
    fig : matplotlib.figure.Figure
    axes : numpy.ndarray of Axes
        Always a 2-D array ``(nrows, ncols)``.
    """
    inches = _width(width)
    if not (isinstance(aspect, (int, float)) and aspect > 0):
        raise ValueError(f"aspect must be a positive number, got {aspect!r}")
    apply()
    height = inches / ncols * aspect * nrows
    fig, axes = plt.subplots(nrows, ncols, figsize=(inches, height), squeeze=False, **kwargs)
    return fig, axes


def new_mosaic(
    mosaic: list[list[str]] | str, *, width: str | float = "page", height: float | None = None
) -> tuple[Figure, dict[str, Axes]]:
    """A figure in the package style with named panels laid out by ``mosaic``.

    Parameters
    ----------
    mosaic : list of list of str, or str
        As :func:`matplotlib.pyplot.subplot_mosaic` (e.g. ``[["A", "B", "C"], ["A", "D", "E"]]``).
    width : {'column', 'page'} or float
        Figure width.
    height : float, optional
        Height in inches; 0.55 of the width by default.
    """
    inches = _width(width)
    apply()
    fig, axes = plt.subplot_mosaic(
        mosaic, figsize=(inches, 0.55 * inches if height is None else height)
    )
    return fig, axes


def _width(width: str | float) -> float:
    if isinstance(width, str):
        if width not in ("column", "page"):
            raise ValueError(f"width must be 'column', 'page' or inches, got {width!r}")
        return COLUMN if width == "column" else PAGE
    inches = float(width)
    if not (math.isfinite(inches) and inches > 0):
        raise ValueError(f"width must be positive, got {width!r}")
    return inches


def apply() -> None:
    """Make :data:`RC` the current matplotlib settings (text made later reads them too)."""
    matplotlib.rcParams.update(RC)


def _num(x: float) -> str:
    """A number in short mathtext form (3 significant digits, powers of ten spelled out)."""
    if x == 0 or not math.isfinite(x):
        return f"{x:g}"
    exp = int(math.floor(math.log10(abs(x))))
    if -3 <= exp <= 3:
        return f"{x:.3g}"
    mant = x / 10**exp
    return rf"{mant:.2g}\times10^{{{exp}}}"


def law_text(fit: LawFit, var: str = "t") -> str:
    """The fitted law as a mathtext string, e.g. ``$0.12 + 1.3\\,\\log t$``."""
    p = fit.params
    v = var

    def plus(b: float) -> str:
        return f"- {_num(-b)}" if b < 0 else f"+ {_num(b)}"

    if fit.law == "log":
        body = rf"{_num(p['a'])} {plus(p['b'])}\,\log {v}"
    elif fit.law == "polylog":
        body = rf"{_num(p['a'])} {plus(p['b'])}\,(\log {v})^{{{p['k']:.2f}}}"
    elif fit.law == "power":
        body = rf"{_num(p['a'])}\,{v}^{{{p['nu']:.3f}}}"
    elif fit.law == "power_offset":
        body = rf"{_num(p['a'])} {plus(p['b'])}\,{v}^{{{p['nu']:.3f}}}"
    else:  # a law added to the ruler later: fall back on its formula
        return fit.formula
    return f"${body}$"


def plot_fit(
    ax: Axes, fit: LawFit, *, scale: float = 1.0, n: int = 200, label: str | None = None, **kwargs
):
    """Draw a fitted law over the time range it was fitted on (dashed by default).

    Parameters
    ----------
    ax : Axes
    fit : LawFit
    scale : float
        Multiply the law by this factor (for normalised curves).
    n : int
        Points on the curve (log-spaced).
    label : str, optional
        Legend label; defaults to the law itself.
    **kwargs
        Line properties.
    """
    lo, hi = fit.t_range
    t = np.geomspace(max(lo, 1), max(hi, lo + 1), n)
    kwargs.setdefault("linestyle", "--")
    kwargs.setdefault("linewidth", 1.0)
    return ax.plot(
        t, scale * fit.predict(t), label=law_text(fit) if label is None else label, **kwargs
    )


def panel_label(ax: Axes, letter: str) -> None:
    """Bold panel letter in the upper-left corner outside the axes (A, B, ...)."""
    ax.text(
        -0.02,
        1.02,
        letter,
        transform=ax.transAxes,
        fontweight="bold",
        fontsize=9,
        ha="right",
        va="bottom",
    )
