"""Config loading: a config name or path -> an mmengine ``Config`` with visrc's modules registered,
the model's class names, and the model built from it.
"""
from __future__ import annotations

import os
from pathlib import Path

from visrc.models.checkpoint import load_weights, register_safe_globals

CONFIG_DIR = Path(__file__).resolve().parent.parent / 'configs'


def load_config(config):
    """A config path (or a bare name of a file in ``visrc/configs``) or Config -> mmengine Config
    with visrc's and mmdet's modules registered."""
    from mmengine.config import Config
    from mmdet.utils import register_all_modules

    import visrc.registry  # noqa: F401  a Config built in memory has not run its custom_imports

    register_all_modules(init_default_scope=True)
    if isinstance(config, Config):
        return config
    return Config.fromfile(resolve_config_path(config))


def available_configs() -> list[str]:
    """The names of the configs packaged in ``visrc/configs``."""
    return sorted(p.stem for p in CONFIG_DIR.glob('*.py') if not p.name.startswith('_'))


def resolve_config_path(config: str | os.PathLike) -> str:
    """``toy_baseline`` / ``toy_baseline.py`` -> ``.../visrc/configs/toy_baseline.py``; paths as is.
    An unknown name raises ``FileNotFoundError`` listing the packaged configs."""
    p = Path(config)
    if p.is_file():
        return str(p)
    name = p.name if p.suffix == '.py' else p.name + '.py'
    packaged = CONFIG_DIR / name
    if packaged.is_file():
        return str(packaged)
    import difflib

    close = difflib.get_close_matches(p.stem, available_configs(), n=1)
    hint = f'did you mean {close[0]}? ' if close else ''
    raise FileNotFoundError(f'{config}: no such config file (nor visrc/configs/{name}); {hint}'
                            f'available: {", ".join(available_configs())} (`visrc configs` describes them)')


def config_classes(cfg) -> tuple[str, ...]:
    """The model's class names: ``cfg.classes``, else the train dataset's metainfo, else the
    YouTube-VIS class list of ``dataset_version``."""
    if cfg.get('classes'):
        return tuple(cfg.classes)
    ds = (cfg.get('train_dataloader') or {}).get('dataset', {})
    if ds.get('metainfo', {}).get('classes'):
        return tuple(ds['metainfo']['classes'])
    from mmdet.datasets import YouTubeVISDataset
    YouTubeVISDataset.set_dataset_classes(str(ds.get('dataset_version', '2021')))
    return tuple(YouTubeVISDataset.METAINFO['classes'])


def build_model(cfg, checkpoint: str | os.PathLike | None = None, device: str = 'cpu'):
    """Build ``cfg.model`` (eval mode) and load ``checkpoint`` with ``weights_only=True``."""
    from mmdet.registry import MODELS

    cfg = load_config(cfg)
    model = MODELS.build(cfg.model)
    if checkpoint is not None:
        load_weights(model, checkpoint)
    return model.to(device).eval()


register_safe_globals()
