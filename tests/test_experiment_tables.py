"""The experiment modules' small decisions, without training: the Table 1 association choice and MSD
epoch length, re-tracking saved predictions under other thresholds, the summary tables, and the
video that illustrates BiTrack (Fig. 4)."""
from __future__ import annotations

import json

from types import SimpleNamespace

import numpy as np
import pytest

from visrc.experiments.bitrack_study import choose_fig4_video, explorer_predictions, fig4_ranking
from visrc.experiments.table1 import (EQUAL_COMPUTE_SUFFIX, TABLE1_ROWS, TRACKER_GRID, choose_association,
                                      msd_epoch_options, table1_comparisons)
from visrc.experiments.tables import PAPER_TABLE1, TABLE_METRICS, metrics_row, row_differences, summary_table


def _sens(row, point, seed, ap):
    return {"row": row, "seed": seed, "init_score_thr": point[0], "obj_score_thr": point[1], "AP": ap}


def test_choose_association_takes_the_best_mean_over_seeds_of_the_row():
    sens = [_sens("baseline", (0.5, 0.3), 0, 0.30), _sens("baseline", (0.5, 0.3), 1, 0.10),   # mean 0.20
            _sens("baseline", (0.3, 0.2), 0, 0.25), _sens("baseline", (0.3, 0.2), 1, 0.21),   # mean 0.23
            _sens("+TCIS", (0.5, 0.3), 0, 0.90)]                                              # another row
    assert choose_association(sens, "baseline") == dict(init_score_thr=0.3, obj_score_thr=0.2)
    assert choose_association(sens, "+TCIS") == dict(init_score_thr=0.5, obj_score_thr=0.3)


def test_choose_association_ties_go_to_the_earlier_grid_point():
    sens = [_sens("baseline", p, 0, 0.2) for p in TRACKER_GRID]
    assert choose_association(sens, "baseline") == dict(init_score_thr=TRACKER_GRID[0][0],
                                                        obj_score_thr=TRACKER_GRID[0][1])
    sens = [_sens("baseline", p, 0, ap) for p, ap in zip(TRACKER_GRID, (0.1, 0.3, 0.3, 0.2))]
    assert choose_association(sens, "baseline") == dict(init_score_thr=TRACKER_GRID[1][0],
                                                        obj_score_thr=TRACKER_GRID[1][1])


def test_choose_association_without_runs_of_the_row_raises():
    with pytest.raises(ValueError, match="no runs of row 'baseline'"):
        choose_association([_sens("+TCIS", (0.5, 0.3), 0, 0.2)], "baseline")
    with pytest.raises(ValueError, match="no runs"):
        choose_association([], "baseline")


def test_msd_epoch_options_only_for_the_msd_config():
    assert [config for _, config in TABLE1_ROWS][-1] == "toy_tcis_multitask_msd"
    assert msd_epoch_options("toy_tcis_multitask_msd", 36) == {"train_dataloader.sampler.length": 36,
                                                               "train_dataloader.sampler.anchor_source": None}
    assert msd_epoch_options("toy_tcis_multitask_msd", None) is None
    for config in ("toy_baseline", "toy_tcis", "toy_tcis_multitask"):
        assert msd_epoch_options(config, 36) is None


def test_msd_epoch_options_set_the_sampler_length(toy_small):
    from visrc.models.train_cli import prepare_config

    opts = msd_epoch_options("toy_tcis_multitask_msd", 36)
    cfg = prepare_config("toy_tcis_multitask_msd", data_root=str(toy_small), cfg_options=opts)
    assert cfg.train_dataloader.sampler.type == "MixedSourceSampler" and cfg.train_dataloader.sampler.length == 36


def test_msd_union_and_equal_compute_lengths_match_the_built_samplers(toy_small):
    """The config's union epoch (anchor_source) has the length msd_union_length computes; the
    equal-compute options give the baseline's TrackImgSampler epoch."""
    from mmdet.registry import DATA_SAMPLERS, DATASETS

    from visrc.experiments.table1 import equal_compute_length, msd_union_length, video_train_frames
    from visrc.models.train_cli import prepare_config

    def sampler(cfg):
        ds = DATASETS.build(cfg.train_dataloader.dataset)
        return DATA_SAMPLERS.build(dict(cfg.train_dataloader.sampler, dataset=ds))

    msd = prepare_config("toy_tcis_multitask_msd", data_root=str(toy_small))
    frames = video_train_frames("toy_tcis_multitask_msd", toy_small)
    assert len(sampler(msd)) == msd_union_length("toy_tcis_multitask_msd", toy_small) == 2 * frames
    equal = prepare_config("toy_tcis_multitask_msd", data_root=str(toy_small), cfg_options=msd_epoch_options(
        "toy_tcis_multitask_msd", equal_compute_length("toy_tcis_multitask_msd", toy_small)))
    base = prepare_config("toy_baseline", data_root=str(toy_small))
    assert len(sampler(equal)) == frames == len(sampler(base))


