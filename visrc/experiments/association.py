"""Cosine association against QDTrack's (bi-softmax, backdrops, momentum) on one trained run.

The paper's track head is QDTrack's; the toy configs associate by cosine similarity and the
paper configs by :data:`visrc.tracking.QDTRACK`. ``bisoftmax`` (QDTrack without backdrops) separates
the two changes. This study re-tracks one run's cached per-frame
predictions with each association, chooses each one's ``match_thr`` on ``choice_split`` (forward
AP; the two similarities live on different scales) and reports both on the test split::

    python -m visrc.experiments.association            # toy_baseline, pretrained init, seed 0
    # -> figures/association_cosine_vs_qdtrack.{csv,md}, figures/association_metrics.json

Every other tracker setting is the config's own ``tracking.tracker``.
"""
from __future__ import annotations

import argparse
from dataclasses import asdict
from pathlib import Path

from visrc.tracking import QDTRACK

ASSOCIATIONS = {
    "cosine": {"similarity": "cosine", "backdrop_frames": 0},
    "bisoftmax": {"similarity": "bisoftmax", "backdrop_frames": 0},
    "qdtrack": {k: v for k, v in asdict(QDTRACK).items()
                if k in ("similarity", "momentum", "backdrop_frames", "backdrop_nms_iou")},
}
MATCH_GRID = (0.1, 0.3, 0.5, 0.7)


def compare_associations(config: str, data_root, seed: int = 0, init="pretrained", associations=None,
                         match_grid=MATCH_GRID, choice_split: str = "tune", modes=("forward", "bitrack"),
                         n_boot: int = 0) -> dict:
    """``{"grid": [...], "chosen": {name: match_thr}, "rows": [...]}``: ``grid`` holds the forward AP
    on ``choice_split`` of every association x ``match_thr``; ``rows`` each association at its chosen
    ``match_thr`` on the test split, per mode in ``modes`` (with ``n_boot``, a bootstrap interval)."""
    from visrc.experiments.pretrain import init_label, resolve_init
    from visrc.experiments.runs import train_cached
    from visrc.experiments.table1 import choose_best, evaluate_tracking

    associations = associations or ASSOCIATIONS
    root = Path(data_root)
    ckpt = train_cached(config, root, seed=seed, init=resolve_init(config, root, init))
    grid = [{"row": name, "match_thr": thr,
             "AP": evaluate_tracking(config, ckpt, root, {**a, "match_thr": thr}, split=choice_split)["forward"]["AP"]}
            for name, a in associations.items() for thr in match_grid]
    chosen = {name: choose_best(grid, name, ("match_thr",))["match_thr"] for name in associations}
    rows = []
    for name, a in associations.items():
        m = evaluate_tracking(config, ckpt, root, {**a, "match_thr": chosen[name]}, modes=modes, n_boot=n_boot)
        rows += [{"association": name, "mode": mode, "match_thr": chosen[name], **m[mode]} for mode in modes]
    return {"config": config, "seed": seed, "init": init_label(init), "choice_split": choice_split,
            "associations": associations, "grid": grid, "chosen": chosen, "rows": rows}


def main(argv=None) -> dict:
    import pandas as pd

    from visrc import numerics
    from visrc.data.toy import dataset_root
    from visrc.reproduce import record_metrics
    from visrc.viz.plots import savetable

    p = argparse.ArgumentParser(prog="python -m visrc.experiments.association", description=__doc__.split("\n")[0])
    p.add_argument("--config", default="toy_baseline")
    p.add_argument("--data-root", default=None, help="YouTube-VIS root with tune/ and valid/; default: the toy benchmark")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--n-boot", type=int, default=1000)
    args = p.parse_args(argv)
    print(numerics.summary(numerics.apply_in_process()))
    out = compare_associations(args.config, dataset_root(args.data_root), args.seed, n_boot=args.n_boot)
    table = pd.DataFrame(out["rows"]).set_index(["association", "mode"])
    savetable(table, "association_cosine_vs_qdtrack")
    print(table.to_markdown())
    record_metrics("association", out)
    return out


if __name__ == "__main__":
    main()
