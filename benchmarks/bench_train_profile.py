"""Where one training iteration's time goes, per component, and what cheap levers save.

    python benchmarks/bench_train_profile.py [--configs toy_baseline toy_tcis_multitask_msd]
        [--warmup 2] [--iters 5] [--threads 1] [--levers cache channels_last logging]
        [--clock cpu|wall] [--data-root DIR] [--verbose]

Builds each config's runner the way ``visrc train`` does (:func:`visrc.models.train_cli.prepare_config`
and :func:`~visrc.models.train_cli.build_runner`, on the small toy benchmark unless ``--data-root``
is given), runs ``--warmup`` iterations of mmengine's train loop unmeasured, then ``--iters``
measured ones, and stops. Timed regions (instance-level wrappers around the named methods, so a
head's loss and target computation count with the head, not only its ``forward``):

* data: ``next(batch)`` of the train dataloader, each transform of the dataset pipeline (those
  inside ``TransformBroadcaster`` run once per frame) and the collate function;
* hooks: ``runner.call_hook`` for ``before_train_iter`` / ``after_train_iter``, per hook
  (``LoggerHook`` is the logging);
* ``model.train_step``: the data preprocessor, ``model.loss`` (backbone, FPN, RPN, the RoI head's
  box / mask / mask-IoU parts, TCIS, the track head, the auxiliary heads), ``parse_losses``, and the
  optimizer wrapper's ``backward``, ``step`` (gradient clipping inside it) and ``zero_grad``.

Per config: a tree (inclusive and self milliseconds per iteration, share of the iteration, calls
per iteration), a summary by component whose shares add up to the whole iteration, and the
iterations per second. Then each lever, on a fresh runner in the same process, as the ratio of
its iteration time to the plain run's (below 1 is faster), with the ratio of the regions it
changes; the plain run is repeated last to show the run-to-run spread:

* ``cache``: :class:`visrc.data.image_cache.CachedLoadImageFromFile` in place of
  ``LoadImageFromFile`` (the batches are checked ``torch.equal`` to the plain pipeline's for the
  same seed first);
* ``channels_last``: the backbone's weights and input in ``torch.channels_last``;
* ``logging``: ``LoggerHook`` every iteration, with mmengine's default visualiser (which writes
  ``scalars.json``) and with one without backends, to show the cost of one log line.

mmengine's console log of each run (config dump, log lines) goes to a buffer unless ``--verbose``.
The runs do not change any config file: the levers are applied to the loaded Config or to the
built runner. Times are the main thread's CPU time by default (``--clock cpu``): with one torch
thread the model runs on that thread, and CPU time does not count the waits for a core that
other processes on a shared machine cause (``--clock wall`` counts them). Compare numbers of
one invocation only.
"""
from __future__ import annotations

import argparse
import contextlib
import copy
import io
import shutil
import functools
import tempfile
import time
import uuid
from pathlib import Path

import torch

CONFIGS = ("toy_baseline", "toy_tcis_multitask_msd")
LEVERS = ("cache", "channels_last", "logging")
ITER_STAGES = ("before_train_iter", "after_train_iter")


# ---------------------------------------------------------------------------- timing
class _Done(Exception):
    """Raised after the last measured iteration to leave mmengine's train loop."""


