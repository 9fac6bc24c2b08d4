"""The package's import layers (docs: DESIGN.md section 6): a module imports its own layer or lower ones,
never a higher one. Imports inside functions count too: a lazy import is still a dependency.

Layers, lowest first::

    0 base        visrc (the package __init__), visrc.fileio, visrc.paths, visrc.numerics
    1 data        visrc.data.*, visrc.analysis.*
    2 models      visrc.models.*, visrc.registry, visrc.configs.*
    3 tracking    visrc.tracking.*
    4 ensemble /  visrc.ensemble.*, visrc.evaluation.*
      evaluation
    5 top         visrc.pipeline, visrc.experiments.*, visrc.viz.*, visrc.reproduce, visrc.cli,
                  visrc.__main__, visrc.infer_cli, visrc.demo_cli

The modules are parsed, not imported, so the test needs neither torch nor mmdet.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "visrc"

LAYERS = {
    "visrc": 0, "visrc.fileio": 0, "visrc.paths": 0, "visrc.numerics": 0,
    "visrc.data": 1, "visrc.analysis": 1,
    "visrc.models": 2, "visrc.registry": 2, "visrc.configs": 2,
    "visrc.tracking": 3,
    "visrc.ensemble": 4, "visrc.evaluation": 4,
    "visrc.pipeline": 5, "visrc.experiments": 5, "visrc.viz": 5, "visrc.reproduce": 5, "visrc.cli": 5,
    "visrc.__main__": 5, "visrc.infer_cli": 5, "visrc.demo_cli": 5,
}
LAYER_NAMES = ("base", "data", "models", "tracking", "ensemble/evaluation", "top")


def module_name(path: Path) -> str:
    """``.../visrc/data/toy.py`` -> ``visrc.data.toy``; a package's ``__init__.py`` -> the package."""
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer(module: str) -> int | None:
    """The layer of ``module`` (longest listed prefix); None if no entry covers it. A package's
    ``__init__`` takes the package's entry, so ``visrc`` itself is base while ``visrc.cli`` is top."""
    parts = module.split(".")
    for n in range(len(parts), 0, -1):
        rank = LAYERS.get(".".join(parts[:n]))
        if rank is not None:
            return rank
    return None


def _is_module(name: str) -> bool:
    p = PACKAGE.parent.joinpath(*name.split("."))
    return p.with_suffix(".py").is_file() or (p / "__init__.py").is_file()


def imported_modules(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every visrc import in ``path``, at any depth (functions, classes, ``if``
    blocks). ``from visrc.x import y`` counts as ``visrc.x.y`` when y is a submodule."""
    tree = ast.parse(path.read_text(), filename=str(path))
    this = module_name(path)
    package = this if path.name == "__init__.py" else this.rpartition(".")[0]
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names if a.name.split(".")[0] == "visrc"]
        elif isinstance(node, ast.ImportFrom):
            if node.level:                                   # relative: from package of this module
                base = package.split(".")
                base = base[:len(base) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            if mod.split(".")[0] != "visrc":
                continue
            for a in node.names:
                sub = f"{mod}.{a.name}"
                out.append((node.lineno, sub if _is_module(sub) else mod))
    return sorted(out)


def modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


def violations() -> list[str]:
    found = []
    for path in modules():
        mine = layer(module_name(path))
        for line, imported in imported_modules(path):
            theirs = layer(imported)
            if theirs is not None and mine is not None and theirs > mine:
                found.append(f"{path.relative_to(PACKAGE.parent)}:{line}: {module_name(path)} "
                             f"({LAYER_NAMES[mine]}) imports {imported} ({LAYER_NAMES[theirs]})")
    return found


def test_every_module_has_a_layer():
    assert len(modules()) > 30
    unassigned = [module_name(p) for p in modules() if layer(module_name(p)) is None]
    assert not unassigned, f"add these modules to LAYERS: {unassigned}"


def test_no_module_imports_a_higher_layer():
    found = violations()
    assert not found, "imports from a higher layer:\n" + "\n".join(found)


def test_every_visrc_import_names_an_existing_module():
    """A stale path after a move (e.g. ``visrc.io``) is caught here, even inside a function."""
    missing = [f"{p.relative_to(PACKAGE.parent)}:{line}: {m}" for p in modules()
               for line, m in imported_modules(p) if not _is_module(m)]
    assert not missing, "imports of modules that do not exist:\n" + "\n".join(missing)


def test_checker_sees_lazy_relative_and_submodule_imports(tmp_path, monkeypatch):
    """The checker itself: a lazy import inside a function and a relative one are both found."""
    pkg = tmp_path / "visrc"
    (pkg / "data").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "pipeline.py").write_text("")
    (pkg / "data" / "__init__.py").write_text("")
    (pkg / "data" / "toy.py").write_text(
        "import os\n"
        "from . import other\n"
        "def f():\n"
        "    from visrc import pipeline\n"
        "    import visrc.fileio\n")
    (pkg / "data" / "other.py").write_text("")
    monkeypatch.setattr(f"{__name__}.PACKAGE", pkg)
    assert imported_modules(pkg / "data" / "toy.py") == [(2, "visrc.data.other"), (4, "visrc.pipeline"),
                                                        (5, "visrc.fileio")]
    assert violations() == ["visrc/data/toy.py:4: visrc.data.toy (data) imports visrc.pipeline (top)"]


@pytest.mark.parametrize("module, rank", [("visrc", 0), ("visrc.paths", 0), ("visrc.data.toy", 1),
                                          ("visrc.analysis.overlap", 1), ("visrc.registry", 2),
                                          ("visrc.configs.toy_baseline", 2), ("visrc.tracking.bitrack", 3),
                                          ("visrc.evaluation.export", 4), ("visrc.experiments.table1", 5),
                                          ("visrc.demo_cli", 5)])
def test_layer_lookup(module, rank):
    assert layer(module) == rank
