"""The numeric environment of a run: same seed, same numbers, whatever the threads (on one CPU model).

A CPU training's floating-point results depend on more than its seed: on the number of threads
(how reductions and matrix products are split between them) and on the instruction set each
library dispatches to (ATen's vectorized kernels, oneDNN's convolutions and MKL's matrix products
each sum in a different order with AVX-512 than with AVX2). Pinning makes runs repeat bit for bit on
one CPU model at any thread count; an AMD EPYC and an Intel Xeon still give different numbers,
for a reason not yet found (README "Numeric environment"). Two modes, chosen by
``VISRC_NUMERICS``:

``pinned`` (the default)
    Every computation visrc starts runs with :data:`PINNED` set in its environment:

    - ``OMP_NUM_THREADS=1``, ``MKL_NUM_THREADS=1``: torch's intra-op threads (OpenMP) and MKL's,
      whatever the core count or ``VISRC_TRAIN_SLOTS``;
    - ``ATEN_CPU_CAPABILITY=avx2``: ATen's vectorized kernels, AVX2 also on AVX-512 machines;
    - ``ONEDNN_MAX_CPU_ISA=AVX2``: oneDNN's JIT kernels (the convolutions);
    - ``ONEDNN_DEFAULT_FPMATH_MODE=STRICT``: oneDNN keeps full fp32 math (its default, pinned
      against a user's environment);
    - ``MKL_CBWR``: MKL's code branch (conditional numerical reproducibility) for the matrix
      products of linear layers and of some convolutions, :func:`mkl_branch`: ``AVX2`` on an Intel
      CPU with AVX2, ``COMPATIBLE`` elsewhere. MKL honours ``AVX2`` on Intel CPUs only (on other
      vendors' CPUs it falls back to its ``AUTO`` branch without a word: ``MKL_VERBOSE=1`` prints
      ``CNR:AUTO``), and there ``COMPATIBLE``, its vendor-neutral branch, is the fixed one. On
      Intel, ``COMPATIBLE``'s matrix products are far slower than ``AVX2``'s
      (``benchmarks/bench_numerics.py --against MKL_CBWR=COMPATIBLE``); numbers are kept per CPU
      model anyway (README "Numeric environment"), so the branch may differ by vendor.
      ``VISRC_MKL_CBWR=COMPATIBLE`` (:func:`pinned_mkl_branch`) pins the vendor-neutral branch
      on an Intel CPU too, for numbers made with it; it is part of the run cache's key like the rest;
    - ``PYTHONHASHSEED=0``: the iteration order of sets of strings.

    The instruction-set variables are read once, when torch, oneDNN and MKL start: they take effect
    only in a process *started* with them. So the run cache starts ``visrc train`` with
    :func:`pinned_env`, ``visrc reproduce`` starts the notebook kernels with it, and in-process
    work (predictions, ensembles) happens in those kernels; :func:`apply_in_process` sets what can
    still be set late (torch's thread count). The toy configs load data in the main process
    (``num_workers=0``) and mmengine seeds any worker from ``randomness.seed``, so data order
    needs nothing more; on one thread repeated runs are bitwise identical without
    ``torch.use_deterministic_algorithms``. A machine without AVX2 runs ATen's default kernels:
    :func:`describe` reports the capability actually in use.

``native``
    The libraries' own choice: torch threads follow ``cpu_count // VISRC_TRAIN_SLOTS``, kernels the
    best instruction set of the machine. Faster (``benchmarks/bench_numerics.py`` measures by how
    much), but the numbers depend on the machine and on how many trainings share it. The run
    cache keys runs by mode, so native and pinned runs never share a checkpoint.

This module is base layer: the standard library, torch (imported lazily) and :mod:`visrc.fileio`.
"""
from __future__ import annotations

import os
import platform
import re
from pathlib import Path
from typing import Mapping

MODE_VARIABLE = "VISRC_NUMERICS"
MODES = ("pinned", "native")
DEFAULT_MODE = "pinned"

THREADS = 1
"""torch / OpenMP / MKL threads per process in pinned mode: independent of the core count."""


