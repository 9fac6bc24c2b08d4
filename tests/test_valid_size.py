"""The valid-size study: a longer toy valid split that nests the default one, and Table 1's runs scored
on its first n videos (no model runs here: predictions come from the GT)."""
import json

import pytest

from visrc.data.toy import ToyConfig, make_toy, toy_root
from visrc.data.ytvis import load_ytvis
from visrc.experiments.table1 import Table1Result
from visrc.experiments.valid_size import ValidSizeStudy, first_videos, valid_size_study


def _record_predict_many(monkeypatch) -> list:
    """Replace the side-by-side predictions (no model runs here) by a record of the jobs asked for."""
    asked = []
    monkeypatch.setattr("visrc.experiments.runs.predict_many", lambda jobs, desc: asked.extend(jobs))
    return asked


def test_longer_valid_split_nests_the_preset(tmp_path, toy_small, monkeypatch):
    """Every video has its own stream: a longer valid split starts with the preset's videos, byte for
    byte, and leaves train and tune alone; it lives in its own root."""
    monkeypatch.setenv("VISRC_RUNS_DIR", str(tmp_path / "runs"))
    n = ToyConfig.preset("small").n_valid_videos
    monkeypatch.setattr("visrc.data.toy.make_toy",
                        lambda r, preset, seed, **kw: make_toy(r, preset=preset, seed=seed, progress=False, **kw))
    wide = toy_root("small", n_valid_videos=n + 2)
    assert wide.name == f"toy_small_seed0_valid{n + 2}"
    small, longer = (load_ytvis(r / "valid" / "instances.json") for r in (toy_small, wide))
    assert len(longer["videos"]) == n + 2 and longer["videos"][:n] == small["videos"]
    first = {v["id"] for v in small["videos"]}
    assert [a for a in longer["annotations"] if a["video_id"] in first] == small["annotations"]
    for rel in ("train/instances.json", "tune/instances.json", "valid/JPEGImages/valid_0002/00005.jpg",
                "train/JPEGImages/train_0005/00003.jpg"):
        assert (wide / rel).read_bytes() == (toy_small / rel).read_bytes(), rel
    assert json.loads((wide / "toy_config.json").read_text())["n_valid_videos"] == n + 2


def test_first_videos_keeps_the_leading_videos_and_their_results(toy_small):
    gt = load_ytvis(toy_small / "valid" / "instances.json")
    results = [{"video_id": v["id"], "score": 0.5} for v in gt["videos"]]
    sub, res = first_videos(gt, results, 2)
    keep = {v["id"] for v in gt["videos"][:2]}
    assert [v["id"] for v in sub["videos"]] == [v["id"] for v in gt["videos"][:2]]
    assert {a["video_id"] for a in sub["annotations"]} <= keep and {r["video_id"] for r in res} == keep
    assert sub["categories"] == gt["categories"]
    for bad in (0, len(gt["videos"]) + 1):
        with pytest.raises(ValueError, match="1..3"):
            first_videos(gt, results, bad)


def _table(seeds, runs=None, checkpoints=None):
    return Table1Result(runs or [{"row": "baseline", "seed": s, "AP": 0.1} for s in seeds], [],
                        {"init_score_thr": 0.3}, 0.7, "tune", "pretrained", checkpoints or {},
                        {"baseline": "toy_baseline"}, 3)


def test_study_is_skipped_without_a_seed_spread_or_a_toy_benchmark():
    one = valid_size_study(_table([0]), toy_preset="small")
    assert one.runs == [] and "fewer than 2 seeds" in one.note and one.summary().empty
    real = valid_size_study(_table([0, 1]), data_root="/data/ytvis2021")
    assert real.runs == [] and "not the toy benchmark" in real.note
    with pytest.raises(ValueError, match="n_valid_videos=2 is shorter than the table's valid split"):
        valid_size_study(_table([0, 1]), toy_preset="small", n_valid_videos=2)


