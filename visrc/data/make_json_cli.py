"""``visrc make-json SRC [SRC ...] --out DIR/instances.json [--frames-out DIR/JPEGImages] [--classes ...]``

Turns a user's own videos into a YouTube-VIS split without annotations, so the whole toolchain
(``visrc infer --data``, ``validate``, the notebooks) runs on them. SRC is a folder holding video
files (mp4, avi, mov, mkv, webm) and/or frame folders, or one video file or frame folder; videos
get ids 1..N in natural name order.

The frames folder (``--frames-out``, default ``JPEGImages`` beside ``--out``) becomes the split's
``img_prefix``: a video file is decoded into ``<frames-out>/<file stem>/00000.jpg ...`` (JPEG,
``--quality``), a frame folder elsewhere is linked there (``<frames-out>/<folder name>``, a
symbolic link). ``file_names`` are relative to it, so with ``--out DATA/valid/instances.json``
the default layout is the configs' ``test_split`` and ``visrc infer CONFIG CKPT --data DATA``
runs on it.

Categories: ``--classes NAME ...`` (ids 1..C), or ``--classes FILE.json`` with a ``categories``
list (a YouTube-VIS or COCO file) or a list of names; without ``--classes`` the file has none and
``visrc infer`` uses the config's classes. An existing ``--out``, or a frame folder already in
``--frames-out``, is refused before any work unless ``--force``; ``--force`` replaces only links
and folders that make-json wrote (they hold a ``.visrc-make-json`` marker).
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

MARKER = '.visrc-make-json'


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument('sources', nargs='+', metavar='SRC',
                   help='a folder of video files and/or frame folders, or one video file or frame folder')
    p.add_argument('--out', required=True, help='YouTube-VIS JSON to write (videos and categories, no annotations)')
    p.add_argument('--frames-out', help='folder for the frames, the split\'s img_prefix (default: JPEGImages beside --out)')
    p.add_argument('--classes', nargs='+', metavar='NAME',
                   help='category names (ids 1..C), or one JSON file with a "categories" list or a list of names '
                        '(default: none; `visrc infer` then uses the config\'s classes)')
    p.add_argument('--quality', type=int, default=95, help='JPEG quality of frames decoded from video files (default 95)')
    p.add_argument('--force', action='store_true', help='overwrite --out and the frame folders make-json wrote before')


def parse_classes(spec) -> list[dict]:
    """``--classes`` -> YouTube-VIS ``categories``: names get ids 1..C; one ``.json`` file is read."""
    from visrc.fileio import read_json

    if not spec:
        return []
    if len(spec) == 1 and spec[0].lower().endswith('.json'):
        path = spec[0]
        if not Path(path).is_file():
            raise FileNotFoundError(f'{path}: no such --classes file')
        data = read_json(path)
        items = data.get('categories') if isinstance(data, dict) else data
        if not isinstance(items, list) or not items:
            raise ValueError(f'{path}: --classes file needs a non-empty "categories" list or a list of names')
        if all(isinstance(c, str) for c in items):
            return [dict(id=i, name=c) for i, c in enumerate(items, start=1)]
        cats = []
        for i, c in enumerate(items):
            if not (isinstance(c, dict) and isinstance(c.get('id'), int) and not isinstance(c.get('id'), bool)
                    and isinstance(c.get('name'), str)):
                raise ValueError(f'{path}: categories[{i}]: needs an integer "id" and a string "name"')
            cats.append(dict(id=c['id'], name=c['name']))
        return cats
    names = [n.strip() for n in spec]
    if len(set(names)) != len(names) or not all(names):
        raise ValueError(f'--classes: names must be non-empty and distinct, got {names}')
    return [dict(id=i, name=n) for i, n in enumerate(names, start=1)]


def _replaceable(path: Path) -> bool:
    """A link, or a folder that make-json wrote: what ``--force`` may replace."""
    return path.is_symlink() or (path.is_dir() and (path / MARKER).is_file())


def _remove(path: Path) -> None:
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.exists():
        shutil.rmtree(path)


def plan(sources, frames_out: Path, force: bool) -> list[tuple[Path, Path, str]]:
    """(source, its folder under ``frames_out``, action) per video, checked before any work:
    action is 'decode' (video file), 'link' (frame folder elsewhere) or 'keep' (already there)."""
    from visrc.data.video_files import find_video_sources

    found = find_video_sources(sources)
    video_stems = {s.stem for s in found if s.is_file()}
    out, seen = [], {}
    for src in found:
        if src.is_dir() and src.name in video_stems and (src / MARKER).is_file():
            continue                       # frames decoded by an earlier run from a video listed here
        name = src.stem if src.is_file() else src.name
        if name in seen:
            raise ValueError(f'{src}: same frame folder name {name!r} as {seen[name]}; rename one of them')
        seen[name] = src
        dest = frames_out / name
        if src.is_dir() and src.resolve() == dest.resolve() and not dest.is_symlink():
            out.append((src, dest, 'keep'))
            continue
        if dest.exists() or dest.is_symlink():
            if not _replaceable(dest):
                raise FileExistsError(f'{dest}: exists and was not written by make-json; move it away first')
            if not force:
                raise FileExistsError(f'{dest}: exists (from an earlier make-json); pass --force to replace it')
        out.append((src, dest, 'decode' if src.is_file() else 'link'))
    return out


def decode_video(src: Path, dest: Path, quality: int = 95) -> int:
    """Decode a video file into ``dest/00000.jpg ...`` (written to a temp folder, then renamed into
    place); returns the number of frames."""
    from PIL import Image

    from visrc.data.video_files import VideoFile

    tmp = dest.with_name(f'.{dest.name}.{os.getpid()}.tmp')
    _remove(tmp)
    tmp.mkdir(parents=True)
    try:
        n = 0
        for n, rgb in enumerate(VideoFile(src), start=1):
            Image.fromarray(rgb).save(tmp / f'{n - 1:05d}.jpg', quality=int(quality))
        (tmp / MARKER).write_text(f'frames of {src.resolve()}\n')
        _remove(dest)
        os.replace(tmp, dest)
    except BaseException:
        _remove(tmp)
        raise
    return n


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from visrc.data.video_files import frame_folder_entry
    from visrc.data.ytvis import write_ytvis

    out = Path(args.out)
    if out.is_dir():
        raise IsADirectoryError(f'{out}: --out is a directory; give the JSON file to write')
    if out.exists() and not args.force:
        raise FileExistsError(f'{out}: exists; pass --force to overwrite it')
    if not 1 <= args.quality <= 100:
        raise ValueError(f'--quality must be in 1..100, got {args.quality}')
    frames_out = Path(args.frames_out) if args.frames_out else out.parent / 'JPEGImages'
    if frames_out.exists() and not frames_out.is_dir():
        raise NotADirectoryError(f'{frames_out}: --frames-out is a file, not a folder')
    categories = parse_classes(args.classes)
    steps = plan(args.sources, frames_out, args.force)

    frames_out.mkdir(parents=True, exist_ok=True)
    tty = sys.stderr.isatty()
    videos = []
    for i, (src, dest, action) in enumerate(tqdm(steps, desc='make-json', unit='video', file=sys.stderr,
                                                 disable=not tty), start=1):
        if action == 'decode':
            decode_video(src, dest, args.quality)
        elif action == 'link':
            _remove(dest)
            os.symlink(src.resolve(), dest, target_is_directory=True)
        videos.append(frame_folder_entry(dest, i, root=frames_out))
        if not tty:
            print(f'[make-json] {i}/{len(steps)} {src} -> {dest} ({videos[-1]["length"]} frames)',
                  file=sys.stderr, flush=True)
    write_ytvis(dict(videos=videos, categories=categories, annotations=[]), out)
    n_decoded = sum(a == 'decode' for _, _, a in steps)
    print(f'wrote {out}: {len(videos)} videos ({n_decoded} decoded from video files), '
          f'{len(categories)} categories; frames in {frames_out}')
    return 0
