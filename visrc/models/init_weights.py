"""Initialise a model from a pretrained detector checkpoint (paper 4.1: the networks start from
MS COCO pretrained weights).

:func:`transfer_pretrained` loads a checkpoint (an mmdet model-zoo Mask R-CNN, 2.x or 3.x; a full
mmengine training checkpoint; an ImageNet backbone file: the official Swin, ResNeSt, torchvision
ResNet; a visrc checkpoint, whose detector keys carry a ``detector.`` prefix; weights under
``state_dict``, ``model`` or at the top level) into a model (a ``VISQDTrack`` video model or a
plain image detector), and returns an :class:`InitReport` of what happened:

* the model is cut into modules (:func:`transfer_units`: a residual or Swin block, an FPN conv, a
  whole head, ...); a module is copied only when the checkpoint's module of that name is the same
  kind (same tensor names, same shapes); otherwise all of it keeps its fresh initialisation and is
  listed in ``mismatched`` (no tensor is ever copied by a coincidence of name and shape);
* inside a module that matches, class-indexed tensors (:func:`class_indexed_tensors`: box
  classifier rows, class-specific box regression rows, mask logits channels, mask-IoU rows,
  semantic-segmentation and multi-label outputs) are copied row by row for the classes whose names
  match between the checkpoint's and the model's class lists (:func:`match_classes`); the
  background row (mmdet: last) is always copied. The model's rows of unmatched classes (and of
  auxiliary classes, which have no name) keep their fresh initialisation;
* everything else keeps the model's fresh initialisation;
* when less than most of the backbone would transfer, or more of its modules are another kind
  than match, :class:`InitMismatchError` (one line) is raised before anything is written, unless
  ``allow_partial`` (``--allow-partial-init``).

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
TOP_MODULES = ('backbone', 'neck', 'rpn_head', 'roi_head', 'track_head', 'aux_heads')


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
        skipped: the unused ones that had a model counterpart -> why not (their module is another
            kind in the checkpoint, classes).
        mismatched: model module (:func:`transfer_units`) -> why the checkpoint's module of that
            name is another kind; all its tensors keep their fresh initialisation.
        modules: top-level module (backbone, neck, rpn_head, roi_head, track_head, aux_heads) ->
            ``{"tensors", "copied", "class_rows", "fresh", "unused"}`` (unused: checkpoint tensors).
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
    mismatched: dict = field(default_factory=dict)
    modules: dict = field(default_factory=dict)
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

    def module_line(self) -> str:
        """``backbone 474/474, neck 16/16, roi_head 8/14 +6 by class row, track_head 0/20, ...``:
        copied of the model's tensors per top-level module."""
        parts = []
        for top, s in self.modules.items():
            if not s['tensors']:
                continue
            part = f'{top} {s["copied"]}/{s["tensors"]}'
            if s['class_rows']:
                part += f' +{s["class_rows"]} by class row'
            parts.append(part)
        return ', '.join(parts)

    def summary(self) -> str:
        """A few lines for the training log; the first says it all."""
        total = len(self.copied) + len(self.class_rows) + len(self.reinitialised)
        pairs = sorted({tuple(p) for v in self.class_rows.values() for p in v['pairs']})
        matched = ', '.join(s if s == d else f'{s}->{d}' for s, d in pairs) or 'none'
        lines = [f'init from {self.checkpoint}: {len(self.copied)} of {total} model tensors copied, '
                 f'{len(self.class_rows)} class-indexed ones row by row (classes matched: {matched}), '
                 f'{len(self.reinitialised)} re-initialised; {len(self.unused)} checkpoint tensors unused'
                 + (f' [{self.module_line()}]' if self.modules else '')]
        if self.mismatched:
            lines.append('kept fresh, another kind of module in the checkpoint: ' + '; '.join(
                f'{u} ({why})' for u, why in list(self.mismatched.items())[:5])
                + (f'; ... {len(self.mismatched) - 5} more' if len(self.mismatched) > 5 else ''))
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


class InitMismatchError(CheckpointError):
    """The checkpoint's backbone does not fit the model's (less than most of it transfers, or its
    blocks are another kind): ``--init`` stops unless ``--allow-partial-init``. One line."""


