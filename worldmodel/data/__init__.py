"""Datasets: the on-disk format, the clip Dataset, and the sources (ALE games, W-Sprites, video files)."""

from .dataset import ClipConfig, ClipDataset, make_loader
from .format import DatasetError, DatasetWriter, load_video, read_manifest

__all__ = ["ClipConfig", "ClipDataset", "DatasetError", "DatasetWriter", "load_video", "make_loader", "read_manifest"]
