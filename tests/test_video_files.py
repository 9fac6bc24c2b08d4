"""Video files with PyAV (visrc.data.video_files): lazy decoding in display order with the file's fps,
one-line errors for undecodable files, the streaming writer, and the video sources a user hands in.
Also ``write_test_video`` / ``square_frame``, which the model tests (test_infer_videos.py) reuse."""
import numpy as np
import pytest

from visrc.data.video_files import (VideoFile, VideoWriter, find_video_sources, frame_folder_entry,
                                    sources_to_ytvis, spool_frames, video_file_entry)

H, W, N = 64, 96, 12


def square_frame(t: int, h: int = H, w: int = W) -> np.ndarray:
    """(h, w, 3) uint8 RGB: a dark frame with a bright square whose left edge is at x = 4 + 6 t."""
    a = np.full((h, w, 3), 40, np.uint8)
    a[20:44, 4 + 6 * t:28 + 6 * t] = (230, 200, 60)
    return a


def square_x(rgb: np.ndarray) -> int:
    """The left edge of the bright square of :func:`square_frame` (a frame-dependent property)."""
    return int(np.argmax(rgb[32].astype(int).sum(-1) > 450))


def write_test_video(path, n: int = N, fps: float = 6.0):
    with VideoWriter(path, fps=fps) as w:
        for t in range(n):
            w.write(square_frame(t))
    return path