def _unwrap(ckpt, path) -> tuple[dict, Optional[str]]:
    """The weights of a loaded checkpoint: under ``state_dict`` (mmengine, mmdet 2.x and 3.x), under
    ``model`` (the official Swin / DeiT / timm-style files), else the top level; and where."""
    if not isinstance(ckpt, dict):
        raise CheckpointError(f'{path}: holds a {type(ckpt).__name__}, not a state dict')
    for where in ('state_dict', 'model'):
        if isinstance(ckpt.get(where), dict):
            return ckpt[where], where
    return ckpt, None


def _is_original_swin(keys) -> bool:
    """The names of Swin's own repository (``patch_embed.proj``, ``layers.N.blocks``), which mmdet's
    ``swin_converter`` turns into its own (``convert_weights=True``)."""
    keys = list(keys)
    return any(k.startswith('patch_embed.proj.') for k in keys) and any(k.startswith('layers.') for k in keys)


def _source_tensors(ckpt, path, model_has_backbone: bool):
    """Checkpoint -> (model-side name -> value, model-side name -> checkpoint key, checkpoint keys
    dropped -> why, notes). Handles ``module.`` (DDP), the official Swin names (converted with
    mmdet's own :func:`mmdet.models.backbones.swin.swin_converter`, classifier dropped as mmdet
    does) and backbone-only ImageNet files (ResNeSt, torchvision ResNet: keys read as
    ``backbone.*``; ``fc.*`` finds no model tensor and is listed unused)."""
    raw, where = _unwrap(ckpt, path)
    notes = [f'weights read from the checkpoint\'s "{where}"'] if where == 'model' else []
    named = [((k[7:] if isinstance(k, str) and k.startswith('module.') else k), k) for k in raw]
    state, origin, dropped = {}, {}, {}
    if _is_original_swin(k for k, _ in named):
        from mmdet.models.backbones.swin import swin_converter
        for k, orig in named:
            conv = swin_converter({k: raw[orig]})
            if not conv:
                dropped[orig] = 'the ImageNet classifier (mmdet\'s swin_converter drops it)'
            for nk, v in conv.items():
                state[nk], origin[nk] = v, orig
        notes.append('original Swin names converted with mmdet\'s swin_converter')
        return state, origin, dropped, notes
    tops = tuple(t + '.' for t in TOP_MODULES) + (DETECTOR_PREFIX,)
    backbone_only = model_has_backbone and not any(isinstance(k, str) and k.startswith(tops) for k, _ in named)
    if backbone_only:
        notes.append('a backbone-only file (no detector keys): its keys are read as backbone.*')
    for k, orig in named:
        nk = f'backbone.{k}' if backbone_only else k
        state[nk], origin[nk] = raw[orig], orig
    return state, origin, dropped, notes


def _map_key(key: str, src_prefix: str, dst_prefix: str) -> Optional[str]:
    """Checkpoint key -> model key: the detector part re-prefixed; a video checkpoint's other
    parts (track head, auxiliary heads) only into a video model."""
    if key.startswith(src_prefix):
        return dst_prefix + key[len(src_prefix):]
    return key if dst_prefix == src_prefix else None


def top_module(key: str) -> str:
    """The top-level module a model key belongs to (``backbone``, ``neck``, ``rpn_head``,
    ``roi_head``, ``track_head``, ``aux_heads``; ``detector.`` dropped)."""
    key = key[len(DETECTOR_PREFIX):] if key.startswith(DETECTOR_PREFIX) else key
    return key.split('.', 1)[0]


def _block_types() -> tuple:
    from mmcv.cnn import ConvModule
    from mmdet.models.backbones.resnet import BasicBlock, Bottleneck
    from mmdet.models.backbones.swin import SwinBlock
    from mmdet.models.layers import PatchEmbed, PatchMerging
    return BasicBlock, Bottleneck, SwinBlock, PatchEmbed, PatchMerging, ConvModule


