"""``visrc infer --videos`` and ``visrc demo`` on a user's own videos (an mp4 and ``1.jpg ... 12.jpg``
frame folders) with a tiny untrained model: annotated video + results in frame order; ``infer``
keeps finished videos, resumes after a crash, and fails (or, with ``--skip-bad-frames``, skips) an
undecodable frame; existing outputs are refused before any work."""
import json

import numpy as np
import pytest
from PIL import Image

from helpers import tracking_tiny_cfg
from test_video_files import N, square_frame, square_x, write_test_folder, write_test_video
from visrc.cli import main


def _save_model(cfg, path, seed):
    import torch
    from mmdet.registry import MODELS

    torch.manual_seed(seed)
    torch.save({"state_dict": MODELS.build(cfg.model).state_dict()}, path)
    return path


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    """(config file, checkpoint, a second checkpoint) of an untrained toy_baseline at 96x64 that
    keeps a few low-score detections per frame (so tracks exist) and track them."""
    d = tmp_path_factory.mktemp("model")
    cfg = tracking_tiny_cfg()
    cfg.dump(str(d / "tiny.py"))
    return str(d / "tiny.py"), str(_save_model(cfg, d / "a.pth", 0)), str(_save_model(cfg, d / "b.pth", 1))


@pytest.fixture
def count_frames(monkeypatch):
    """Counts VideoPredictor.predict_frame calls per video id; ``crash_on`` makes that video raise."""
    from visrc.models.predictor import VideoPredictor

    original = VideoPredictor.predict_frame
    calls = {"by_video": {}, "crash_on": None}

    def counted(self, path, frame_id=0, video_id=0, length=1):
        if video_id == calls["crash_on"]:
            raise RuntimeError("simulated crash")
        calls["by_video"][video_id] = calls["by_video"].get(video_id, 0) + 1
        return original(self, path, frame_id, video_id, length)

    monkeypatch.setattr(VideoPredictor, "predict_frame", counted)
    return calls


def _npz_frames(path):
    from visrc.data.predictions import load_predictions

    return {v.video_id: v for v in load_predictions(path)}


