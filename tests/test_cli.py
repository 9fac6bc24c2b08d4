"""The ``visrc`` command line: help, an unknown subcommand, make-toy + validate, the console entry point."""
import json
import subprocess
import sys

import pytest

from visrc.cli import SUBCOMMANDS, main


def test_help_and_unknown(capsys):
    assert main([]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in SUBCOMMANDS)
    assert main(["--help"]) == 0
    with pytest.raises(SystemExit) as exc:
        main(["no-such-command"])
    assert exc.value.code == 2
    assert "invalid choice: 'no-such-command'" in capsys.readouterr().err


def test_every_subcommand_module_imports_and_has_the_interface():
    import importlib

    for name, (module, _) in SUBCOMMANDS.items():
        mod = importlib.import_module(module)
        assert callable(mod.add_arguments) and callable(mod.run), name


def test_subcommand_help_exits_zero(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["validate", "--help"])
    assert exc.value.code == 0
    assert "usage: visrc validate" in capsys.readouterr().out


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
