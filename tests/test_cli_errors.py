"""Expected failures of the ``visrc`` commands print one line naming the file and exit non-zero
(``--debug`` shows the traceback); frames sort naturally; config classes meet the annotation
file's categories by normalised name; ``--resume`` / ``--max-epochs`` mean what they say."""
import json
import subprocess
import sys

import pytest

from visrc.cli import main

CLASSES = ("fish", "shark", "turtle", "bird", "car", "truck")      # toy_baseline's


def _split(root, names=CLASSES, frames=("1.jpg",)):
    """A one-video YouTube-VIS split under ``root``: ``valid/instances.json`` + its frames."""
    vdir = root / "valid" / "JPEGImages" / "v"
    vdir.mkdir(parents=True)
    for f in frames:
        from PIL import Image
        Image.new("RGB", (32, 24), (90, 120, 30)).save(vdir / f)
    data = dict(videos=[dict(id=1, width=32, height=24, length=len(frames),
                             file_names=[f"v/{f}" for f in frames])],
                categories=[dict(id=i + 1, name=n) for i, n in enumerate(names)], annotations=[])
    (root / "valid" / "instances.json").write_text(json.dumps(data))
    return root


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    """A checkpoint of an untrained toy_baseline model (loads; predicts nothing useful)."""
    import torch

    from visrc.models.config import build_model
    path = tmp_path_factory.mktemp("ckpt") / "untrained.pth"
    torch.save({"state_dict": build_model("toy_baseline").state_dict()}, path)
    return path


def _case_missing_file(tmp):
    return ["validate", str(tmp / "nope.json")], "nope.json"


def _case_bad_json(tmp):
    _split(tmp)
    (tmp / "bad.json").write_text("{not json")
    return ["infer", "toy_baseline", str(tmp / "x.pth"), "--data", str(tmp), "--ann-file", "bad.json",
            "--out", str(tmp / "r.json")], "bad.json"


def _case_garbage_checkpoint(tmp):
    _split(tmp)
    (tmp / "garbage.pth").write_bytes(b"this is not a checkpoint\x00\x01" * 10)
    return ["infer", "toy_baseline", str(tmp / "garbage.pth"), "--data", str(tmp),
            "--out", str(tmp / "r.json")], "garbage.pth"


def _case_empty_checkpoint(tmp):
    _split(tmp)
    (tmp / "empty.pth").write_bytes(b"")
    return ["infer", "toy_baseline", str(tmp / "empty.pth"), "--data", str(tmp),
            "--out", str(tmp / "r.json")], "empty.pth"


def _case_unknown_config(tmp):
    return ["infer", "toy_baselin", str(tmp / "x.pth"), "--data", str(tmp)], "toy_baselin"


def _case_no_class_matches(tmp):
    _split(tmp, names=("zebra", "giraffe"))
    return ["infer", "toy_baseline", str(tmp / "x.pth"), "--data", str(tmp),
            "--out", str(tmp / "r.json")], "instances.json"


def _case_missing_frames_directory(tmp):
    return ["demo", "toy_baseline", str(tmp / "x.pth"), str(tmp / "no_frames"), "--out", str(tmp / "d.gif")], \
        "no_frames"


def _case_infer_out_is_directory(tmp):
    (tmp / "outdir").mkdir()
    return ["infer", "toy_baseline", str(tmp / "x.pth"), "--out", str(tmp / "outdir")], "outdir"


def _case_demo_out_wrong_suffix(tmp):
    _split(tmp)
    return ["demo", "toy_baseline", str(tmp / "x.pth"), str(tmp / "valid" / "JPEGImages" / "v"),
            "--out", str(tmp / "x.png")], "x.png"


def _case_make_toy_non_empty(tmp):
    (tmp / "toy").mkdir()
    (tmp / "toy" / "keep.txt").write_text("mine")
    return ["make-toy", "--out", str(tmp / "toy"), "--preset", "small"], "toy"


# ---- outputs checked before the work, video files (issue #15 items 1 and 5) ---------------------