def test_infer_and_demo_on_an_mp4_and_frame_folders_keep_frame_order(model, tmp_path, capsys):
    from visrc.data.video_files import VideoFile

    config, ckpt, _ = model
    clip = write_test_video(tmp_path / "clip.mp4")
    decoded = list(VideoFile(clip))
    png = tmp_path / "png"                         # the mp4's decoded frames, lossless, as 1.png ... 12.png
    png.mkdir()
    for t, rgb in enumerate(decoded):
        Image.fromarray(rgb).save(png / f"{t + 1}.png")
    assert sorted(p.name for p in png.iterdir())[:3] == ["1.png", "10.png", "11.png"]   # a string sort is wrong

    assert main(["infer", config, ckpt, "--videos", str(clip), str(png), "--out", str(tmp_path / "r.json")]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["sources"] == {"1": str(clip.resolve()), "2": str(png.resolve())}
    assert summary["frames"] == 2 * N and summary["tracks"] > 0
    videos = _npz_frames(summary["predictions"])
    # the same pixels in the same order -> the same per-frame predictions, and they change with the frame
    for t in range(N):
        a, b = videos[1].frames[t], videos[2].frames[t]
        assert len(a) > 0
        np.testing.assert_array_equal(a.boxes, b.boxes)
        np.testing.assert_array_equal(a.scores, b.scores)
        assert a.masks == b.masks
    assert not np.array_equal(videos[1].frames[0].boxes, videos[1].frames[N - 1].boxes)
    results = json.loads((tmp_path / "r.json").read_text())
    assert {r["video_id"] for r in results} == {1, 2} and all(len(r["segmentations"]) == N for r in results)
    assert not (tmp_path / "r.json.parts").exists()

    # demo on the mp4: an annotated mp4 at the input's fps and the same results as infer's video 1
    assert main(["demo", config, ckpt, str(clip), "--out", str(tmp_path / "clip_demo.mp4"), "--score-thr", "0"]) == 0
    out = VideoFile(tmp_path / "clip_demo.mp4")
    drawn = list(out)
    assert out.fps == pytest.approx(6.0) and len(drawn) == N and drawn[0].shape == (64, 96, 3)
    assert max(np.abs(d.astype(int) - s.astype(int)).max() for d, s in zip(drawn, decoded)) > 100   # something drawn
    demo_results = json.loads((tmp_path / "clip_demo.results.json").read_text())
    assert sorted(json.dumps(r, sort_keys=True) for r in demo_results) == \
        sorted(json.dumps(r, sort_keys=True) for r in results if r["video_id"] == 1)

    # demo on a 1.jpg ... 12.jpg folder, nothing drawn: the output frames are the input's, in order
    jpg = write_test_folder(tmp_path / "jpg")
    assert main(["demo", config, ckpt, str(jpg), "--out", str(tmp_path / "jpg_demo.mp4"), "--score-thr", "2"]) == 0
    out = VideoFile(tmp_path / "jpg_demo.mp4")
    assert out.fps == pytest.approx(6.0)
    assert [square_x(f) for f in out] == [square_x(square_frame(t)) for t in range(N)]
    demo_results = json.loads((tmp_path / "jpg_demo.results.json").read_text())
    assert demo_results and all(len(r["segmentations"]) == N and r["video_id"] == 1 for r in demo_results)


def test_infer_resumes_after_a_crash_and_refuses_existing_outputs(model, tmp_path, capsys, count_frames):
    config, ckpt, other_ckpt = model
    for name in ("a", "b", "c"):
        write_test_folder(tmp_path / "videos" / name, n=2)
    out = tmp_path / "r.json"
    args = ["infer", config, ckpt, "--videos", str(tmp_path / "videos"), "--out", str(out)]

    count_frames["crash_on"] = 2
    with pytest.raises(RuntimeError, match="simulated crash"):
        main(args)
    parts = sorted((tmp_path / "r.json.parts").glob("*.npz"))
    assert [p.name.split("-")[0] for p in parts] == ["1"] and not out.exists()
    capsys.readouterr()

    count_frames.update(crash_on=None, by_video={})
    assert main(args) == 0
    assert count_frames["by_video"] == {2: 2, 3: 2}                  # video 1 was not predicted again
    assert "resuming: 1 of 3 videos done" in capsys.readouterr().err
    assert not (tmp_path / "r.json.parts").exists()
    resumed = _npz_frames(tmp_path / "r.predictions.npz")

    count_frames["by_video"] = {}
    assert main(args) == 1                                           # refused before any work
    err = capsys.readouterr().err.strip()
    assert err == f"visrc infer: error: {out}: exists; pass --force to overwrite it" and not count_frames["by_video"]
    assert main(args + ["--force", "--no-resume"]) == 0
    fresh = _npz_frames(tmp_path / "r.predictions.npz")
    for vid in (1, 2, 3):
        for a, b in zip(resumed[vid].frames, fresh[vid].frames):
            np.testing.assert_array_equal(a.boxes, b.boxes)

    # saved videos of another checkpoint are not reused
    count_frames.update(crash_on=3, by_video={})
    with pytest.raises(RuntimeError):
        main(args + ["--force"])
    count_frames.update(crash_on=None, by_video={})
    capsys.readouterr()
    assert main(["infer", config, other_ckpt] + args[3:] + ["--force"]) == 0
    assert count_frames["by_video"] == {1: 2, 2: 2, 3: 2}
    assert "discarding 2 saved videos" in capsys.readouterr().err


def test_a_truncated_jpeg_fails_its_video_or_is_skipped(model, tmp_path, capsys):
    config, ckpt, _ = model
    bad = write_test_folder(tmp_path / "videos" / "a", n=3)
    write_test_folder(tmp_path / "videos" / "b", n=3)
    data = (bad / "2.jpg").read_bytes()
    (bad / "2.jpg").write_bytes(data[: len(data) // 2])
    out = tmp_path / "r.json"
    args = ["infer", config, ckpt, "--videos", str(tmp_path / "videos"), "--out", str(out)]

    assert main(args) == 1
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith(f"visrc infer: error: {bad / '2.jpg'}: not a decodable image (truncated) "
                           "(1 of 2 videos failed)"), last
    assert "r.json.parts (a re-run resumes); --skip-bad-frames" in last
    assert not out.exists() and len(list((tmp_path / "r.json.parts").glob("*.npz"))) == 1   # video b is kept

    assert main(args + ["--skip-bad-frames"]) == 0
    err = capsys.readouterr().err
    assert "resuming: 1 of 2 videos done" in err
    warnings = [ln for ln in err.splitlines() if ln.startswith("warning")]
    assert len(warnings) == 1 and "2.jpg: not a decodable image" in warnings[0] and "frame 1 of video 1" in warnings[0]
    video = _npz_frames(tmp_path / "r.predictions.npz")[1]
    assert [len(f) > 0 for f in video.frames] == [True, False, True]
    results = json.loads(out.read_text())
    assert all(r["segmentations"][1] is None for r in results if r["video_id"] == 1)


def test_demo_inputs_and_outputs_are_checked_before_the_model(tmp_path):
    from visrc.demo_cli import _frames, _video_entry, check_out, default_results_path

    clip = write_test_video(tmp_path / "clip.mp4")
    entry = _video_entry(clip, max_frames=5)
    assert entry["length"] == 5 and entry["fps"] == 6.0
    assert [square_x(f) for f in _frames(entry)] == [square_x(square_frame(t)) for t in range(5)]
    folder = _video_entry(write_test_folder(tmp_path / "jpg", n=3), max_frames=2)
    assert [p.rsplit("/", 1)[1] for p in folder["file_names"]] == ["1.jpg", "2.jpg"]
    assert default_results_path(tmp_path / "d.mp4") == tmp_path / "d.results.json"
    for bad in ("x.png", "x"):
        with pytest.raises(ValueError, match="--out must end in .gif, .mp4"):
            check_out(tmp_path / bad)
