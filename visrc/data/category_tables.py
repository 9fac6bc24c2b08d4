"""Reviewed category maps (paper 3.2) from COCO 2017 and OpenImages onto YouTube-VIS 2019 / 2021.

The maps are data, not a heuristic: ``visrc/data/category_maps/*.csv`` list each source class with
its target per YouTube-VIS version and a note for the ambiguous ones. Columns::

    source_id, source_name, ytvis2021, ytvis2019, note

``source_id`` is COCO's category id or OpenImages' class MID (``/m/...``). A target cell holds a
YouTube-VIS class name, ``aux`` (a non-target object kept as an auxiliary class) or ``ignore``
(dropped: a part of a target, a parent class that may hold targets, or a class whose YouTube-VIS
label is uncertain).

* ``coco2017_to_ytvis.csv`` lists all 80 COCO 2017 classes. COCO ``mouse`` is a computer mouse
  (``aux``), ``frisbee`` is ``flying_disc``, ``motorcycle`` is ``motorbike``, ``car`` is 2019's
  ``sedan``.
* ``openimages_to_ytvis.csv`` lists the OpenImages (V4-V7 boxable) classes with a YouTube-VIS
  counterpart, plus the near misses and parent classes that must not become auxiliary objects.
  An OpenImages class missing from the table is a non-target class (``aux``).

The table agrees with :func:`visrc.data.categories.build_category_map` with ``COCO_ALIASES`` on all
80 COCO names, for both versions (``tests/test_category_tables.py`` checks it).
"""
from __future__ import annotations

import csv
from functools import lru_cache
from pathlib import Path
from typing import Iterable, Mapping, Optional, Sequence, Union

from visrc.data.categories import AUX, normalize_name

TABLE_DIR = Path(__file__).resolve().parent / "category_maps"
TABLES = {"coco": "coco2017_to_ytvis.csv", "openimages": "openimages_to_ytvis.csv"}
VERSIONS = ("2019", "2021")
IGNORE = "ignore"
COLUMNS = ("source_id", "source_name", "ytvis2021", "ytvis2019", "note")

Target = Union[int, str, None]


def ytvis_classes(version: str = "2021") -> tuple[str, ...]:
    """YouTube-VIS ``version``'s class names in label order (mmdet's list; label = index)."""
    version = _check_version(version)
    from mmdet.datasets import YouTubeVISDataset

    # set_dataset_classes mutates the class attribute; read, then restore.
    old = YouTubeVISDataset.METAINFO
    try:
        YouTubeVISDataset.set_dataset_classes(version)
        return tuple(YouTubeVISDataset.METAINFO["classes"])
    finally:
        YouTubeVISDataset.METAINFO = old


def _check_version(version) -> str:
    version = str(version)
    if version not in VERSIONS:
        raise ValueError(f"YouTube-VIS version must be one of {VERSIONS}, got {version!r}")
    return version


def _check_source(source: str) -> str:
    if source not in TABLES:
        raise ValueError(f"category-map source must be one of {tuple(TABLES)}, got {source!r}")
    return source


@lru_cache(maxsize=None)
def _rows(source: str) -> tuple[dict, ...]:
    path = TABLE_DIR / TABLES[source]
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        if tuple(reader.fieldnames or ()) != COLUMNS:
            raise ValueError(f"{path}: expected columns {COLUMNS}, got {reader.fieldnames}")
        rows = []
        for line, row in enumerate(reader, start=2):
            if source == "coco":
                try:
                    row["source_id"] = int(row["source_id"])
                except ValueError:
                    raise ValueError(f"{path}:{line}: COCO source_id must be an integer, got {row['source_id']!r}")
            rows.append(row)
    return tuple(rows)


def load_category_table(source: str) -> list[dict]:
    """The rows of ``source``'s table (``'coco'`` or ``'openimages'``) as dicts keyed by
    :data:`COLUMNS` (COCO ``source_id`` as int)."""
    return [dict(r) for r in _rows(_check_source(source))]


