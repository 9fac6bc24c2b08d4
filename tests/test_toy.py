import dataclasses
import json

import numpy as np
import pytest

from visrc.data.masks import decode_rle
from visrc.data.toy import DISTRACTOR_CLASSES, SPLITS, ToyConfig, make_toy, video_split
from visrc.data.ytvis import load_ytvis


def test_layout_and_valid_json(toy_small):
    cfg = ToyConfig.preset("small")
    for split in SPLITS:
        data = load_ytvis(toy_small / split / "instances.json")
        assert len(data["videos"]) == getattr(cfg, f"n_{split}_videos")
        assert data["videos"] and data["annotations"]
        for v in data["videos"]:
            for f in v["file_names"]:
                assert (toy_small / split / "JPEGImages" / f).is_file()
        names = {c["name"] for c in data["categories"]}
        assert not names & set(DISTRACTOR_CLASSES), "distractors must stay unannotated in the videos"
    coco = json.loads((toy_small / "coco" / "annotations.json").read_text())
    assert {c["name"] for c in coco["categories"]} & set(DISTRACTOR_CLASSES)
    oi = json.loads((toy_small / "openimages" / "annotations.json").read_text())
    assert all(("segmentation" not in a or isinstance(a["segmentation"], list)) for a in oi["annotations"] if a.get("weak_mask"))


def test_deterministic_bytes(tmp_path, toy_small):
    again = make_toy(tmp_path / "again", preset="small", seed=0, progress=False)
    for rel in ("train/instances.json", "valid/instances.json", "tune/instances.json", "coco/annotations.json",
                "openimages/annotations.json"):
        assert (again / rel).read_bytes() == (toy_small / rel).read_bytes(), rel
    frame = "train/JPEGImages/train_0000/00000.jpg"
    assert (again / frame).read_bytes() == (toy_small / frame).read_bytes()
    other = make_toy(tmp_path / "other", preset="small", seed=1, progress=False)
    assert (other / "train/instances.json").read_bytes() != (toy_small / "train/instances.json").read_bytes()


def test_boxes_and_areas_agree_with_masks(toy_small):
    data = load_ytvis(toy_small / "train" / "instances.json")
    checked = 0
    for ann in data["annotations"]:
        for rle, box, area in zip(ann["segmentations"], ann["bboxes"], ann["areas"]):
            assert (rle is None) == (box is None) == (area is None)
            if rle is None:
                continue
            m = decode_rle(rle)
            ys, xs = np.nonzero(m)
            assert area == m.sum()
            assert box == [xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1]
            checked += 1
    assert checked > 20


def test_knobs_change_the_data(tmp_path):
    slow = make_toy(tmp_path / "slow", preset="small", motion_speed=0.0, camera_motion=0.0,
                    late_entry_prob=0.0, early_exit_prob=0.0, occlusion_prob=0.0, progress=False)
    data = load_ytvis(slow / "train" / "instances.json")
    # no late entry / early exit / occlusion: every track is present in every frame
    assert all(all(b is not None for b in a["bboxes"]) for a in data["annotations"])
    late = make_toy(tmp_path / "late", preset="small", late_entry_prob=1.0, n_train_videos=4, progress=False)
    data = load_ytvis(late / "train" / "instances.json")
    assert any(a["bboxes"][0] is None for a in data["annotations"])


def test_bad_preset_and_class():
    with pytest.raises(ValueError, match="unknown toy preset"):
        make_toy("/nonexistent", preset="huge")
    with pytest.raises(ValueError, match="unknown toy classes"):
        make_toy("/nonexistent", preset="small", classes=("zebra",))


def test_dataset_root_uses_the_given_root_or_the_cached_toy(toy_small, tmp_path, monkeypatch):
    import visrc.data.toy as toy

    monkeypatch.setenv("VISRC_RUNS_DIR", str(tmp_path / "runs"))
    assert toy.dataset_root(toy_small) == toy_small
    assert toy.dataset_root(str(toy_small), toy_preset="huge") == toy_small       # a given root wins
    made = []

    def fake_make_toy(root, preset, seed):
        made.append((root, preset, seed))
        root.mkdir(parents=True)
        cfg = ToyConfig.preset(preset, seed=seed)
        (root / "toy_config.json").write_text(json.dumps(dataclasses.asdict(cfg)))   # written last by make_toy
        return root

    monkeypatch.setattr(toy, "make_toy", fake_make_toy)
    root = toy.dataset_root(None, toy_preset="small")
    assert root == tmp_path / "runs" / "data" / "toy_small_seed0" == toy.toy_root("small")
    assert made == [(root, "small", 0)]                                           # generated once, then reused
    assert toy.dataset_root("", "small") == root and len(made) == 1
    assert toy.toy_root("small", seed=2).name == "toy_small_seed2" and len(made) == 2


