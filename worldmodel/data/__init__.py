"""Datasets: the on-disk format, the clip Dataset, and the sources (ALE games, W-Sprites, video files)."""

from typing import Any

from .format import DatasetError, DatasetWriter, load_video, read_manifest

__all__ = ["ClipConfig", "ClipDataset", "DatasetError", "DatasetWriter", "load_video", "make_loader", "read_manifest"]
# These need torch: imported on first use, so `glassworld data ...` starts in 0.5 s instead of ~4 s.
_LAZY = {"ClipConfig", "ClipDataset", "make_loader"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from . import dataset

        return getattr(dataset, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
