"""Run folders shared by every layer: config.json, records.npz, summary.json.

A run is identified by its configuration, a frozen dataclass. The folder name is the
configuration's kind plus a hash of its canonical JSON, so the same configuration always
maps to the same folder and a finished run is reused instead of recomputed
(:func:`run_or_load`). Every file is written atomically (temporary file in the same folder,
then ``os.replace``), and ``summary.json`` is written last: a folder without it, or whose
files do not match, is not a finished run and :func:`load_run` refuses it.

One run protocol
----------------
Every layer runs a configuration the same way, ``runner(config, runs, *, runtime=None,
force=False)``, where ``runtime`` is a :class:`diffusion.runtime.Runtime` (never hashed).
:func:`run` is the one entry point for any of them: it looks up the runner registered for the
configuration's type (:func:`register_runner`, called by each layer's module when it is
imported -- whoever holds a configuration has imported the module that defines it, so its
runner is registered) and returns the :class:`Run`. This module imports no layer. Registered:

=============================================  ==============================================
configuration                                  runner
=============================================  ==============================================
``diffusion.experiments.WalkConfig``           ``diffusion.experiments.run_walk``
``diffusion.sweep.WalkSweepConfig``            ``diffusion.sweep.run_walk_sweep``
``separable.experiments.SeparableRunConfig``   ``separable.experiments.run_optimizer``
``deep.train.TrainConfig``                     ``deep.train.train``
``deep.gamma.GammaConfig``                     ``deep.gamma.measure_gamma`` (its ``.run``)
``deep.distance.DistanceConfig``               ``deep.distance.run_distance`` (its folder;
                                               ``runtime.jobs`` runs at once)
``deep.lawmap.LawMapConfig``                   ``deep.lawmap.run_lawmap`` (likewise)
``deep.table.TableConfig``                     ``deep.table.run_table_config``
=============================================  ==============================================
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import math
import os
import tempfile
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "Run",
    "IncompleteRunError",
    "package_version",
    "config_to_dict",
    "config_hash",
    "HASH_NEUTRAL",
    "run_dir",
    "save_run",
    "load_run",
    "run_or_load",
    "find_run",
    "measurement_file",
    "read_measurement",
    "kept_measurement",
    "atomic_write_with",
    "atomic_write_bytes",
    "atomic_write_json",
    "atomic_write_npz",
    "StagedFile",
    "stage_with",
    "stage_npz",
    "commit_in_order",
    "to_jsonable",
    "register_runner",
    "registered_runners",
    "legacy_run_dir",
    "run",
]

CONFIG_FILE = "config.json"
RECORDS_FILE = "records.npz"
SUMMARY_FILE = "summary.json"


class IncompleteRunError(FileNotFoundError):
    """A run folder that is missing a file or whose files do not belong together."""


def package_version() -> str:
    """Installed version of the package, or ``'0+unknown'`` when run from a bare tree."""
    try:
        from importlib.metadata import PackageNotFoundError, version

        return version("ultraslow")
    except PackageNotFoundError:  # pragma: no cover - source tree without install
        return "0+unknown"


# ----------------------------------------------------------------------------- JSON
def to_jsonable(value: Any, _name: str = "value") -> Any:
    """Convert numpy scalars/arrays, tuples, paths and nested containers to plain JSON types.

    Raises
    ------
    TypeError
        Naming the offending field when a value has no JSON form.
    ValueError
        For non-finite floats (JSON has no NaN).
    """
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        if not math.isfinite(float(value)):
            raise ValueError(f"{_name} is not finite ({value!r}); JSON cannot hold it")
        return float(value)
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, np.ndarray):
        return to_jsonable(value.tolist(), _name)
    if isinstance(value, Mapping):
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise TypeError(f"{_name} has a non-string key {k!r}")
            out[k] = to_jsonable(v, f"{_name}.{k}")
        return out
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v, f"{_name}[{i}]") for i, v in enumerate(value)]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return to_jsonable(
            {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}, _name
        )
    raise TypeError(f"{_name} has type {type(value).__name__}, which has no JSON form")


def config_to_dict(config: Any) -> dict:
    """The JSON form of a frozen-dataclass configuration.

    Raises
    ------
    TypeError
        If ``config`` is not a dataclass instance, is not frozen, or has a field with no
        JSON form (the message names the field).
    """
    if not dataclasses.is_dataclass(config) or isinstance(config, type):
        raise TypeError(f"config must be a dataclass instance, got {type(config).__name__}")
    if not type(config).__dataclass_params__.frozen:
        raise TypeError(f"config must be a frozen dataclass, {type(config).__name__} is not frozen")
    fields = {f.name: getattr(config, f.name) for f in dataclasses.fields(config)}
    return to_jsonable(fields, f"config.{type(config).__name__}")


def _canonical(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), allow_nan=False)


HASH_NEUTRAL = "hash_neutral_default"
"""Field metadata key: a field added to a configuration after runs were made with it gives
``field(default=d, metadata={HASH_NEUTRAL: d})``; while it holds ``d`` it is left out of the
hash, so the runs made before it existed keep their folders (``config.json`` still shows it)."""


def config_hash(config: Any) -> str:
    """SHA-256 (hex) of the configuration's kind and canonical JSON.

    Fields at their declared hash-neutral default (:data:`HASH_NEUTRAL`) are left out.
    """
    return _hash(config, getattr(type(config), "KIND", None) or type(config).__name__)


def _hash(config: Any, kind: str) -> str:
    values = config_to_dict(config)
    for f in dataclasses.fields(config):
        if HASH_NEUTRAL in f.metadata and getattr(config, f.name) == f.metadata[HASH_NEUTRAL]:
            values.pop(f.name, None)
    payload = {"kind": kind, "config": values}
    return hashlib.sha256(_canonical(payload).encode()).hexdigest()


def _kind(config: Any) -> str:
    kind = getattr(type(config), "KIND", None)
    if isinstance(kind, str) and kind:
        return kind
    name = type(config).__name__
    return name[:-6].lower() if name.endswith("Config") and len(name) > 6 else name.lower()


def run_dir(root: str | os.PathLike, config: Any) -> Path:
    """Folder of the run for ``config`` under ``root``: ``<kind>-<hash[:16]>``."""
    return Path(root) / f"{_kind(config)}-{config_hash(config)[:16]}"


# ----------------------------------------------------------------------------- atomic writes
def _umask() -> int:
    """The process umask, read without changing it where the system allows (Linux).

    Elsewhere it is read by setting and restoring it, at the moment of a write, never at
    import.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