class Profile:
    """Inclusive time (``clock``: wall or this thread's CPU time) per call path of the wrapped
    methods, counted while ``active``."""

    def __init__(self, clock=time.perf_counter) -> None:
        self.clock = clock
        self.active = False
        self.stack: list[str] = []
        self.incl: dict[tuple, float] = {}
        self.calls: dict[tuple, int] = {}
        self.order: dict[tuple, int] = {}
        self.iters = 0
        self.wall_start = self.wall_end = 0.0
        self._restore: list = []

    def region(self, name: str, fn):
        """``fn`` wrapped: its calls are timed under ``name`` while the profile is active."""
        prof = self

        @functools.wraps(fn)
        def timed(*args, **kwargs):
            if not prof.active:
                return fn(*args, **kwargs)
            prof.stack.append(name)
            path = tuple(prof.stack)
            prof.order.setdefault(path, len(prof.order))
            t0 = prof.clock()
            try:
                return fn(*args, **kwargs)
            finally:
                dt = prof.clock() - t0
                prof.stack.pop()
                prof.incl[path] = prof.incl.get(path, 0.0) + dt
                prof.calls[path] = prof.calls.get(path, 0) + 1
        return timed

    def wrap(self, obj, attr: str, name: str, restore: bool = False) -> bool:
        """Replace ``obj.attr`` by its timed version (an instance attribute); False if absent."""
        if obj is None or not hasattr(obj, attr):
            return False
        orig = getattr(obj, attr)
        setattr(obj, attr, self.region(name, orig))
        if restore:
            self._restore.append((obj, attr, orig))
        return True

    def restore(self) -> None:
        for obj, attr, orig in reversed(self._restore):
            setattr(obj, attr, orig)
        self._restore.clear()

    # -------------------------------------------------------------- reporting
    @property
    def total(self) -> float:
        return sum(t for p, t in self.incl.items() if len(p) == 1)

    def self_time(self, path: tuple) -> float:
        children = sum(t for p, t in self.incl.items() if len(p) == len(path) + 1 and p[:-1] == path)
        return self.incl[path] - children

    def tree_lines(self) -> list[str]:
        n, total = max(self.iters, 1), self.total
        lines = [f"{'region':64s} {'ms/iter':>9s} {'self ms':>9s} {'share':>7s} {'calls/it':>8s}"]
        for path in sorted(self.incl, key=self.order.get):
            t = self.incl[path]
            name = "  " * (len(path) - 1) + path[-1]
            lines.append(f"{name[:64]:64s} {1e3 * t / n:9.1f} {1e3 * self.self_time(path) / n:9.1f} "
                         f"{100 * t / total:6.1f}% {self.calls[path] / n:8.1f}")
        return lines

    def summary(self) -> dict[str, float]:
        """Self time of every path added to its component (:func:`component`); seconds per iteration."""
        out: dict[str, float] = {}
        for path in self.incl:
            c = component(path)
            out[c] = out.get(c, 0.0) + self.self_time(path) / max(self.iters, 1)
        return out


# component of a call path: the first entry of STICKY found from the root, else the deepest
# entry found in COMPONENTS, else "other"
STICKY = {"data: next(batch)": "data loading (next batch: sampler, transforms, collate)",
          "call_hook": "hooks (timer, logger, scheduler, checkpoint, ...)",
          "tcis_loss_from_sampling": "TCIS (offsets, deformable warp, extra mask-head pass, loss)",
          "track_head.loss": "track head (assign/sample, RoI extract, embed head, loss)",
          "optim_wrapper.backward": "backward",
          "optim_wrapper.step": "optimizer step (incl. grad clipping)",
          "optim_wrapper.zero_grad": "optimizer step (incl. grad clipping)"}
COMPONENTS = {
    "data_preprocessor.forward": "data preprocessor (normalise, pad, batch)",
    "backbone.forward": "backbone",
    "neck.forward": "FPN",
    "rpn_head.loss_and_predict": "RPN (conv, targets, loss, proposals)",
    "rpn_head.predict": "RPN (conv, targets, loss, proposals)",
    "roi_head.loss": "RoI head: assign/sample + other",
    "roi_head.bbox_loss": "RoI box head (RoIAlign, FCs, targets, loss)",
    "roi_head.mask_loss": "RoI mask head (RoIAlign, convs, targets, loss)",
    "mask_iou_head": "RoI mask-IoU head",
    "aux_heads": "auxiliary heads (semseg, multilabel)",
}


def component(path: tuple) -> str:
    for name in path:
        for key, comp in STICKY.items():
            if name.startswith(key):
                return comp
    for name in reversed(path):
        for key, comp in COMPONENTS.items():
            if name.startswith(key):
                return comp
    return "other (split_pair, RPN target copy, parse_losses, train_step glue)"


# ---------------------------------------------------------------------------- instrumentation
def _instrument_pipeline(prof: Profile, transforms, prefix: str) -> None:
    for t in transforms:
        name = f"{prefix}{type(t).__name__}"
        inner = getattr(t, "transforms", None)
        prof.wrap(t, "transform", name)
        if inner is not None:
            _instrument_pipeline(prof, getattr(inner, "transforms", inner), name + "/")


def _datasets(ds):
    for d in getattr(ds, "datasets", None) or [ds]:
        yield getattr(d, "dataset", None) if not hasattr(d, "pipeline") else d


