"""Which torch ops one training iteration spends its time in, forward and backward apart.

    python benchmarks/bench_backward_ops.py [--config toy_baseline] [--warmup 2] [--iters 4]
        [--top 15] [--by-shape] [--data-root DIR]

Builds the config's runner as ``benchmarks/bench_train_profile.py`` does (its ``make_cfg``), runs
``--warmup`` iterations of mmengine's train loop, then ``--iters`` iterations under
``torch.profiler`` (``record_shapes``) and prints the top ops by self CPU time per iteration,
split into forward (ops run outside autograd's engine) and backward (ops run by it, their names
``...Backward`` or called from one). ``--by-shape`` groups the table by input shape as well. Run
it in the pinned environment (``env $(python -m visrc.numerics | sed 's/export //') python
benchmarks/...``) so the kernels are the ones training uses.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import shutil
import sys
from collections import defaultdict
from pathlib import Path

import torch
from torch.autograd import DeviceType
from torch.profiler import ProfilerActivity, profile

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_train_profile import _Done, make_cfg  # noqa: E402


def run_profiled(name: str, data_root: Path, warmup: int, iters: int):
    """The ``torch.profiler`` events of ``iters`` iterations after ``warmup`` unmeasured ones."""
    from visrc.models.train_cli import build_runner

    cfg = make_cfg(name, data_root)
    try:
        runner = build_runner(cfg)
        loop = runner.train_loop
        orig = loop.run_iter
        state = {"n": 0, "prof": None}

        def run_iter(*a, **k):
            if state["n"] == warmup:
                state["prof"] = profile(activities=[ProfilerActivity.CPU], record_shapes=True)
                state["prof"].__enter__()
            out = orig(*a, **k)
            state["n"] += 1
            if state["n"] == warmup + iters:
                state["prof"].__exit__(None, None, None)
                raise _Done
            return out
        loop.run_iter = run_iter
        try:
            with contextlib.redirect_stdout(io.StringIO()):
                runner.train()
        except _Done:
            pass
        return state["prof"]
    finally:
        shutil.rmtree(cfg.work_dir, ignore_errors=True)


def split_tables(prof, iters: int, by_shape: bool):
    """Self CPU microseconds per (phase, op[, shapes]) per iteration and call counts.

    The phase of an op is ``backward`` when it or an ancestor is an autograd node (its name ends
    in ``Backward0``/``Backward1``... or is autograd's engine), else ``forward``."""
    events = prof.events()
    # the profiler's tree: every event knows its cpu_parent
    self_us: dict[tuple, float] = defaultdict(float)
    calls: dict[tuple, int] = defaultdict(int)
    for e in events:
        if e.device_type != DeviceType.CPU:
            continue
        phase = "forward"
        p = e
        while p is not None:
            if "Backward" in p.name or p.name.startswith("autograd::engine"):
                phase = "backward"
                break
            p = p.cpu_parent
        key = (phase, e.name, str(e.input_shapes) if by_shape else "")
        self_us[key] += e.self_cpu_time_total
        calls[key] += 1
    return {k: v / iters for k, v in self_us.items()}, {k: c / iters for k, c in calls.items()}


def print_tables(self_us, calls, top: int) -> None:
    total = sum(self_us.values())
    phases = defaultdict(float)
    for (ph, _, _), v in self_us.items():
        phases[ph] += v
    print(f"total self CPU {total / 1e3:.1f} ms/iter: " +
          ", ".join(f"{ph} {v / 1e3:.1f} ms ({100 * v / total:.0f}%)" for ph, v in sorted(phases.items())))
    for phase in ("forward", "backward"):
        rows = sorted(((k, v) for k, v in self_us.items() if k[0] == phase), key=lambda kv: -kv[1])[:top]
        print(f"\n--- {phase}: top {top} ops by self CPU time ---")
        print(f"{'op':46s} {'ms/iter':>8s} {'share':>6s} {'calls/it':>8s}  shapes")
        for (ph, op, shapes), v in rows:
            print(f"{op[:46]:46s} {v / 1e3:8.2f} {100 * v / total:5.1f}% {calls[(ph, op, shapes)]:8.1f}  {shapes[:90]}")


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", default="toy_baseline")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--iters", type=int, default=4)
    p.add_argument("--top", type=int, default=15)
    p.add_argument("--by-shape", action="store_true")
    p.add_argument("--data-root", help="dataset root (default: the small toy benchmark)")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    from visrc.data.toy import toy_root
    from visrc.numerics import summary

    print(summary())
    root = Path(args.data_root) if args.data_root else toy_root("small")
    prof = run_profiled(args.config, root, args.warmup, args.iters)
    self_us, calls = split_tables(prof, args.iters, args.by_shape)
    print_tables(self_us, calls, args.top)


if __name__ == "__main__":
    main()