class StagedFile:
    """A file written to a temporary name beside its destination, not yet in place.

    :meth:`commit` makes it durable (fsync) and renames it over the destination;
    :meth:`discard` removes it. Writing happens when it is made (:func:`stage_with`), so the
    CPU work of serialising and the wait for the disk can be done at different times, and the
    wait on another thread: a thread blocked in ``fsync`` takes no turn on a core.
    """

    def __init__(self, path: Path, fh: io.BufferedWriter, tmp: str) -> None:
        self.path, self._fh, self._tmp = path, fh, tmp

    def commit(self) -> Path:
        """fsync the file and rename it over the destination (removed if that fails)."""
        try:
            os.fsync(self._fh.fileno())
            self._fh.close()
            os.chmod(self._tmp, 0o666 & ~_umask())  # mkstemp makes 0600: the usual permissions
            os.replace(self._tmp, self.path)
        except BaseException:
            self.discard()
            raise
        return self.path

    def discard(self) -> None:
        """Close and remove the temporary file; the destination is left as it was."""
        self._fh.close()
        try:
            os.unlink(self._tmp)
        except FileNotFoundError:
            pass


def stage_with(path: str | os.PathLike, write: Callable[[io.BufferedWriter], Any]) -> StagedFile:
    """Write ``path``'s new content with ``write(file)`` to a temporary file in its folder,
    flushed to the system but not yet fsynced nor in place (see :class:`StagedFile`);
    nothing is left behind if ``write`` fails."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    staged = StagedFile(path, os.fdopen(fd, "wb"), tmp)
    try:
        write(staged._fh)
        staged._fh.flush()
    except BaseException:
        staged.discard()
        raise
    return staged


def commit_in_order(staged: list[StagedFile]) -> None:
    """Commit ``staged`` one after the other; if one fails, discard the rest and raise."""
    for i, file in enumerate(staged):
        try:
            file.commit()
        except BaseException:
            for rest in staged[i + 1 :]:
                rest.discard()
            raise


def atomic_write_with(path: str | os.PathLike, write: Callable[[io.BufferedWriter], Any]) -> Path:
    """Create ``path`` atomically with ``write(file)``: a temporary file in the same folder,
    written, fsynced, then renamed over ``path``; nothing is left behind if ``write`` fails.

    For serialisers that stream into a file (``torch.save``), without a copy in memory first.
    """
    return stage_with(path, write).commit()


def atomic_write_bytes(path: str | os.PathLike, data: bytes | memoryview) -> Path:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_write_with`).

    ``data`` may be a memoryview (``io.BytesIO.getbuffer()``), which is written without a copy.
    """
    return atomic_write_with(path, lambda fh: fh.write(data))


