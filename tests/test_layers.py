"""The package's import layers: a module imports its own layer or lower ones, never a higher one.
Imports inside functions count too: a lazy import is still a dependency.

The layers are the table in ``docs/architecture.md`` ("## Layers"), read here: one row per layer,
lowest first, its modules in backticks. A name covers its submodules, except the package root
``visrc``, which is that module alone. The modules are parsed, not imported, so the test needs
neither torch nor mmdet.
"""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "visrc"
ARCHITECTURE = PACKAGE.parent / "docs" / "architecture.md"


def read_layers(text: str) -> tuple[dict[str, int], tuple[str, ...]]:
    """module -> rank and the layer names, from the first table after ``## Layers``."""
    lines = text.split("## Layers", 1)[1].splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("|"))
    table = lines[start:next((i for i in range(start, len(lines)) if not lines[i].startswith("|")), len(lines))]
    rows = [line for line in table if not line.startswith("|--")]
    layers, names = {}, []
    for row in rows[1:]:                              # rows[0] is the header
        name, modules = (cell.strip() for cell in row.strip("|").split("|")[:2])
        for module in re.findall(r"`(visrc[\w.]*)`", modules):
            layers[module] = len(names)
        names.append(name)
    return layers, tuple(names)


LAYERS, LAYER_NAMES = read_layers(ARCHITECTURE.read_text())


def module_name(path: Path) -> str:
    """``.../visrc/data/toy.py`` -> ``visrc.data.toy``; a package's ``__init__.py`` -> the package."""
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer(module: str) -> int | None:
    """The layer of ``module`` (longest listed prefix; the root ``visrc`` only itself); None if no
    entry covers it."""
    if module == "visrc":
        return LAYERS.get("visrc")
    parts = module.split(".")
    for n in range(len(parts), 1, -1):
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


def test_the_table_is_read():
    assert LAYER_NAMES[:3] == ("base", "ops", "data") and LAYER_NAMES[-1] == "top"
    assert len(LAYERS) >= 15


@pytest.mark.parametrize("module, name", [("visrc", "top"), ("visrc.paths", "base"), ("visrc.ops.nms", "ops"),
                                          ("visrc.data.toy", "data"), ("visrc.analysis.overlap", "data"),
                                          ("visrc.registry", "models"), ("visrc.configs.toy_baseline", "models"),
                                          ("visrc.tracking.bitrack", "tracking"),
                                          ("visrc.evaluation.export", "ensemble / evaluation"),
                                          ("visrc.experiments.table1", "top"), ("visrc.demo_cli", "top")])
def test_layer_lookup(module, name):
    assert LAYER_NAMES[layer(module)] == name


def test_an_unlisted_module_has_no_layer():
    assert layer("visrc.somewhere_new") is None