def transfer_units(model: torch.nn.Module) -> dict[str, str]:
    """Model key -> the module whose tensors transfer together (all or none).

    In the backbone and neck: the outermost residual block (mmdet's ``BasicBlock``/``Bottleneck``,
    ResNeSt's too), Swin block, patch embedding / merging or ``ConvModule`` (an FPN conv) above the
    tensor, else the backbone's / neck's direct child (a ResNet stem conv or norm, ResNeSt's
    ``stem``, Swin's ``norm0``). In the heads: a dense head (the RPN) as a whole, else the head's
    direct child (``roi_head.bbox_head``, ``roi_head.mask_head``, ``track_head.embed_head``, ...)."""
    from mmdet.models.dense_heads.base_dense_head import BaseDenseHead

    blocks = _block_types()
    modules = dict(model.named_modules())
    out = {}
    for key in model.state_dict():
        lead = DETECTOR_PREFIX if key.startswith(DETECTOR_PREFIX) else ''
        parts = key[len(lead):].split('.')
        top = lead + parts[0]
        rel = parts[1:-1]
        unit = None
        if parts[0] in ('backbone', 'neck'):
            for i in range(1, len(rel) + 1):
                name = top + '.' + '.'.join(rel[:i])
                if isinstance(modules.get(name), blocks):
                    unit = name
                    break
        elif isinstance(modules.get(top), BaseDenseHead):
            unit = top
        if unit is None:
            unit = f'{top}.{rel[0]}' if rel else key
        out[key] = unit
    return out


def _rows_problem(src, dst, layout: RowLayout, n_src_classes: int) -> Optional[str]:
    """Why a class-indexed checkpoint tensor cannot give rows to ``dst`` (None: it can)."""
    k, extra = layout.per_class, layout.extra_rows
    if src.dim() == 0 or src.shape[1:] != dst.shape[1:]:
        return f'shape {tuple(src.shape)} does not fit the model\'s {tuple(dst.shape)} beyond the class rows'
    class_rows = src.shape[0] - extra
    if class_rows < 0 or class_rows % k or class_rows // k < n_src_classes:
        return (f'{src.shape[0]} rows do not hold {n_src_classes} classes x {k} rows'
                + (f' + {extra} background row(s)' if extra else ''))
    return None


def _copy_rows(dst: torch.Tensor, src: torch.Tensor, layout: RowLayout, pairs, src_classes, dst_classes):
    """Copy the matched class rows and the extra rows; returns the report entry or the reason not to."""
    k, extra = layout.per_class, layout.extra_rows
    why = _rows_problem(src, dst, layout, len(src_classes))
    if why:
        return why
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


# buffers that are counters or follow from the geometry, not learned: a module of the same kind may
# lack them (torchvision's BatchNorm has no counter; mmdet's Swin computes the shifted-window mask)
_DERIVED_BUFFERS = ('num_batches_tracked', 'attn_mask')


def _unit_problem(dst_keys, src_keys, dst_state, state, layouts, n_src_classes) -> Optional[str]:
    """Why the checkpoint's module is not the same kind as the model's (None: it is). Same kind:
    the same tensor names under the module (:data:`_DERIVED_BUFFERS` aside: a ``num_batches_tracked``
    counter, absent from torchvision files; Swin's ``attn_mask``, absent from mmdet's) and the same shapes (class-indexed tensors: beyond the class rows)."""
    dst_set, src_set = set(dst_keys), set(src_keys)
    missing = sorted(k for k in dst_set - src_set if not k.endswith(_DERIVED_BUFFERS))
    extra = sorted(k for k in src_set - dst_set if not k.endswith(_DERIVED_BUFFERS))
    if missing or extra:
        diff = ([f'-{k}' for k in missing[:2]] + [f'+{k}' for k in extra[:2]])
        return (f'other tensors ({len(missing)} of the model\'s missing, {len(extra)} not in the model: '
                + ', '.join(diff) + ')')
    for k in dst_keys:
        if k not in src_set:
            continue
        src, dst = state[k], dst_state[k]
        if not isinstance(src, torch.Tensor):
            return f'{k} is a {type(src).__name__}, not a tensor'
        if k in layouts:
            if n_src_classes is not None:
                why = _rows_problem(src, dst, layouts[k], n_src_classes)
                if why:
                    return f'{k}: {why}'
            elif src.dim() == 0 or src.shape[1:] != dst.shape[1:]:
                return f'{k}: shape {tuple(src.shape)} does not fit {tuple(dst.shape)} beyond the class rows'
        elif src.shape != dst.shape:
            return f'{k}: shape {tuple(src.shape)} != the model\'s {tuple(dst.shape)}'
    return None


