"""visrc: a runnable reproduction of the 1st place YouTube-VOS 2021 VIS solution.

Subpackages: ``data`` (YouTube-VIS JSON, toy generator), ``evaluation`` (video AP, export),
``tracking`` (association, BiTrack, label voting), ``models`` (Mask R-CNN + P7 + track head,
TCIS, multi-task heads), ``analysis`` (frame-overlap statistics), ``viz`` (plots, widgets).
"""
__version__ = "0.1.0"
