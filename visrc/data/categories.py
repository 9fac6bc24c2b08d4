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


def label_to_category(classes: Sequence[str], categories: Sequence[dict]) -> dict[int, int]:
    """Model label (index into ``classes``) -> the annotation file's ``category_id``, by name.
    Classes without a category of that name (e.g. auxiliary classes) are left out."""
    by_name = {c["name"]: c["id"] for c in categories}
    return {i: by_name[n] for i, n in enumerate(classes) if n in by_name}
