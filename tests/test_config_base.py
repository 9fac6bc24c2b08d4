"""The packaged configs after the model block moved into ``visrc/configs/_base_/``: every config
resolves to exactly the values it had before (tests/reference/resolved_configs.json, dumped from
the configs as they were before the move), the four roots inherit the model block instead of
defining it, and the base is found by path resolution and packaging but not listed as a config.

Regenerate the reference only for an intended change of a config's values:
    python -c "import visrc, tests.test_config_base as t; t.write_reference()"
"""
from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

import visrc  # noqa: F401  before mmdet (mmcv-lite's ops)
from visrc.models.config import CONFIG_DIR, available_configs, load_config, resolve_config_path

REFERENCE = Path(__file__).parent / 'reference' / 'resolved_configs.json'
BASE = '_base_/mask_rcnn_p7_track.py'        # the model block
RUNTIME = '_base_/default_runtime.py'       # runner, hooks, logging, no evaluation loops
ROOTS = ('toy_baseline', 'toy_pretrain_coco', 'paper_s50', 'paper_s50_full')


def _resolved(name: str) -> dict:
    """The config's resolved values after the reference's own json round trip."""
    cfg = load_config(name)
    return json.loads(json.dumps(cfg.to_dict(), sort_keys=True, default=repr))


def write_reference() -> None:
    REFERENCE.write_text(json.dumps({n: _resolved(n) for n in available_configs()},
                                    sort_keys=True, indent=1) + '\n')


def _reference() -> dict:
    return json.loads(REFERENCE.read_text())


def _diff(a, b, path='') -> list[str]:
    """Where two json values differ, as dotted paths (the first few)."""
    if isinstance(a, dict) and isinstance(b, dict):
        out = [f'{path}.{k}: only in {"config" if k in a else "reference"}' for k in a.keys() ^ b.keys()]
        for k in a.keys() & b.keys():
            out += _diff(a[k], b[k], f'{path}.{k}')
        return out
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [d for i, (x, y) in enumerate(zip(a, b)) for d in _diff(x, y, f'{path}[{i}]')]
    return [] if a == b else [f'{path}: {a!r} != {b!r}']


def test_reference_covers_every_config():
    assert sorted(_reference()) == available_configs()


@pytest.mark.parametrize('name', available_configs())
def test_resolved_config_unchanged(name):
    got, want = _resolved(name), _reference()[name]
    assert got == want, '\n'.join(sorted(_diff(got, want))[:20])
    # the same text too (1 == 1.0 as values): the run cache's key (visrc.experiments.runs hashes
    # this dump) is unchanged, so cached runs of every config stay valid
    assert json.dumps(got, sort_keys=True) == json.dumps(want, sort_keys=True)
    assert got['custom_imports']['imports'] == ['visrc.registry']


def _assigned_names(path: Path) -> dict[str, ast.expr]:
    tree = ast.parse(path.read_text())
    return {t.id: node.value for node in tree.body if isinstance(node, ast.Assign)
            for t in node.targets if isinstance(t, ast.Name)}


@pytest.mark.parametrize('name', ROOTS)
def test_roots_inherit_the_model_block(name):
    names = _assigned_names(CONFIG_DIR / f'{name}.py')
    assert ast.literal_eval(names['_base_']) == [f'./{BASE}', f'./{RUNTIME}']
    # the model is the base's: a root overrides keys of it, it does not define the block again
    model = names.get('model')
    src = ast.unparse(model) if model is not None else ''
    for key in ('QuasiDenseEmbedHead', 'AnchorGenerator', 'DeltaXYWHBBoxCoder', 'MaxIoUAssigner'):
        assert key not in src, f'{name} defines {key} again'
    # the bases' (a paper root overrides keys of default_hooks / env_cfg / log_processor only)
    for key in ('custom_imports', 'default_scope', 'fpn_strides', 'runner_type', 'custom_hooks',
                'randomness', 'val_dataloader', 'test_evaluator'):
        assert key not in names, f'{name} defines {key} again'


@pytest.mark.parametrize('rel', [BASE, RUNTIME])
def test_bases_are_one_level_and_not_configs(rel):
    base = CONFIG_DIR / rel
    assert '_base_' not in _assigned_names(base)            # one _base_ level for the roots
    assert '_base_' not in available_configs() and base.stem not in available_configs()
    assert Path(resolve_config_path(str(base))) == base
    with pytest.raises(FileNotFoundError):
        resolve_config_path(base.stem)                       # not a packaged config name


def test_base_is_packaged():
    """pyproject's package discovery ships visrc/configs/_base_/ (its __init__.py makes it a package,
    so its .py files are modules of the wheel, as the root configs are): an installed visrc's roots
    resolve their _base_."""
    import tomllib

    from setuptools import find_packages

    root = Path(__file__).parent.parent
    find = tomllib.loads((root / 'pyproject.toml').read_text())['tool']['setuptools']['packages']['find']
    assert 'visrc.configs._base_' in find_packages(str(root), include=find['include'])
