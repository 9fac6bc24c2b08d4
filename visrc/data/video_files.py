"""Video files (mp4, avi, mov, mkv, webm) read and written with PyAV, and the video sources a user
hands in: a video file, a folder of frames, or a folder holding several of either.

::

    video = VideoFile('clip.mp4')            # opens the file, reads its size and frame rate
    video.fps, video.width, video.height     # display rate (frames/s) and frame size in pixels
    for t, rgb in enumerate(video):          # decoded lazily: one (H, W, 3) uint8 RGB frame at a time
        ...
    with VideoWriter('out.mp4', fps=6) as w: # H.264 (mp4/mov/mkv), MPEG-4 (avi), VP9 (webm)
        w.write(rgb)                         # appears at 'out.mp4' only when the writer closes

Frames are RGB, as Pillow gives them. The predictor reads image files (mmcv, BGR in memory), so
:func:`spool_frames` writes each decoded frame to a lossless file (BMP) that the predictor then
reads: a video file and a folder of its frames saved losslessly give identical predictions.
Decoding follows the decoder's output order, which is display order (B-frames reordered). The
rotation flag some phones store is not applied.
"""
from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from visrc.data.frames import IMG_SUFFIXES, natural_sorted

VIDEO_SUFFIXES = ('.mp4', '.avi', '.mov', '.mkv', '.webm')
# encoder per output container; H.264 falls back to MPEG-4 part 2 where libx264 is missing
_ENCODERS = {'.mp4': ('libx264', 'mpeg4'), '.mov': ('libx264', 'mpeg4'), '.mkv': ('libx264', 'mpeg4'),
             '.avi': ('mpeg4',), '.webm': ('libvpx-vp9',)}
_FORMATS = {'.mp4': 'mp4', '.mov': 'mov', '.mkv': 'matroska', '.avi': 'avi', '.webm': 'webm'}


def is_video_file(path: str | os.PathLike) -> bool:
    """Whether ``path`` names a video file by its suffix (case-insensitive); it need not exist."""
    return Path(path).suffix.lower() in VIDEO_SUFFIXES


def _av():
    try:
        import av
    except ModuleNotFoundError:   # a dependency in pyproject.toml; say how to get it rather than a traceback
        raise ValueError('reading video files needs PyAV: pip install av (see pyproject.toml)') from None
    return av