def _case_infer_out_exists(tmp):
    _split(tmp)
    (tmp / "r.json").write_text("[]")
    return ["infer", "toy_baseline", str(tmp / "not_read.pth"), "--data", str(tmp), "--out", str(tmp / "r.json")], \
        "r.json: exists; pass --force"


def _case_infer_metrics_out_exists(tmp):
    (tmp / "m.json").write_text("{}")
    return ["infer", "toy_baseline", str(tmp / "not_read.pth"), "--metrics-out", str(tmp / "m.json")], "m.json"


def _case_infer_missing_video(tmp):
    return ["infer", "toy_baseline", str(tmp / "x.pth"), "--videos", str(tmp / "nope.mp4"),
            "--out", str(tmp / "r.json")], "nope.mp4"


def _case_demo_undecodable_video(tmp):
    (tmp / "junk.mp4").write_bytes(b"not a video at all" * 10)
    return ["demo", "toy_baseline", str(tmp / "x.pth"), str(tmp / "junk.mp4"), "--out", str(tmp / "d.mp4")], \
        "junk.mp4: not a decodable video"


def _case_make_json_out_exists(tmp):
    (tmp / "v").mkdir()
    (tmp / "i.json").write_text("{}")
    return ["make-json", str(tmp / "v"), "--out", str(tmp / "i.json")], "i.json: exists"


CASES = {k[len("_case_"):]: v for k, v in globals().items() if k.startswith("_case_")}


@pytest.mark.parametrize("name", sorted(CASES))
def test_expected_failure_is_one_line(name, tmp_path, capsys):
    argv, names = CASES[name](tmp_path)
    assert main(argv) != 0
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert names in err and "Traceback" not in err
    assert "weights_only=False" not in err


def test_undecodable_frame_names_it(tmp_path, weights, capsys):
    _split(tmp_path, frames=("1.jpg", "2.jpg"))
    frames = tmp_path / "valid" / "JPEGImages" / "v"
    (frames / "2.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    assert main(["demo", "toy_baseline", str(weights), str(frames), "--out", str(tmp_path / "d.gif")]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "2.jpg" in err and "decodable" in err, err


def test_partial_class_match_warns(tmp_path, weights, capsys):
    _split(tmp_path, names=("Fish", "Great-White", "turtle", "bird", "car", "truck"))
    args = ["infer", "toy_baseline", str(weights), "--data", str(tmp_path), "--out", str(tmp_path / "r.json"),
            "--no-eval"]
    assert main(args) == 0
    warning = [ln for ln in capsys.readouterr().err.splitlines() if "warning" in ln]
    assert len(warning) == 1 and "instances.json" in warning[0] and warning[0].endswith(
        "their tracks are dropped: shark (map them with --class-map)"), warning


def test_class_map_pairs_and_json_file(tmp_path, capsys):
    from visrc.data.categories import parse_class_map
    from visrc.pipeline import match_categories

    gt = dict(categories=[dict(id=1, name="Fish"), dict(id=5, name="Great-White")])
    assert match_categories(["fish", "shark"], gt, "gt.json") == {0: 1}
    assert "gt.json" in capsys.readouterr().err
    assert match_categories(["fish", "shark"], gt, "gt.json", parse_class_map(["shark=great white"])) == {0: 1, 1: 5}
    (tmp_path / "map.json").write_text(json.dumps({"Shark": "Great_White"}))
    assert match_categories(["fish", "shark"], gt, "gt.json", parse_class_map([str(tmp_path / "map.json")])) == \
        {0: 1, 1: 5}
    assert "warning" not in capsys.readouterr().err
    (tmp_path / "bad_map.json").write_text("[1, 2]")
    with pytest.raises(ValueError, match="bad_map.json"):
        parse_class_map([str(tmp_path / "bad_map.json")])


def test_debug_shows_the_traceback(tmp_path):
    with pytest.raises(FileNotFoundError, match="none"):
        main(["--debug", "demo", "toy_baseline", "x.pth", str(tmp_path / "none"), "--out", "d.gif"])


def test_version(capsys):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.startswith("visrc ")


def _visrc(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "visrc", *args], capture_output=True, text=True, cwd=cwd)


