"""The cosine-vs-QDTrack study chooses each association's match_thr on the choice split and reports
it on the test split (the trained run and the evaluator are stand-ins here)."""
from pathlib import Path

from visrc.experiments import association


def test_each_association_is_reported_at_its_own_tune_choice(monkeypatch, tmp_path):
    import visrc.experiments.pretrain as pretrain
    import visrc.experiments.runs as runs
    import visrc.experiments.table1 as table1

    monkeypatch.setattr(pretrain, "resolve_init", lambda config, root, init: None)
    monkeypatch.setattr(runs, "train_cached", lambda config, root, seed, init: Path("ckpt.pth"))
    calls = []

    def fake_eval(config, ckpt, root, tracker, merge_iou_thr=None, modes=("forward",), split=None, n_boot=0):
        calls.append((tracker["similarity"], tracker["backdrop_frames"], tracker["match_thr"], split))
        # on tune, cosine peaks at 0.7 and the bi-softmax ones at 0.3; valid is a different split
        best = 0.7 if tracker["similarity"] == "cosine" else 0.3
        ap = 1.0 - abs(tracker["match_thr"] - best) if split == "tune" else 0.5
        return {m: {"AP": ap} for m in modes}

    monkeypatch.setattr(table1, "evaluate_tracking", fake_eval)
    out = association.compare_associations("toy_baseline", tmp_path)
    assert out["chosen"] == {"cosine": 0.7, "bisoftmax": 0.3, "qdtrack": 0.3}
    assert len(out["grid"]) == 3 * len(association.MATCH_GRID)
    assert {(r["association"], r["mode"], r["match_thr"]) for r in out["rows"]} == {
        (a, m, t) for a, t in out["chosen"].items() for m in ("forward", "bitrack")}
    reported = [c for c in calls if c[3] is None]  # None: the config's test split
    assert sorted(reported) == sorted([("cosine", 0, 0.7, None), ("bisoftmax", 0, 0.3, None), ("bisoftmax", 1, 0.3, None)])
    assert association.ASSOCIATIONS["qdtrack"]["backdrop_frames"] == 1
