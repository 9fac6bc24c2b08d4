"""``visrc make-json``: a folder with a video file and a frame folder -> a YouTube-VIS JSON without
annotations whose frames exist, in order; outputs in the way are refused before any work."""
import json

import numpy as np
import pytest
from PIL import Image

from test_video_files import N, square_x, write_test_folder, write_test_video
from visrc.cli import main


@pytest.fixture
def src(tmp_path):
    write_test_video(tmp_path / "src" / "clip.mp4")
    write_test_folder(tmp_path / "src" / "frames")
    return tmp_path / "src"


def test_make_json_decodes_videos_and_links_frame_folders(src, tmp_path, capsys):
    out = tmp_path / "data" / "valid" / "instances.json"
    assert main(["make-json", str(src), "--out", str(out), "--classes", "fish", "car"]) == 0
    assert "2 videos (1 decoded from video files), 2 categories" in capsys.readouterr().out
    assert main(["validate", str(out)]) == 0
    data = json.loads(out.read_text())
    assert data["categories"] == [dict(id=1, name="fish"), dict(id=2, name="car")] and data["annotations"] == []
    clip, frames = data["videos"]                         # natural order of the names: clip.mp4, frames
    assert (clip["id"], frames["id"]) == (1, 2)
    assert clip["file_names"] == [f"clip/{t:05d}.jpg" for t in range(N)]
    assert frames["file_names"] == [f"frames/{t}.jpg" for t in range(1, N + 1)]
    root = out.parent / "JPEGImages"                      # the configs' test_split layout
    assert (root / "frames").is_symlink()
    for v in (clip, frames):
        assert (v["length"], v["height"], v["width"]) == (N, 64, 96)
        xs = [square_x(np.asarray(Image.open(root / f).convert("RGB"))) for f in v["file_names"]]
        assert xs == [4 + 6 * t for t in range(N)], v["file_names"]


def test_make_json_refuses_outputs_in_the_way_before_work(src, tmp_path, capsys):
    out = tmp_path / "instances.json"
    frames_out = tmp_path / "frames_out"
    args = ["make-json", str(src), "--out", str(out), "--frames-out", str(frames_out)]
    assert main(args) == 0
    assert json.loads(out.read_text())["categories"] == []          # infer takes the config's classes
    capsys.readouterr()
    assert main(args) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "instances.json: exists; pass --force" in err, err
    out.unlink()
    assert main(args) == 1                                           # the decoded frames are in the way too
    assert "clip: exists (from an earlier make-json); pass --force" in capsys.readouterr().err
    assert not out.exists()
    assert main(args + ["--force"]) == 0 and out.exists()
    # a folder make-json did not write is never replaced, --force or not
    (frames_out / "clip").rename(tmp_path / "moved")
    (frames_out / "clip").mkdir()
    (frames_out / "clip" / "mine.jpg").write_bytes(b"x")
    assert main(args + ["--force"]) == 1
    assert "was not written by make-json" in capsys.readouterr().err
    assert (frames_out / "clip" / "mine.jpg").exists()


def test_make_json_in_place_and_classes_file(src, tmp_path, capsys):
    (tmp_path / "cats.json").write_text(json.dumps({"categories": [{"id": 7, "name": "fish"}]}))
    out = tmp_path / "instances.json"
    assert main(["make-json", str(src), "--out", str(out), "--frames-out", str(src),
                 "--classes", str(tmp_path / "cats.json")]) == 0
    data = json.loads(out.read_text())
    assert data["categories"] == [{"id": 7, "name": "fish"}]
    assert data["videos"][1]["file_names"][0] == "frames/1.jpg" and not (src / "frames").is_symlink()
    # a re-run in place does not take the decoded frames for a video of their own
    capsys.readouterr()
    assert main(["make-json", str(src), "--out", str(out), "--frames-out", str(src), "--force"]) == 0
    assert [len(v["file_names"]) for v in json.loads(out.read_text())["videos"]] == [N, N]
    (tmp_path / "bad.json").write_text("[1, 2]")
    assert main(["make-json", str(src), "--out", str(tmp_path / "x.json"), "--classes", str(tmp_path / "bad.json")]) == 1
    assert "bad.json: categories[0]" in capsys.readouterr().err


def test_make_json_undecodable_video_names_it(tmp_path, capsys):
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "broken.mp4").write_bytes(b"\x00" * 100)
    assert main(["make-json", str(tmp_path / "src"), "--out", str(tmp_path / "i.json")]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "broken.mp4: not a decodable video" in err, err
    assert not (tmp_path / "i.json").exists() and not list((tmp_path / "JPEGImages").iterdir())
