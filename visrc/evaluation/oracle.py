"""mmdet 3.3.0's port of the official YouTube-VIS evaluator, loaded as the *test oracle* only.

visrc's evaluator never uses it. The two files are loaded directly (not through
``mmdet.evaluation``) so the oracle does not pull in mmdet's metric registry. The port's ``accumulate`` still uses ``np.float`` (removed in numpy 1.24):
callers set ``np.float = float`` while they run it.
"""
from __future__ import annotations

import functools
import importlib.util
from pathlib import Path


@functools.lru_cache(maxsize=1)
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


def run_oracle(gt: dict, results: list, copy_inputs: bool = True) -> dict:
    """Evaluate ``results`` against ``gt`` with the official port; the caller has set ``np.float``.

    Returns ``{"stats" (12,), "precision" [T,R,K,A,M], "recall" [T,K,A,M], "per_category" {cat id: AP}}``.
    ``copy_inputs=False`` skips the defensive deep copies (the benchmark times the oracle alone).
    The port's ``loadRes`` crashes on an empty list, so an empty result set is built by hand.
    """
    import contextlib
    import copy
    import io

    import numpy as np

    YTVIS, YTVISeval = load_oracle()
    cp = copy.deepcopy if copy_inputs else (lambda x: x)
    with contextlib.redirect_stdout(io.StringIO()):
        gt_api = YTVIS(cp(gt))
        if results:
            dt_api = gt_api.loadRes(cp(results))
        else:
            dt_api = YTVIS()
            dt_api.dataset = {"videos": list(gt["videos"]), "categories": copy.deepcopy(gt["categories"]),
                              "annotations": []}
            dt_api.createIndex()
        ev = YTVISeval(gt_api, dt_api, "segm")
        ev.params.vidIds = gt_api.getVidIds()
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    prec = ev.eval["precision"]
    per_cat = {}
    for k, c in enumerate(ev.params.catIds):
        s = prec[:, :, k, 0, -1]
        per_cat[c] = float(np.mean(s[s > -1])) if (s > -1).any() else -1.0
    return {"stats": np.asarray(ev.stats, np.float64), "precision": prec, "recall": ev.eval["recall"],
            "per_category": per_cat}
