import json
import subprocess
import sys

from visrc.cli import main


def test_help_and_unknown(capsys):
    assert main([]) == 0
    assert "make-toy" in capsys.readouterr().out
    try:
        main(["no-such-command"])
    except SystemExit as e:
        assert e.code == 2


def test_make_toy_and_validate(tmp_path, capsys):
    out = tmp_path / "toy"
    assert main(["make-toy", "--out", str(out), "--preset", "small", "--seed", "3"]) == 0
    assert main(["validate", str(out / "valid" / "instances.json")]) == 0
    assert "OK" in capsys.readouterr().out
    data = json.loads((out / "valid" / "instances.json").read_text())
    data["annotations"][0]["bboxes"] = data["annotations"][0]["bboxes"][:-1]
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(data))
    assert main(["validate", str(bad)]) == 1
    err = capsys.readouterr().err
    assert "bad.json" in err and f"annotation id={data['annotations'][0]['id']}" in err and "'bboxes'" in err


def test_console_entry_point_runs():
    r = subprocess.run([sys.executable, "-m", "visrc", "--help"], capture_output=True, text=True)
    assert r.returncode == 0 and "validate" in r.stdout