def test_evaluate_tracking_retracks_saved_predictions_with_the_given_thresholds(toy_small, tmp_path, monkeypatch):
    """The predictions of a run are tracked again under each setting; no model runs."""
    from visrc.data.predictions import predictions_from_gt, save_predictions
    from visrc.data.ytvis import load_ytvis
    from visrc.experiments import table1

    gt = load_ytvis(toy_small / "valid" / "instances.json")
    assert [c["name"] for c in gt["categories"]] == ["fish", "shark", "turtle", "bird", "car", "truck"]
    path = save_predictions(predictions_from_gt(gt, dim=16, seed=0, min_score=0.3), tmp_path / "p.npz")
    calls = []

    def fake_predict_cached(config, checkpoint, data_root, *a, **k):
        calls.append((config, checkpoint, data_root))
        return {"predictions": str(path)}

    monkeypatch.setattr(table1, "predict_cached", fake_predict_cached)
    both = table1.evaluate_tracking("toy_baseline", "ckpt.pth", toy_small, tracker=dict(init_score_thr=0.2),
                                    modes=("forward", "bitrack"))
    assert calls == [("toy_baseline", "ckpt.pth", toy_small)]
    assert list(both) == ["forward", "bitrack"] and all(set(m) == set(TABLE_METRICS) for m in both.values())
    assert 0 < both["forward"]["AP"] <= both["bitrack"]["AP"] <= 1
    strict = table1.evaluate_tracking("toy_baseline", "ckpt.pth", toy_small, tracker=dict(init_score_thr=0.99))
    assert list(strict) == ["forward"] and strict["forward"]["AP"] < both["forward"]["AP"]


def test_metrics_row_and_summary_table():
    m = {"AP": 0.5, "AP50": 0.7, "AP75": 0.4, "AR1": 0.3, "AR10": 0.6, "APs": 0.1}
    assert metrics_row(m) == {k: m[k] for k in TABLE_METRICS}
    with pytest.raises(KeyError):
        metrics_row({"AP": 0.5})
    runs = [{"row": "+TCIS", "seed": 0, **m}, {"row": "baseline", "seed": 0, **m},
            {"row": "baseline", "seed": 1, **dict(m, AP=0.3)}]
    table = summary_table(runs)
    assert list(table.index) == ["+TCIS", "baseline"]                       # first-seen order
    assert table.loc["baseline", "seeds"] == 2 and table.loc["baseline", "AP mean"] == pytest.approx(0.4)
    assert table.loc["baseline", "AP std"] == pytest.approx(np.std([0.5, 0.3], ddof=1))
    assert "paper AP" not in table.columns and "members" not in table.columns
    ens = [{"row": "Ensemble", "seed": 0, "members": "A, B", **m}, {"row": "Ensemble", "seed": 1, "members": "A", **m},
           {"row": "Ensemble", "seed": 2, "members": "A, B", **m}, {"row": "A", "seed": 0, **m}]
    chosen = summary_table(ens)["members"]
    assert chosen["Ensemble"] == "A, B | A" and chosen["A"] == ""             # each distinct choice once
    with_paper = summary_table(runs, PAPER_TABLE1)
    assert with_paper.loc["baseline", "paper AP"] == PAPER_TABLE1["baseline"]["AP"]
    assert with_paper.loc["+TCIS", "paper AP50"] == PAPER_TABLE1["+TCIS"]["AP50"]


def _result(n_forward, n_backward, n_pairs):
    return SimpleNamespace(forward=np.zeros((n_forward, 4)), backward=np.zeros((n_backward, 4)),
                           pairs=np.zeros((n_pairs, 2)), tracks=[])


def test_table1_comparisons_follow_the_papers_reading():
    rows = [r for r, _ in TABLE1_ROWS]
    msd = rows[-1]
    present = rows + [msd + "+BiTrack", msd + EQUAL_COMPUTE_SUFFIX]
    pairs = table1_comparisons(present)
    assert pairs[:4] == [(rows[1], rows[0]), (rows[2], rows[1]), (msd, rows[2]), (msd + "+BiTrack", msd)]
    assert (msd + EQUAL_COMPUTE_SUFFIX, rows[2]) in pairs and (msd + EQUAL_COMPUTE_SUFFIX, msd) in pairs
    assert pairs[-1] == (msd + "+BiTrack", rows[0])
    assert table1_comparisons(rows[:2]) == [(rows[1], rows[0])]


