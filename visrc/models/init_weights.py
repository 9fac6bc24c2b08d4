"""Initialise a model from a pretrained detector checkpoint (paper 4.1: the networks start from
MS COCO pretrained weights).

:func:`transfer_pretrained` loads an image-detector checkpoint (an mmdet model-zoo Mask R-CNN with
keys ``backbone.*``, ``neck.*``, ``rpn_head.*``, ``roi_head.*``, bare or under ``state_dict``; or a
visrc checkpoint, whose detector keys carry a ``detector.`` prefix) into a model (a ``VISQDTrack``
video model or a plain image detector), and returns an :class:`InitReport` of what happened:

* every checkpoint tensor whose mapped name and shape match a model tensor is copied
  (``backbone.x`` <-> ``detector.backbone.x``; a video checkpoint's ``track_head.*`` etc. only into
  a video model);
* class-indexed tensors (:func:`class_indexed_tensors`: box classifier rows, class-specific box
  regression rows, mask logits channels, mask-IoU rows, semantic-segmentation and multi-label
  outputs) are copied row by row for the classes whose names match between the checkpoint's and
  the model's class lists (:func:`match_classes`); the background row (mmdet: last) is always
  copied. A class-indexed tensor is never copied whole by shape alone: two class lists of equal
  length name different classes. The model's rows of unmatched classes (and of auxiliary classes,
  which have no name) keep their fresh initialisation;
* everything else keeps the model's fresh initialisation.

The checkpoint's classes come from its ``meta.dataset_meta.classes`` (mmengine writes it;
mmdet 2.x wrote ``meta.CLASSES``), else from ``src_classes``; with neither, every class-indexed
tensor is re-initialised and the report says so.

:class:`PretrainedInitHook` applies it in a training run (``visrc train --init CKPT``, or the
config key ``init_checkpoint``; :mod:`visrc.models.train_cli` adds the hook).
"""
from __future__ import annotations

import json
import os
import os.path as osp
from dataclasses import asdict, dataclass, field
from typing import Mapping, Optional, Sequence

import torch
from mmengine.dist import is_main_process
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.registry import HOOKS

from visrc.data.categories import COCO_ALIASES, build_category_map, normalize_name
from visrc.fileio import atomic_write_text
from visrc.models.checkpoint import CheckpointError, load_checkpoint_file

DETECTOR_PREFIX = 'detector.'    # VISQDTrack keeps its Mask R-CNN under `detector`
REPORT_FILE = 'init_report.json'


@dataclass(frozen=True)
class RowLayout:
    """How a class-indexed tensor's dim 0 is laid out: ``per_class`` rows for each of
    ``num_classes`` classes (class c at rows ``c*per_class .. (c+1)*per_class - 1``), then
    ``extra_rows`` class-independent rows (the background row of a softmax classifier)."""

    num_classes: int
    per_class: int = 1
    extra_rows: int = 0


def _class_indexed_layers(module) -> list[tuple[str, int, int]]:
    """(layer attribute, classes, rows per class) of the class-indexed layers of one head module."""
    from mmdet.models.roi_heads.bbox_heads import BBoxHead
    from mmdet.models.roi_heads.mask_heads import FCNMaskHead, MaskIoUHead

    from visrc.models.heads import MultiLabelClsHead, SemSegHead

    if isinstance(module, BBoxHead):
        out = [('fc_cls', module.num_classes, 1)] if module.with_cls else []
        if module.with_reg and not module.reg_class_agnostic:
            out.append(('fc_reg', module.num_classes, module.bbox_coder.encode_size))
        return out
    if isinstance(module, FCNMaskHead):
        return [] if module.class_agnostic else [('conv_logits', module.num_classes, 1)]
    if isinstance(module, MaskIoUHead):
        return [('fc_mask_iou', module.num_classes, 1)]
    if isinstance(module, SemSegHead):
        return [('conv_logits', module.num_classes, 1)]
    if isinstance(module, MultiLabelClsHead):
        return [(f'mlp.{len(module.mlp) - 1}', module.num_classes, 1)]
    return []


def class_indexed_tensors(model: torch.nn.Module) -> dict[str, RowLayout]:
    """State-dict key -> :class:`RowLayout` for every tensor of ``model`` whose rows are classes.

    Rows beyond the class rows (``extra_rows``) are read off the tensor: one for mmdet's softmax
    box classifier (background, last), none for sigmoid classifiers and the other heads."""
    state = model.state_dict()
    out = {}
    for name, module in model.named_modules():
        for attr, num_classes, per_class in _class_indexed_layers(module):
            for kind in ('weight', 'bias'):
                key = f'{name}.{attr}.{kind}' if name else f'{attr}.{kind}'
                if key in state:
                    extra = state[key].shape[0] - num_classes * per_class
                    out[key] = RowLayout(num_classes, per_class, max(extra, 0))
    return out


