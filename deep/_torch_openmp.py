"""Run a compiled C callback on torch's own OpenMP thread team.

Torch's CPU operators run in parallel through an OpenMP runtime (libgomp on Linux). After
each parallel operator the runtime's worker threads keep spinning for a while, waiting for
the next one. A kernel of ours that starts its own threads (numba's pools, a Python thread
pool) then shares the cores with those spinning threads and loses what it gains: measured on
2 cores, two threads of ghost batch norm were as fast as torch's batch norm alone and slower
than one thread inside a training step. Handing the work to the same runtime instead
(``GOMP_parallel``) lets the spinning workers pick it up, exactly as they would pick up
torch's next operator.

:func:`torch_team` finds that runtime: an OpenMP library already loaded in this process (never
a second copy), checked to be the one torch drives by setting torch's thread count and
reading it back from the library. Where it cannot be found (another parallel backend, a
platform without it, a forked child process) it returns ``None`` and callers run on one
thread.

A callback is a numba ``cfunc`` of signature ``void(voidptr)``; every thread of the team
receives the same pointer, so the work is shared out inside: each thread takes the next
piece with :func:`claim` from a counter until none is left, and :func:`address` turns the
addresses passed in the block into pointers for :func:`numba.carray`.
"""

from __future__ import annotations

import ctypes
import functools
import glob
import os
import threading

import torch
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

__all__ = ["OpenMPTeam", "torch_team", "claim", "address"]

_LIBRARY_PREFIXES = ("libgomp", "libomp", "libiomp5")
_forked = False  # set in a child made by fork: its runtime's worker threads are gone


def _mark_forked() -> None:
    global _forked
    _forked = True


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_mark_forked)


class OpenMPTeam:
    """Torch's OpenMP runtime, able to run a ``void (*)(void *)`` callback on its team.

    Parameters
    ----------
    library : ctypes.CDLL
        The loaded runtime (exports ``GOMP_parallel`` and ``omp_get_max_threads``).
    path : str
        Its file, for messages.
    """

    def __init__(self, library: ctypes.CDLL, path: str) -> None:
        self.path = path
        self._parallel = library.GOMP_parallel
        self._parallel.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_uint, ctypes.c_uint]
        self._parallel.restype = None
        self._max_threads = library.omp_get_max_threads
        self._max_threads.argtypes = []
        self._max_threads.restype = ctypes.c_int

    def max_threads(self) -> int:
        """The runtime's thread count for the next parallel region of this thread."""
        return int(self._max_threads())

    def run(self, callback: int, data: int, threads: int) -> None:
        """Call ``callback(data)`` on ``threads`` threads of the team (this one included).

        The callback must be GIL-free compiled code that shares its work out by itself (every
        thread receives the same ``data``); the call returns when all threads have returned.
        """
        self._parallel(callback, data, max(int(threads), 1), 0)


def _candidate_paths() -> list[str]:
    """OpenMP libraries that may be torch's: those in torch's folders, then any loaded one."""
    torch_dir = os.path.dirname(torch.__file__)
    paths = []
    for folder in (os.path.join(torch_dir, "lib"), torch_dir + ".libs"):
        for prefix in _LIBRARY_PREFIXES:
            paths.extend(sorted(glob.glob(os.path.join(folder, prefix + "*"))))
    try:
        with open("/proc/self/maps", encoding="utf-8") as maps:
            for line in maps:
                path = line.split()[-1]
                if os.path.basename(path).startswith(_LIBRARY_PREFIXES) and path not in paths:
                    paths.append(path)
    except OSError:
        pass
    return paths


def _drives_torch(team: OpenMPTeam) -> bool:
    """Whether torch's thread count is this runtime's (torch sets it through the runtime)."""
    before = torch.get_num_threads()
    try:
        for n in (2, 3):
            torch.set_num_threads(n)
            if team.max_threads() != n:
                return False
        return True
    finally:
        torch.set_num_threads(before)


_lookup = threading.Lock()  # the check changes torch's thread count for a moment


@functools.cache
def _find_team() -> OpenMPTeam | None:
    """The first loaded OpenMP library that torch drives (looked up once)."""
    if "ATen parallel backend: OpenMP" not in torch.__config__.parallel_info():
        return None
    mode = getattr(os, "RTLD_NOLOAD", 0) | getattr(os, "RTLD_LAZY", 1)
    for path in _candidate_paths():
        try:
            library = ctypes.CDLL(path, mode=mode)  # only a library that is already loaded
            team = OpenMPTeam(library, path)
        except (OSError, AttributeError):
            continue
        if _drives_torch(team):
            return team
    return None


def torch_team() -> OpenMPTeam | None:
    """Torch's OpenMP runtime in this process, or ``None`` where it cannot be used.

    Looked up once per process. A child made by ``fork`` gets ``None``: the runtime's worker
    threads do not survive the fork (processes started with ``spawn``, such as joblib's
    workers, look it up afresh).
    """
    if _forked:
        return None
    with _lookup:
        return _find_team()


# ----------------------------------------------------------------------------- for callbacks
@intrinsic
def claim(typingctx, counters, index):
    """Atomically add 1 to ``counters[index]`` (int64); the value before, i.e. the number
    claimed. For compiled code only."""
    sig = types.int64(counters, types.intp)

    def codegen(context, builder, signature, args):
        array_type = signature.args[0]
        array = context.make_array(array_type)(context, builder, args[0])
        pointer = cgutils.get_item_pointer(context, builder, array_type, array, [args[1]])
        one = context.get_constant(types.int64, 1)
        return builder.atomic_rmw("add", pointer, one, "monotonic")

    return sig, codegen


@intrinsic
def address(typingctx, value):
    """The int64 ``value`` as a ``void *`` (for :func:`numba.carray`). For compiled code only."""
    sig = types.voidptr(types.int64)

    def codegen(context, builder, signature, args):
        return builder.inttoptr(args[0], context.get_value_type(types.voidptr))

    return sig, codegen