def atomic_write_json(path: str | os.PathLike, obj: Any) -> Path:
    """Write ``obj`` as indented JSON, atomically."""
    text = json.dumps(to_jsonable(obj, Path(path).name), indent=2, sort_keys=True, allow_nan=False)
    return atomic_write_bytes(path, (text + "\n").encode())


def atomic_write_npz(path: str | os.PathLike, arrays: Mapping[str, np.ndarray]) -> Path:
    """Write a compressed ``.npz`` atomically (serialised in memory, then one atomic write)."""
    return stage_npz(path, arrays).commit()


def stage_npz(path: str | os.PathLike, arrays: Mapping[str, np.ndarray]) -> StagedFile:
    """:func:`atomic_write_npz` up to its commit (see :class:`StagedFile`)."""
    buf = io.BytesIO()
    np.savez_compressed(buf, **{k: np.asarray(v) for k, v in arrays.items()})
    data = buf.getbuffer()
    return stage_with(path, lambda fh: fh.write(data))


# ----------------------------------------------------------------------------- runs
@dataclass(frozen=True)
class Run:
    """A finished run loaded from its folder.

    Attributes
    ----------
    path : pathlib.Path
        The run folder.
    config : dict
        ``config.json`` minus the bookkeeping keys (see ``meta``).
    meta : dict
        Bookkeeping stored with the config: kind, hash, package version.
    records : dict of str to numpy.ndarray
        Arrays from ``records.npz``.
    summary : dict
        ``summary.json``.
    """

    path: Path
    config: dict
    meta: dict
    records: dict[str, np.ndarray]
    summary: dict

    def trace(self, prefix: str = ""):
        """The :class:`~diffusion.metrics.Trace` stored in the records under ``prefix``."""
        from diffusion.metrics import Trace

        return Trace.from_arrays(self.records, prefix)


def save_run(
    root: str | os.PathLike,
    config: Any,
    records: Mapping[str, np.ndarray],
    summary: Mapping[str, Any],
) -> Run:
    """Write a run folder for ``config`` (config.json, records.npz, then summary.json).

    Parameters
    ----------
    root : path
        Parent folder of all runs.
    config : frozen dataclass
        The configuration; it should carry the seed (a field named ``seed`` is recorded).
    records : mapping of str to array
        Arrays to keep (traces via :meth:`Trace.to_arrays`).
    summary : mapping
        JSON-able results; written last, marking the run finished.

    Returns
    -------
    Run
    """
    cfg = config_to_dict(config)
    if not isinstance(records, Mapping):
        raise TypeError(f"records must be a mapping of name to array, got {type(records).__name__}")
    if not isinstance(summary, Mapping):
        raise TypeError(f"summary must be a mapping, got {type(summary).__name__}")
    path = run_dir(root, config)
    meta = {
        "kind": type(config).__name__,
        "hash": config_hash(config),
        "version": package_version(),
        "seed": cfg.get("seed"),
    }
    summary_json = to_jsonable(dict(summary), "summary")
    # an older summary would make a half-rewritten folder look finished: remove it first
    try:
        os.unlink(path / SUMMARY_FILE)
    except FileNotFoundError:
        pass
    atomic_write_json(path / CONFIG_FILE, {"config": cfg, "meta": meta})
    atomic_write_npz(path / RECORDS_FILE, records)
    atomic_write_json(path / SUMMARY_FILE, {"hash": meta["hash"], "summary": summary_json})
    return Run(path, cfg, meta, {k: np.asarray(v) for k, v in records.items()}, summary_json)