def test_study_scores_every_run_on_each_prefix_and_checks_the_table(toy_small, monkeypatch):
    """Perfect predictions from the GT: AP 1 at every size; the table's own size is checked against
    the table (one run says 1.0 there, the other a different number)."""
    gt = load_ytvis(toy_small / "valid" / "instances.json")
    perfect = [{"video_id": a["video_id"], "category_id": a["category_id"], "score": 0.9,
                "segmentations": a["segmentations"]} for a in gt["annotations"]]
    calls = []

    def fake_track_run(config, checkpoint, root, tracker, merge_iou_thr, modes, split, foreign_root):
        calls.append((config, checkpoint, root, tracker, merge_iou_thr, modes, split, foreign_root))
        return gt, {m: perfect for m in modes}

    monkeypatch.setattr("visrc.experiments.table1.track_run", fake_track_run)
    monkeypatch.setattr("visrc.data.toy.toy_root", lambda preset, seed, n_valid_videos: toy_small)
    asked = _record_predict_many(monkeypatch)
    runs = [{"row": "baseline", "seed": 0, "AP": 1.0}, {"row": "baseline", "seed": 1, "AP": 0.5}]
    table = _table([0, 1], runs, {"baseline/seed0": "a.pth", "baseline/seed1": "b.pth"})
    study = valid_size_study(table, toy_preset="small", n_valid_videos=3, sizes=(1, 2), n_boot=10)
    assert asked == [dict(config="toy_baseline", checkpoint=c, data_root=str(toy_small), split="valid",
                          foreign_root=True) for c in ("a.pth", "b.pth")]     # predicted side by side first
    assert study.sizes == [1, 2, 3] and len(study.runs) == 6
    assert calls[0] == ("toy_baseline", "a.pth", toy_small, {"init_score_thr": 0.3}, 0.7, ("forward",), "valid", True)
    assert all(r["AP"] == pytest.approx(1.0) for r in study.runs)
    checked = {r["seed"]: r["same_as_table"] for r in study.runs if r["videos"] == 3}
    assert checked == {0: True, 1: False} and study.record()["same_as_table"] is False
    summary = study.summary()
    assert list(summary["videos"]) == [1, 2, 3] and (summary["seeds"] == 2).all()
    assert (summary["AP seed std"] == 0).all() and (summary["AP interval width"] == 0).all()


def test_summary_and_differences_from_given_runs():
    runs = [{"row": r, "seed": s, "videos": n, "AP": ap, "AP_low": ap - w, "AP_high": ap + w}
            for r, base in (("baseline", 0.2), ("+TCIS", 0.3)) for n, w in ((16, 0.1), (64, 0.04))
            for s, ap in ((0, base), (1, base + 0.02), (2, base + 0.04))]
    study = ValidSizeStudy(runs, [16, 64], "root", [("+TCIS", "baseline")])
    summary = study.summary().set_index(["row", "videos"])
    assert summary.loc[("baseline", 16), "AP interval width"] == pytest.approx(0.2)
    assert summary.loc[("baseline", 64), "AP seed std"] == pytest.approx(0.02)
    assert summary.loc[("baseline", 64), "width / seed std"] == pytest.approx(0.08 / 0.02)
    diffs = study.differences()
    assert list(diffs["videos"]) == [16, 64] and diffs["AP diff"].tolist() == pytest.approx([0.1, 0.1])
    assert diffs["intervals overlap"].tolist() == ["yes", "no"]


def test_plot_interval_width_draws_rows_or_the_skip_note():
    from visrc.viz.plots import plot_interval_width_vs_videos

    runs = [{"row": "baseline", "seed": s, "videos": n, "AP": 0.2 + 0.01 * s, "AP_low": 0.1, "AP_high": 0.3}
            for n in (16, 64) for s in (0, 1)]
    fig = plot_interval_width_vs_videos(ValidSizeStudy(runs, [16, 64], "root").summary(), title="t")
    assert len(fig.axes[0].lines) == 2 and [t.get_text() for t in fig.axes[0].get_xticklabels()] == ["16", "64"]
    empty = plot_interval_width_vs_videos(ValidSizeStudy([], [], None).summary(), note="skipped (fewer than 2 seeds)")
    assert [t.get_text() for t in empty.axes[0].texts] == ["skipped (fewer than 2 seeds)"]


def _perfect_results(gt):
    return [{"video_id": a["video_id"], "category_id": a["category_id"], "score": 0.9,
             "segmentations": a["segmentations"]} for a in gt["annotations"]]


