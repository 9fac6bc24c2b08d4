"""visrc.evaluation.bootstrap: each resample's value is evaluate_ytvis on the duplicated videos."""
from __future__ import annotations

import numpy as np
import pytest
from test_evaluation import crowded_case, random_case

from visrc.evaluation.bootstrap import (
    bootstrap_ap, paired_bootstrap, resample_counts, resampled_dataset,
)
from visrc.evaluation.ytvis_eval import SUMMARY_KEYS, evaluate_ytvis


def _expected(gt, results, counts, max_dets=(1, 10, 100)) -> dict[str, float]:
    """evaluate_ytvis on the resample's GT and results, built by duplicating the drawn videos."""
    ids = sorted(v["id"] for v in gt["videos"])
    gt_b, res_b = resampled_dataset(gt, results, np.repeat(ids, counts).tolist())
    assert len(gt_b["videos"]) == len(ids)
    stats = evaluate_ytvis(gt_b, res_b, max_dets=max_dets).stats
    return {k: np.nan if v == -1 else v for k, v in stats.items()}


@pytest.mark.parametrize("seed", range(12))
def test_resamples_equal_the_evaluation_of_duplicated_videos(seed):
    """Every summary value of a few resamples, exactly (score ties, crowds, absent categories,
    videos without GT, maxDets other than 1/10/100 included)."""
    gt, results = random_case(seed, n_videos=5 + seed % 3)
    if seed % 4 == 0:
        for r in results:
            r["score"] = round(r["score"], 1)    # many ties inside and across videos
    max_dets = (1, 3) if seed % 5 == 4 else (1, 10, 100)
    n_boot = 5
    boot = bootstrap_ap(gt, results, n_boot=n_boot, seed=seed, metrics=SUMMARY_KEYS, max_dets=max_dets)
    full = evaluate_ytvis(gt, results, max_dets=max_dets).stats
    assert boot.point == {k: full[k] for k in SUMMARY_KEYS}
    counts = resample_counts(len(gt["videos"]), n_boot, seed)
    for b in range(n_boot):
        want = _expected(gt, results, counts[b], max_dets)
        got = {k: boot.values[k][b] for k in SUMMARY_KEYS}
        np.testing.assert_array_equal([got[k] for k in SUMMARY_KEYS], [want[k] for k in SUMMARY_KEYS])


def test_crowded_case_exact():
    gt, results = crowded_case(3, n_videos=4)
    boot = bootstrap_ap(gt, results, n_boot=3, seed=1, metrics=("AP", "AP50", "AR10"))
    counts = resample_counts(4, 3, 1)
    for b in range(3):
        want = _expected(gt, results, counts[b])
        assert [boot.values[k][b] for k in ("AP", "AP50", "AR10")] == [want[k] for k in ("AP", "AP50", "AR10")]


def test_all_ones_resample_is_the_full_evaluation():
    from visrc.evaluation.bootstrap import _Resampler
    from visrc.evaluation.ytvis_eval import MAX_DETS, _prepare

    gt, results = random_case(21, n_videos=6)
    res = _Resampler(_prepare(gt, results, MAX_DETS), SUMMARY_KEYS)
    values = res.values(np.ones((1, 6), np.int64))
    full = evaluate_ytvis(gt, results).stats
    assert {k: v[0] for k, v in values.items()} == full


def test_deterministic_for_a_seed():
    gt, results = random_case(5, n_videos=12)
    a = bootstrap_ap(gt, results, n_boot=50, seed=3)
    b = bootstrap_ap(gt, results, n_boot=50, seed=3)
    c = bootstrap_ap(gt, results, n_boot=50, seed=4)
    np.testing.assert_array_equal(a.values["AP"], b.values["AP"])
    assert (a.low, a.high, a.std) == (b.low, b.high, b.std)
    assert not np.array_equal(a.values["AP"], c.values["AP"])
    assert a.n_videos == 12 and a.n_boot == 50 and a.values["AP"].shape == (50,)


def test_perfect_predictions_give_a_zero_width_interval_at_one():
    gt, _ = random_case(13, n_videos=8, p_crowd=0.0, p_null=0.0)
    results = [{"video_id": a["video_id"], "category_id": a["category_id"], "score": 0.9,
                "segmentations": a["segmentations"]} for a in gt["annotations"] if any(a["segmentations"])]
    boot = bootstrap_ap(gt, results, n_boot=100, seed=0, metrics=("AP", "AR100"))
    for k in ("AP", "AR100"):
        # 1.0 up to the evaluator's eps in tp / (tp + fp + eps)
        assert boot.point[k] == pytest.approx(1.0, abs=1e-12)
        assert boot.low[k] == pytest.approx(1.0, abs=1e-12) and boot.high[k] == pytest.approx(1.0, abs=1e-12)
        assert boot.std[k] <= 1e-12


