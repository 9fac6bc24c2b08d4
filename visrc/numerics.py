"""The numeric environment of a run: same seed, same numbers, whatever the threads (on one CPU model).

A CPU training's floating-point results depend on more than its seed: on the number of threads
(how reductions and matrix products are split between them) and on the instruction set each
library dispatches to (ATen's vectorized kernels, oneDNN's convolutions and MKL's matrix products
each sum in a different order with AVX-512 than with AVX2). Pinning makes runs repeat bit for bit on
one CPU model at any thread count; an AMD EPYC and an Intel Xeon give different numbers even with
the same instruction sets, for a reason not yet found (README "Numeric environment"), so numbers
are kept per CPU model and kernel profile. Two modes, chosen by ``VISRC_NUMERICS``:

``pinned`` (the default)
    Every computation visrc starts runs with :data:`PINNED` set in its environment:

    - ``OMP_NUM_THREADS=1``, ``MKL_NUM_THREADS=1``: torch's intra-op threads (OpenMP) and MKL's,
      whatever the core count or ``VISRC_TRAIN_SLOTS``;
    - the kernel profile (:data:`KERNEL_PROFILES`, :func:`kernels`): ``ATEN_CPU_CAPABILITY`` (ATen's
      vectorized kernels), ``ONEDNN_MAX_CPU_ISA`` (oneDNN's JIT kernels, the convolutions) and
      ``MKL_CBWR`` (MKL's code branch, conditional numerical reproducibility, for the matrix
      products), fixed to the widest profile the CPU runs: ``avx512`` (AVX-512 kernels, oneDNN
      capped at ``AVX512_CORE`` so newer extensions such as AMX pick no other fp32 kernels) or
      ``avx2``. ``compatible`` is AVX2 with MKL's vendor-neutral branch. MKL honours its ISA
      branches on Intel CPUs only (elsewhere it falls back to its ``AUTO`` branch without a word:
      ``MKL_VERBOSE=1`` prints ``CNR:AUTO``), so off Intel every profile pins ``COMPATIBLE`` and
      ``compatible`` is ``avx2``.
      ``VISRC_KERNELS`` chooses another profile the CPU runs, e.g. ``compatible`` to regenerate
      numbers made with it; the profile is part of the run cache's key like every pinned variable;
    - ``ONEDNN_DEFAULT_FPMATH_MODE=STRICT``: oneDNN keeps full fp32 math (its default, pinned
      against a user's environment);
    - ``PYTHONHASHSEED=0``: the iteration order of sets of strings.

    The instruction-set variables are read once, when torch, oneDNN and MKL start: they take effect
    only in a process *started* with them. So the run cache starts ``visrc train`` with
    :func:`pinned_env`, ``visrc reproduce`` starts the notebook kernels with it, and in-process
    work (predictions, ensembles) happens in those kernels; :func:`apply_in_process` sets what can
    still be set late (torch's thread count). The toy configs load data in the main process
    (``num_workers=0``) and mmengine seeds any worker from ``randomness.seed``, so data order
    needs nothing more; on one thread repeated runs are bitwise identical without
    ``torch.use_deterministic_algorithms``. A machine without AVX2 runs ATen's default kernels
    under ``compatible``: :func:`describe` reports the capability actually in use.

``native``
    The libraries' own choice: torch threads follow ``cpu_count // VISRC_TRAIN_SLOTS``, kernels the
    best instruction set of the machine. Faster (``benchmarks/bench_numerics.py`` measures by how
    much), but the numbers depend on the machine and on how many trainings share it. The run
    cache keys runs by mode, so native and pinned runs never share a checkpoint.

This module is base layer: the standard library, torch (imported lazily) and :mod:`visrc.fileio`.
"""
from __future__ import annotations

import functools
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


@functools.lru_cache(maxsize=1)
def _cpuinfo() -> str:
    """``/proc/cpuinfo`` once per process (the profile, the vendor and the model name all read it)."""
    try:
        return Path("/proc/cpuinfo").read_text()
    except OSError:
        return ""


def cpu_fields(cpuinfo: str | None = None) -> dict[str, str]:
    """The first processor's block of ``cpuinfo`` (default ``/proc/cpuinfo``) as lower-case
    field -> value (``vendor_id``, ``model name``, ``flags``, ...); empty where there is none."""
    fields: dict[str, str] = {}
    for line in (_cpuinfo() if cpuinfo is None else cpuinfo).splitlines():
        if not line.strip():
            break
        key, _, value = line.partition(":")
        fields[key.strip().lower()] = value.strip()
    return fields


KERNELS_VARIABLE = "VISRC_KERNELS"