def load_category_map(source: str, version: str = "2021", unmatched: str = AUX,
                      target_classes: Optional[Sequence[str]] = None) -> dict[Union[int, str], Target]:
    """``{source_id: target_index | "aux" | None}`` from the reviewed table.

    Args:
        source: ``'coco'`` (keys: COCO 2017 category ids) or ``'openimages'`` (keys: class MIDs).
        version: ``'2021'`` or ``'2019'``, the YouTube-VIS column to read.
        unmatched: ``'aux'`` keeps the non-target classes as auxiliary objects; ``'ignore'`` maps
            them to ``None`` as well.
        target_classes: the target class names (label = index); default: YouTube-VIS ``version``'s
            list from mmdet. Every target name in the table must be one of them.

    Raises:
        ValueError: an unknown source/version, or a table target missing from ``target_classes``.
    """
    source, version = _check_source(source), _check_version(version)
    if unmatched not in (AUX, IGNORE):
        raise ValueError(f"unmatched must be 'aux' or 'ignore', got {unmatched!r}")
    classes = list(ytvis_classes(version) if target_classes is None else target_classes)
    index = {normalize_name(c): i for i, c in enumerate(classes)}
    column = f"ytvis{version}"
    out: dict[Union[int, str], Target] = {}
    for row in _rows(source):
        value = row[column].strip()
        if value == AUX:
            out[row["source_id"]] = AUX if unmatched == AUX else None
        elif value == IGNORE:
            out[row["source_id"]] = None
        elif normalize_name(value) in index:
            out[row["source_id"]] = index[normalize_name(value)]
        else:
            raise ValueError(f"{TABLES[source]}: {row['source_name']!r} maps to {value!r}, which is not one of "
                             f"the {len(classes)} target classes")
    return out


def category_map_for(categories: Iterable[Mapping], source: str, version: str = "2021",
                     unmatched: str = AUX, target_classes: Optional[Sequence[str]] = None) -> dict[int, Target]:
    """Apply the reviewed table to an annotation file's ``categories`` (``[{"id", "name"}, ...]``).

    Categories are matched by name (after :func:`~visrc.data.categories.normalize_name`), so a file
    with renumbered ids still maps correctly; an OpenImages category may also be named by its MID,
    or carry it in a ``mid`` field (what :func:`visrc.data.openimages.openimages_csv_to_coco`
    writes), which wins over the name. A category the table does not list is a non-target class
    (``aux``, or ``None`` with ``unmatched='ignore'``). Returns ``{category_id: target_index | "aux" | None}``.
    """
    table = load_category_map(source, version, unmatched, target_classes)
    by_name = {normalize_name(r["source_name"]): r["source_id"] for r in _rows(source)}
    default = AUX if unmatched == AUX else None
    out: dict[int, Target] = {}
    for i, cat in enumerate(categories):
        if not isinstance(cat, Mapping) or "id" not in cat or "name" not in cat:
            raise ValueError(f"categories[{i}]: expected {{'id': int, 'name': str}}, got {cat!r}")
        name = str(cat["name"]).strip()
        mid = cat.get("mid")
        if mid is not None and mid in table:
            key = mid
        else:
            key = name if name in table else by_name.get(normalize_name(name))
        out[int(cat["id"])] = table[key] if key is not None else default
    return out


def non_target_classes(source: str = "coco", version: str = "2021") -> list[str]:
    """The ``source`` class names the table sends to the auxiliary classes for YouTube-VIS
    ``version`` (COCO 2017 with 2021: the 59 classes that are none of its 40). The paper configs'
    K (``num_aux``) is the length of this list for COCO and 2021."""
    column = f"ytvis{_check_version(version)}"
    return [r["source_name"] for r in _rows(_check_source(source)) if r[column].strip() == AUX]