class _TimedLoader:
    """The train dataloader with ``next(batch)`` timed; everything else delegated."""

    def __init__(self, loader, prof: Profile, on_batch) -> None:
        self._loader, self._prof, self._on_batch = loader, prof, on_batch
        self._next = prof.region("data: next(batch)", next)

    def __len__(self) -> int:
        return len(self._loader)

    def __getattr__(self, key):
        return getattr(self._loader, key)

    def __iter__(self):
        it = iter(self._loader)
        while True:
            self._on_batch()
            try:
                batch = self._next(it)
            except StopIteration:
                return
            yield batch


def _instrument_model(prof: Profile, model) -> None:
    det = model.detector
    prof.wrap(model.data_preprocessor, "forward", "data_preprocessor.forward")
    prof.wrap(model, "loss", "model.loss")
    prof.wrap(model, "parse_losses", "model.parse_losses")
    prof.wrap(det.backbone, "forward", "backbone.forward")
    prof.wrap(det.neck, "forward", "neck.forward")
    rpn = det.rpn_head
    prof.wrap(rpn, "loss_and_predict", "rpn_head.loss_and_predict")
    prof.wrap(rpn, "predict", "rpn_head.predict (reference frames, no grad)")
    prof.wrap(rpn, "forward", "rpn_head.forward (convs)")
    roi = det.roi_head
    prof.wrap(roi, "loss", "roi_head.loss")
    prof.wrap(roi.bbox_assigner, "assign", "roi_head.assign")
    prof.wrap(roi.bbox_sampler, "sample", "roi_head.sample")
    prof.wrap(roi, "bbox_loss", "roi_head.bbox_loss")
    prof.wrap(roi.bbox_roi_extractor, "forward", "bbox_roi_extractor (RoIAlign)")
    prof.wrap(roi.bbox_head, "forward", "bbox_head.forward")
    prof.wrap(roi.bbox_head, "loss_and_target", "bbox_head.loss_and_target")
    prof.wrap(roi, "mask_loss", "roi_head.mask_loss")
    prof.wrap(roi.mask_roi_extractor, "forward", "mask_roi_extractor (RoIAlign)")
    prof.wrap(roi.mask_head, "forward", "mask_head.forward")
    prof.wrap(roi.mask_head, "loss_and_target", "mask_head.loss_and_target")
    if getattr(roi, "mask_iou_head", None) is not None:
        prof.wrap(roi.mask_iou_head, "forward", "mask_iou_head.forward")
        prof.wrap(roi.mask_iou_head, "loss_and_target", "mask_iou_head.loss_and_target")
    if getattr(roi, "tcis", None) is not None:
        import visrc.models.tcis as tcis_mod
        prof.wrap(tcis_mod, "tcis_loss_from_sampling", "tcis_loss_from_sampling", restore=True)
        prof.wrap(roi.tcis, "forward", "tcis.forward (offsets + deformable warp)")
    th = model.track_head
    prof.wrap(th, "loss", "track_head.loss")
    prof.wrap(th.roi_extractor, "forward", "track roi_extractor (RoIAlign)")
    prof.wrap(th.embed_head, "forward", "embed_head.forward")
    prof.wrap(th.embed_head, "loss", "embed_head.loss")
    for name, head in getattr(model, "aux_heads", {}).items():
        prof.wrap(head, "loss", f"aux_heads.{name}.loss")


def _instrument_runner(prof: Profile, runner, warmup: int, iters: int) -> None:
    loop = runner.train_loop                     # built here; runner.train() keeps this one
    for ds in _datasets(loop.dataloader.dataset):
        _instrument_pipeline(prof, ds.pipeline.transforms, "")
    loop.dataloader.collate_fn = prof.region("collate", loop.dataloader.collate_fn)

    def on_batch():
        if prof.iters_seen == warmup and not prof.active:
            prof.active = True
            prof.wall_start = time.perf_counter()

    prof.iters_seen = 0
    loop.dataloader = _TimedLoader(loop.dataloader, prof, on_batch)
    _instrument_model(prof, runner.model)
    for hook in runner.hooks:
        for stage in ITER_STAGES:
            prof.wrap(hook, stage, f"{type(hook).__name__}.{stage}")
    orig_call_hook = runner.call_hook
    timed_call_hook = {s: prof.region(f"call_hook({s})", orig_call_hook) for s in ITER_STAGES}

    def call_hook(fn_name, **kwargs):
        return timed_call_hook.get(fn_name, orig_call_hook)(fn_name, **kwargs)
    runner.call_hook = call_hook

    orig_run_iter = loop.run_iter
    state = {"optim": False}

    def run_iter(*args, **kwargs):
        if not state["optim"]:               # the optimizer wrapper is built inside runner.train()
            ow = runner.optim_wrapper
            prof.wrap(ow, "backward", "optim_wrapper.backward")
            prof.wrap(ow, "step", "optim_wrapper.step")
            prof.wrap(ow, "_clip_grad", "clip_grad")
            prof.wrap(ow, "zero_grad", "optim_wrapper.zero_grad")
            prof.wrap(runner.model, "train_step", "model.train_step")
            state["optim"] = True
        out = timed_run_iter(*args, **kwargs)
        prof.iters_seen += 1
        if prof.active:
            prof.iters += 1
            if prof.iters >= iters:
                prof.wall_end = time.perf_counter()
                prof.active = False
                raise _Done
        return out
    timed_run_iter = prof.region("run_iter", orig_run_iter)
    loop.run_iter = run_iter


