"""How many test videos the toy tables need: trained runs scored on the first ``n`` videos of a longer
``valid`` split, so each row's 95% bootstrap interval over videos stands beside its seed spread.

::

    t1 = run_table1(root, seeds=[0, 1, 2])
    study = valid_size_study(t1, n_valid_videos=256)      # Table 1, on the default toy benchmark
    study.summary()          # per row and size: seed mean and std of AP, bootstrap interval width
    study.differences()      # the table's readings at each size
    frame_sampling_valid_size(run_frame_sampling(...))   # Fig. 2b
    ensemble_valid_size(ensemble_table(...))             # Table 2 rows 1-3

The longer split is its own toy root (:func:`visrc.data.toy.toy_root` with ``n_valid_videos``): every toy
video has its own random stream, so its train and tune splits and its first videos are the default
root's bytes. The runs are the table's cached trainings, tracked as the table tracks them (Table 1: the
association and merge IoU it chose on ``tune``; Fig. 2b: the config's own tracker; Table 2: BiTrack, and
the ensemble members GAE selected on ``tune``); only inference on the longer split is new. The first
``len(table valid)`` videos are the table's own valid split, so each run's AP there must equal its table
row (``same_as_table``).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from visrc.experiments.table1 import BITRACK_SUFFIX
from visrc.experiments.tables import metrics_row, row_differences, row_interval

# numbers of leading valid videos each run is scored on (the longer split's own length is added)
VALID_SIZES = (16, 32, 64, 128)
# the longer split, named as such, so every study shares each checkpoint's predictions of it
LONGER_SPLIT = "valid"


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
        """What notebooks 02-04 record: the per-run rows, the sizes, the longer split and the skip note."""
        return {"runs": self.runs, "sizes": self.sizes, "eval_root": self.eval_root, "note": self.note,
                "same_as_table": all(r["same_as_table"] for r in self.runs if "same_as_table" in r)}


def _prefix_lines(gt: dict, results: list[dict], sizes, n_boot: int, table_videos: int, reported: float,
                  **labels) -> list[dict]:
    """One line per size ``n``: ``labels``, the metrics and AP interval of ``results`` on the first ``n``
    videos, and at the table's own size whether AP equals the ``reported`` table row."""
    from visrc.evaluation.ytvis_eval import evaluate_ytvis

    lines = []
    for n in sizes:
        gt_n, res_n = first_videos(gt, results, n)
        line = {**labels, "videos": n, **metrics_row(evaluate_ytvis(gt_n, res_n).as_dict()["metrics"]),
                **row_interval(gt_n, res_n, n_boot)}
        if n == table_videos:
            line["same_as_table"] = line["AP"] == reported
        lines.append(line)
    return lines


def _skip_note(seeds, data_root) -> str:
    """Why a study is skipped ("" when it runs): no seed spread, or not the toy benchmark."""
    if len(set(seeds)) < 2:
        return "skipped (fewer than 2 seeds: no seed spread)"
    return "skipped (not the toy benchmark)" if data_root is not None else ""


def _longer_root(table_videos: int, n_valid_videos: int, sizes, toy_preset: str, toy_seed: int, study: str):
    """The longer split's toy root and the sizes to score (the table's own size and the split's added)."""
    from visrc.data.toy import toy_root   # looked up at call time: tests replace it

    if n_valid_videos < table_videos:
        raise ValueError(f"{study}: n_valid_videos={n_valid_videos} is shorter than the table's valid "
                         f"split ({table_videos} videos); the longer split must contain it")
    sizes = sorted({int(n) for n in (*sizes, table_videos) if 0 < n < n_valid_videos} | {int(n_valid_videos)})
    return toy_root(toy_preset, toy_seed, n_valid_videos=n_valid_videos), sizes


def _sorted_study(runs: list[dict], order: list[str], sizes, root, comparisons) -> ValidSizeStudy:
    runs.sort(key=lambda r: (order.index(r["row"]), r["videos"], r["seed"]))
    return ValidSizeStudy(runs, sizes, str(root), comparisons)


def _predict_all(jobs: list[dict], what: str, n_valid_videos: int) -> None:
    """Predict every run the study scores, side by side (:func:`visrc.experiments.runs.predict_many`),
    before the study scores them one by one from the cache."""
    from visrc.experiments.runs import predict_many   # looked up at call time: tests replace it

    predict_many([dict(job, data_root=str(job["data_root"]), split=LONGER_SPLIT, foreign_root=True) for job in jobs],
                 desc=f"{what}: predicting {n_valid_videos} valid videos")


def _progress(items, what: str, n_valid_videos: int):
    import sys

    from tqdm import tqdm

    return tqdm(items, desc=f"{what} on {n_valid_videos} valid videos", unit="run", file=sys.stderr)


