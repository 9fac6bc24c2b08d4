"""``visrc openimages-to-coco``: the released OpenImages layout (tests/realformat.py) converted as
``python -m visrc.data.openimages`` does, outputs checked first, and one-line errors naming the file."""
from __future__ import annotations

import json
import shutil

import pytest
from realformat import write_openimages

from visrc.cli import SUBCOMMANDS, main
from visrc.data import openimages


@pytest.fixture(scope="module")
def layout(tmp_path_factory):
    return write_openimages(tmp_path_factory.mktemp("oi"))


def _argv(files, out, **replace) -> list[str]:
    args = {"--boxes": files["boxes"], "--classes": files["classes"], "--images": files["images"],
            "--segmentation": files["segmentation"], "--masks": files["masks"], "--version": "2021",
            "--out": out, **replace}
    return [str(v) for kv in ((k, v) for k, v in args.items() if v is not None) for v in kv]


def test_subcommand_writes_what_the_module_writes(layout, tmp_path, capsys):
    assert SUBCOMMANDS["openimages-to-coco"][0] == "visrc.data.openimages"
    out = tmp_path / "sub" / "oi.json"
    assert main(["openimages-to-coco"] + _argv(layout, out)) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith(f"{out}: 3 images, ")              # the image without a target class is dropped
    assert openimages.main(_argv(layout, tmp_path / "module.json")) == 0
    got, ref = json.loads(out.read_text()), json.loads((tmp_path / "module.json").read_text())
    assert got == ref and {c["name"] for c in got["categories"]} >= {"Dog", "Mouse", "Flying disc"}
    assert any(not a["weak_mask"] and "segmentation" in a for a in got["annotations"])


def _one_error(capsys, *expected: str) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert err.startswith("visrc openimages-to-coco: error: "), err
    assert all(e in err for e in expected), (expected, err)
    return err


def test_missing_inputs_and_bad_options_are_one_line(layout, tmp_path, capsys):
    out = tmp_path / "oi.json"
    missing = tmp_path / "no-such.csv"
    assert main(["openimages-to-coco"] + _argv(layout, out, **{"--boxes": missing})) == 1
    _one_error(capsys, str(missing), "no such file")
    assert main(["openimages-to-coco"] + _argv(layout, out, **{"--images": tmp_path / "nope"})) == 1
    _one_error(capsys, str(tmp_path / "nope"), "no such image folder")
    assert main(["openimages-to-coco"] + _argv(layout, out, **{"--masks": None})) == 1
    _one_error(capsys, "--segmentation and --masks go together")
    assert main(["openimages-to-coco"] + _argv(layout, tmp_path)) == 1       # --out is a folder
    _one_error(capsys, str(tmp_path), "is a directory")
    assert not out.exists()


def test_broken_files_are_one_line_naming_the_file(layout, tmp_path, capsys):
    out = tmp_path / "oi.json"
    binary = tmp_path / "boxes.csv"
    binary.write_bytes(b"\xff\xfe\x00garbage\x00")
    assert main(["openimages-to-coco"] + _argv(layout, out, **{"--boxes": binary})) == 1
    _one_error(capsys, str(binary), "not a readable UTF-8 CSV")

    no_column = tmp_path / "classes-bad.csv"
    no_column.write_text("LabelName,DisplayName\nDog\n")
    assert main(["openimages-to-coco"] + _argv(layout, out, **{"--classes": no_column})) == 1
    _one_error(capsys, f"{no_column}:2", "expected 'MID,DisplayName'")

    images = tmp_path / "images"
    shutil.copytree(layout["images"], images)
    bad = sorted(images.glob("*.jpg"))[0]
    bad.write_bytes(b"not a jpeg")
    assert main(["openimages-to-coco"] + _argv(layout, out, **{"--images": images})) == 1
    _one_error(capsys, str(bad), "not a decodable image")

    masks = tmp_path / "masks"
    shutil.copytree(layout["masks"], masks)
    png = sorted(masks.rglob("*.png"))[0]
    png.write_bytes(png.read_bytes()[:60])                           # a truncated PNG
    assert main(["openimages-to-coco"] + _argv(layout, out, **{"--masks": masks})) == 1
    _one_error(capsys, str(png), "not a decodable image")
    assert not out.exists()
