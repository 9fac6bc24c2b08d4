"""environment.yml and pyproject.toml describe the same environment."""
import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _norm(req: str) -> tuple[str, str]:
    name, spec = re.match(r"^\s*([A-Za-z0-9_.\-]+)\s*(.*)$", req).groups()
    return name.lower().replace("_", "-"), spec.replace(" ", "")


def test_environment_yml_matches_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = dict(_norm(r) for r in project["dependencies"] + project["optional-dependencies"]["dev"])
    text = (ROOT / "environment.yml").read_text()
    pip_section = text.split("- pip:", 1)[1]
    conda = dict(_norm(r) for r in re.findall(r"^\s+- ([A-Za-z].*)$", pip_section, flags=re.M))
    assert "python=3.11" in text
    # mmcv-lite: pure Python, no compiler (visrc.ops provides the compiled ops mmdet calls)
    assert reqs["mmcv-lite"] == "==2.1.0" and "mmcv" not in reqs
    assert conda == reqs


def test_pins():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    deps = dict(_norm(r) for r in project["dependencies"])
    assert deps["torch"] == "==2.13.0" and deps["mmdet"] == "==3.3.0" and deps["mmengine"] == "==0.10.7"
    assert "torchvision" not in deps
    constraints = (ROOT / "constraints.txt").read_text()
    assert "torch==2.13.0" in constraints and "mmcv-lite==2.1.0" in constraints
