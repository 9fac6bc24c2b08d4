"""How many test videos the toy tables need: Table 1's trained runs scored on the first ``n`` videos of a
longer ``valid`` split, so each row's 95% bootstrap interval over videos stands beside its seed spread.

::

    t1 = run_table1(root, seeds=[0, 1, 2])
    study = valid_size_study(t1, n_valid_videos=256)      # on the default toy benchmark
    study.summary()          # per row and size: seed mean and std of AP, bootstrap interval width
    study.differences()      # Table 1's readings at each size

The longer split is its own toy root (:func:`visrc.data.toy.toy_root` with ``n_valid_videos``): every toy
video has its own random stream, so its train and tune splits and its first videos are the default
root's bytes. The runs are Table 1's cached trainings and the thresholds the ones Table 1 chose on
``tune``; only inference on the longer split is new. The first ``len(table valid)`` videos are Table 1's
own valid split, so each run's AP there must equal its Table 1 row (``same_as_table``).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from visrc.experiments.table1 import BITRACK_SUFFIX
from visrc.experiments.tables import metrics_row, row_differences, row_interval

# numbers of leading valid videos each run is scored on (the longer split's own length is added)
VALID_SIZES = (16, 32, 64, 128)


def first_videos(gt: dict, results: list[dict], n: int) -> tuple[dict, list[dict]]:
    """``gt`` (YouTube-VIS dict) and ``results`` restricted to the first ``n`` videos of ``gt['videos']``."""
    if not 1 <= n <= len(gt["videos"]):
        raise ValueError(f"first_videos: n must be in 1..{len(gt['videos'])} (the split's videos), got {n}")
    videos = gt["videos"][:n]
    keep = {v["id"] for v in videos}
    return (dict(gt, videos=videos, annotations=[a for a in gt["annotations"] if a["video_id"] in keep]),
            [r for r in results if r["video_id"] in keep])


@dataclass
class ValidSizeStudy:
    """``runs``: ``{"row", "seed", "videos", AP..AR10, "AP_low", "AP_high", "AP_boot_std", "same_as_table"}``
    per Table 1 row, seed and number of leading valid videos (empty when the study was skipped: ``note``
    says why); ``comparisons``: Table 1's ``(row, reference)`` pairs."""

    runs: list[dict]
    sizes: list[int]
    eval_root: str | None
    comparisons: list[tuple[str, str]] = field(default_factory=list)
    note: str = ""

    def summary(self):
        """Per row (table order) and size: seeds, AP seed mean and std, the mean 95% bootstrap interval
        width over seeds and its ratio to the seed std (below 1: the interval is the smaller)."""
        import pandas as pd

        cols = ["row", "videos", "seeds", "AP mean", "AP seed std", "AP interval width", "width / seed std"]
        if not self.runs:
            return pd.DataFrame(columns=cols)
        df = pd.DataFrame(self.runs).assign(width=lambda d: d["AP_high"] - d["AP_low"])
        g = df.groupby(["row", "videos"], sort=False)
        out = pd.DataFrame({"seeds": g.size(), "AP mean": g["AP"].mean(), "AP seed std": g["AP"].std(ddof=1),
                            "AP interval width": g["width"].mean()}).reset_index()
        out["width / seed std"] = out["AP interval width"] / out["AP seed std"]
        return out[cols]

    def differences(self):
        """:func:`visrc.experiments.tables.row_differences` of Table 1's pairs at every size (``videos``)."""
        import pandas as pd

        parts = [row_differences([r for r in self.runs if r["videos"] == n], self.comparisons).assign(videos=n)
                 for n in self.sizes]
        if not parts:
            return pd.DataFrame()
        out = pd.concat(parts, ignore_index=True)
        return out[["videos"] + [c for c in out.columns if c != "videos"]]

    def record(self) -> dict:
        """What notebook 03 records: the per-run rows, the sizes, the longer split and the skip note."""
        return {"runs": self.runs, "sizes": self.sizes, "eval_root": self.eval_root, "note": self.note,
                "same_as_table": all(r["same_as_table"] for r in self.runs if "same_as_table" in r)}


def valid_size_study(table, data_root=None, toy_preset: str = "default", n_valid_videos: int = 256,
                     sizes=VALID_SIZES, n_boot: int = 1000, toy_seed: int = 0) -> ValidSizeStudy:
    """Score every run of ``table`` (:class:`visrc.experiments.table1.Table1Result`) on the first ``n`` videos
    of a ``n_valid_videos``-video valid split of the toy benchmark, for ``n`` in ``sizes`` and
    ``n_valid_videos``, with Table 1's chosen association and merge IoU and ``n_boot`` bootstrap resamples.

    Skipped (empty runs, ``note`` saying why) with fewer than 2 seeds (no seed spread to compare with) or
    when ``data_root`` is given (the table ran on real data, which has no longer valid split to draw)."""
    import sys

    from tqdm import tqdm

    from visrc.data.toy import toy_root
    from visrc.evaluation.ytvis_eval import evaluate_ytvis
    from visrc.experiments.table1 import track_run   # looked up at call time: tests replace it

    seeds = sorted({r["seed"] for r in table.runs})
    if len(seeds) < 2 or data_root is not None:
        why = "fewer than 2 seeds: no seed spread" if len(seeds) < 2 else "not the toy benchmark"
        return ValidSizeStudy([], [], None, table.comparisons(), note=f"skipped ({why})")
    if n_valid_videos < table.valid_videos:
        raise ValueError(f"valid_size_study: n_valid_videos={n_valid_videos} is shorter than the table's valid "
                         f"split ({table.valid_videos} videos); the longer split must contain it")
    # the table's own size too: there every run must score what its Table 1 row does
    sizes = sorted({int(n) for n in (*sizes, table.valid_videos) if 0 < n < n_valid_videos} | {int(n_valid_videos)})
    root = toy_root(toy_preset, toy_seed, n_valid_videos=n_valid_videos)
    reported = {(r["row"], r["seed"]): r["AP"] for r in table.runs}
    tracked_rows = {r["row"] for r in table.runs}
    runs = []
    for key, checkpoint in tqdm(table.checkpoints.items(), desc=f"valid-size study ({n_valid_videos} videos)",
                                unit="run", file=sys.stderr):
        row, seed = key.rsplit("/seed", 1)
        modes = ("forward", "bitrack") if row + BITRACK_SUFFIX in tracked_rows else ("forward",)
        gt, tracked = track_run(table.configs[row], checkpoint, root, table.tracker, table.merge_iou_thr, modes,
                                split="valid", foreign_root=True)
        for mode, results in tracked.items():
            name = row + (BITRACK_SUFFIX if mode == "bitrack" else "")
            for n in sizes:
                gt_n, res_n = first_videos(gt, results, n)
                line = {"row": name, "seed": int(seed), "videos": n,
                        **metrics_row(evaluate_ytvis(gt_n, res_n).as_dict()["metrics"]),
                        **row_interval(gt_n, res_n, n_boot)}
                if n == table.valid_videos:
                    line["same_as_table"] = line["AP"] == reported[(name, int(seed))]
                runs.append(line)
    order = list(dict.fromkeys(r["row"] for r in table.runs))
    runs.sort(key=lambda r: (order.index(r["row"]), r["videos"], r["seed"]))
    return ValidSizeStudy(runs, sizes, str(root), table.comparisons())
