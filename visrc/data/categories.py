"""Category mapping between datasets (paper 3.2): source category ids -> target indices or auxiliary.

COCO and OpenImages name their classes differently from YouTube-VIS; :func:`build_category_map`
maps a source dataset's categories onto the C target classes by normalised name plus a reviewed
alias table, and sends everything else to the auxiliary classes (``"aux"``) or drops it.
:func:`label_to_category` maps a model's labels back to an annotation file's ``category_id``.
"""
from __future__ import annotations

import re
from typing import Iterable, Mapping, Optional, Sequence, Union

AUX = "aux"  # value of a category map entry for a non-target class kept as an auxiliary object

# Per-source name aliases (normalised source name -> target class name; ``None`` = never a target,
# even if the names are equal). Applied only when the alias target is one of the target classes, so
# the same table serves YouTube-VIS 2019 and 2021.
COCO_ALIASES: dict[str, Optional[str]] = {
    "motorcycle": "motorbike",
    "frisbee": "flying_disc",
    "car": "sedan",          # YouTube-VIS 2019 has 'sedan', 2021 has 'car' (exact match wins there)
    "mouse": None,           # COCO 'mouse' is a computer mouse, not the animal of YouTube-VIS
}
OPENIMAGES_ALIASES: dict[str, Optional[str]] = {
    "motorcycle": "motorbike",
    "frisbee": "flying_disc",
    "flying disc": "flying_disc",
    "panda": "giant_panda",
    "harbor seal": "earless_seal",
    "seal": "earless_seal",
    "sea turtle": "turtle",
    "tortoise": "turtle",
    "computer mouse": None,
}


def normalize_name(name: str) -> str:
    """'Tennis-Racket ' / 'tennis_racket' -> 'tennis racket' (lower case, '_'/'-' as spaces)."""
    return re.sub(r"\s+", " ", re.sub(r"[_\-]", " ", name.strip().lower())).strip()


def build_category_map(source_categories: Iterable[Mapping], target_classes: Sequence[str],
                       aliases: Optional[Mapping[str, Optional[str]]] = None,
                       unmatched: str = AUX) -> dict[int, Union[int, str, None]]:
    """Map a source dataset's category ids to target indices, ``"aux"`` or ``None`` (drop).

    Args:
        source_categories: COCO-style ``[{"id": int, "name": str}, ...]``.
        target_classes: the C target class names (e.g. YouTube-VIS 2021's 40), index = label.
        aliases: normalised source name -> target name (``None`` forbids a match); see
            :data:`COCO_ALIASES`, :data:`OPENIMAGES_ALIASES`.
        unmatched: ``"aux"`` (keep as auxiliary objects) or ``"ignore"`` (map to ``None``).

    Returns:
        ``{category_id: target_index | "aux" | None}``. Matching: an alias mapped to ``None`` wins,
        then exact normalised-name equality, then an alias whose target is a target class.
    """
    if unmatched not in (AUX, "ignore"):
        raise ValueError(f"unmatched must be 'aux' or 'ignore', got {unmatched!r}")
    target_idx = {normalize_name(c): i for i, c in enumerate(target_classes)}
    norm_aliases = {normalize_name(k): (normalize_name(v) if v is not None else None)
                    for k, v in (aliases or {}).items()}
    out: dict[int, Union[int, str, None]] = {}
    for cat in source_categories:
        name = normalize_name(cat["name"])
        idx: Optional[int] = None
        if name in norm_aliases and norm_aliases[name] is None:
            idx = None
        elif name in target_idx:
            idx = target_idx[name]
        elif name in norm_aliases and norm_aliases[name] in target_idx:
            idx = target_idx[norm_aliases[name]]
        out[int(cat["id"])] = idx if idx is not None else (AUX if unmatched == AUX else None)
    return out


def mapped_label(mapped: Union[int, str, None], num_target: int, num_aux: int) -> Optional[int]:
    """Category-map value -> training label: a target index, ``num_target`` (the auxiliary
    placeholder) for ``"aux"`` when ``num_aux > 0``, or ``None`` (drop the object)."""
    if mapped is None:
        return None
    if mapped == AUX:
        return num_target if num_aux > 0 else None
    return int(mapped)


def label_to_category(classes: Sequence[str], categories: Sequence[dict],
                      class_map: Optional[Mapping[str, str]] = None) -> dict[int, int]:
    """Model label (index into ``classes``) -> the annotation file's ``category_id``, by name.

    Names match after :func:`normalize_name` (case, ``_``/``-`` and spaces do not matter), so
    ``'Tennis_Racket'`` finds ``'tennis racket'``. ``class_map`` (config class name -> category
    name, see :func:`parse_class_map`) renames classes first. Classes without a category of that
    name (e.g. auxiliary classes) are left out; :func:`unmatched_classes` lists them."""
    by_name = {normalize_name(c["name"]): c["id"] for c in categories}
    renamed = {normalize_name(k): v for k, v in (class_map or {}).items()}
    out = {}
    for i, n in enumerate(classes):
        key = normalize_name(renamed.get(normalize_name(n), n))
        if key in by_name:
            out[i] = by_name[key]
    return out


def unmatched_classes(classes: Sequence[str], mapping: Mapping[int, int]) -> list[str]:
    """The names in ``classes`` that :func:`label_to_category` did not map."""
    return [n for i, n in enumerate(classes) if i not in mapping]


def parse_class_map(spec: Union[str, Sequence[str], Mapping[str, str], None]) -> dict[str, str]:
    """``--class-map``: a JSON file holding ``{"config class": "category name", ...}``, or
    ``name=name`` pairs (``["Car=sedan", "motorbike=motorcycle"]``); a dict passes through.

    Raises ``ValueError`` (naming the file or the pair) on anything else."""
    if spec is None:
        return {}
    if isinstance(spec, Mapping):
        return {str(k): str(v) for k, v in spec.items()}
    items = [spec] if isinstance(spec, str) else list(spec)
    if len(items) == 1 and "=" not in items[0]:
        from visrc.fileio import read_json

        data = read_json(items[0])
        if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
            raise ValueError(f"{items[0]}: a class map must be a JSON object of name -> name strings")
        return {str(k): v for k, v in data.items()}
    out = {}
    for item in items:
        src, sep, dst = item.partition("=")
        if not sep or not src.strip() or not dst.strip():
            raise ValueError(f"--class-map {item!r}: expected CONFIG_CLASS=CATEGORY_NAME (or one JSON file)")
        out[src.strip()] = dst.strip()
    return out
