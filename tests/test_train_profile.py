"""``CachedLoadImageFromFile`` (visrc.data.image_cache) against the plain ``LoadImageFromFile``:
the same batches, bit for bit, for the same seed, through the training dataloader of the small toy
benchmark (the check ``benchmarks/bench_train_profile.py`` runs before timing the cache)."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_train_profile.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_train_profile", BENCH)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def small_root():
    from visrc.data.toy import toy_root

    return toy_root("small")


@pytest.mark.parametrize("config", ["toy_baseline", "toy_tcis_multitask_msd"])
def test_cached_loader_gives_the_plain_batches(bench, small_root, config):
    assert bench.check_cached_batches(config, small_root, n=2, seed=0)


def test_cached_loader_is_registered_and_returns_copies(small_root):
    import visrc.registry  # noqa: F401
    from mmdet.registry import TRANSFORMS

    t = TRANSFORMS.build(dict(type="CachedLoadImageFromFile"))
    path = str(next((small_root / "train" / "JPEGImages").rglob("*.jpg")))
    first = t(dict(img_path=path))["img"]
    first[:] = 0                                     # a later transform writing in place
    second = t(dict(img_path=path))["img"]
    assert (t.hits, t.misses) == (1, 1)
    assert second.flags.writeable and second.any()
    plain = TRANSFORMS.build(dict(type="LoadImageFromFile"))(dict(img_path=path))["img"]
    assert np.array_equal(second, plain)


def test_cache_byte_budget(small_root):
    from visrc.data.image_cache import CachedLoadImageFromFile

    paths = sorted(str(p) for p in (small_root / "train" / "JPEGImages").rglob("*.jpg"))[:3]
    t = CachedLoadImageFromFile(max_cache_bytes=0)
    for p in paths:
        t(dict(img_path=p))
    assert t.cache_bytes == 0 and t.misses == 3
    one = t(dict(img_path=paths[0]))["img"].nbytes
    t = CachedLoadImageFromFile(max_cache_bytes=2 * one)
    for p in paths + paths[-1:]:
        t(dict(img_path=p))
    assert t.cache_bytes <= 2 * one and (t.hits, t.misses) == (1, 3)