def test_frame_sampling_study_scores_each_setting_with_its_own_tracker(toy_small, tmp_path, monkeypatch):
    """Fig. 2b's runs: each checkpoint predicted once on the longer split (foreign root, the config's own
    tracker), scored on every prefix, checked against its point at the figure's size, read against all frames."""
    from visrc.experiments.frame_sampling import FrameSamplingResult
    from visrc.experiments.valid_size import frame_sampling_valid_size

    gt = load_ytvis(toy_small / "valid" / "instances.json")
    results = tmp_path / "results.json"
    results.write_text(json.dumps(_perfect_results(gt)))
    calls = []

    def fake_track_run(config, checkpoint, root, split=None, foreign_root=False):
        calls.append((config, checkpoint, root, split, foreign_root))
        return gt, {"forward": json.loads(results.read_text())}

    monkeypatch.setattr("visrc.experiments.table1.track_run", fake_track_run)
    monkeypatch.setattr("visrc.data.toy.toy_root", lambda preset, seed, n_valid_videos: toy_small)
    asked = _record_predict_many(monkeypatch)
    runs = [{"schedule": "equal_iterations", "frames": f, "seed": s, "AP": 1.0 if s == 0 else 0.5}
            for f in (1, "all") for s in (0, 1)]
    ckpts = {("equal_iterations", f, s): f"{f}-{s}.pth" for f in (1, "all") for s in (0, 1)}
    fs = FrameSamplingResult(runs, "toy_baseline", ckpts, valid_videos=2)
    study = frame_sampling_valid_size(fs, toy_preset="small", n_valid_videos=3, sizes=(1,), n_boot=10)
    assert study.sizes == [1, 2, 3] and len(study.runs) == 12 and len(calls) == 4
    assert calls[0] == ("toy_baseline", "1-0.pth", toy_small, "valid", True)
    assert [(j["checkpoint"], j["split"], j["foreign_root"]) for j in asked] == [(c[1], "valid", True) for c in calls]
    assert [r["row"] for r in study.runs[::3]] == ["1 frames"] * 2 + ["all frames"] * 2
    assert {(r["row"], r["seed"]): r["same_as_table"] for r in study.runs if r["videos"] == 2} == \
        {("1 frames", 0): True, ("1 frames", 1): False, ("all frames", 0): True, ("all frames", 1): False}
    assert study.comparisons == [("1 frames", "all frames")]
    assert study.differences()["AP diff"].tolist() == pytest.approx([0.0, 0.0, 0.0])
    assert frame_sampling_valid_size(FrameSamplingResult(runs[:1], "toy_baseline")).note.startswith("skipped")


def test_ensemble_study_rescores_each_model_and_the_members_chosen_on_tune(toy_small, tmp_path, monkeypatch):
    """Table 2 rows 1-3: each model alone without refinement, and per seed the ensemble of the members it
    selected, with the table's scales, refinement, box IoU and tracking, on the longer split."""
    from types import SimpleNamespace

    from visrc.experiments.table2 import EnsembleTable
    from visrc.experiments.valid_size import ensemble_valid_size

    gt = load_ytvis(toy_small / "valid" / "instances.json")
    (tmp_path / "results.json").write_text(json.dumps(_perfect_results(gt)))
    calls = []

    def fake_ensemble_models(members, root, iou_thr, mode, split, foreign_root, scales=(1.0,), refine=True):
        calls.append((members, root, iou_thr, mode, (split, foreign_root), list(scales), refine))
        return SimpleNamespace(out_dir=tmp_path)

    monkeypatch.setattr("visrc.experiments.table2.ensemble_models", fake_ensemble_models)
    monkeypatch.setattr("visrc.data.toy.toy_root", lambda preset, seed, n_valid_videos: toy_small)
    asked = _record_predict_many(monkeypatch)
    members = {(n, s): (c, f"{n}{s}.pth") for s in (0, 1)
               for n, c in (("A", "toy_tcis_multitask_msd"), ("B", "toy_swin_tcis_multitask_msd"))}
    runs = [{"row": r, "seed": s, "AP": 1.0} for s in (0, 1) for r in ("A", "B", "Ensemble (A, B)")]
    table = EnsembleTable(runs, members, {}, {0: (["A"], [0.3]), 1: (["B", "A"], [0.2, 0.3])}, ["A", "B"],
                          toy_small, [0, 1], [1.0], 0.55, True, "bitrack", "tune", "pretrained", None)
    study = ensemble_valid_size(table, toy_preset="small", n_valid_videos=3, sizes=(1, 2), n_boot=10)
    assert study.sizes == [1, 2, 3] and len(study.runs) == 18 and study.record()["same_as_table"] is True
    assert calls[0] == ([members[("A", 0)]], toy_small, 0.55, "bitrack", ("valid", True), [1.0], False)
    assert calls[-2:] == [([members[("A", 0)]], toy_small, 0.55, "bitrack", ("valid", True), [1.0], True),
                          ([members[("B", 1)], members[("A", 1)]], toy_small, 0.55, "bitrack", ("valid", True), [1.0], True)]
    assert list(dict.fromkeys(r["row"] for r in study.runs)) == ["A", "B", "Ensemble (A, B)"]
    # every member of every row at every scale predicted first (repeats are predicted once by predict_many)
    assert {(j["config"], j["checkpoint"], j["scale"]) for j in asked} == {(*m, 1.0) for m in members.values()}
    assert len(asked) == 7 and {(j["split"], j["foreign_root"]) for j in asked} == {("valid", True)}
    assert set(study.differences()["row"]) == {"B", "Ensemble (A, B)"}
    one = EnsembleTable(runs[:3], members, {}, {0: (["A"], [0.3])}, ["A", "B"], toy_small, [0], [1.0], 0.55,
                        True, "bitrack", "tune", "pretrained", None)
    assert ensemble_valid_size(one).note == "skipped (fewer than 2 seeds: no seed spread)"