# ---------------------------------------------------------------------------- config and levers
def use_cached_loader(cfg) -> int:
    """Replace every ``LoadImageFromFile`` in the train dataloader's pipelines of ``cfg`` (the
    loaded Config, not the file) by ``CachedLoadImageFromFile``; returns how many were replaced."""
    n = 0

    def walk(node):
        nonlocal n
        if isinstance(node, dict):
            if node.get("type") == "LoadImageFromFile":
                node["type"] = "CachedLoadImageFromFile"
                n += 1
            for v in node.values():
                walk(v)
        elif isinstance(node, (list, tuple)):
            for v in node:
                walk(v)
    walk(cfg.train_dataloader)
    return n


def make_cfg(name: str, data_root: Path, lever: str | None = None, seed: int = 0):
    from visrc.models.train_cli import prepare_config

    opts = {}
    if lever == "logging":
        opts["default_hooks.logger.interval"] = 1
    cfg = prepare_config(name, data_root=str(data_root), work_dir=tempfile.mkdtemp(prefix="visrc_prof_"),
                         seed=seed, cfg_options=opts or None)
    cfg.experiment_name = f"profile_{name}_{lever or 'plain'}_{uuid.uuid4().hex[:8]}"
    if lever == "cache":
        assert use_cached_loader(cfg) > 0, f"{name}: no LoadImageFromFile in the train pipeline"
    if lever == "logging_novis":
        cfg.default_hooks.logger.interval = 1
        cfg.visualizer = dict(type="Visualizer", name=cfg.experiment_name, vis_backends=[])
    return cfg


def _channels_last(runner) -> None:
    backbone = runner.model.detector.backbone
    backbone.to(memory_format=torch.channels_last)
    backbone.register_forward_pre_hook(
        lambda m, args: (args[0].contiguous(memory_format=torch.channels_last),) + tuple(args[1:]))


CLOCKS = {"cpu": time.thread_time, "wall": time.perf_counter}


def profile(name: str, data_root: Path, warmup: int, iters: int, lever: str | None = None,
            clock: str = "cpu") -> Profile:
    """Run ``warmup`` + ``iters`` iterations of ``name``'s training (with ``lever``); the profile."""
    from visrc.models.train_cli import build_runner

    cfg = make_cfg(name, data_root, lever)
    try:
        return _profile_runner(build_runner(cfg), name, warmup, iters, lever, clock)
    finally:
        shutil.rmtree(cfg.work_dir, ignore_errors=True)


def _profile_runner(runner, name: str, warmup: int, iters: int, lever: str | None, clock: str) -> Profile:
    if lever == "channels_last":
        _channels_last(runner)
    prof = Profile(CLOCKS[clock])
    prof.log_interval = runner.cfg.default_hooks.logger.get("interval", 10)
    _instrument_runner(prof, runner, warmup, iters)
    try:
        runner.train()
    except _Done:
        pass
    finally:
        prof.restore()
    if prof.iters < iters:
        raise RuntimeError(f"{name}: the train loop ended after {prof.iters} measured iterations")
    if lever == "cache":
        loaders = cached_loaders(runner.train_loop.dataloader)
        prof.cache_stats = (sum(t.hits for t in loaders), sum(t.misses for t in loaders))
    return prof


