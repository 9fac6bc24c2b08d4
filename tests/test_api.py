"""``visrc.init_model`` / ``visrc.track_video`` / ``visrc.write_results`` (:mod:`visrc.api`): on a tiny
untrained model and a 4-frame video, the same results.json as ``visrc infer --videos`` (tracks,
masks, scores, category ids), in either mode, from a video file, a frame folder or a list of
frames; bad paths are one error line naming the path."""
import json

import pytest

import visrc
from helpers import tracking_tiny_cfg
from test_video_files import write_test_folder, write_test_video
from visrc.cli import main

N_FRAMES = 4


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """(config file, checkpoint) of an untrained toy_baseline at 96x64 that keeps a few low-score
    detections per frame and tracks them (so tracks exist)."""
    import torch
    from mmdet.registry import MODELS

    d = tmp_path_factory.mktemp("api_model")
    cfg = tracking_tiny_cfg()
    cfg.dump(str(d / "tiny.py"))
    torch.manual_seed(0)
    torch.save({"state_dict": MODELS.build(cfg.model).state_dict()}, d / "a.pth")
    return str(d / "tiny.py"), str(d / "a.pth")


@pytest.fixture(scope="module")
def model(tiny):
    return visrc.init_model(*tiny)


@pytest.mark.parametrize("mode", ["bitrack", "forward"])
def test_track_video_and_write_results_match_visrc_infer(tiny, model, tmp_path, capsys, mode):
    config, ckpt = tiny
    clip = write_test_video(tmp_path / "clip.mp4", n=N_FRAMES)
    infer_out = tmp_path / "infer.json"
    assert main(["infer", config, ckpt, "--videos", str(clip), "--mode", mode, "--out", str(infer_out)]) == 0
    capsys.readouterr()
    expected = json.loads(infer_out.read_text())
    assert expected and all(len(r["segmentations"]) == N_FRAMES for r in expected)

    tracks = visrc.track_video(model, clip, mode=mode)
    assert isinstance(tracks, list) and len(tracks) == len(expected)
    assert tracks.video["length"] == N_FRAMES and (tracks.video["height"], tracks.video["width"]) == (64, 96)
    for k, t in enumerate(tracks):
        assert t.id == k and t.category == model.classes[t.category_id - 1]
        assert len(t.masks) == len(t.boxes) == len(t.frame_scores) == N_FRAMES
        assert all((m is None) == (b is None) for m, b in zip(t.masks, t.boxes))
        assert t.frames and all(len(t.boxes[f]) == 4 for f in t.frames)
    api_out = visrc.write_results({1: tracks}, tmp_path / "api.json")
    assert api_out == tmp_path / "api.json"
    assert json.loads(api_out.read_text()) == expected            # masks, scores, category ids, order

    if mode == "forward":
        return
    # the same frames as a folder (natural order) and as a list of paths: identical tracks
    folder = write_test_folder(tmp_path / "frames", n=N_FRAMES, suffix=".png")
    from visrc.data.frames import list_frames

    by_folder = visrc.track_video(model, folder, mode=mode)
    by_list = visrc.track_video(model, [str(p) for p in list_frames(folder)], mode=mode)
    key = [(t.category_id, t.score, t.masks) for t in by_folder]
    assert key == [(t.category_id, t.score, t.masks) for t in by_list]
    # names as keys: ids 1..N in order
    visrc.write_results({"clip": tracks, "frames": by_folder}, tmp_path / "two.json")
    two = json.loads((tmp_path / "two.json").read_text())
    assert [r for r in two if r["video_id"] == 1] == expected and {r["video_id"] for r in two} <= {1, 2}


def test_tracker_override_and_config_mode(model, tmp_path):
    assert model.mode == "forward" and model.classes == tuple(model.cfg.classes)
    clip = write_test_folder(tmp_path / "frames", n=2)
    default = visrc.track_video(model, clip, mode=None)            # the config's tracking_mode: forward
    assert [t.score for t in default] == [t.score for t in visrc.track_video(model, clip, mode="forward")]
    # a tracker that starts no track: no tracks
    assert visrc.track_video(model, clip, tracker=dict(tracker=dict(init_score_thr=2.0, obj_score_thr=2.0))) == []


def test_bad_paths_are_one_error_line_naming_the_path(tiny, model, tmp_path):
    config, ckpt = tiny
    cases = [
        (lambda: visrc.init_model("no_such_config"), FileNotFoundError, "no_such_config"),
        (lambda: visrc.init_model(config, tmp_path / "missing.pth"), FileNotFoundError, str(tmp_path / "missing.pth")),
    ]
    for call, exc, name in cases:
        with pytest.raises(exc) as e:
            call()
        assert name in str(e.value) and "\n" not in str(e.value)
    for bad, exc in [(tmp_path / "missing.mp4", FileNotFoundError), (tmp_path / "empty", ValueError),
                     ([tmp_path / "missing.jpg"], FileNotFoundError)]:
        if bad == tmp_path / "empty":
            bad.mkdir()
        with pytest.raises(exc) as e:
            visrc.track_video(model, bad)
        where = bad[0] if isinstance(bad, list) else bad
        assert str(where) in str(e.value) and "\n" not in str(e.value)
    with pytest.raises(TypeError, match="init_model"):
        visrc.track_video("toy_baseline", tmp_path)