def valid_size_study(table, data_root=None, toy_preset: str = "default", n_valid_videos: int = 256,
                     sizes=VALID_SIZES, n_boot: int = 1000, toy_seed: int = 0) -> ValidSizeStudy:
    """Score every run of ``table`` (:class:`visrc.experiments.table1.Table1Result`) on the first ``n`` videos
    of a ``n_valid_videos``-video valid split of the toy benchmark, for ``n`` in ``sizes`` and
    ``n_valid_videos``, with Table 1's chosen association and merge IoU and ``n_boot`` bootstrap resamples.

    Skipped (empty runs, ``note`` saying why) with fewer than 2 seeds (no seed spread to compare with) or
    when ``data_root`` is given (the table ran on real data, which has no longer valid split to draw)."""
    from visrc.experiments.table1 import track_run   # looked up at call time: tests replace it

    note = _skip_note([r["seed"] for r in table.runs], data_root)
    if note:
        return ValidSizeStudy([], [], None, table.comparisons(), note=note)
    root, sizes = _longer_root(table.valid_videos, n_valid_videos, sizes, toy_preset, toy_seed, "valid_size_study")
    reported = {(r["row"], r["seed"]): r["AP"] for r in table.runs}
    tracked_rows = {r["row"] for r in table.runs}
    _predict_all([dict(config=table.configs[key.rsplit("/seed", 1)[0]], checkpoint=str(checkpoint), data_root=root)
                  for key, checkpoint in table.checkpoints.items()], "Table 1", n_valid_videos)
    runs = []
    for key, checkpoint in _progress(table.checkpoints.items(), "Table 1", n_valid_videos):
        row, seed = key.rsplit("/seed", 1)
        modes = ("forward", "bitrack") if row + BITRACK_SUFFIX in tracked_rows else ("forward",)
        gt, tracked = track_run(table.configs[row], checkpoint, root, table.tracker, table.merge_iou_thr, modes,
                                split=LONGER_SPLIT, foreign_root=True)
        for mode, results in tracked.items():
            name = row + (BITRACK_SUFFIX if mode == "bitrack" else "")
            runs += _prefix_lines(gt, results, sizes, n_boot, table.valid_videos, reported[(name, int(seed))],
                                  row=name, seed=int(seed))
    order = list(dict.fromkeys(r["row"] for r in table.runs))
    return _sorted_study(runs, order, sizes, root, table.comparisons())


def frame_sampling_valid_size(result, data_root=None, toy_preset: str = "default", n_valid_videos: int = 256,
                              sizes=VALID_SIZES, n_boot: int = 1000, toy_seed: int = 0) -> ValidSizeStudy:
    """Fig. 2b's runs (:class:`visrc.experiments.frame_sampling.FrameSamplingResult`) scored like
    :func:`valid_size_study`, each tracked with the config's own tracker as in Fig. 2b; rows are
    :func:`~visrc.experiments.frame_sampling.frame_sampling_rows`'s, compared with the all-frames run."""
    from visrc.experiments.frame_sampling import frame_sampling_comparisons, frame_sampling_rows
    from visrc.experiments.table1 import track_run   # looked up at call time: tests replace it
    from visrc.pipeline import load_split

    rows = frame_sampling_rows(result.runs)
    comparisons = frame_sampling_comparisons(rows)
    note = _skip_note([r["seed"] for r in rows], data_root)
    if note:
        return ValidSizeStudy([], [], None, comparisons, note=note)
    root, sizes = _longer_root(result.valid_videos, n_valid_videos, sizes, toy_preset, toy_seed,
                               "frame_sampling_valid_size")
    gt = load_split(result.config, root, LONGER_SPLIT).gt
    checkpoints = [result.checkpoints[(r["schedule"], r["frames"], r["seed"])] for r in rows]
    _predict_all([dict(config=result.config, checkpoint=str(c), data_root=root) for c in checkpoints],
                 "Fig. 2b", n_valid_videos)
    runs = []
    for r, checkpoint in zip(_progress(rows, "Fig. 2b", n_valid_videos), checkpoints):
        _, tracked = track_run(result.config, checkpoint, root, split=LONGER_SPLIT, foreign_root=True)
        runs += _prefix_lines(gt, tracked["forward"], sizes, n_boot, result.valid_videos, r["AP"],
                              row=r["row"], seed=r["seed"])
    return _sorted_study(runs, list(dict.fromkeys(r["row"] for r in rows)), sizes, root, comparisons)


