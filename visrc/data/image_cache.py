"""``CachedLoadImageFromFile``: mmcv's ``LoadImageFromFile`` that keeps decoded frames in memory.

A training epoch decodes every frame more than once (each frame is a key once and a reference
frame of its neighbours several times; a still image of Multi-Source Data is decoded for both its
key and its pseudo reference copy). This transform decodes a file once and hands out copies of
the decoded array afterwards, so the pipeline's output is the same array, bit for bit, as with
``LoadImageFromFile``; ``benchmarks/bench_train_profile.py`` measures what it saves.

Use it in place of ``LoadImageFromFile`` in a pipeline config::

    dict(type='CachedLoadImageFromFile', max_cache_bytes=2 * 1024**3)

The cache belongs to the transform instance: each dataset of a ``ConcatDataset`` and each
dataloader worker process holds its own. When the decoded frames exceed ``max_cache_bytes`` the
least recently used ones are dropped (the default fits the toy benchmark many times; a full
YouTube-VIS split does not fit, and then a frame is decoded again once it has been dropped).
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Optional

import numpy as np
from mmcv.transforms import LoadImageFromFile

from mmdet.registry import TRANSFORMS

DEFAULT_MAX_CACHE_BYTES = 2 * 1024 ** 3


@TRANSFORMS.register_module()
class CachedLoadImageFromFile(LoadImageFromFile):
    """``LoadImageFromFile`` (same arguments) plus an in-memory LRU cache of decoded images.

    Args:
        max_cache_bytes: upper bound on the bytes of decoded images kept; 0 disables the cache.
        **kwargs: ``LoadImageFromFile``'s arguments (``to_float32``, ``color_type``,
            ``imdecode_backend``, ``backend_args``, ...).

    A cached image is stored read-only and every call returns a fresh writable copy, so a later
    transform that modifies ``results['img']`` in place cannot change what the next call returns.
    """

    def __init__(self, max_cache_bytes: int = DEFAULT_MAX_CACHE_BYTES, **kwargs) -> None:
        super().__init__(**kwargs)
        if max_cache_bytes < 0:
            raise ValueError(f'max_cache_bytes={max_cache_bytes}: must be >= 0')
        self.max_cache_bytes = int(max_cache_bytes)
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._cache_bytes = 0
        self.hits = 0
        self.misses = 0

    def transform(self, results: dict) -> Optional[dict]:
        filename = results['img_path']
        img = self._cache.get(filename)
        if img is None:
            self.misses += 1
            results = super().transform(results)
            if results is None:          # ignore_empty and the file could not be read
                return None
            self._store(filename, results['img'])
            return results
        self.hits += 1
        self._cache.move_to_end(filename)
        img = img.copy()
        results['img'] = img
        results['img_shape'] = img.shape[:2]
        results['ori_shape'] = img.shape[:2]
        return results

    def _store(self, key: str, img: np.ndarray) -> None:
        if img.nbytes > self.max_cache_bytes:
            return
        kept = img.copy()
        kept.setflags(write=False)
        self._cache[key] = kept
        self._cache_bytes += kept.nbytes
        while self._cache_bytes > self.max_cache_bytes:
            _, old = self._cache.popitem(last=False)
            self._cache_bytes -= old.nbytes

    @property
    def cache_bytes(self) -> int:
        """Bytes of decoded images currently cached."""
        return self._cache_bytes

    def __repr__(self) -> str:
        return super().__repr__()[:-1] + f', max_cache_bytes={self.max_cache_bytes})'