class VideoFile:
    """One video file decoded lazily; iterating yields (H, W, 3) uint8 RGB frames in display order.

    Opening reads the container's header only. An undecodable file (or one without a video stream)
    raises ``ValueError`` naming it; a missing one ``FileNotFoundError``. A frame that fails to
    decode mid-stream raises ``ValueError`` naming the file and the frame index.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        if not self.path.exists():
            raise FileNotFoundError(f'{self.path}: no such video file')
        if not self.path.is_file():
            raise IsADirectoryError(f'{self.path}: not a video file')
        with self._open() as container:
            stream = container.streams.video[0]
            self.width = int(stream.codec_context.width)
            self.height = int(stream.codec_context.height)
            rate = stream.average_rate or stream.guessed_rate
            self.fps = float(rate) if rate else 0.0
        if self.width <= 0 or self.height <= 0:
            raise ValueError(f'{self.path}: not a decodable video (frame size {self.width}x{self.height})')

    def _open(self):
        av = _av()
        try:
            container = av.open(str(self.path))
        except av.FFmpegError as e:
            raise ValueError(f'{self.path}: not a decodable video ({_reason(e)})') from None
        if not container.streams.video:
            container.close()
            raise ValueError(f'{self.path}: no video stream in the file')
        return container

    def count_frames(self) -> int:
        """The number of frames, by reading the packets without decoding them (one packet is one frame
        for the codecs of :data:`VIDEO_SUFFIXES`)."""
        av = _av()
        with self._open() as container:
            stream = container.streams.video[0]
            try:
                return sum(1 for packet in container.demux(stream) if packet.size)
            except av.FFmpegError as e:
                raise ValueError(f'{self.path}: not a decodable video ({_reason(e)})') from None

    def __iter__(self) -> Iterator[np.ndarray]:
        av = _av()
        with self._open() as container:
            stream = container.streams.video[0]
            stream.thread_type = 'AUTO'
            t = 0
            frames = container.decode(stream)
            while True:
                try:
                    frame = next(frames)
                except StopIteration:
                    break
                except av.FFmpegError as e:
                    raise ValueError(f'{self.path}: frame {t}: not decodable ({_reason(e)})') from None
                yield frame.to_ndarray(format='rgb24')
                t += 1
        if t == 0:
            raise ValueError(f'{self.path}: no decodable frame')


def _reason(e: Exception) -> str:
    return getattr(e, 'strerror', None) or type(e).__name__


def spool_frames(frames, folder: str | os.PathLike, prefix: str = 'frame') -> Iterator[tuple[int, Path]]:
    """Write each (H, W, 3) uint8 RGB frame of ``frames`` to a lossless image file in ``folder`` and
    yield ``(t, path)``; the file is removed when the next one is asked for, so at most one frame
    is on disk at a time."""
    from PIL import Image

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = None
    try:
        for t, rgb in enumerate(frames):
            path = folder / f'{prefix}_{t:06d}.bmp'
            Image.fromarray(np.ascontiguousarray(rgb)).save(path)
            yield t, path
            path.unlink(missing_ok=True)
    finally:
        if path is not None:
            path.unlink(missing_ok=True)


class VideoWriter:
    """Writes (H, W, 3) uint8 RGB frames to a video file, streaming (nothing is kept in memory).

    The container and codec follow the suffix of ``path`` (:data:`VIDEO_SUFFIXES`). Frames go to
    a temporary file beside ``path`` that replaces it on a clean :meth:`close` (a failure leaves
    no partial file). Odd frame sizes are padded by one edge pixel: the yuv420p codecs need even
    sizes. Use as a context manager.
    """

    def __init__(self, path: str | os.PathLike, fps: float = 6.0):
        self.path = Path(path)
        suffix = self.path.suffix.lower()
        if suffix not in VIDEO_SUFFIXES:
            raise ValueError(f'{self.path}: unsupported video suffix {suffix!r} (use {", ".join(VIDEO_SUFFIXES)})')
        if not fps > 0:
            raise ValueError(f'{self.path}: frame rate must be > 0, got {fps}')
        av = _av()
        self._codec = next((c for c in _ENCODERS[suffix] if c in av.codecs_available), None)
        if self._codec is None:
            raise ValueError(f'{self.path}: this PyAV build has no encoder for {suffix} ({", ".join(_ENCODERS[suffix])})')
        self._format = _FORMATS[suffix]
        self._rate = Fraction(fps).limit_denominator(1001)
        self._tmp = self.path.with_name(f'.{self.path.stem}.{os.getpid()}.tmp{suffix}')
        self._container = None
        self._stream = None
        self._size = None
        self.frames = 0

    def write(self, rgb: np.ndarray) -> None:
        av = _av()
        rgb = np.asarray(rgb)
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            raise ValueError(f'{self.path}: frames must be (H, W, 3) uint8, got {rgb.shape} {rgb.dtype}')
        h, w = rgb.shape[:2]
        if self._container is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._container = av.open(str(self._tmp), 'w', format=self._format)
            self._stream = self._container.add_stream(self._codec, rate=self._rate)
            self._stream.width, self._stream.height = w + w % 2, h + h % 2
            self._stream.pix_fmt = 'yuv420p'
            self._size = (h, w)
        elif (h, w) != self._size:
            raise ValueError(f'{self.path}: frame {self.frames} is {w}x{h}, frame 0 was {self._size[1]}x{self._size[0]}')
        if h % 2 or w % 2:
            rgb = np.pad(rgb, ((0, h % 2), (0, w % 2), (0, 0)), mode='edge')
        for packet in self._stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format='rgb24')):
            self._container.mux(packet)
        self.frames += 1

    def close(self) -> Path:
        """Flush the encoder and move the file into place; returns ``path``."""
        if self._container is None:
            raise ValueError(f'{self.path}: no frames written')
        for packet in self._stream.encode():
            self._container.mux(packet)
        self._container.close()
        self._container = None
        os.replace(self._tmp, self.path)
        return self.path

    def abort(self) -> None:
        if self._container is not None:
            self._container.close()
            self._container = None
        self._tmp.unlink(missing_ok=True)

    def __enter__(self) -> 'VideoWriter':
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


# ------------------------------------------------------------------------------- video sources

def is_frame_folder(path: str | os.PathLike) -> bool:
    """A folder that directly holds at least one image file (:data:`visrc.data.frames.IMG_SUFFIXES`)."""
    p = Path(path)
    return p.is_dir() and any(c.is_file() and c.suffix.lower() in IMG_SUFFIXES for c in p.iterdir())


def find_video_sources(paths: Sequence[str | os.PathLike]) -> list[Path]:
    """The videos named by ``paths``: each is a video file, a frame folder, or a folder whose
    entries are video files and/or frame folders (taken in natural name order; other entries are
    ignored). Raises ``FileNotFoundError`` for a missing path and ``ValueError`` when a path holds
    no video; the message names the path."""
    out: list[Path] = []
    for p in map(Path, paths):
        if not p.exists():
            raise FileNotFoundError(f'{p}: no such video file or folder')
        if p.is_file():
            if not is_video_file(p):
                raise ValueError(f'{p}: not a video file ({", ".join(VIDEO_SUFFIXES)}) nor a folder of frames')
            out.append(p)
        elif is_frame_folder(p):
            out.append(p)
        else:
            found = natural_sorted(c for c in p.iterdir() if (c.is_file() and is_video_file(c)) or is_frame_folder(c))
            if not found:
                raise ValueError(f'{p}: holds no video file ({", ".join(VIDEO_SUFFIXES)}) and no folder of frames')
            out += found
    return out


def frame_folder_entry(folder: str | os.PathLike, video_id: int, root: str | os.PathLike | None = None) -> dict:
    """A YouTube-VIS ``videos`` entry (no annotations) of a frame folder: ``file_names`` in natural
    order, relative to ``root`` (absolute paths when ``root`` is None), ``height``/``width`` from
    the frame headers. Frames of different sizes raise ``ValueError`` naming the first odd one; a
    frame whose header does not read is left to the predictor (which fails or skips it), unless
    no frame reads at all."""
    from visrc.data.frames import frame_size, list_frames

    frames = list_frames(folder)
    size = None
    for f in frames:
        try:
            hw = frame_size(f)
        except ValueError:
            continue
        if size is None:
            size, first = hw, f
        elif hw != size:
            raise ValueError(f'{f}: frame is {hw[1]}x{hw[0]}, {first.name} of the same video is {size[1]}x{size[0]}')
    if size is None:
        raise ValueError(f'{folder}: no frame is a decodable image')
    names = [str(f.resolve()) if root is None else os.path.relpath(f, root) for f in frames]
    return dict(id=int(video_id), height=size[0], width=size[1], length=len(frames), file_names=names)


def video_file_entry(path: str | os.PathLike, video_id: int) -> dict:
    """A ``videos`` entry of a video file decoded on the fly: ``video_file`` (absolute path) in place
    of ``file_names`` (empty), ``length`` counted from its packets, and its ``fps``."""
    video = VideoFile(path)
    return dict(id=int(video_id), height=video.height, width=video.width, length=video.count_frames(),
                file_names=[], video_file=str(Path(path).resolve()), fps=video.fps)


def sources_to_ytvis(paths: Sequence[str | os.PathLike], classes: Sequence[str] = ()) -> dict:
    """An in-memory YouTube-VIS dict (videos and categories, no annotations) of the videos
    :func:`find_video_sources` finds in ``paths``, ids 1..N in that order. ``classes``: category
    names, ids 1..C. Frame folders get absolute ``file_names``; video files a ``video_file`` entry
    (:func:`video_file_entry`), which :func:`visrc.pipeline.predict_split` decodes on the fly."""
    videos = [video_file_entry(p, i) if p.is_file() else frame_folder_entry(p, i)
              for i, p in enumerate(find_video_sources(paths), start=1)]
    return dict(videos=videos, categories=[dict(id=i, name=str(c)) for i, c in enumerate(classes, start=1)],
                annotations=[])
