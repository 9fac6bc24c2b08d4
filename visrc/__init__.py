"""visrc: a runnable reproduction of the 1st place YouTube-VOS 2021 VIS solution.

Import ``visrc`` before ``mmcv.ops`` or ``mmdet.models``: with mmcv-lite, importing it lets
``mmcv._ext`` resolve to visrc's own ops (:mod:`visrc.ops`); with mmcv-full, mmcv's compiled
extension is found first and used. The layers are in ``docs/architecture.md``.
"""
import importlib.abc
import importlib.util
import sys

__version__ = "0.1.0"

_EXT = "mmcv._ext"


class _OpsLoader(importlib.abc.Loader):
    def create_module(self, spec):
        from visrc.ops.ext import module

        return module(spec.name)

    def exec_module(self, module) -> None:
        pass


class _OpsFinder(importlib.abc.MetaPathFinder):
    """Last on ``sys.meta_path``: consulted for ``mmcv._ext`` only when no compiled one was found."""

    def find_spec(self, fullname, path=None, target=None):
        return importlib.util.spec_from_loader(fullname, _OpsLoader()) if fullname == _EXT else None


if not any(isinstance(f, _OpsFinder) for f in sys.meta_path):
    sys.meta_path.append(_OpsFinder())

_API = ("init_model", "track_video", "write_results")


def __getattr__(name: str):
    """``visrc.init_model``, ``visrc.track_video``, ``visrc.write_results`` (:mod:`visrc.api`), imported
    on first use so that ``import visrc`` stays light."""
    if name in _API:
        from visrc import api

        return getattr(api, name)
    raise AttributeError(f"module 'visrc' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(_API))