KERNEL_PROFILES: dict[str, dict[str, str]] = {
    "avx512": {"ATEN_CPU_CAPABILITY": "avx512", "ONEDNN_MAX_CPU_ISA": "AVX512_CORE", "MKL_CBWR": "AVX512"},
    "avx2": {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2", "MKL_CBWR": "AVX2"},
    "compatible": {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2", "MKL_CBWR": "COMPATIBLE"},
}
"""The instruction-set variables of each kernel profile (on a CPU that is not Intel's, ``MKL_CBWR``
is ``COMPATIBLE`` in every profile: see the module docstring)."""

_AVX512 = ("avx512f", "avx512bw", "avx512vl", "avx512dq")
_NEEDS = {"avx512": _AVX512, "avx2": ("avx2", "fma"), "compatible": ()}


def supported_kernels(cpuinfo: str | None = None) -> list[str]:
    """The kernel profiles this CPU can run, widest first (``compatible`` always)."""
    flags = set(cpu_fields(cpuinfo).get("flags", "").split())
    return [name for name in KERNEL_PROFILES if set(_NEEDS[name]) <= flags]


def kernels(environ: Mapping[str, str] | None = None, cpuinfo: str | None = None) -> str:
    """The kernel profile of pinned processes: ``VISRC_KERNELS`` where set, else the widest this CPU
    supports. A profile the CPU cannot run is refused (the libraries would fall back to another
    instruction set without a word, and the numbers would not be the profile's)."""
    value = (os.environ if environ is None else environ).get(KERNELS_VARIABLE, "").strip().lower()
    supported = supported_kernels(cpuinfo)
    if not value:
        return supported[0]
    if value not in supported:
        raise ValueError(f"{KERNELS_VARIABLE}={value!r}: this CPU runs {', '.join(supported)}"
                         + ("" if value in KERNEL_PROFILES else f" (profiles: {', '.join(KERNEL_PROFILES)})"))
    return value


def kernel_variables(profile: str, cpuinfo: str | None = None) -> dict[str, str]:
    """``profile``'s instruction-set variables on this CPU: MKL's branch is ``COMPATIBLE`` unless the
    CPU is Intel's, where MKL honours its other branches."""
    variables = dict(KERNEL_PROFILES[profile])
    if cpu_fields(cpuinfo).get("vendor_id") != "GenuineIntel":
        variables["MKL_CBWR"] = "COMPATIBLE"
    return variables


KERNELS = kernels()
"""The kernel profile in force (``VISRC_KERNELS`` when this module was imported, else the widest)."""

_KERNEL_VARIABLES = kernel_variables(KERNELS)
PINNED: dict[str, str] = {
    "OMP_NUM_THREADS": str(THREADS),
    "MKL_NUM_THREADS": str(THREADS),
    "ATEN_CPU_CAPABILITY": _KERNEL_VARIABLES["ATEN_CPU_CAPABILITY"],
    "ONEDNN_MAX_CPU_ISA": _KERNEL_VARIABLES["ONEDNN_MAX_CPU_ISA"],
    "ONEDNN_DEFAULT_FPMATH_MODE": "STRICT",
    "MKL_CBWR": _KERNEL_VARIABLES["MKL_CBWR"],
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


def pinned_env(base: Mapping[str, str] | None = None, profile: str | None = None) -> dict[str, str]:
    """``base`` (default ``os.environ``) with :data:`PINNED` set: the environment for a subprocess
    whose numbers must not depend on the machine. With ``profile``, that kernel profile's variables
    and ``VISRC_KERNELS`` instead of this process's (a ``ValueError`` where the CPU cannot run it)."""
    env = dict(os.environ if base is None else base)
    env.update(PINNED)
    env[MODE_VARIABLE] = "pinned"
    if profile is not None:
        profile = kernels({KERNELS_VARIABLE: profile})
        env.update(kernel_variables(profile))
        env[KERNELS_VARIABLE] = profile
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
    return cpu_fields().get("model name") or platform.processor() or platform.machine()


def reference_slug() -> str:
    """The folder name of this machine's numeric references: :func:`cpu_slug` and the kernel
    profile (``intel-xeon-processor-avx512``), since each profile gives its own numbers."""
    return f"{cpu_slug()}-{KERNELS}"


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
    wanted = info["variables"].get("ATEN_CPU_CAPABILITY", "").upper()
    if info["cpu_capability"] != wanted:
        return head + f"; this CPU runs {info['cpu_capability']} kernels, not {wanted}: numbers match its kind only"
    return head + f"; repeatable on this CPU model ({KERNELS_VARIABLE}={KERNELS})"


if __name__ == "__main__":                      # `python -m visrc.numerics`: the pinned variables as shell exports
    print("\n".join(f"export {k}={v}" for k, v in PINNED.items()))