def ensemble_valid_size(table, data_root=None, toy_preset: str = "default", n_valid_videos: int = 256,
                        sizes=VALID_SIZES, n_boot: int = 1000, toy_seed: int = 0) -> ValidSizeStudy:
    """Table 2's rows 1-3 (:class:`visrc.experiments.table2.EnsembleTable`: each model alone, and the
    ensemble of the members it selected on ``tune``, tracked with its ``mode``) scored like
    :func:`valid_size_study`."""
    from visrc.experiments.pseudo_labels import table2_comparisons
    from visrc.experiments.table2 import ensemble_models
    from visrc.fileio import read_json
    from visrc.pipeline import load_split

    comparisons = table2_comparisons(table.names)
    note = _skip_note(table.seeds, data_root)
    if note:
        return ValidSizeStudy([], [], None, comparisons, note=note)
    first = table.members[(table.names[0], table.seeds[0])][0]
    table_videos = len(load_split(first, table.data_root).gt["videos"])
    root, sizes = _longer_root(table_videos, n_valid_videos, sizes, toy_preset, toy_seed, "ensemble_valid_size")
    gt = load_split(first, root, LONGER_SPLIT).gt
    reported = {(r["row"], r["seed"]): r["AP"] for r in table.runs}
    ensemble = f"Ensemble ({', '.join(table.names)})"
    jobs = [(name, seed, [table.members[(name, seed)]], dict(refine=False)) for seed in table.seeds
            for name in table.names]
    jobs += [(ensemble, seed, [table.members[(n, seed)] for n in table.selected[seed][0]],
              dict(scales=table.scales, refine=table.refine)) for seed in table.seeds]
    _predict_all([dict(config=c, checkpoint=str(k), data_root=root, scale=float(s))
                  for _, _, members, settings in jobs for c, k in members for s in settings.get("scales", (1.0,))],
                 "Table 2", n_valid_videos)
    runs = []
    for row, seed, members, settings in _progress(jobs, "Table 2", n_valid_videos):
        ens = ensemble_models(members, root, iou_thr=table.iou_thr, mode=table.mode, split=LONGER_SPLIT,
                              foreign_root=True, **settings)
        runs += _prefix_lines(gt, read_json(ens.out_dir / "results.json"), sizes, n_boot, table_videos,
                              reported[(row, seed)], row=row, seed=seed)
    return _sorted_study(runs, [*table.names, ensemble], sizes, root, comparisons)


def compare_studies(reference: ValidSizeStudy, other: ValidSizeStudy, videos: int | None = None, z: float = 2.0):
    """Two studies of the same table (e.g. two training schedules) at ``videos`` (default: the longest
    size both scored) -> ``(rows, readings, same)``: per row, each study's AP mean and seed std and the
    difference ``other - reference`` with its seed se; per ``(row, reference row)`` pair of
    ``reference.comparisons``, each study's difference and verdict (beyond ``z`` se or not); ``same``:
    every row within ``z`` se of the reference and every verdict unchanged."""
    import pandas as pd

    if videos is None:
        common = set(reference.sizes) & set(other.sizes)
        if not common:
            raise ValueError("compare_studies: the studies share no number of videos (was one skipped?)")
        videos = max(common)
    if videos not in reference.sizes or videos not in other.sizes:
        raise ValueError(f"compare_studies: videos={videos} is not a size of both studies "
                         f"({reference.sizes} and {other.sizes})")
    at = [[r for r in s.runs if r["videos"] == videos] for s in (reference, other)]
    verdict = f"beyond {z:g} se"
    # each row of the other study read against the same row of the reference, like any table reading
    summaries = [ValidSizeStudy(runs, [videos], None).summary().set_index("row") for runs in at]
    names = list(summaries[0].index.intersection(summaries[1].index, sort=False))
    tagged = at[0] + [dict(r, row=r["row"] + " (other)") for r in at[1]]
    own = row_differences(tagged, [(row + " (other)", row) for row in names], z=z)
    rows = pd.DataFrame({"row": names,
                         **{f"AP {stat} ({who})": summary.loc[names, f"AP {col}"].values
                            for who, summary in zip(("reference", "other"), summaries)
                            for stat, col in (("mean", "mean"), ("std", "seed std"))},
                         **{col: own[col].values for col in ("AP diff", "seed se", verdict)}})
    diffs = [row_differences(runs, reference.comparisons, z=z) for runs in at]
    readings = diffs[0][["row", "vs", "AP diff", "seed se", verdict]].merge(
        diffs[1][["row", "vs", "AP diff", "seed se", verdict]], on=["row", "vs"], suffixes=(" (reference)", " (other)"))
    readings["same verdict"] = (readings[f"{verdict} (reference)"] == readings[f"{verdict} (other)"]).map(
        {True: "yes", False: "no"})
    same = bool((rows[verdict] == "no").all() and (readings["same verdict"] == "yes").all())
    return rows, readings, same