def _all_transforms(compose):
    for t in getattr(compose, "transforms", compose):
        yield t
        inner = getattr(t, "transforms", None)
        if inner is not None:
            yield from _all_transforms(inner)


# ---------------------------------------------------------------------------- batch equality
def load_batches(name: str, data_root: Path, n: int, cached: bool, seed: int = 0, passes: int = 1):
    """The first ``n`` train batches of ``name``'s dataloader (built by mmengine's Runner, as in
    training) for ``seed``, with or without the cached loader; ``passes`` > 1 reseeds and reads the
    same batches again from the same dataloader (the second pass finds every frame cached)."""
    from mmengine.runner import Runner, set_random_seed

    cfg = make_cfg(name, data_root, "cache" if cached else None, seed=seed)
    shutil.rmtree(cfg.work_dir, ignore_errors=True)        # nothing is written there
    set_random_seed(seed)
    loader = Runner.build_dataloader(copy.deepcopy(cfg.train_dataloader), seed=seed)
    out = []
    for _ in range(passes):
        set_random_seed(seed)
        it = iter(loader)
        out.append([next(it) for _ in range(n)])
    return out, loader


def cached_loaders(loader) -> list:
    """The ``CachedLoadImageFromFile`` instances in ``loader``'s dataset pipelines."""
    return [t for ds in _datasets(loader.dataset) for t in _all_transforms(ds.pipeline)
            if type(t).__name__ == "CachedLoadImageFromFile"]


def _equal(a, b) -> bool:
    import numpy as np

    if torch.is_tensor(a):
        return torch.is_tensor(b) and a.dtype == b.dtype and a.shape == b.shape and torch.equal(a, b)
    if isinstance(a, np.ndarray):
        return isinstance(b, np.ndarray) and a.dtype == b.dtype and np.array_equal(a, b)
    if hasattr(a, "tensor") and torch.is_tensor(a.tensor):           # mmdet boxes
        return _equal(a.tensor, b.tensor)
    if hasattr(a, "masks") and isinstance(getattr(a, "masks"), np.ndarray):    # BitmapMasks
        return _equal(a.masks, b.masks)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    if hasattr(a, "video_data_samples"):
        return _equal(a.video_data_samples, b.video_data_samples)
    if hasattr(a, "gt_instances"):
        ga, gb = a.gt_instances, b.gt_instances
        return (sorted(ga.keys()) == sorted(gb.keys()) and all(_equal(ga.get(k), gb.get(k)) for k in ga.keys())
                and _equal(a.metainfo.get("img_path"), b.metainfo.get("img_path")))
    return a == b


def batches_equal(batches_a, batches_b) -> bool:
    """Every batch's input tensors and ground truth (boxes, labels, masks, ids) identical."""
    return len(batches_a) == len(batches_b) and all(
        _equal(a["inputs"], b["inputs"]) and _equal(a["data_samples"], b["data_samples"])
        for a, b in zip(batches_a, batches_b))


def check_cached_batches(name: str, data_root: Path, n: int = 3, seed: int = 0) -> bool:
    """Plain and cached pipelines give ``torch.equal`` batches for ``seed``, on a first pass (cache
    filling) and on a second pass over the same loader (cache hits; compared with the plain
    loader's second pass, since a batch sampler may carry state from one pass to the next)."""
    plain, _ = load_batches(name, data_root, n, cached=False, seed=seed, passes=2)
    cached, loader = load_batches(name, data_root, n, cached=True, seed=seed, passes=2)
    hits = sum(t.hits for t in cached_loaders(loader))
    return hits > 0 and all(batches_equal(a, b) for a, b in zip(plain, cached))


