"""visrc.fileio: atomic writes (old file or whole new file, never a torn one) and read_json errors."""
from __future__ import annotations

import json
import os

import pytest

from visrc import fileio as vio


class Boom(RuntimeError):
    pass


def listing(d):
    return sorted(p.name for p in d.iterdir())


def test_write_and_overwrite(tmp_path):
    p = tmp_path / "a.bin"
    assert vio.atomic_write_bytes(p, b"one") == p
    assert p.read_bytes() == b"one"
    vio.atomic_write_bytes(str(p), b"two")  # str paths too
    assert p.read_bytes() == b"two"
    assert listing(tmp_path) == ["a.bin"]


def test_creates_missing_parent_dirs(tmp_path):
    p = tmp_path / "x" / "y" / "z.txt"
    vio.atomic_write_text(p, "hello")
    assert p.read_text() == "hello"


def half_writer(f):
    f.write(b"partial new content")
    f.flush()
    raise Boom("writer died midway")


def test_writer_raising_midway_keeps_old_file(tmp_path):
    p = tmp_path / "result.json"
    p.write_bytes(b'{"old": 1}')
    with pytest.raises(Boom):
        vio.atomic_write(p, half_writer)
    assert p.read_bytes() == b'{"old": 1}'
    assert listing(tmp_path) == ["result.json"]  # no temp file left behind


def test_writer_raising_without_old_file_leaves_nothing(tmp_path):
    with pytest.raises(Boom):
        vio.atomic_write(tmp_path / "new.bin", half_writer)
    assert listing(tmp_path) == []


def test_keyboard_interrupt_also_cleans_up(tmp_path):
    p = tmp_path / "ckpt.pth"
    p.write_bytes(b"old")

    def interrupted(f):
        f.write(b"x" * 1000)
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        vio.atomic_write(p, interrupted)
    assert p.read_bytes() == b"old"
    assert listing(tmp_path) == ["ckpt.pth"]


def test_json_serialisation_error_keeps_old_file(tmp_path):
    p = tmp_path / "r.json"
    vio.atomic_write_json(p, {"ok": True})
    with pytest.raises(TypeError):
        vio.atomic_write_json(p, {"a": list(range(10000)), "bad": object()})
    assert json.loads(p.read_text()) == {"ok": True}
    assert listing(tmp_path) == ["r.json"]


def test_failed_rename_keeps_old_file(tmp_path, monkeypatch):
    p = tmp_path / "f.txt"
    p.write_text("old")

    def failing_replace(src, dst):
        raise OSError("disk gone")

    monkeypatch.setattr(vio.os, "replace", failing_replace)
    with pytest.raises(OSError, match="disk gone"):
        vio.atomic_write_text(p, "new")
    assert p.read_text() == "old"
    assert listing(tmp_path) == ["f.txt"]


def test_temp_file_lives_beside_target(tmp_path, monkeypatch):
    seen = []
    real_replace = os.replace

    def spy(src, dst):
        seen.append((os.path.dirname(src), os.path.basename(src)))
        return real_replace(src, dst)

    monkeypatch.setattr(vio.os, "replace", spy)
    vio.atomic_write_text(tmp_path / "t.txt", "x")
    (d, name), = seen
    assert d == str(tmp_path) and name.startswith(".t.txt.") and name.endswith(".tmp")


def test_new_content_complete_when_writer_succeeds(tmp_path):
    p = tmp_path / "big.bin"
    data = os.urandom(1 << 20)
    vio.atomic_write_bytes(p, data)
    assert p.read_bytes() == data


def test_written_file_mode_follows_umask(tmp_path):
    old = os.umask(0o022)
    try:
        p = vio.atomic_write_text(tmp_path / "fig.txt", "x")
        ref = tmp_path / "plain.txt"
        ref.write_text("x")
    finally:
        os.umask(old)
    assert oct(p.stat().st_mode & 0o777) == oct(ref.stat().st_mode & 0o777)


def test_json_round_trip_compact_and_indented(tmp_path):
    obj = {"videos": [{"id": 1, "name": "ü"}], "x": [1.5, None, True]}
    p = vio.atomic_write_json(tmp_path / "c.json", obj)
    assert "\n" not in p.read_text() and ", " not in p.read_text()
    assert vio.read_json(p) == obj
    q = vio.atomic_write_json(tmp_path / "i.json", obj, indent=2)
    assert "\n" in q.read_text()
    assert vio.read_json(q) == obj


def test_read_json_names_file_and_line(tmp_path):
    p = tmp_path / "broken.json"
    p.write_text('{\n  "a": 1,\n  "b": [1, 2,, 3]\n}\n')
    with pytest.raises(ValueError) as e:
        vio.read_json(p)
    msg = str(e.value)
    assert str(p) in msg and "line 3" in msg and "column" in msg


def test_read_json_truncated_file(tmp_path):
    p = tmp_path / "trunc.json"
    p.write_text('{"videos": [{"id": 1}, ')
    with pytest.raises(ValueError, match=r"trunc\.json.*line 1"):
        vio.read_json(p)


def test_read_json_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.json"):
        vio.read_json(tmp_path / "nope.json")
    with pytest.raises(FileNotFoundError):
        vio.read_json(tmp_path)  # a directory is not a file


def test_read_json_binary_file_names_file(tmp_path):
    p = tmp_path / "image.json"
    p.write_bytes(b"\xff\xd8\xff\xe0 not json")
    with pytest.raises(ValueError, match="image.json"):
        vio.read_json(p)
