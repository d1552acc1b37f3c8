"""Writing a figure and the data behind it: PNG + PDF, and a ``.npz`` a reader can re-plot.

Every file goes through the atomic writers of :mod:`diffusion.records`, so an interrupted
``python -m figures`` never leaves half a file behind.
"""

from __future__ import annotations

import io
import json
from collections.abc import Mapping
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from diffusion.metrics import GrowthFit, LawFit
from diffusion.records import atomic_write_bytes, atomic_write_npz, to_jsonable
from figures.style import DPI

__all__ = ["save_figure", "save_data", "load_data", "fits_to_json"]

FORMATS = ("png", "pdf")


def save_figure(fig: Figure, out: Path, name: str, *, dpi: int = DPI) -> tuple[Path, ...]:
    """Write ``fig`` as ``out/name.png`` and ``out/name.pdf`` and close it.

    Returns
    -------
    tuple of Path
        The files written, PNG first.
    """
    out = Path(out)
    paths = []
    try:
        for fmt in FORMATS:
            buf = io.BytesIO()
            fig.savefig(buf, format=fmt, dpi=dpi, metadata=_metadata(fmt, name))
            paths.append(atomic_write_bytes(out / f"{name}.{fmt}", buf.getvalue()))
    finally:
        plt.close(fig)
    return tuple(paths)


def _metadata(fmt: str, name: str) -> dict:
    # no creation date: the same data gives the same bytes, so the committed PNGs only
    # change when a figure does
    if fmt == "png":
        return {"Software": None, "Title": name}
    return {"Creator": None, "Producer": None, "CreationDate": None, "Title": name}


def fits_to_json(fits: Mapping[str, LawFit | GrowthFit]) -> str:
    """JSON text of named fits (``LawFit`` or ``GrowthFit``)."""
    return json.dumps({k: to_jsonable(v.as_dict(), k) for k, v in fits.items()}, sort_keys=True)


def save_data(
    out: Path,
    name: str,
    arrays: Mapping[str, np.ndarray],
    fits: Mapping[str, LawFit | GrowthFit] | None = None,
) -> Path:
    """Write the arrays behind a figure to ``out/name.npz``.

    Parameters
    ----------
    out : Path
        Output folder.
    name : str
        Figure name.
    arrays : mapping of str to array
        What the figure draws, under self-explaining keys (``brownian.t``, ...).
    fits : mapping of str to LawFit or GrowthFit, optional
        Fitted laws drawn on the figure, stored as JSON text under the key ``fits``.

    Returns
    -------
    Path
    """
    data = {k: np.asarray(v) for k, v in arrays.items()}
    for key, value in data.items():
        if value.dtype == object:
            raise TypeError(
                f"arrays[{key!r}] has dtype object, which a .npz cannot hold without pickle"
            )
    if fits:
        if "fits" in data:
            raise ValueError("arrays must not use the key 'fits'; it holds the fitted laws")
        data["fits"] = np.asarray(fits_to_json(fits))
    return atomic_write_npz(Path(out) / f"{name}.npz", data)


def load_data(path: Path) -> tuple[dict[str, np.ndarray], dict]:
    """Read a figure's ``.npz``: the arrays and the fitted laws (as dictionaries)."""
    with np.load(path, allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    fits = json.loads(str(arrays.pop("fits"))) if "fits" in arrays else {}
    return arrays, fits
