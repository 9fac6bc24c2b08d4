"""The frames of one video on disk: a folder of images listed in natural (numeric-aware) order, so
``1.jpg, 2.jpg, ..., 10.jpg`` keep their time order (a plain string sort gives 1, 10, 11, 2, ...).
"""
from __future__ import annotations

import os
import re
from pathlib import Path

IMG_SUFFIXES = ('.jpg', '.jpeg', '.png', '.bmp')


def natural_key(name: str) -> tuple:
    """Sort key that compares runs of digits as numbers: 'f2.jpg' < 'f10.jpg'; ties (e.g. '01'
    and '1') fall back to the plain name, so the order is total."""
    parts = re.split(r'(\d+)', str(name))
    return tuple((0, int(p), '') if p.isdigit() else (1, 0, p.lower()) for p in parts), str(name)


def natural_sorted(items, key=lambda x: x) -> list:
    """``sorted`` by :func:`natural_key` of ``key(item)``'s base name."""
    return sorted(items, key=lambda x: natural_key(os.path.basename(str(key(x)))))


def list_frames(video_dir: str | os.PathLike, suffixes=IMG_SUFFIXES) -> list[Path]:
    """The image files of ``video_dir`` (by suffix, case-insensitive) in natural order.

    Raises ``FileNotFoundError`` / ``NotADirectoryError`` when ``video_dir`` is missing or a file,
    and ``ValueError`` when it holds no image of those suffixes; each message names the folder.
    """
    d = Path(video_dir)
    if not d.exists():
        raise FileNotFoundError(f'{d}: no such frames directory')
    if not d.is_dir():
        raise NotADirectoryError(f'{d}: not a directory (expected a folder of frames)')
    frames = natural_sorted(p for p in d.iterdir() if p.is_file() and p.suffix.lower() in suffixes)
    if not frames:
        raise ValueError(f'{d}: no image frames ({", ".join(suffixes)})')
    return frames


class BadFrameError(ValueError):
    """A frame that is not a whole, decodable image (its message names the file)."""


def check_frame(path: str | os.PathLike) -> None:
    """Raise ``FileNotFoundError`` (missing) or :class:`BadFrameError` (not a whole, decodable image)
    naming ``path``; return None for a good frame. Decodes the image fully (Pillow), so callers use it
    to explain a failed load rather than on every frame."""
    from PIL import Image, UnidentifiedImageError

    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f'{p}: no such frame')
    try:
        with Image.open(p) as im:
            im.load()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        reason = 'truncated' if 'truncated' in str(e).lower() else type(e).__name__
        raise BadFrameError(f'{p}: not a decodable image ({reason})') from None


def frame_size(path: str | os.PathLike) -> tuple[int, int]:
    """(height, width) of an image file from its header; ``ValueError`` naming it when unreadable."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            w, h = im.size
    except FileNotFoundError:
        raise FileNotFoundError(f'{path}: no such frame') from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise ValueError(f'{path}: not a decodable image ({type(e).__name__})') from None
    return int(h), int(w)
