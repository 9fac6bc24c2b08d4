"""The price of pinned numerics: seconds per training iteration, pinned vs native (or vs some variables changed).

    .venv/bin/python benchmarks/bench_numerics.py [--config toy_baseline] [--against native|PROFILE|VAR=VALUE,...]
        [--iters 6] [--rounds 3] [--batch 4]

Each measurement is a fresh process (the instruction-set variables only take effect at start-up):
one with :func:`visrc.numerics.pinned_env` (1 thread, the kernel profile's instruction sets), one with the
native environment a training gets with ``VISRC_NUMERICS=native`` (``cpu_count //
VISRC_TRAIN_SLOTS`` threads, the machine's best kernels), with ``--against PROFILE`` the pinned
environment under another kernel profile (:data:`visrc.numerics.KERNEL_PROFILES`, e.g. ``compatible``),
or with ``--against VAR=VALUE[,VAR=VALUE...]`` the pinned environment with those variables changed
(e.g. ``MKL_CBWR=COMPATIBLE`` on an Intel CPU: what MKL's code branch alone costs). Both train
``--config``'s model (a video config whose train set is a video dataset, e.g. ``toy_swin``) from
the same initial weights on the same 4 key/reference video pairs of the small toy benchmark
(``runs/data/toy_small_seed0``, generated on first use) and time forward + backward + SGD step
after one warm-up iteration; rounds alternate the order so load from other processes spreads evenly. Prints the median seconds per iteration
of each, their ratio (pinned / other: > 1 means pinned is slower), the kernels and threads each
process reported, and whether the losses of repeated processes of one environment are bitwise equal.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _worker(config: str, data_root: str, iters: int, batch: int) -> dict:
    import tempfile

    import torch
    from mmdet.registry import DATASETS
    from mmengine.dataset import pseudo_collate
    from mmengine.runner import set_random_seed

    from visrc import numerics
    from visrc.models.train_cli import prepare_config

    info = numerics.apply_in_process()
    cfg = prepare_config(config, data_root=data_root, work_dir=tempfile.mkdtemp())
    from mmdet.registry import MODELS

    set_random_seed(0)                       # python, numpy and torch
    model = MODELS.build(cfg.model).train()
    ds = DATASETS.build(cfg.train_dataloader.dataset)
    set_random_seed(0)                       # reference frames and flips are drawn at random
    data = pseudo_collate([ds[(i % len(ds), 1)] for i in range(batch)])
    opt = torch.optim.SGD(model.parameters(), lr=1e-4, momentum=0.9)
    times, losses = [], []
    for i in range(iters + 1):
        set_random_seed(i)                   # the RoI samplers draw at random
        t0 = time.perf_counter()
        inputs = model.data_preprocessor(data, True)
        loss, _ = model.parse_losses(model.loss(**inputs))
        opt.zero_grad()
        loss.backward()
        opt.step()
        if i:                                # the first iteration warms up allocators and caches
            times.append(time.perf_counter() - t0)
        losses.append(loss.item())
    return dict(seconds=times, losses=losses, numerics=info)


def _measure(env: dict, config: str, data_root: Path, iters: int, batch: int) -> dict:
    env = dict(env, PYTHONPATH=str(REPO) + os.pathsep + env.get("PYTHONPATH", ""))
    out = subprocess.run([sys.executable, __file__, "--worker", config, str(data_root), str(iters), str(batch)],
                         env=env, capture_output=True, text=True)
    line = [x for x in out.stdout.splitlines() if x.startswith("RESULT ")]
    if out.returncode or not line:
        print(out.stdout[-2000:], out.stderr[-4000:], file=sys.stderr)
        raise SystemExit("benchmark worker failed")
    return json.loads(line[0][len("RESULT "):])


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", default="toy_baseline", help="a toy video config (default toy_baseline)")
    p.add_argument("--against", default="native",
                   help="'native' (default), a kernel profile (e.g. 'compatible'), or VAR=VALUE[,VAR=VALUE...]: "
                        "the pinned environment with that profile or those variables")
    p.add_argument("--iters", type=int, default=6, help="timed iterations per process")
    p.add_argument("--rounds", type=int, default=3, help="processes per environment")
    p.add_argument("--batch", type=int, default=4, help="key/reference video pairs per iteration")
    p.add_argument("--worker", nargs=4, metavar=("CONFIG", "DATA_ROOT", "ITERS", "BATCH"), help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.worker:
        config, root, iters, batch = a.worker
        print("RESULT " + json.dumps(_worker(config, root, int(iters), int(batch))))
        return 0

    sys.path.insert(0, str(REPO))
    from visrc import numerics
    from visrc.data.toy import toy_root
    from visrc.experiments.slots import native_threads, training_slots

    threads = native_threads()
    base = {k: v for k, v in os.environ.items() if k not in numerics.PINNED}
    if a.against == "native":
        other = numerics.subprocess_env(threads, dict(base, **{numerics.MODE_VARIABLE: "native"}))
    elif a.against in numerics.KERNEL_PROFILES:
        try:
            other = numerics.pinned_env(base, profile=a.against)
        except ValueError as exc:
            p.error(f"--against {a.against}: {exc}")
    else:
        changes = {}
        for item in a.against.split(","):
            name, eq, value = item.strip().partition("=")
            if not eq or name not in numerics.PINNED:
                p.error(f"--against {a.against!r}: expected 'native', one of {', '.join(numerics.KERNEL_PROFILES)}, "
                        f"or VAR=VALUE[,VAR=VALUE...], VAR one of "
                        f"{', '.join(numerics.PINNED)}")
            changes[name] = value
        other = dict(numerics.pinned_env(base), **changes)
    envs = {"pinned": numerics.pinned_env(base), a.against: other}
    root = toy_root("small")                 # after the arguments are checked: generated on first use
    t_start = time.perf_counter()
    runs: dict[str, list[dict]] = {name: [] for name in envs}
    for r in range(a.rounds):
        for name in (list(envs) if r % 2 == 0 else list(envs)[::-1]):
            runs[name].append(_measure(envs[name], a.config, root, a.iters, a.batch))

    med = {name: statistics.median(s for r in rs for s in r["seconds"]) for name, rs in runs.items()}
    print(f"{a.config} training on the small toy preset, batch {a.batch}: median of {a.iters} iterations x "
          f"{a.rounds} processes per environment; {os.cpu_count()} cores, VISRC_TRAIN_SLOTS={training_slots()}")
    for name, rs in runs.items():
        info = rs[0]["numerics"]
        same = all(r["losses"] == rs[0]["losses"] for r in rs)
        isa, mkl = info["variables"]["ONEDNN_MAX_CPU_ISA"], info["variables"]["MKL_CBWR"]
        print(f"  {name:<14} {med[name]:7.3f} s/iter  ({info['torch_threads']} thread(s), {info['cpu_capability']} "
              f"kernels, oneDNN ISA {isa}, MKL_CBWR={mkl}; losses of its {len(rs)} processes "
              f"{'bitwise equal' if same else 'DIFFER'}; last loss {rs[0]['losses'][-1]!r})")
    print(f"  ratio pinned / {a.against}: {med['pinned'] / med[a.against]:.3f}  (> 1: pinned is slower)")
    same_across = runs["pinned"][0]["losses"] == runs[a.against][0]["losses"]
    print(f"  pinned and {a.against} losses {'bitwise equal' if same_across else 'differ'} on this machine "
          f"({runs['pinned'][0]['numerics']['cpu']}); wall time {time.perf_counter() - t_start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