def write_test_folder(folder, n: int = N, suffix: str = ".jpg"):
    """Frames ``1.jpg ... n.jpg`` (a plain string sort would give 1, 10, 11, 12, 2, ...)."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    for t in range(n):
        Image.fromarray(square_frame(t)).save(folder / f"{t + 1}{suffix}")
    return folder


@pytest.mark.parametrize("suffix", [".mp4", ".avi", ".mkv"])
def test_written_video_decodes_in_order_with_its_fps(tmp_path, suffix):
    path = write_test_video(tmp_path / f"clip{suffix}", fps=7.5)
    video = VideoFile(path)
    assert (video.width, video.height) == (W, H) and video.fps == pytest.approx(7.5)
    assert video.count_frames() == N
    frames = list(video)
    assert len(frames) == N and all(f.shape == (H, W, 3) and f.dtype == np.uint8 for f in frames)
    assert [square_x(f) for f in frames] == [4 + 6 * t for t in range(N)]
    # RGB: the square is (230, 200, 60) up to compression, red above blue
    r, g, b = frames[0][32, 16].astype(int)
    assert r > g > b and abs(r - 230) < 25 and abs(b - 60) < 25
    assert not list(tmp_path.glob(".*tmp*")), "the writer's temp file is gone"


def test_odd_frame_size_is_padded_and_a_failed_write_leaves_nothing(tmp_path):
    with VideoWriter(tmp_path / "odd.mp4", fps=5) as w:
        for t in range(3):
            w.write(square_frame(t, 63, 95))
    assert (VideoFile(tmp_path / "odd.mp4").width, VideoFile(tmp_path / "odd.mp4").height) == (96, 64)
    with pytest.raises(ValueError, match="frame 1 is 96x64, frame 0 was 95x63"):
        with VideoWriter(tmp_path / "bad.mp4") as w:
            w.write(square_frame(0, 63, 95))
            w.write(square_frame(1))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["odd.mp4"]
    with pytest.raises(ValueError, match="unsupported video suffix"):
        VideoWriter(tmp_path / "x.png")


def test_undecodable_and_missing_video_files_name_the_file(tmp_path):
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"this is not a video" * 20)
    with pytest.raises(ValueError, match=r"junk\.mp4: not a decodable video"):
        VideoFile(junk)
    with pytest.raises(FileNotFoundError, match=r"nope\.mp4: no such video file"):
        VideoFile(tmp_path / "nope.mp4")
    audio_only = tmp_path / "silence.mkv"
    import av
    with av.open(str(audio_only), "w") as c:
        s = c.add_stream("pcm_s16le", rate=8000)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 800), np.int16), format="s16", layout="mono")
        frame.sample_rate = 8000
        for p in s.encode(frame):
            c.mux(p)
    with pytest.raises(ValueError, match="silence.mkv: no video stream"):
        VideoFile(audio_only)


def test_truncated_video_fails_with_the_file_name_or_ends_early(tmp_path):
    path = write_test_video(tmp_path / "clip.mp4", n=30)
    data = path.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])
    try:
        n = len(list(VideoFile(cut)))
    except ValueError as e:          # the moov atom is at the end: the header itself is gone
        assert "cut.mp4" in str(e)
    else:
        assert n < 30


def test_spool_keeps_one_lossless_frame_on_disk(tmp_path):
    from PIL import Image

    seen = []
    for t, path in spool_frames((square_frame(t) for t in range(4)), tmp_path / "spool"):
        assert sorted(p.name for p in (tmp_path / "spool").iterdir()) == [path.name]
        np.testing.assert_array_equal(np.asarray(Image.open(path).convert("RGB")), square_frame(t))
        seen.append(t)
    assert seen == [0, 1, 2, 3] and not list((tmp_path / "spool").iterdir())


def test_sources_entries_and_natural_order(tmp_path):
    write_test_video(tmp_path / "src" / "b_clip.mp4")
    write_test_folder(tmp_path / "src" / "a_frames")
    (tmp_path / "src" / "notes.txt").write_text("ignored")
    (tmp_path / "src" / "empty").mkdir()
    found = find_video_sources([tmp_path / "src"])
    assert [p.name for p in found] == ["a_frames", "b_clip.mp4"]
    entry = frame_folder_entry(tmp_path / "src" / "a_frames", 3, root=tmp_path / "src")
    assert entry["file_names"] == [f"a_frames/{t}.jpg" for t in range(1, N + 1)]
    assert (entry["id"], entry["height"], entry["width"], entry["length"]) == (3, H, W, N)
    v = video_file_entry(tmp_path / "src" / "b_clip.mp4", 4)
    assert (v["length"], v["height"], v["width"], v["fps"], v["file_names"]) == (N, H, W, 6.0, [])
    data = sources_to_ytvis([tmp_path / "src"], ["fish", "car"])
    assert [v["id"] for v in data["videos"]] == [1, 2] and data["categories"][1] == dict(id=2, name="car")
    assert data["videos"][0]["file_names"][0] == str((tmp_path / "src" / "a_frames" / "1.jpg").resolve())
    with pytest.raises(ValueError, match="holds no video file"):
        find_video_sources([tmp_path / "src" / "empty"])
    with pytest.raises(ValueError, match="notes.txt: not a video file"):
        find_video_sources([tmp_path / "src" / "notes.txt"])
    with pytest.raises(FileNotFoundError, match="nothing_here"):
        find_video_sources([tmp_path / "nothing_here"])


def test_frames_of_mixed_sizes_are_refused(tmp_path):
    from PIL import Image

    write_test_folder(tmp_path / "v", n=3)
    Image.new("RGB", (50, 30)).save(tmp_path / "v" / "4.jpg")
    with pytest.raises(ValueError, match=r"4\.jpg: frame is 50x30, 1\.jpg of the same video is 96x64"):
        frame_folder_entry(tmp_path / "v", 1)


def test_check_frame_names_a_truncated_jpeg(tmp_path):
    from visrc.data.frames import check_frame

    write_test_folder(tmp_path, n=2)
    check_frame(tmp_path / "1.jpg")
    data = (tmp_path / "2.jpg").read_bytes()
    (tmp_path / "2.jpg").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=r"2\.jpg: not a decodable image \(truncated\)"):
        check_frame(tmp_path / "2.jpg")
    with pytest.raises(FileNotFoundError, match=r"3\.jpg: no such frame"):
        check_frame(tmp_path / "3.jpg")