def _cpuinfo() -> str:
    try:
        return Path("/proc/cpuinfo").read_text()
    except OSError:
        return ""


def mkl_branch(cpuinfo: str | None = None) -> str:
    """MKL's code branch for pinned processes, from ``cpuinfo`` (default ``/proc/cpuinfo``):
    ``AVX2`` when the first processor is a ``GenuineIntel`` with the ``avx2`` flag, ``COMPATIBLE``
    otherwise (other vendors, no AVX2, or no ``/proc/cpuinfo``)."""
    fields: dict[str, str] = {}
    for line in (_cpuinfo() if cpuinfo is None else cpuinfo).splitlines():
        if not line.strip():
            break                                   # the first processor's block is enough
        key, _, value = line.partition(":")
        fields[key.strip().lower()] = value.strip()
    intel = fields.get("vendor_id") == "GenuineIntel"
    return "AVX2" if intel and "avx2" in fields.get("flags", "").split() else "COMPATIBLE"


MKL_BRANCH_VARIABLE = "VISRC_MKL_CBWR"


def pinned_mkl_branch(environ: Mapping[str, str] | None = None) -> str:
    """The ``MKL_CBWR`` of pinned processes: :func:`mkl_branch`, or ``VISRC_MKL_CBWR`` where set to
    ``COMPATIBLE`` (the vendor-neutral branch, on any CPU: it regenerates numbers made with it on an
    Intel CPU) or to this CPU's own branch. Other values are refused: a branch MKL cannot take here
    would fall back to ``AUTO``, which is not fixed."""
    value = (os.environ if environ is None else environ).get(MKL_BRANCH_VARIABLE, "").strip().upper()
    allowed = sorted({"COMPATIBLE", mkl_branch()})
    if value and value not in allowed:
        raise ValueError(f"{MKL_BRANCH_VARIABLE}={value!r}: expected one of {', '.join(allowed)} on this CPU")
    return value or mkl_branch()


PINNED: dict[str, str] = {
    "OMP_NUM_THREADS": str(THREADS),
    "MKL_NUM_THREADS": str(THREADS),
    "ATEN_CPU_CAPABILITY": "avx2",
    "ONEDNN_MAX_CPU_ISA": "AVX2",
    "ONEDNN_DEFAULT_FPMATH_MODE": "STRICT",
    "MKL_CBWR": pinned_mkl_branch(),
    "PYTHONHASHSEED": "0",
}
"""The environment of a pinned process on this machine (see the module docstring)."""

REPORT_FILE = "numerics.json"
"""Written by ``visrc train`` into its work directory: :func:`describe` of the training process."""

VOLATILE_KEYS = ("cpu",)
"""Entries of :func:`describe` that name the machine rather than the numerics: a reference made on
one machine must match on another, so comparisons leave them out."""


def mode(environ: Mapping[str, str] | None = None) -> str:
    """The numeric mode in force: ``VISRC_NUMERICS`` (``pinned`` when unset)."""
    value = (os.environ if environ is None else environ).get(MODE_VARIABLE, "") or DEFAULT_MODE
    value = value.strip().lower()
    if value not in MODES:
        raise ValueError(f"{MODE_VARIABLE}={value!r}: expected one of {', '.join(MODES)}")
    return value