def _run(row, seed, ap, low=None, high=None):
    out = {"row": row, "seed": seed, "AP": ap}
    if low is not None:
        out.update(AP_low=low, AP_high=high)
    return out


def test_row_differences_against_the_seed_spread():
    runs = ([_run("a", s, ap, ap - 0.1, ap + 0.1) for s, ap in enumerate((0.30, 0.32, 0.34))]      # mean 0.32, std 0.02
            + [_run("b", s, ap, ap - 0.1, ap + 0.1) for s, ap in enumerate((0.40, 0.41, 0.42))]    # mean 0.41, std 0.01
            + [_run("c", s, ap, ap - 0.01, ap + 0.01) for s, ap in enumerate((0.33, 0.35, 0.37))])  # mean 0.35, std 0.02
    d = row_differences(runs, [("b", "a"), ("c", "a"), ("b", "missing")], {"a": {"AP": 0.3}, "b": {"AP": 0.35}})
    assert list(d["row"]) == ["b", "c"]                      # the pair naming a missing row is skipped
    se_ba = np.sqrt(0.02 ** 2 / 3 + 0.01 ** 2 / 3)
    assert d.loc[0, "AP diff"] == pytest.approx(0.09) and d.loc[0, "seed se"] == pytest.approx(se_ba)
    assert d.loc[0, "beyond 2 se"] == "yes"                  # 0.09 > 2 * 0.0129
    assert d.loc[1, "beyond 2 se"] == "no"                   # 0.03 < 2 * 0.0163
    assert d.loc[0, "intervals overlap"] == "yes"            # [0.22, 0.42] and [0.31, 0.51]
    assert d.loc[1, "intervals overlap"] == "yes"
    assert d.loc[0, "paper AP diff"] == pytest.approx(0.05) and np.isnan(d.loc[1, "paper AP diff"])
    apart = row_differences([_run("a", 0, 0.2, 0.15, 0.25), _run("b", 0, 0.5, 0.45, 0.55)], [("b", "a")])
    assert apart.loc[0, "beyond 2 se"] == "one seed" and np.isnan(apart.loc[0, "seed se"])
    assert apart.loc[0, "intervals overlap"] == "no"


def test_choose_fig4_video_prefers_one_direction_tracklets_then_merges():
    results = {1: _result(3, 3, 3), 2: _result(2, 4, 1), 3: _result(5, 3, 2), 4: _result(1, 1, 9)}
    assert choose_fig4_video(results) == 3                 # |5 - 3| = |2 - 4| = 2: more merges wins
    assert choose_fig4_video({1: _result(3, 3, 3), 4: _result(1, 1, 9)}) == 4
    assert choose_fig4_video({7: _result(0, 0, 0)}) == 7


def test_choose_fig4_video_prefers_frames_only_the_backward_pass_followed():
    from visrc.tracking import FramePredictions, VideoPredictions, merge_tracklets

    frame = FramePredictions([[0, 0, 10, 10], [50, 50, 60, 60]], [0.9, 0.9], [0, 0], np.eye(2))
    video = VideoPredictions(2, 100, 100, [frame] * 4)
    filled = merge_tracklets(video, [[-1, -1, 0, 0]], [[0, 0, 0, 0]])           # backward adds frames 0-1
    only_backward = merge_tracklets(video, [[0, 0, 0, 0]], [[0, 0, 0, 0], [1, 1, 1, -1]])  # B1: no forward holds it
    same = merge_tracklets(video, [[0, 0, 0, 0], [1, 1, 1, 1]], [[0, 0, 0, 0], [1, 1, 1, 1]])
    assert [fig4_ranking(r)[0] for r in (filled, only_backward, same)] == [2, 3, 0]
    assert choose_fig4_video({1: filled, 2: only_backward, 3: same, 4: _result(9, 1, 9)}) == 2
    assert choose_fig4_video({1: filled, 3: same, 4: _result(9, 1, 9)}) == 1


def test_choose_fig4_video_on_real_bitrack_results():
    from visrc.tracking import bitrack, synthetic_video

    videos = [synthetic_video(video_id=i, num_frames=5, num_objects=2 + i, dim=8, height=40, width=60, seed=i)
              for i in range(3)]
    results = {v.video_id: bitrack(v) for v in videos}
    chosen = choose_fig4_video(results)
    key = {vid: fig4_ranking(r) for vid, r in results.items()}
    assert chosen in results and key[chosen] == max(key.values())


