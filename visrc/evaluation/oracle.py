"""mmdet 3.3.0's port of the official YouTube-VIS evaluator, loaded as the *test oracle* only.

visrc's evaluator never uses it. The two files are loaded directly (not through
``mmdet.evaluation``) so the oracle does not pull in mmdet's metric registry. The port's ``accumulate`` still uses ``np.float`` (removed in numpy 1.24):
callers set ``np.float = float`` while they run it.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path


def load_oracle():
    """Return mmdet's ``(YTVIS, YTVISeval)`` classes; ImportError if mmdet is not installed."""
    spec = importlib.util.find_spec("mmdet")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("mmdet is not installed: no YouTube-VIS oracle to compare with")
    root = Path(list(spec.submodule_search_locations)[0]) / "evaluation" / "functional"
    mods = {}
    for name in ("ytvis", "ytviseval"):
        s = importlib.util.spec_from_file_location(f"_oracle_{name}", root / f"{name}.py")
        m = importlib.util.module_from_spec(s)
        s.loader.exec_module(m)
        mods[name] = m
    return mods["ytvis"].YTVIS, mods["ytviseval"].YTVISeval
