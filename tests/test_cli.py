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


def test_configs_lists_every_packaged_config_with_its_description(capsys):
    from visrc.models.config import CONFIG_DIR, available_configs

    assert main(["configs"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [ln.split()[0] for ln in lines] == available_configs() and "toy_baseline" in available_configs()
    row = dict(ln.split(None, 1) for ln in lines)
    first = (CONFIG_DIR / "toy_tcis.py").read_text().splitlines()[0].lstrip("# ")
    assert first.startswith(row["toy_tcis"]) and row["toy_tcis"] == 'Table 1 row "+TCIS" on the toy benchmark'
    assert all(len(text) <= 112 for text in row.values())


def test_unknown_config_names_point_to_visrc_configs():
    from visrc.models.config import resolve_config_path

    with pytest.raises(FileNotFoundError, match=r"toy_basline: .*did you mean toy_baseline\? available: .*"
                                                r"`visrc configs` describes them"):
        resolve_config_path("toy_basline")