def test_tune_split_leaves_the_other_splits_unchanged(tmp_path, toy_small):
    """The tune split has its own seed stream: adding it changes no byte of the other splits."""
    without = make_toy(tmp_path / "no_tune", preset="small", seed=0, n_tune_videos=0, progress=False)
    assert not (without / "tune").exists()
    for rel in ("train/instances.json", "valid/instances.json", "coco/annotations.json",
                "openimages/annotations.json", "train/JPEGImages/train_0005/00003.jpg",
                "valid/JPEGImages/valid_0000/00000.jpg", "valid/JPEGImages/valid_0002/00005.jpg",
                "coco/images/000001.jpg"):
        assert (without / rel).read_bytes() == (toy_small / rel).read_bytes(), rel
    tune, valid = (load_ytvis(toy_small / s / "instances.json") for s in ("tune", "valid"))
    assert [v["file_names"][0] for v in tune["videos"]] == [f"tune_{i:04d}/00000.jpg" for i in range(3)]
    assert tune["annotations"] != valid["annotations"]                # not a copy of valid's stream
    frames = {(toy_small / "tune/JPEGImages" / f).read_bytes() for v in tune["videos"] for f in v["file_names"]}
    assert len(frames) == sum(v["length"] for v in tune["videos"])


def test_video_split_paths_and_missing_split(tmp_path, toy_small):
    assert video_split(toy_small, "tune") == (toy_small / "tune" / "instances.json", toy_small / "tune" / "JPEGImages")
    with pytest.raises(FileNotFoundError) as e:
        video_split(tmp_path, "tune")
    msg = str(e.value)
    assert len(msg.splitlines()) == 1 and str(tmp_path / "tune" / "instances.json") in msg


def test_toy_root_regenerates_a_stale_cache_under_its_lock(tmp_path, monkeypatch):
    import visrc.data.toy as toy

    monkeypatch.setenv("VISRC_RUNS_DIR", str(tmp_path / "runs"))
    root = tmp_path / "runs" / "data" / "toy_small_seed0"
    # a cache made before the tune split: its config has no n_tune_videos, a valid video it no longer has
    old = dataclasses.asdict(ToyConfig.preset("small"))
    del old["n_tune_videos"]
    (root / "valid" / "JPEGImages" / "valid_0099").mkdir(parents=True)
    (root / "tune").mkdir()                                        # no instances.json: an interrupted split
    (root / "toy_config.json").write_text(json.dumps(old))
    lock = root.parent / f".{root.name}.lock"
    made = []
    real = toy.make_toy

    def make_toy_checking_lock(r, preset, seed):
        import fcntl

        with open(lock) as f:                                      # held by toy_root while it regenerates
            with pytest.raises(BlockingIOError):
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        assert not (r / "toy_config.json").exists()                # marked incomplete meanwhile
        made.append((r, preset, seed))
        return real(r, preset=preset, seed=seed, progress=False)

    monkeypatch.setattr(toy, "make_toy", make_toy_checking_lock)
    assert toy.toy_root("small") == root and len(made) == 1
    assert toy._config_matches(root, ToyConfig.preset("small"))
    assert video_split(root, "tune")[0].is_file()
    assert not (root / "valid" / "JPEGImages" / "valid_0099").exists()   # no longer listed: removed
    valid_dirs = sorted(p.name for p in (root / "valid" / "JPEGImages").iterdir())
    assert valid_dirs == ["valid_0000", "valid_0001", "valid_0002"]
    toy.toy_root("small")
    assert len(made) == 1                                          # now current: reused
    (root / "toy_config.json").write_text("{not json")
    toy.toy_root("small")
    assert len(made) == 2                                          # unreadable: regenerated too