# ---------------------------------------------------------------------------- main
def _print_profile(name: str, prof: Profile, threads: int, clock: str) -> None:
    n, total = prof.iters, prof.total
    print(f"\n=== {name}: {n} measured iterations, {threads} thread(s), {clock} clock ===")
    print("\n".join(prof.tree_lines()))
    print(f"\n{'component':66s} {'ms/iter':>9s} {'share':>7s}")
    summ = prof.summary()
    for comp, t in sorted(summ.items(), key=lambda kv: -kv[1]):
        print(f"{comp:66s} {1e3 * t:9.1f} {100 * t * n / total:6.1f}%")
    print(f"{'total':66s} {1e3 * total / n:9.1f} {100.0:6.1f}%   -> {n / total:.3f} it/s "
          f"(elapsed between first and last measured iteration: {n / (prof.wall_end - prof.wall_start):.3f} it/s)")


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--configs", nargs="+", default=list(CONFIGS))
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--iters", type=int, default=5)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--levers", nargs="*", default=list(LEVERS), choices=LEVERS)
    p.add_argument("--clock", choices=sorted(CLOCKS), default="cpu",
                   help="cpu: the main thread's CPU time (steady on a shared machine; torch runs on "
                        "that thread with --threads 1); wall: elapsed time")
    p.add_argument("--verbose", action="store_true", help="show mmengine's console log of each run")
    p.add_argument("--data-root", help="dataset root (default: the small toy benchmark)")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    from visrc.data.toy import toy_root

    root = Path(args.data_root) if args.data_root else toy_root("small")
    for name in args.configs:
        plain = _quiet(args.verbose, profile, name, root, args.warmup, args.iters, None, args.clock)
        _print_profile(name, plain, args.threads, args.clock)
        base = plain.total / plain.iters
        interval = plain.log_interval
        for lever in args.levers:
            if lever == "cache":
                ok = _quiet(args.verbose, check_cached_batches, name, root)
                pr = _quiet(args.verbose, profile, name, root, args.warmup, args.iters, "cache", args.clock)
                hits, misses = pr.cache_stats
                print(f"lever cache        : {pr.total / pr.iters / base:5.3f}x iteration time; "
                      f"image loading {_ms(pr, 'TransformBroadcaster/CachedLoadImageFromFile'):.1f} vs "
                      f"{_ms(plain, 'TransformBroadcaster/LoadImageFromFile'):.1f} ms/iter, data "
                      f"{_ms(pr, 'data: next(batch)'):.1f} vs {_ms(plain, 'data: next(batch)'):.1f} ms/iter "
                      f"({hits} hits / {misses} misses in {args.warmup + args.iters} iterations; batches "
                      f"torch.equal to the plain pipeline's: {ok})")
            elif lever == "channels_last":
                pr = _quiet(args.verbose, profile, name, root, args.warmup, args.iters, "channels_last", args.clock)
                parts = ", ".join(f"{r} {_ms(pr, r) / max(_ms(plain, r), 1e-9):5.3f}x"
                                  for r in ("backbone.forward", "neck.forward", "model.loss", "optim_wrapper.backward"))
                print(f"lever channels_last: {pr.total / pr.iters / base:5.3f}x iteration time ({parts})")
            elif lever == "logging":
                for variant, label in (("logging", "default visualiser (LocalVisBackend)"),
                                       ("logging_novis", "visualiser without backends")):
                    pr = _quiet(args.verbose, profile, name, root, args.warmup, args.iters, variant, args.clock)
                    per_log = _ms(pr, "LoggerHook.after_train_iter")
                    print(f"lever logging      : {pr.total / pr.iters / base:5.3f}x iteration time with LoggerHook "
                          f"interval=1, {label}; LoggerHook {per_log:.1f} ms/iter (plain: "
                          f"{_ms(plain, 'LoggerHook.after_train_iter'):.2f}), hooks in all "
                          f"{_ms(pr, 'call_hook'):.1f} ms/iter; at the configured interval {interval}: "
                          f"~{per_log / interval:.2f} ms/iter")
        if args.levers:
            pr = _quiet(args.verbose, profile, name, root, args.warmup, args.iters, None, args.clock)
            print(f"plain run repeated : {pr.total / pr.iters / base:5.3f}x iteration time (the spread between "
                  f"two identical runs: whole-iteration ratios closer to 1 than this are noise)")


def _ms(prof: Profile, name: str) -> float:
    """Milliseconds per iteration in regions named ``name`` (prefix), outermost occurrences only."""
    total = 0.0
    for path, t in prof.incl.items():
        hits = [i for i, n in enumerate(path) if n.startswith(name)]
        if hits and hits[0] == len(path) - 1:
            total += t
    return 1e3 * total / max(prof.iters, 1)


def _quiet(verbose: bool, fn, *args):
    """``fn(*args)`` with mmengine's console log (config dump, log lines) sent to a buffer: its
    handlers are created inside, so they keep writing there (the formatting cost stays measured)."""
    if verbose:
        return fn(*args)
    with contextlib.redirect_stdout(io.StringIO()):
        return fn(*args)

if __name__ == "__main__":
    main()
