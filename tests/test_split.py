"""`visrc split-train`: a deterministic, stratified held-out set of train videos, scored locally."""
import json
import random

import numpy as np
import pytest

from visrc.cli import main
from visrc.data.masks import box_rle
from visrc.data.split import held_out_video_ids, split_train
from visrc.data.ytvis import load_ytvis, validate_ytvis

H, W, T = 12, 16, 3


def tiny_train(n_videos=30, n_cats=6, seed=0) -> dict:
    """A YouTube-VIS dict: box-shaped masks, 1-3 tracks a video; category 6 in one video only."""
    rng = np.random.default_rng(seed)
    cats = [{"id": c, "name": f"class{c}"} for c in range(1, n_cats + 1)]
    videos, anns = [], []
    for v in range(1, n_videos + 1):
        vid = 10 * v + 3                                   # ids not 1..n
        videos.append({"id": vid, "file_names": [f"v{vid}/{t:05d}.jpg" for t in range(T)], "length": T,
                       "height": H, "width": W})
        pool = list(range(1, n_cats)) if v != 7 else [n_cats]
        for c in rng.choice(pool, size=min(len(pool), int(rng.integers(1, 4))), replace=False):
            x, y = int(rng.integers(0, W - 4)), int(rng.integers(0, H - 4))
            boxes = [[x, y, 4, 4] if t != 1 or len(anns) % 2 else None for t in range(T)]
            anns.append({"id": len(anns) + 1, "video_id": vid, "category_id": int(c), "iscrowd": 0,
                         "segmentations": [box_rle(b, H, W) if b else None for b in boxes],
                         "bboxes": [[float(v) for v in b] if b else None for b in boxes],
                         "areas": [16.0 if b else None for b in boxes]})
    return {"info": {"description": "tiny"}, "videos": videos, "annotations": anns, "categories": cats}


def gt_as_results(gt: dict) -> list[dict]:
    return [{"video_id": a["video_id"], "category_id": a["category_id"], "score": 0.9,
             "segmentations": a["segmentations"]} for a in gt["annotations"]]


def test_split_partitions_videos_and_keeps_categories():
    data = tiny_train()
    before = json.dumps(data)
    train, held = split_train(data, fraction=0.2, seed=0)
    assert json.dumps(data) == before                           # input untouched
    validate_ytvis(train), validate_ytvis(held)
    tv, hv = {v["id"] for v in train["videos"]}, {v["id"] for v in held["videos"]}
    assert not tv & hv and tv | hv == {v["id"] for v in data["videos"]}
    assert len(hv) == 6
    assert all(a["video_id"] in hv for a in held["annotations"])
    assert all(a["video_id"] in tv for a in train["annotations"])
    assert len(train["annotations"]) + len(held["annotations"]) == len(data["annotations"])
    assert train["categories"] == held["categories"] == data["categories"]
    assert train["info"] == held["info"] == data["info"]
    assert [v["id"] for v in held["videos"]] == sorted(hv)   # file order kept


def test_split_is_deterministic_and_ignores_file_order():
    data = tiny_train()
    ids = held_out_video_ids(data, 0.2, seed=3)
    shuffled = dict(data, videos=random.Random(1).sample(data["videos"], len(data["videos"])),
                    annotations=random.Random(2).sample(data["annotations"], len(data["annotations"])))
    assert held_out_video_ids(shuffled, 0.2, seed=3) == ids
    assert held_out_video_ids(data, 0.2, seed=4) != ids


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("fraction", [0.04, 0.1, 0.5, 0.9])
def test_every_category_of_two_or_more_videos_is_on_both_sides(seed, fraction):
    data = tiny_train(seed=seed)
    train, held = split_train(data, fraction=fraction, seed=seed)
    per_side = [{a["category_id"] for a in part["annotations"]} for part in (train, held)]
    counts = {}
    for v, cs in {(a["video_id"], a["category_id"]) for a in data["annotations"]}:
        counts[cs] = counts.get(cs, 0) + 1
    for c, n in counts.items():
        if n >= 2:
            assert c in per_side[0] and c in per_side[1], (c, n)
    assert (6 in per_side[0]) != (6 in per_side[1])         # in one video: on one side only


def test_bad_fraction_and_too_few_videos():
    with pytest.raises(ValueError, match="fraction"):
        split_train(tiny_train(), fraction=1.0)
    with pytest.raises(ValueError, match="at least 2 videos"):
        split_train(tiny_train(n_videos=1), fraction=0.5)


def test_cli_split_then_local_ap_is_one(tmp_path, capsys):
    train_json = tmp_path / "train" / "instances.json"
    (tmp_path / "train" / "JPEGImages").mkdir(parents=True)
    train_json.write_text(json.dumps(tiny_train()))
    out = tmp_path / "split"
    argv = ["split-train", str(train_json), "--out-dir", str(out), "--fraction", "0.2", "--seed", "0"]
    assert main(argv) == 0
    held = load_ytvis(out / "heldout.json")
    train = load_ytvis(out / "train_split.json")
    assert len(held["videos"]) == 6 and len(train["videos"]) == 24
    assert "6 videos" in capsys.readouterr().out

    res = tmp_path / "results.json"
    res.write_text(json.dumps(gt_as_results(held)))
    metrics = tmp_path / "metrics.json"
    assert main(["evaluate", "--gt", str(out / "heldout.json"), "--results", str(res), "--out", str(metrics)]) == 0
    assert json.loads(metrics.read_text())["metrics"]["AP"] == pytest.approx(1.0)

    # existing outputs are kept unless --force
    assert main(argv) == 1
    assert "exists; pass --force" in capsys.readouterr().err
    assert main(argv + ["--force", "--seed", "1"]) == 0
    assert load_ytvis(out / "heldout.json")["videos"] != held["videos"]

    # --data-root: a YouTube-VIS root the configs and notebooks read
    assert main(argv + ["--force", "--data-root"]) == 0
    assert load_ytvis(out / "valid" / "instances.json") == held
    assert load_ytvis(out / "train" / "instances.json") == train
    assert (out / "valid" / "JPEGImages").resolve() == (tmp_path / "train" / "JPEGImages").resolve()
