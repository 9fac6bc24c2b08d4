"""The toy COCO pretraining (paper 4.1: networks pretrained on MS COCO) as a cached run, once per
backbone.

:func:`pretrained_checkpoint` trains (once, :func:`visrc.experiments.runs.train_cached`) the image
Mask R-CNN of :data:`PRETRAIN_CONFIGS` for a video config's backbone on the data root's still-image
set (``coco/``) and returns its checkpoint; a video run starts from it with
``train_cached(config, ..., init=pretrained_checkpoint(config, data_root))``. The pretraining
configs are the toy ones: a paper config (ResNeSt, Swin-S) loads a model-zoo checkpoint instead
(``init_checkpoint`` / ``visrc train --init``, docs/pretraining.md).
"""
from __future__ import annotations

import functools
from pathlib import Path

from visrc.experiments import slots
from visrc.experiments.runs import train_cached

PRETRAIN_CONFIGS = {"resnet": "toy_pretrain_coco", "swin": "toy_pretrain_coco_swin"}
_BACKBONE_FAMILY = {"ResNet": "resnet", "ResNetV1d": "resnet", "ResNeXt": "resnet", "ResNeSt": "resnet",
                    "SwinTransformer": "swin"}


def backbone_of(config) -> str:
    """``"resnet"`` or ``"swin"``: the family of the config's backbone type (``model.detector.backbone``
    of a video model, ``model.backbone`` of an image detector), read from the loaded config, not
    from its name. Another backbone is a ``ValueError`` naming the config and the type."""
    from visrc.models.config import load_config

    cfg = load_config(config)
    model = cfg.model
    backbone = (model.get("detector") or model).get("backbone") or {}
    kind = backbone.get("type")
    if kind not in _BACKBONE_FAMILY:
        raise ValueError(f"{config}: model backbone type {kind!r} has no toy pretraining "
                         f"(known: {', '.join(sorted(_BACKBONE_FAMILY))})")
    return _BACKBONE_FAMILY[kind]


def pretrained_checkpoint(config, data_root: str | Path, seed: int = 0,
                          max_epochs: int | None = None) -> Path:
    """The checkpoint of the toy COCO pretraining for ``config``'s backbone on ``data_root`` (trained
    on first use, cached like every run; ``max_epochs`` shortens its schedule, e.g. quick mode).
    Every video model waits for one, so it takes the machine's slots first (:data:`slots.PRETRAINING`)."""
    with slots.slot_priority(slots.PRETRAINING):
        return train_cached(PRETRAIN_CONFIGS[backbone_of(config)], data_root, seed=seed, max_epochs=max_epochs)


def resolve_init(config, data_root: str | Path, init, pretrain_epochs: int | None = None) -> Path | None:
    """The checkpoint a video run of ``config`` starts from: ``init="pretrained"`` the toy COCO
    pretraining of its backbone (:func:`pretrained_checkpoint`, ``pretrain_epochs`` its schedule),
    ``None`` random weights, anything else a checkpoint path (which must exist)."""
    if init is None:
        return None
    if init == "pretrained":
        return pretrained_checkpoint(config, data_root, max_epochs=pretrain_epochs)
    if not Path(init).is_file():
        raise FileNotFoundError(f"{init}: no such init checkpoint (use 'pretrained', None or a .pth file)")
    return Path(init)


def init_of(config, data_root: str | Path, init, pretrain_epochs: int | None = None):
    """:func:`resolve_init` for a :func:`~visrc.experiments.runs.train_many` job, deferred: the job calls it
    in its own thread, so a model whose backbone's pretraining is done starts training while another
    backbone's pretraining still runs."""
    return functools.partial(resolve_init, config, data_root, init, pretrain_epochs)


def init_label(init) -> str:
    """How a table records a row's init: ``"toy COCO pretraining"``, ``"random"`` or the path."""
    if init is None:
        return "random"
    return "toy COCO pretraining" if init == "pretrained" else str(init)


def cached_init(config, data_root: str | Path, init, pretrain_epochs: int | None = None):
    """:func:`resolve_init` without training: the init checkpoint if it is available now, ``None``
    for random weights, ``False`` when the pretraining it names has not been trained yet."""
    from visrc.experiments.runs import run_dir
    from visrc.fileio import read_json

    if init != "pretrained":
        return resolve_init(config, data_root, init)
    done = run_dir(PRETRAIN_CONFIGS[backbone_of(config)], data_root, 0, pretrain_epochs) / "final_checkpoint.json"
    return Path(read_json(done)["checkpoint"]) if done.is_file() else False