def pinned_env(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """``base`` (default ``os.environ``) with :data:`PINNED` set: the environment for a subprocess
    whose numbers must not depend on the machine."""
    env = dict(os.environ if base is None else base)
    env.update(PINNED)
    env[MODE_VARIABLE] = "pinned"
    return env


def subprocess_env(native_threads: int, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for a computing subprocess in the current mode: :func:`pinned_env`, or in
    native mode ``base`` with ``native_threads`` OpenMP/MKL threads."""
    base = os.environ if base is None else base
    if mode(base) == "pinned":
        return pinned_env(base)
    threads = str(max(1, int(native_threads)))
    return dict(base, OMP_NUM_THREADS=threads, MKL_NUM_THREADS=threads)


def cache_key(environ: Mapping[str, str] | None = None) -> dict:
    """What of the numeric environment identifies a run (for the run cache's key): the mode, and in
    pinned mode the pinned variables, so a change to them gives new runs."""
    m = mode(environ)
    return {"mode": m, "env": dict(sorted(PINNED.items()))} if m == "pinned" else {"mode": m}


def threads(native_threads: int) -> int:
    """torch threads for in-process work: :data:`THREADS` when pinned, ``native_threads`` otherwise."""
    return THREADS if mode() == "pinned" else max(1, int(native_threads))


def start_environ() -> dict[str, str]:
    """The environment this process was started with (``/proc/self/environ``; ``os.environ`` where
    that is unreadable): what torch, oneDNN and MKL read, whatever the process set later."""
    try:
        raw = Path("/proc/self/environ").read_bytes()
    except OSError:
        return dict(os.environ)
    items = (entry.decode(errors="replace").partition("=") for entry in raw.split(b"\0") if entry)
    return {k: v for k, _, v in items}


def started_pinned(environ: Mapping[str, str] | None = None) -> list[str]:
    """The pinned variables that ``environ`` (default: :func:`start_environ`) lacks or sets
    otherwise, as ``NAME=value`` strings (empty: started with the whole pinned environment)."""
    environ = start_environ() if environ is None else environ
    return [f"{k}={environ.get(k, '<unset>')}" for k, v in PINNED.items() if environ.get(k) != v]


def apply_in_process() -> dict:
    """Set what this process can still set: torch's thread count (:data:`THREADS` when pinned).
    The instruction-set variables need a process started with :func:`pinned_env`; what is missing
    shows in the returned :func:`describe` (``missing``)."""
    import torch

    if mode() == "pinned":
        torch.set_num_threads(THREADS)
    return describe()


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``; ``platform.processor()`` elsewhere)."""
    for line in _cpuinfo().splitlines():
        if line.lower().startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def cpu_slug() -> str:
    """This CPU's model as a folder name (``'AMD EPYC'`` -> ``'amd-epyc'``): pinned numbers are
    identical across runs on one CPU model but not across models (README "Numeric environment"),
    so numeric references are kept per CPU model."""
    slug = re.sub(r"\(r\)|\(tm\)", "", cpu_model().lower())
    return re.sub(r"[^a-z0-9]+", "-", slug).strip("-") or "unknown-cpu"


def describe() -> dict:
    """What is in force in this process: the mode, the pinned variables as the process was started
    with them, those it lacks (``missing``, pinned mode only), the torch version, torch's threads
    and the instruction set its kernels actually dispatch to, and the CPU (:data:`VOLATILE_KEYS`)."""
    import torch

    started = start_environ()
    return {
        "mode": mode(),
        "variables": {k: started.get(k) for k in PINNED},
        "missing": started_pinned(started) if mode() == "pinned" else [],
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "cpu": cpu_model(),
    }


def write_report(directory: str | os.PathLike, info: dict | None = None) -> Path:
    """Write ``info`` (default :func:`describe`) as ``directory/``:data:`REPORT_FILE`."""
    from visrc.fileio import atomic_write_json

    return atomic_write_json(Path(directory) / REPORT_FILE, describe() if info is None else info, indent=2)


def summary(info: dict | None = None) -> str:
    """One line: the mode and what it pins, or what is missing from it."""
    info = describe() if info is None else info
    head = (f"numerics {info['mode']} ({MODE_VARIABLE}): {info['torch_threads']} torch thread(s), "
            f"{info['cpu_capability']} kernels, torch {info['torch']}, {info['cpu']}")
    if info["mode"] == "native":
        return head + "; numbers depend on the machine and the thread count"
    if info["missing"]:
        return (head + "; NOT pinned: started without " + ", ".join(info["missing"])
                + " (start it through visrc.numerics.pinned_env(), e.g. the run cache or `visrc reproduce`)")
    if info["cpu_capability"] != "AVX2":
        return head + f"; this CPU runs {info['cpu_capability']} kernels, not AVX2: numbers match its kind only"
    return head + "; machine-independent"


if __name__ == "__main__":                      # `python -m visrc.numerics`: the pinned variables as shell exports
    print("\n".join(f"export {k}={v}" for k, v in PINNED.items()))