def load_run(path: str | os.PathLike) -> Run:
    """Load a finished run folder.

    Raises
    ------
    IncompleteRunError
        If a file is missing or unreadable, or the files carry different config hashes.
    """
    path = Path(path)
    if not path.is_dir():
        raise IncompleteRunError(f"path {str(path)!r} is not a run folder")
    missing = [f for f in (CONFIG_FILE, RECORDS_FILE, SUMMARY_FILE) if not (path / f).is_file()]
    if missing:
        raise IncompleteRunError(f"run folder {str(path)!r} is incomplete: missing {missing}")
    try:
        cfg_doc = json.loads((path / CONFIG_FILE).read_text())
        sum_doc = json.loads((path / SUMMARY_FILE).read_text())
        with np.load(path / RECORDS_FILE, allow_pickle=False) as npz:
            records = {k: npz[k] for k in npz.files}
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
        raise IncompleteRunError(f"run folder {str(path)!r} has an unreadable file: {exc}") from exc
    if not isinstance(cfg_doc, dict) or "config" not in cfg_doc or "meta" not in cfg_doc:
        raise IncompleteRunError(f"{path / CONFIG_FILE} is not a run config")
    if not isinstance(sum_doc, dict) or sum_doc.get("hash") != cfg_doc["meta"].get("hash"):
        raise IncompleteRunError(
            f"run folder {str(path)!r}: summary.json does not belong to config.json"
        )
    return Run(path, cfg_doc["config"], cfg_doc["meta"], records, sum_doc["summary"])


def run_or_load(
    root: str | os.PathLike,
    config: Any,
    compute: Callable[[Any], tuple[Mapping[str, np.ndarray], Mapping[str, Any]]],
    *,
    force: bool = False,
) -> Run:
    """Return the finished run for ``config`` under ``root``, computing it only if needed.

    Parameters
    ----------
    root : path
        Parent folder of all runs.
    config : frozen dataclass
        The configuration.
    compute : callable
        ``compute(config) -> (records, summary)``; called only when no finished run exists
        (or ``force``).
    force : bool
        Recompute even when a finished run exists.
    """
    if not force:
        run = find_run(root, config)
        if run is not None:
            return run
    records, summary = compute(config)
    return save_run(root, config, records, summary)


LEGACY_KIND = "LEGACY_KIND"
"""Class attribute naming the kind a configuration class hashed under before it had an
explicit ``KIND`` (its class name): runs stored then are still found (:func:`find_run`)."""


def legacy_run_dir(root: str | os.PathLike, config: Any) -> Path | None:
    """Where a run of ``config`` stored under its class's :data:`LEGACY_KIND` would be.

    Before every configuration had an explicit ``KIND``, folders were named after the class
    (``WalkConfig`` -> ``walk-<hash>``, ``SeparableRunConfig`` -> ``separablerun-<hash>``) and
    the class name was hashed. ``None`` for a class without a legacy kind.
    """
    legacy = getattr(type(config), LEGACY_KIND, None)
    if not legacy:
        return None
    prefix = legacy[:-6].lower() if legacy.endswith("Config") and len(legacy) > 6 else legacy
    return Path(root) / f"{prefix.lower()}-{_hash(config, legacy)[:16]}"


def find_run(root: str | os.PathLike, config: Any) -> Run | None:
    """The finished run of ``config`` under ``root``, or ``None`` (missing, incomplete, or
    written for another configuration).

    A run stored under the class's legacy kind (:func:`legacy_run_dir`) is found too, in its
    old folder.
    """
    candidates = [(run_dir(root, config), config_hash(config))]
    legacy = legacy_run_dir(root, config)
    if legacy is not None:
        candidates.append((legacy, _hash(config, getattr(type(config), LEGACY_KIND))))
    for path, digest in candidates:
        try:
            run = load_run(path)
        except IncompleteRunError:
            continue
        if run.meta.get("hash") == digest:
            return run
    return None


# ----------------------------------------------------------------------------- measurements
def measurement_file(
    run_dir: str | os.PathLike, kind: str, settings: Mapping[str, Any]
) -> Path | None:
    """Where a measurement of a finished run is kept: ``<run>/<kind>-<hash>.json``.

    The name hashes the run's identity (its config hash) and the measurement's ``settings``,
    so another run or other settings never read it. ``None`` when ``run_dir`` is not a run
    folder (nothing is kept then).
    """
    path = Path(run_dir)
    try:
        meta = json.loads((path / CONFIG_FILE).read_text())["meta"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    key = json.dumps(
        to_jsonable({"run": meta.get("hash"), "settings": dict(settings)}), sort_keys=True
    )
    return path / f"{kind}-{hashlib.sha256(key.encode()).hexdigest()[:16]}.json"


def read_measurement(path: Path | None) -> dict | None:
    """The kept measurement at ``path`` (plain JSON, never code), or ``None``."""
    if path is None:
        return None
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) else None