def match_classes(src_classes: Sequence[str], dst_classes: Sequence[str],
                  aliases: Optional[Mapping[str, Optional[str]]] = None) -> list[tuple[int, int]]:
    """(source index, model index) pairs of the same class, sorted by model index.

    Names match after :func:`visrc.data.categories.normalize_name`, or through ``aliases``
    (:data:`visrc.data.categories.COCO_ALIASES` for COCO checkpoints; an alias to ``None`` forbids
    a match). Each model class takes one source class, an exact name before an alias."""
    cmap = build_category_map([{'id': i, 'name': n} for i, n in enumerate(src_classes)], dst_classes,
                              aliases=aliases, unmatched='ignore')
    candidates = sorted(((normalize_name(src_classes[s]) != normalize_name(dst_classes[d]), s, d)
                         for s, d in cmap.items() if d is not None))
    taken, pairs = set(), []
    for _, s, d in candidates:
        if d not in taken:
            taken.add(d)
            pairs.append((s, d))
    return sorted(pairs, key=lambda p: p[1])


@dataclass
class InitReport:
    """What :func:`transfer_pretrained` did. Model tensors are named by the model's state-dict keys,
    checkpoint tensors by the checkpoint's (``module.`` stripped).

    Attributes:
        copied: model tensors copied whole from the checkpoint.
        class_rows: model tensor -> ``{"source", "pairs": [[checkpoint class, model class], ...],
            "background_rows", "fresh_rows": [model classes (or "aux<i>") kept fresh]}``.
        reinitialised: model tensors that got nothing (their fresh initialisation stays).
        unused: checkpoint tensors that went nowhere.
        skipped: the unused ones that had a model counterpart -> why not (shape, classes).
        notes: anything else a reader of the log needs (e.g. no source classes).
    """

    checkpoint: str
    src_classes: Optional[list] = None
    src_classes_from: Optional[str] = None     # 'checkpoint meta' | 'argument' | None
    dst_classes: Optional[list] = None
    copied: list = field(default_factory=list)
    class_rows: dict = field(default_factory=dict)
    reinitialised: list = field(default_factory=list)
    unused: list = field(default_factory=list)
    skipped: dict = field(default_factory=dict)
    notes: list = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)

    def to_json(self, indent: int = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    @staticmethod
    def prefixes(names: Sequence[str]) -> dict[str, int]:
        """Tensor names grouped by module (``detector.roi_head.tcis``, ``aux_heads.semseg``, ...) -> count."""
        out: dict[str, int] = {}
        for n in names:
            lead = DETECTOR_PREFIX if n.startswith(DETECTOR_PREFIX) else ''
            key = lead + '.'.join(n[len(lead):].split('.')[:2])
            out[key] = out.get(key, 0) + 1
        return out

    def summary(self) -> str:
        """A few lines for the training log."""
        total = len(self.copied) + len(self.class_rows) + len(self.reinitialised)
        pairs = sorted({tuple(p) for v in self.class_rows.values() for p in v['pairs']})
        matched = ', '.join(s if s == d else f'{s}->{d}' for s, d in pairs) or 'none'
        lines = [f'init from {self.checkpoint}: {len(self.copied)} of {total} model tensors copied, '
                 f'{len(self.class_rows)} class-indexed ones row by row (classes matched: {matched}), '
                 f'{len(self.reinitialised)} re-initialised; {len(self.unused)} checkpoint tensors unused']
        for label, names in (('re-initialised', self.reinitialised), ('unused', self.unused)):
            if names:
                lines.append(f'{label}: ' + ', '.join(f'{k} ({n})' for k, n in self.prefixes(names).items()))
        lines += [f'skipped {k}: {why}' for k, why in list(self.skipped.items())[:5]]
        if len(self.skipped) > 5:
            lines.append(f'... {len(self.skipped) - 5} more skipped (init_report.json lists them)')
        return '\n'.join(lines + self.notes)


def _checkpoint_classes(ckpt, path) -> Optional[list]:
    """``meta.dataset_meta.classes`` (mmengine) or ``meta.CLASSES`` (mmdet 2.x), else None."""
    meta = ckpt.get('meta') if isinstance(ckpt, dict) else None
    if not isinstance(meta, dict):
        return None
    for where, classes in (('meta.dataset_meta.classes', (meta.get('dataset_meta') or {}).get('classes')),
                           ('meta.CLASSES', meta.get('CLASSES'))):
        if classes is None:
            continue
        if isinstance(classes, str) or not all(isinstance(c, str) for c in classes):
            raise CheckpointError(f'{path}: {where} must be a list of class names, got {classes!r:.80}')
        return list(classes)
    return None


def _state_dict(ckpt, path) -> dict:
    state = ckpt.get('state_dict', ckpt) if isinstance(ckpt, dict) else ckpt
    if not isinstance(state, dict):
        raise CheckpointError(f'{path}: holds a {type(state).__name__}, not a state dict')
    return {(k[7:] if k.startswith('module.') else k): v for k, v in state.items()}


def _map_key(key: str, src_prefix: str, dst_prefix: str) -> Optional[str]:
    """Checkpoint key -> model key: the detector part re-prefixed; a video checkpoint's other
    parts (track head, auxiliary heads) only into a video model."""
    if key.startswith(src_prefix):
        return dst_prefix + key[len(src_prefix):]
    return key if dst_prefix == src_prefix else None


def _copy_rows(dst: torch.Tensor, src: torch.Tensor, layout: RowLayout, pairs, src_classes, dst_classes):
    """Copy the matched class rows and the extra rows; returns the report entry or the reason not to."""
    k, extra = layout.per_class, layout.extra_rows
    if src.dim() == 0 or src.shape[1:] != dst.shape[1:]:
        return f'shape {tuple(src.shape)} does not fit the model\'s {tuple(dst.shape)} beyond the class rows'
    class_rows = src.shape[0] - extra
    if class_rows < 0 or class_rows % k or class_rows // k < len(src_classes):
        return (f'{src.shape[0]} rows do not hold {len(src_classes)} classes x {k} rows'
                + (f' + {extra} background row(s)' if extra else ''))
    used = [(s, d) for s, d in pairs if d < layout.num_classes]
    if not used and not extra:
        return 'no class in common with the model'
    if extra:
        dst[dst.shape[0] - extra:] = src[src.shape[0] - extra:]
    for s, d in used:
        dst[d * k:(d + 1) * k] = src[s * k:(s + 1) * k]
    done = {d for _, d in used}
    fresh = [(dst_classes[d] if d < len(dst_classes) else f'aux{d - len(dst_classes)}')
             for d in range(layout.num_classes) if d not in done]
    return {'pairs': [[src_classes[s], dst_classes[d]] for s, d in used], 'background_rows': extra,
            'fresh_rows': fresh}


@torch.no_grad()
def transfer_pretrained(model: torch.nn.Module, checkpoint_path: str | os.PathLike,
                        src_classes: Optional[Sequence[str]] = None,
                        dst_classes: Optional[Sequence[str]] = None,
                        aliases: Optional[Mapping[str, Optional[str]]] = None) -> InitReport:
    """Copy what transfers from a detector checkpoint into ``model`` in place (module docstring).

    Args:
        model: the freshly built model (a wrapper's ``.module``); its tensors are written in place,
            so an optimizer built on it keeps working.
        checkpoint_path: loaded with ``weights_only=True``; a bad file raises
            :class:`~visrc.models.checkpoint.CheckpointError` naming it.
        src_classes: the checkpoint's class names, used when its meta has none.
        dst_classes: the model's class names (index = label); rows past them are auxiliary
            classes and stay fresh. None: every class-indexed tensor stays fresh.
        aliases: class-name aliases for :func:`match_classes`; default COCO's for an image
            checkpoint, none for a visrc video checkpoint (same class vocabulary).
    """
    path = str(checkpoint_path)
    ckpt = load_checkpoint_file(path)
    state = _state_dict(ckpt, path)
    meta_classes = _checkpoint_classes(ckpt, path)
    report = InitReport(checkpoint=path, dst_classes=list(dst_classes) if dst_classes is not None else None)
    if meta_classes is not None:
        report.src_classes, report.src_classes_from = meta_classes, 'checkpoint meta'
    elif src_classes is not None:
        report.src_classes, report.src_classes_from = list(src_classes), 'argument'

    dst_state = model.state_dict()          # shares storage with the model's parameters and buffers
    dst_prefix = DETECTOR_PREFIX if any(k.startswith(DETECTOR_PREFIX) for k in dst_state) else ''
    src_prefix = DETECTOR_PREFIX if any(k.startswith(DETECTOR_PREFIX) for k in state) else ''
    if aliases is None and not src_prefix:
        aliases = COCO_ALIASES
    layouts = class_indexed_tensors(model)
    classes_known = report.src_classes is not None and report.dst_classes is not None
    pairs = match_classes(report.src_classes, report.dst_classes, aliases) if classes_known else []

    done = set()
    for key, src in state.items():
        dst_key = _map_key(key, src_prefix, dst_prefix)
        if dst_key is None or dst_key not in dst_state:
            report.unused.append(key)
            continue
        why = None
        dst = dst_state[dst_key]
        if not isinstance(src, torch.Tensor):
            why = f'a {type(src).__name__}, not a tensor'
        elif dst_key in done:
            why = f'{dst_key} was already loaded from another checkpoint key'
        elif dst_key in layouts:
            if not classes_known:
                why = 'class-indexed, and the ' + ('checkpoint' if report.src_classes is None else 'model') + \
                      '\'s class names are unknown'
            else:
                entry = _copy_rows(dst, src, layouts[dst_key], pairs, report.src_classes, report.dst_classes)
                if isinstance(entry, str):
                    why = entry
                else:
                    report.class_rows[dst_key] = {'source': key, **entry}
        elif src.shape != dst.shape:
            why = f'shape {tuple(src.shape)} != the model\'s {tuple(dst.shape)}'
        else:
            dst.copy_(src)
            report.copied.append(dst_key)
        if why is None:
            done.add(dst_key)
        else:
            report.unused.append(key)
            report.skipped[key] = why
    report.reinitialised = [k for k in dst_state if k not in done]
    if not classes_known and layouts:
        why = 'the checkpoint\'s class names are unknown (no meta.dataset_meta.classes, no src_classes)' \
            if report.src_classes is None else 'the model\'s class names are unknown (no dst_classes)'
        report.notes.append(f'class-indexed tensors re-initialised: {why}')
    elif classes_known and not pairs:
        report.notes.append('no class in common between checkpoint and model: only background rows copied')
    return report


@HOOKS.register_module()
class PretrainedInitHook(Hook):
    """Apply :func:`transfer_pretrained` to the runner's model before the first iteration, unless
    the run resumed.

    A hook rather than a Runner change, so any mmengine tool that loads a visrc config can use it:
    it acts in ``before_train``, which mmengine calls after ``Runner._init_model_weights`` (that
    would overwrite an earlier copy) and after ``load_or_resume``. A run that loaded a checkpoint
    there keeps its weights and the hook only logs one line: a resumed run's checkpoint already
    holds the (initialised, then trained) weights, and mmengine's ``load_from`` without resume loads
    a checkpoint of this very model by key (no class mapping), which wins over the init as well
    (``visrc train`` refuses ``--init`` together with a non-resuming ``load_from``).
    The report goes to ``<work_dir>/init_report.json`` (rank 0, atomic) and its summary to the log.

    Args:
        checkpoint: the detector checkpoint (see :func:`transfer_pretrained`).
        src_classes: its class names when its meta has none.
        dst_classes: the model's class names; default the train dataset's ``metainfo['classes']``.
    """

    priority = 'VERY_HIGH'

    def __init__(self, checkpoint: str, src_classes: Optional[Sequence[str]] = None,
                 dst_classes: Optional[Sequence[str]] = None, report_file: str = REPORT_FILE) -> None:
        self.checkpoint = str(checkpoint)
        self.src_classes = list(src_classes) if src_classes is not None else None
        self.dst_classes = list(dst_classes) if dst_classes is not None else None
        self.report_file = report_file

    def before_train(self, runner) -> None:
        if getattr(runner, '_has_loaded', False):
            how = 'resumed from a checkpoint' if getattr(runner, '_resume', False) else \
                f'loaded load_from={getattr(runner, "_load_from", None)}'
            runner.logger.info(f'init {self.checkpoint} not applied: the run {how}, whose weights win')
            return
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        dst = self.dst_classes
        if dst is None:
            dst = (getattr(runner.train_dataloader.dataset, 'metainfo', None) or {}).get('classes')
        report = transfer_pretrained(model, self.checkpoint, self.src_classes, dst)
        for line in report.summary().splitlines():
            runner.logger.info(line)
        if is_main_process():
            atomic_write_text(osp.join(runner.work_dir, self.report_file), report.to_json())