def test_train_config_typo_lists_the_configs():
    r = _visrc("train", "toy_baselin")
    err = r.stderr.strip()
    assert r.returncode != 0 and len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert "toy_baselin" in err and "toy_baseline" in err and "available:" in err


def test_train_resume_without_checkpoint_fails(tmp_path):
    r = _visrc("train", "toy_baseline", "--work-dir", str(tmp_path / "empty"), "--resume")
    err = r.stderr.strip()
    assert r.returncode != 0 and len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert str(tmp_path / "empty") in err and "--resume auto" in err


# ---- the helpers behind them ------------------------------------------------------------------

def test_frames_sort_naturally(tmp_path):
    from visrc.data.frames import list_frames

    for i in range(1, 13):
        (tmp_path / f"{i}.jpg").write_bytes(b"x")
    (tmp_path / "notes.txt").write_text("not a frame")
    assert [p.name for p in list_frames(tmp_path)] == [f"{i}.jpg" for i in range(1, 13)]
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no image frames"):
        list_frames(tmp_path / "empty")


def test_class_names_match_case_and_separator_insensitively():
    from visrc.data.categories import label_to_category, parse_class_map

    cats = [dict(id=7, name="Tennis_Racket"), dict(id=9, name="sedan")]
    assert label_to_category(["tennis racket", "car"], cats) == {0: 7}
    assert label_to_category(["tennis-racket", "Car"], cats, {"car": "Sedan"}) == {0: 7, 1: 9}
    assert parse_class_map(["a=b", " c = d e "]) == {"a": "b", "c": "d e"}
    with pytest.raises(ValueError, match="CONFIG_CLASS=CATEGORY_NAME"):
        parse_class_map(["a=b", "oops"])


def test_max_epochs_scales_milestones_only_when_longer(capsys):
    from visrc.models.train_cli import prepare_config

    def multistep(cfg):
        return next(s for s in cfg.param_scheduler if s["type"] == "MultiStepLR")

    base = prepare_config("toy_pretrain_coco")
    assert base.train_cfg.max_epochs == 12 and multistep(base)["milestones"] == [8, 11]
    long = prepare_config("toy_pretrain_coco", max_epochs=24)
    assert long.train_cfg.max_epochs == 24
    assert multistep(long)["milestones"] == [16, 22] and multistep(long)["end"] == 24
    assert "scaled to [16, 22] of 24" in capsys.readouterr().out
    short = prepare_config("toy_pretrain_coco", max_epochs=1)  # milestones past the run: said, not moved
    assert multistep(short)["milestones"] == [8, 11] and multistep(short)["end"] == 1
    assert "kept" in capsys.readouterr().out


def test_max_epochs_keeps_the_fraction_schedule_shape():
    from visrc.models.train_cli import prepare_config

    def fractions(cfg):
        return next(s for s in cfg.param_scheduler if s["type"] == "FractionMultiStepLR")

    assert fractions(prepare_config("toy_baseline"))["end"] == 3
    assert fractions(prepare_config("toy_baseline", max_epochs=12))["end"] == 12
    assert fractions(prepare_config("toy_baseline", max_epochs=2))["end"] == 2


def test_stale_checkpoint_temp_files_are_removed(tmp_path):
    from visrc.models.checkpoint import remove_stale_temp_files

    dead_pid = 2 ** 22 + 12345                                # above the default pid_max
    stale = [tmp_path / f".epoch_2.pth.{dead_pid}.tmp", tmp_path / ".last_checkpoint.abc123.tmp"]
    keep = [tmp_path / "epoch_1.pth", tmp_path / "last_checkpoint"]
    for p in stale + keep:
        p.write_bytes(b"x")
    assert sorted(remove_stale_temp_files(tmp_path)) == sorted(str(p) for p in stale)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["epoch_1.pth", "last_checkpoint"]