def kept_measurement(
    run_dir: str | os.PathLike,
    kind: str,
    settings: Mapping[str, Any],
    measure: Callable[[], Any],
    from_doc: Callable[[dict | None], Any],
) -> Any:
    """A measurement of a finished run, read from where it is kept or measured and kept.

    Parameters
    ----------
    run_dir : path
        The run (a folder that is not a run keeps nothing; the measurement is then made).
    kind, settings
        Name the kept file (:func:`measurement_file`).
    measure : callable
        ``measure() -> result``; ``result.as_dict()`` and ``result.config`` are kept.
    from_doc : callable
        ``from_doc(doc) -> result or None``: the result back from a kept document (``None``
        for no document or a malformed one, which is then measured again).
    """
    path = measurement_file(run_dir, kind, settings)
    result = from_doc(read_measurement(path))
    if result is not None:
        return result
    result = measure()
    if path is not None:
        atomic_write_json(
            path, {"settings": dict(settings), "result": result.as_dict(), "config": result.config}
        )
    return result


# ----------------------------------------------------------------------------- dispatch
_RUNNERS: dict[type, Callable[..., Any]] = {}


def register_runner(config_cls: type, fn: Callable[..., Any]) -> None:
    """Make :func:`run` send configurations of type ``config_cls`` to ``fn``.

    Parameters
    ----------
    config_cls : type
        A frozen-dataclass configuration class (subclasses dispatch to it too, unless they
        have their own runner).
    fn : callable
        ``fn(config, runs, *, runtime=None, force=False)`` returning the :class:`Run`, or a
        result object holding it as ``.run`` or naming its folder as ``.path``.
        Registering a class again replaces its runner.

    Raises
    ------
    TypeError
        If ``config_cls`` is not a dataclass type or ``fn`` is not callable.
    """
    if not isinstance(config_cls, type) or not dataclasses.is_dataclass(config_cls):
        raise TypeError(f"config_cls must be a dataclass type, got {config_cls!r}")
    if not callable(fn):
        raise TypeError(f"fn must be callable, got {type(fn).__name__}")
    _RUNNERS[config_cls] = fn


def registered_runners() -> dict[type, Callable[..., Any]]:
    """The configuration types :func:`run` knows now, with their runners (a copy)."""
    return dict(_RUNNERS)


def _as_run(result: Any) -> Run:
    """The :class:`Run` of a runner's result (a Run, ``.run``, or a folder at ``.path``)."""
    if isinstance(result, Run):
        return result
    inner = getattr(result, "run", None)
    if isinstance(inner, Run):
        return inner
    path = getattr(result, "path", None)
    if isinstance(path, (str, os.PathLike)) and str(path):
        return load_run(path)
    raise TypeError(
        f"runner returned {type(result).__name__}, which is neither a Run nor holds one "
        "(.run) nor names its folder (.path)"
    )


def run(
    config: Any,
    runs: str | os.PathLike = "runs",
    *,
    runtime: Any = None,
    force: bool = False,
) -> Run:
    """Run (or reuse) ``config`` with the runner registered for its type.

    Parameters
    ----------
    config : frozen dataclass
        A configuration of any layer (see the module docstring for those registered).
    runs : path
        Parent folder of the run folders.
    runtime : diffusion.runtime.Runtime, optional
        Where and how it executes (never part of the run's identity); each runner's own
        default when omitted.
    force : bool
        Recompute even when a finished run exists (what a sweep recomputes is its runner's
        rule: finished children are reused).

    Returns
    -------
    Run
        The finished run folder.

    Raises
    ------
    TypeError
        If no runner is registered for the configuration's type (the message lists those
        that are), or ``runtime`` is not a Runtime.
    """
    from diffusion.runtime import check_runtime

    check_runtime(runtime)
    fn = next((_RUNNERS[c] for c in type(config).__mro__ if c in _RUNNERS), None)
    if fn is None:
        known = sorted(f"{c.__module__}.{c.__qualname__}" for c in _RUNNERS)
        raise TypeError(
            f"no runner is registered for config of type {type(config).__name__}; "
            f"registered: {known} (import the module that defines the configuration, "
            "or call diffusion.records.register_runner)"
        )
    return _as_run(fn(config, runs, runtime=runtime, force=force))