def _module_stats(report: 'InitReport', dst_keys, unused_tops) -> dict:
    stats: dict = {}
    for k in dst_keys:
        s = stats.setdefault(top_module(k), dict(tensors=0, copied=0, class_rows=0, fresh=0, unused=0))
        s['tensors'] += 1
    for label, names in (('copied', report.copied), ('class_rows', report.class_rows),
                         ('fresh', report.reinitialised)):
        for k in names:
            stats[top_module(k)][label] += 1
    for top in unused_tops:
        stats.setdefault(top, dict(tensors=0, copied=0, class_rows=0, fresh=0, unused=0))['unused'] += 1
    return stats


def _backbone_problem(report: 'InitReport', units_ok, units_bad) -> Optional[str]:
    """The line ``--init`` stops with when the checkpoint's backbone does not fit (None: it fits)."""
    bb = report.modules.get('backbone')
    if not bb or not bb['tensors']:
        return None
    ok = sum(1 for u in units_ok if top_module(u) == 'backbone')
    bad = [u for u in units_bad if top_module(u) == 'backbone']
    if bb['copied'] * 2 > bb['tensors'] and len(bad) <= ok:
        return None
    example = f'; e.g. {bad[0]}: {report.mismatched[bad[0]]}' if bad else ''
    return (f'{report.checkpoint}: only {bb["copied"]} of {bb["tensors"]} backbone tensors would transfer '
            f'({ok} backbone modules match, {len(bad)} are another kind{example}): the file looks like another '
            f'architecture (matched: {report.module_line()}); --allow-partial-init goes on anyway')