def test_predictions_on_a_foreign_root_are_kept_apart_at_every_scale(tmp_path, monkeypatch):
    """A longer valid split's predictions go to folders named after its root, beside (not over) the run's own."""
    from visrc.experiments.table2 import predict_scales_cached

    monkeypatch.setenv("VISRC_RUNS_DIR", str(tmp_path / "runs"))
    outs = []

    def fake_predict(cfg, checkpoint, split, predictions_out, options, log):
        outs.append(predictions_out.parent.name)
        return [], split, {"predictions": str(predictions_out.parent / "predictions.npz")}

    monkeypatch.setattr("visrc.pipeline.predict", fake_predict)
    monkeypatch.setattr("visrc.pipeline.prepare_split", lambda split, classes: (split, {}))   # no frames there
    monkeypatch.setattr("visrc.data.predictions.load_predictions", lambda path: path)
    ckpt = tmp_path / "run" / "epoch_3.pth"
    wide = tmp_path / "toy_default_seed0_valid256"
    got = predict_scales_cached("toy_baseline", ckpt, wide, scales=(1.0, 0.75), foreign_root=True)
    assert outs == ["predict_forward@toy_default_seed0_valid256", "predict_forward_scale0p75@toy_default_seed0_valid256"]
    assert got == [str(ckpt.parent / o / "predictions.npz") for o in outs]
    predict_scales_cached("toy_baseline", ckpt, wide, scales=(1.0, 0.75))
    assert outs[2:] == ["predict_forward", "predict_forward_scale0p75"]


def _study_runs(shift=0.0):
    return [{"row": r, "seed": s, "videos": n, "AP": base + 0.01 * s + (shift if r == "+TCIS" else 0.0),
             "AP_low": 0.0, "AP_high": 1.0}
            for r, base in (("baseline", 0.2), ("+TCIS", 0.3)) for n in (16, 256) for s in (0, 1, 2)]


def test_compare_studies_says_whether_another_run_tells_the_same_story():
    from visrc.experiments.valid_size import compare_studies

    pairs = [("+TCIS", "baseline")]
    ref = ValidSizeStudy(_study_runs(), [16, 256], "root", pairs)
    rows, readings, same = compare_studies(ref, ValidSizeStudy(_study_runs(0.001), [16, 256], "root", pairs))
    assert same and list(rows["row"]) == ["baseline", "+TCIS"]
    assert rows.set_index("row").loc["+TCIS", "AP diff"] == pytest.approx(0.001)
    assert readings.loc[0, "AP diff (reference)"] == pytest.approx(0.1) and readings.loc[0, "same verdict"] == "yes"
    rows, readings, same = compare_studies(ref, ValidSizeStudy(_study_runs(-0.1), [16, 256], "root", pairs), videos=16)
    assert not same and rows.set_index("row").loc["+TCIS", "beyond 2 se"] == "yes"
    assert readings.loc[0, "beyond 2 se (other)"] == "no" and readings.loc[0, "same verdict"] == "no"
    with pytest.raises(ValueError, match="videos=64 is not a size of both studies"):
        compare_studies(ref, ref, videos=64)


def test_compare_table1_command_reads_two_metrics_files(tmp_path, capsys, monkeypatch):
    from visrc.cli import main

    monkeypatch.setenv("VISRC_FIGURES_DIR", str(tmp_path / "figures"))
    files = []
    for name, shift in (("ref", 0.0), ("other", 0.001)):
        record = {"runs": _study_runs(shift), "sizes": [16, 256], "eval_root": "root", "note": ""}
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps({"runs": [{"row": "baseline"}, {"row": "+TCIS"}], "valid_size": record}))
        files.append(str(path))
    assert main(["compare-table1", *files, "--name", "cmp"]) == 0
    out = capsys.readouterr().out
    assert "same story: yes" in out and "| +TCIS " in out
    assert (tmp_path / "figures" / "cmp_rows.md").is_file() and (tmp_path / "figures" / "cmp_readings.csv").is_file()
    skipped = tmp_path / "skipped.json"
    skipped.write_text(json.dumps({"runs": [], "valid_size": {"runs": [], "sizes": [], "note": "skipped (fewer than 2 seeds: no seed spread)"}}))
    assert main(["compare-table1", files[0], str(skipped)]) == 1
    assert "skipped.json: valid_size: the study did not run (skipped (fewer than 2 seeds" in capsys.readouterr().err
    other = tmp_path / "other_nb.json"
    other.write_text(json.dumps({"rows": []}))
    assert main(["compare-table1", str(other), files[0]]) == 1
    assert "other_nb.json: not notebook 03's metrics" in capsys.readouterr().err