def test_interval_contains_the_point_estimate_and_shrinks_with_level():
    gt, results = random_case(2, n_videos=40)
    boot = bootstrap_ap(gt, results, n_boot=300, seed=0, metrics=("AP", "AP50"))
    for k in ("AP", "AP50"):
        assert boot.low[k] < boot.point[k] < boot.high[k]
        assert boot.std[k] > 0
    narrow = bootstrap_ap(gt, results, n_boot=300, seed=0, level=0.5)
    assert boot.low["AP"] < narrow.low["AP"] <= narrow.high["AP"] < boot.high["AP"]
    assert set(boot.as_dict()) >= {"point", "low", "high", "std", "n_videos", "n_boot"}


def test_paired_difference_of_identical_inputs_is_exactly_zero():
    gt, results = random_case(4, n_videos=15)
    diff = paired_bootstrap(gt, results, [dict(r) for r in results], n_boot=100, seed=1)
    assert diff.point["AP"] == 0.0 and diff.low["AP"] == 0.0 and diff.high["AP"] == 0.0
    assert not np.any(diff.values["AP"]) and not diff.excludes(0.0)


def test_paired_difference_uses_the_same_resamples():
    gt, results = random_case(6, n_videos=15)
    worse = [dict(r, score=r["score"] * 0.5) if i % 3 == 0 else r for i, r in enumerate(results)]
    worse = [r for i, r in enumerate(worse) if i % 4 != 1]
    diff = paired_bootstrap(gt, results, worse, n_boot=80, seed=2)
    a = bootstrap_ap(gt, results, n_boot=80, seed=2)
    b = bootstrap_ap(gt, worse, n_boot=80, seed=2)
    np.testing.assert_array_equal(diff.values["AP"], a.values["AP"] - b.values["AP"])
    assert diff.point["AP"] == a.point["AP"] - b.point["AP"]
    assert diff.excludes(0.0) == (diff.low["AP"] > 0 or diff.high["AP"] < 0)


def test_undefined_resamples_are_nan_and_counted():
    gt, results = random_case(9, n_videos=3)
    keep = gt["videos"][0]["id"]
    gt["annotations"] = [a for a in gt["annotations"] if a["video_id"] == keep]   # 2 videos without GT
    boot = bootstrap_ap(gt, results, n_boot=60, seed=0)
    counts = resample_counts(3, 60, 0)
    ids = sorted(v["id"] for v in gt["videos"])
    no_gt = counts[:, ids.index(keep)] == 0
    assert no_gt.any() and boot.n_undefined["AP"] == int(no_gt.sum())
    assert np.isnan(boot.values["AP"][no_gt]).all() and not np.isnan(boot.values["AP"][~no_gt]).any()
    b = int(np.flatnonzero(no_gt)[0])
    assert np.isnan(_expected(gt, results, counts[b])["AP"])
    assert boot.low["AP"] <= boot.high["AP"]


def test_empty_gt_and_bad_arguments_are_one_line_errors(tmp_path):
    import json

    gt, results = random_case(1, n_videos=3)
    path = tmp_path / "gt.json"
    path.write_text(json.dumps(dict(gt, annotations=[])))
    cases = [((path, results), {}, ["gt.json", "'annotations'"]),
             ((dict(gt, videos=[], annotations=[]), []), {}, ["'videos'"]),
             ((gt, results), {"metrics": ("mAP",)}, ["mAP"]),
             ((gt, results), {"n_boot": 0}, ["n_boot"]),
             ((gt, results), {"level": 95}, ["level"])]
    for args, kwargs, names in cases:
        with pytest.raises(ValueError) as e:
            bootstrap_ap(*args, **kwargs)
        msg = str(e.value)
        assert len(msg.splitlines()) == 1 and all(n in msg for n in names), msg
    with pytest.raises(ValueError, match="'annotations'"):
        paired_bootstrap(dict(gt, annotations=[]), results, results)


def test_interval_columns_for_a_table_row():
    from visrc.experiments.tables import interval_columns

    gt, results = random_case(2, n_videos=10)
    boot = bootstrap_ap(gt, results, n_boot=40, seed=0, metrics=("AP", "AP50"))
    cols = interval_columns(boot)
    assert cols == {"AP_low": boot.low["AP"], "AP_high": boot.high["AP"], "AP_boot_std": boot.std["AP"],
                    "AP50_low": boot.low["AP50"], "AP50_high": boot.high["AP50"], "AP50_boot_std": boot.std["AP50"]}
