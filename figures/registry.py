"""The figures of the package, their uniform interface, and the runner that builds them.

Each figure is a module ``figures.<name>`` with

* ``TITLE`` -- one line saying what the figure shows, and
* ``build(profile, runs, out) -> FigureResult`` -- compute (or reuse) the runs behind the
  figure under ``runs``, and write ``out/<name>.png``, ``.pdf`` and ``.npz``.

Profiles set the scale: ``tiny`` (seconds; for tests), ``quick`` (the gallery, minutes on a
laptop) and ``full`` (paper scale). Runs are kept as run folders (:mod:`diffusion.records`),
named by the hash of their configuration, so a second build reuses every finished run.
"""

from __future__ import annotations

import contextlib
import importlib
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from diffusion.metrics import LawFit

__all__ = [
    "PROFILES",
    "FIGURES",
    "FigureResult",
    "FigureFailure",
    "check_profile",
    "resolve_names",
    "load_figure",
    "build_figures",
    "progress",
    "set_progress",
    "heartbeat",
]

PROFILES = ("tiny", "quick", "full")

FIGURES: dict[str, str] = {
    "sinai": "figures.sinai",
    "soudry_fig1": "figures.soudry_fig1",
    "soudry_adam": "figures.soudry_adam",
    "distance": "figures.distance",
    "lawmap": "figures.lawmap",
    "table": "figures.table",
    "sharpness": "figures.sharpness",
    "overlay": "figures.overlay",
}
"""Figure name -> module, in the order ``python -m figures`` builds them."""


@dataclass(frozen=True)
class FigureResult:
    """What building one figure produced.

    Attributes
    ----------
    name : str
        Figure name (a key of :data:`FIGURES`).
    paths : tuple of Path
        Files written: PNG, PDF, and any extra (the markdown table).
    data_file : Path
        The ``.npz`` with the arrays drawn and the fitted laws (:func:`figures.output.load_data`).
    fits : dict of str to LawFit
        The fitted laws drawn on the figure, by curve label.
    runs : tuple of Path
        The run folders the figure was computed from.
    caption : str
        What the figure shows, with the settings that matter.
    """

    name: str
    paths: tuple[Path, ...]
    data_file: Path
    fits: dict[str, LawFit] = field(default_factory=dict)
    runs: tuple[Path, ...] = ()
    caption: str = ""

    @property
    def png(self) -> Path:
        """The PNG file."""
        return next(p for p in self.paths if p.suffix == ".png")


@dataclass(frozen=True)
class FigureFailure:
    """A figure that could not be built: its name, the error, and the traceback text."""

    name: str
    error: BaseException
    traceback: str


# ----------------------------------------------------------------------------- progress
_sink: Callable[[str], None] | None = None


def set_progress(sink: Callable[[str], None] | None) -> None:
    """Send progress lines to ``sink`` (``None``: silence)."""
    global _sink
    _sink = sink


def progress(message: str) -> None:
    """Report a step of a figure's build (shown by ``python -m figures``)."""
    if _sink is not None:
        _sink(message)


def _finished_runs(root: Path) -> set[str]:
    return {p.parent.name for p in Path(root).glob("*/summary.json")}


@contextlib.contextmanager
def heartbeat(runs: Path, label: str, every: float = 30.0, total: int | None = None):
    """While the block runs, report every ``every`` seconds how many new runs have finished.

    For long computations done by a layer in one call (a table of training runs): the
    finished run folders under ``runs`` are counted, so the user sees the work advance.
    """
    if _sink is None:
        yield
        return
    before = _finished_runs(runs)
    start = time.perf_counter()
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(every):
            done = len(_finished_runs(runs) - before)
            of = f"/{total}" if total is not None else ""
            progress(
                f"  {label}: {done}{of} new runs finished, {time.perf_counter() - start:.0f} s"
            )

    thread = threading.Thread(target=beat, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


# ----------------------------------------------------------------------------- lookup
def check_profile(profile: str) -> str:
    """Return ``profile`` if it is one of :data:`PROFILES`, else raise ``ValueError``."""
    if profile not in PROFILES:
        raise ValueError(f"profile must be one of {PROFILES}, got {profile!r}")
    return profile


def resolve_names(names: Iterable[str] | None) -> list[str]:
    """Figure names in build order from ``--only`` values (names or comma lists).

    ``None`` or an empty list means every figure.
    """
    if names is None:
        return list(FIGURES)
    wanted: list[str] = []
    for item in names:
        if not isinstance(item, str):
            raise TypeError(f"figure names must be strings, got {item!r}")
        wanted += [part.strip() for part in item.split(",") if part.strip()]
    unknown = [n for n in wanted if n not in FIGURES]
    if unknown:
        raise ValueError(f"unknown figure(s) {unknown}; available: {list(FIGURES)}")
    return [n for n in FIGURES if n in wanted] if wanted else list(FIGURES)


def load_figure(name: str):
    """Import the module of figure ``name``."""
    if name not in FIGURES:
        raise ValueError(f"unknown figure {name!r}; available: {list(FIGURES)}")
    return importlib.import_module(FIGURES[name])


def titles() -> Mapping[str, str]:
    """Figure name -> one-line title, importing each module (``--list``)."""
    out = {}
    for name in FIGURES:
        try:
            out[name] = load_figure(name).TITLE
        except Exception as exc:  # a layer missing: still list the figure
            out[name] = f"(cannot import: {type(exc).__name__}: {exc})"
    return out


# ----------------------------------------------------------------------------- runner
def build_figures(
    names: Iterable[str] | None = None,
    *,
    profile: str = "quick",
    runs: Path | str = "runs",
    out: Path | str = "figures/out",
    keep_going: bool = False,
) -> tuple[list[FigureResult], list[FigureFailure]]:
    """Build figures one after the other.

    Parameters
    ----------
    names : iterable of str, optional
        Figures to build (see :func:`resolve_names`); all by default.
    profile : {'tiny', 'quick', 'full'}
        Scale of the runs.
    runs : path
        Folder holding the run folders (created if needed).
    out : path
        Folder for the figure files (created if needed).
    keep_going : bool
        On a figure's error, record it and go on with the next (``True``) or raise (``False``).

    Returns
    -------
    results : list of FigureResult
    failures : list of FigureFailure
        Empty unless ``keep_going``.
    """
    check_profile(profile)
    chosen = resolve_names(names)
    runs, out = Path(runs), Path(out)
    runs.mkdir(parents=True, exist_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    results: list[FigureResult] = []
    failures: list[FigureFailure] = []
    for i, name in enumerate(chosen, 1):
        start = time.perf_counter()
        progress(f"[{i}/{len(chosen)}] {name} ({profile})")
        try:
            result = load_figure(name).build(profile, runs, out)
        except Exception as exc:
            if not keep_going:
                raise
            failures.append(FigureFailure(name, exc, traceback.format_exc()))
            progress(
                f"[{i}/{len(chosen)}] {name} FAILED after {time.perf_counter() - start:.1f} s: "
                f"{type(exc).__name__}: {exc}"
            )
            continue
        if not isinstance(result, FigureResult):
            raise TypeError(f"figure {name!r} returned {type(result).__name__}, not FigureResult")
        results.append(result)
        progress(
            f"[{i}/{len(chosen)}] {name} done in {time.perf_counter() - start:.1f} s -> "
            + ", ".join(str(p) for p in result.paths)
        )
    return results, failures


def stderr_sink(message: str) -> None:
    """Progress sink printing to standard error with the wall-clock time."""
    print(f"{time.strftime('%H:%M:%S')} {message}", file=sys.stderr, flush=True)