def test_explorer_predictions_from_noisy_ground_truth(toy_small):
    videos, names = explorer_predictions("gt_noisy", toy_small, label_flip=0.0, box_jitter=0.0, miss_rate=0.0,
                                         duplicate_rate=0.0)
    assert names == ["fish", "shark", "turtle", "bird", "car", "truck"]
    from visrc.data.ytvis import load_ytvis

    gt = load_ytvis(toy_small / "valid" / "instances.json")
    assert [v.video_id for v in videos] == [v["id"] for v in gt["videos"]]
    visible = sum(s is not None for a in gt["annotations"] for s in a["segmentations"])
    assert sum(len(f) for v in videos for f in v.frames) == visible
    with pytest.raises(ValueError, match="source must be one of"):
        explorer_predictions("oracle", toy_small)


def test_auto_source_opens_on_cached_predictions_else_noisy_ground_truth(toy_small, tmp_path, monkeypatch):
    from visrc.experiments.bitrack_study import resolve_source
    from visrc.experiments.runs import run_dir

    monkeypatch.setenv("VISRC_RUNS_DIR", str(tmp_path))
    source, reason = resolve_source("auto", toy_small)        # not even the pretraining is there
    assert source == "gt_noisy" and "no cached predictions of toy_baseline" in reason
    pre = run_dir("toy_pretrain_coco", toy_small, 0, None)    # the init of notebook 03's baseline
    pre.mkdir(parents=True)
    (pre / "epoch_12.pth").write_bytes(b"weights")
    (pre / "final_checkpoint.json").write_text(json.dumps({"checkpoint": str(pre / "epoch_12.pth")}))
    assert resolve_source("auto", toy_small)[0] == "gt_noisy"
    work = run_dir("toy_baseline", toy_small, 0, None, init=pre / "epoch_12.pth")
    (work / "predict_forward").mkdir(parents=True)
    (work / "final_checkpoint.json").write_text("{}")
    assert resolve_source("auto", toy_small)[0] == "gt_noisy"       # trained, not yet predicted
    (work / "predict_forward" / "summary.json").write_text("{}")
    source, reason = resolve_source("auto", toy_small)
    assert source == "model" and str(work) in reason
    assert resolve_source("auto", toy_small, seed=1)[0] == "gt_noisy"  # another run
    assert resolve_source("auto", toy_small, init=None)[0] == "gt_noisy"  # the random-init run: another run
    assert resolve_source("gt_noisy", toy_small)[0] == "gt_noisy"
    with pytest.raises(ValueError, match="source must be one of"):
        resolve_source("oracle", toy_small)


def test_main_job_runs_the_explorer_on_the_trained_model():
    from visrc.reproduce import MAIN_PARAMETERS, QUICK_PARAMETERS

    assert MAIN_PARAMETERS["06_bitrack_explorer"]["source"] == "model"
    assert QUICK_PARAMETERS["06_bitrack_explorer"]["source"] == "gt_noisy"


def test_frame_sampling_rows_and_comparisons_per_schedule():
    from visrc.experiments.frame_sampling import frame_sampling_comparisons, frame_sampling_rows

    runs = [{"schedule": s, "frames": f, "seed": seed, **{m: 0.1 for m in TABLE_METRICS}}
            for s in ("equal_iterations", "equal_epochs") for f in (1, 5, "all") for seed in (0, 1)]
    rows = frame_sampling_rows(runs)
    assert rows[0]["row"] == "1 frames, equal iterations" and rows[-1]["row"] == "all frames, equal epochs"
    assert frame_sampling_comparisons(rows) == [
        ("1 frames, equal iterations", "all frames, equal iterations"),
        ("5 frames, equal iterations", "all frames, equal iterations"),
        ("1 frames, equal epochs", "all frames, equal epochs"), ("5 frames, equal epochs", "all frames, equal epochs")]
    one = frame_sampling_rows([r for r in runs if r["schedule"] == "equal_epochs"])
    assert {r["row"] for r in one} == {"1 frames", "5 frames", "all frames"}
    assert frame_sampling_comparisons([r for r in one if r["frames"] != "all"]) == []
    assert len(summary_table(one)) == 3


def test_table2_comparisons_name_the_rows_of_the_table_and_of_the_paper():
    from visrc.experiments.pseudo_labels import table2_comparisons
    from visrc.experiments.tables import PAPER_TABLE2

    pairs = table2_comparisons(["A", "B"])
    assert pairs == [("B", "A"), ("Ensemble (A, B)", "A"), ("A + pseudo", "A"), ("B + pseudo", "B"),
                     ("Ensemble (A, B, A+P, B+P)", "Ensemble (A, B)")]
    assert {r for pair in pairs for r in pair} == set(PAPER_TABLE2)
    runs = [{"row": r, "seed": s, "AP": 0.1 * i + 0.01 * s} for i, r in enumerate(PAPER_TABLE2) for s in (0, 1, 2)]
    diffs = row_differences(runs, pairs, PAPER_TABLE2)
    assert list(diffs["row"]) == [r for r, _ in pairs] and diffs["paper AP diff"].notna().all()