@torch.no_grad()
def transfer_pretrained(model: torch.nn.Module, checkpoint_path: str | os.PathLike,
                        src_classes: Optional[Sequence[str]] = None,
                        dst_classes: Optional[Sequence[str]] = None,
                        aliases: Optional[Mapping[str, Optional[str]]] = None,
                        allow_partial: bool = False) -> InitReport:
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
        allow_partial: go on when the backbone does not fit (else :class:`InitMismatchError`,
            raised before any tensor is written).
    """
    path = str(checkpoint_path)
    ckpt = load_checkpoint_file(path)
    dst_state = model.state_dict()          # shares storage with the model's parameters and buffers
    dst_prefix = DETECTOR_PREFIX if any(k.startswith(DETECTOR_PREFIX) for k in dst_state) else ''
    state, origin, dropped, notes = _source_tensors(
        ckpt, path, any(top_module(k) == 'backbone' for k in dst_state))
    meta_classes = _checkpoint_classes(ckpt, path)
    report = InitReport(checkpoint=path, dst_classes=list(dst_classes) if dst_classes is not None else None)
    report.notes.extend(notes)
    if meta_classes is not None:
        report.src_classes, report.src_classes_from = meta_classes, 'checkpoint meta'
    elif src_classes is not None:
        report.src_classes, report.src_classes_from = list(src_classes), 'argument'

    src_prefix = DETECTOR_PREFIX if any(isinstance(k, str) and k.startswith(DETECTOR_PREFIX) for k in state) else ''
    if aliases is None and not src_prefix:
        aliases = COCO_ALIASES
    layouts = class_indexed_tensors(model)
    classes_known = report.src_classes is not None and report.dst_classes is not None
    pairs = match_classes(report.src_classes, report.dst_classes, aliases) if classes_known else []

    # checkpoint keys -> model names; each model name's unit; the units' checkpoint tensors
    units = transfer_units(model)
    unit_names = set(units.values())
    unit_keys: dict[str, list] = {}
    for k, u in units.items():
        unit_keys.setdefault(u, []).append(k)
    mapped: dict[str, str] = {}            # checkpoint (model-side) name -> model key
    src_of_unit: dict[str, list] = {}
    unused_why: dict[str, Optional[str]] = {}
    for key in state:
        dst_key = _map_key(key, src_prefix, dst_prefix) if isinstance(key, str) else None
        if dst_key is None:
            unused_why[key] = None
            continue
        if dst_key in mapped.values():
            unused_why[key] = f'{dst_key} was already loaded from another checkpoint key'
            continue
        mapped[key] = dst_key
        unit = units.get(dst_key)
        if unit is None:
            parts = dst_key.split('.')
            unit = next((p for p in ('.'.join(parts[:i]) for i in range(len(parts) - 1, 0, -1))
                         if p in unit_names), None)
        if unit is None:
            unused_why[key] = None
            continue
        src_of_unit.setdefault(unit, []).append(key)

    n_src = len(report.src_classes) if report.src_classes is not None else None
    units_ok, state_by_dst = set(), {mapped[k]: state[k] for k in mapped}
    for unit, keys in src_of_unit.items():
        why = _unit_problem(unit_keys[unit], [mapped[k] for k in keys], dst_state, state_by_dst, layouts, n_src)
        if why is None:
            units_ok.add(unit)
        else:
            report.mismatched[unit] = why
            for k in keys:
                unused_why[k] = (f'{unit} is another kind of module in the checkpoint: {why}'
                                 if mapped[k] in dst_state else None)

    # what will be copied (nothing is written before the backbone check)
    copies, row_copies, done = [], [], set()
    for key in state:
        if key in unused_why:
            continue
        dst_key = mapped[key]
        if dst_key not in dst_state:
            unused_why[key] = None
            continue
        src, dst = state[key], dst_state[dst_key]
        if dst_key in layouts:
            if not classes_known:
                unused_why[key] = 'class-indexed, and the ' + ('checkpoint' if report.src_classes is None
                                                              else 'model') + '\'s class names are unknown'
                continue
            if not [p for p in pairs if p[1] < layouts[dst_key].num_classes] and not layouts[dst_key].extra_rows:
                unused_why[key] = 'no class in common with the model'
                continue
            row_copies.append((key, dst_key))
            report.class_rows[dst_key] = None          # filled below
        else:
            copies.append((key, dst_key))
            report.copied.append(dst_key)
        done.add(dst_key)
    report.reinitialised = [k for k in dst_state if k not in done]
    for key, why in unused_why.items():
        report.unused.append(origin.get(key, key))
        if why is not None:
            report.skipped[origin.get(key, key)] = why
    for orig, why in dropped.items():
        report.unused.append(orig)
        report.skipped[orig] = why
    unused_tops = [top_module(mapped.get(k, k)) if isinstance(k, str) else 'other' for k in unused_why]
    unused_tops += ['backbone'] * len(dropped)
    report.modules = _module_stats(report, dst_state, unused_tops)

    problem = _backbone_problem(report, units_ok, report.mismatched)
    if problem and not allow_partial:
        raise InitMismatchError(problem)
    if problem:
        report.notes.append('--allow-partial-init: went on although ' + problem.split(': ', 1)[1])

    for key, dst_key in copies:
        dst_state[dst_key].copy_(state[key])
    for key, dst_key in row_copies:
        entry = _copy_rows(dst_state[dst_key], state[key], layouts[dst_key], pairs, report.src_classes,
                           report.dst_classes)
        report.class_rows[dst_key] = {'source': origin.get(key, key), **entry}
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
        allow_partial: go on when the checkpoint's backbone does not fit (``--allow-partial-init``);
            otherwise :class:`InitMismatchError` stops the run with one line.
    """

    priority = 'VERY_HIGH'

    def __init__(self, checkpoint: str, src_classes: Optional[Sequence[str]] = None,
                 dst_classes: Optional[Sequence[str]] = None, report_file: str = REPORT_FILE,
                 allow_partial: bool = False) -> None:
        self.checkpoint = str(checkpoint)
        self.src_classes = list(src_classes) if src_classes is not None else None
        self.dst_classes = list(dst_classes) if dst_classes is not None else None
        self.report_file = report_file
        self.allow_partial = bool(allow_partial)

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
        report = transfer_pretrained(model, self.checkpoint, self.src_classes, dst,
                                     allow_partial=self.allow_partial)
        for line in report.summary().splitlines():
            runner.logger.info(line)
        if is_main_process():
            atomic_write_text(osp.join(runner.work_dir, self.report_file), report.to_json())
