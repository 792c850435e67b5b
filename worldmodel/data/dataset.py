"""PyTorch ``Dataset`` of fixed-length clips from a glassworld dataset folder (see :mod:`.format`)."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from .format import SPLITS, DatasetError, load_video, read_manifest


@dataclass
class ClipConfig:
    """How clips are cut from videos."""

    clip_len: int = 6  # T frames per clip (GLASS starts at 6 observations)
    frame_skip: int = 0  # frames dropped between two clip frames (GLASS Tennis uses 4)
    stride: int = 1  # distance between the start frames of two consecutive clips of one video
    ground_truth: bool = True  # also return the aligned ground truth
    cache_mb: int = 1024  # per-worker cache of decoded videos
    check: str = "header"  # video-file check when the dataset is opened: header | full | off (format.read_manifest)


def _empty_split_message(manifest: dict[str, Any], split: str, root: Path) -> str:
    """Why a split has no video (identities per split: videos of one identity share a split) and the fix."""
    idents = {s: sorted({manifest["videos"][n].get("identity", n) for n in manifest["splits"].get(s, [])})
              for s in SPLITS}
    counts = ", ".join(f"{s}: {len(manifest['splits'].get(s, []))} videos of {len(idents[s])} identities"
                       for s in SPLITS)
    total = len(set().union(*idents.values()))
    return (f"split {split!r} of {root} is empty: videos are split by identity (episode, sprite or file; all "
            f"videos of one identity share a split, about 80/10/10 % of identities to train/val/test), and its "
            f"{total} identities gave {counts}. Fix: make the dataset with more identities (more episodes, sprites "
            f"(--videos / --per-sprite) or files; 3 or more sprites, or about 10 episodes or files, give every "
            f"split some), or use split=train")


def _left_out(skipped: dict[str, str], show: int = 3) -> str:
    """One line naming the first ``show`` unusable video files and why, with the fix."""
    named = "; ".join(f"videos/{n}.npz: {why}" for n, why in list(skipped.items())[:show])
    more = f" and {len(skipped) - show} more" if len(skipped) > show else ""
    return (f"{len(skipped)} unusable video files were left out ({named}{more}); delete them and re-run the "
            "`glassworld data` command that made the folder to regenerate them")


class ClipDataset(Dataset):
    """Clips of ``clip_len`` frames taken every ``frame_skip + 1`` frames, with aligned ground truth.

    Item (a dict of tensors):

    * ``frames``: (T, 3, H, W) uint8;
    * ``pos``: (T, 2) float32, agent position (x, y) in pixels;
    * ``shift``: (T, 2) float32, agent shift from clip frame t-1 to t (summed over skipped frames), row 0 = 0;
    * ``bg_shift``: (T, 2) float32, same for the background;
    * ``local``: (T,) int64, local action of the last step into frame t (-1 for row 0);
    * ``action``: (T,) int64, raw action of the last step into frame t (-1 for row 0);
    * ``reward``: (T,) float32, summed over the steps into frame t; ``done``: (T,) bool;
    * ``mask``: (T, 1, H, W) float32 in {0, 1};
    * ``video``: int index into :attr:`videos`; ``start``: first frame index in the video.

    Only the ground truth the dataset has is returned. Video files that fail the ``cfg.check`` check are left out
    with one warning each (named in :attr:`skipped`, {name: reason}); a split left without clips is an error.
    """

    def __init__(self, root: str | Path, split: str = "train", cfg: ClipConfig | None = None) -> None:
        self.root = Path(root)
        self.cfg = cfg or ClipConfig()
        if split not in SPLITS:
            raise DatasetError(f"split must be one of {SPLITS}, got {split!r}")
        if self.cfg.clip_len < 1 or self.cfg.frame_skip < 0 or self.cfg.stride < 1:
            raise DatasetError(f"invalid clip config {self.cfg}: clip_len>=1, frame_skip>=0, stride>=1")
        self.manifest = read_manifest(self.root, check=self.cfg.check)
        self.skipped: dict[str, str] = dict(self.manifest.get("skipped") or {})
        self.split = split
        self.height, self.width = self.manifest["height"], self.manifest["width"]
        self.videos: list[str] = list(self.manifest["splits"][split])
        span = (self.cfg.clip_len - 1) * (self.cfg.frame_skip + 1) + 1
        self.span = span
        self.index: list[tuple[int, int]] = []
        for vi, name in enumerate(self.videos):
            n = self.manifest["videos"][name]["frames"]
            self.index.extend((vi, s) for s in range(0, n - span + 1, self.cfg.stride))
        if not self.videos and self.skipped:  # emptied by the checks?
            listed = set(read_manifest(self.root, check="off")["splits"].get(split) or [])
            mine = {n: r for n, r in self.skipped.items() if n in listed}
            if mine:
                raise DatasetError(f"split {split!r} of {self.root} has no usable video: {_left_out(mine)}")
        if not self.videos:
            raise DatasetError(_empty_split_message(self.manifest, split, self.root))
        if not self.index:
            left_out = f" ({_left_out(self.skipped)})" if self.skipped else ""
            raise DatasetError(
                f"split {split!r} of {self.root} has no video with at least {span} frames "
                f"(clip_len={self.cfg.clip_len}, frame_skip={self.cfg.frame_skip}){left_out}; "
                "use shorter clips or generate more/longer videos"
            )
        self._cache: OrderedDict[int, dict[str, np.ndarray]] = OrderedDict()
        self._cache_bytes = 0

    def __len__(self) -> int:
        return len(self.index)

    def identity(self, video: int) -> str:
        return self.manifest["videos"][self.videos[video]]["identity"]

    def _video(self, vi: int) -> dict[str, np.ndarray]:
        if vi in self._cache:
            self._cache.move_to_end(vi)
            return self._cache[vi]
        keys = None if self.cfg.ground_truth else ("frames",)
        arrays = load_video(self.root, self.videos[vi], keys)
        size = sum(a.nbytes for a in arrays.values())
        self._cache[vi] = arrays
        self._cache_bytes += size
        while self._cache_bytes > self.cfg.cache_mb * 2**20 and len(self._cache) > 1:
            _, old = self._cache.popitem(last=False)
            self._cache_bytes -= sum(a.nbytes for a in old.values())
        return arrays

    def __getitem__(self, i: int) -> dict[str, Any]:
        vi, start = self.index[i]
        v = self._video(vi)
        step = self.cfg.frame_skip + 1
        idx = np.arange(start, start + self.span, step)
        item: dict[str, Any] = {
            "frames": torch.from_numpy(np.ascontiguousarray(v["frames"][idx].transpose(0, 3, 1, 2))),
            "video": vi,
            "start": start,
        }
        if not self.cfg.ground_truth:
            return item
        for key in ("shift", "bg_shift", "reward"):  # summed over the steps into each clip frame
            if key in v:
                c = np.cumsum(v[key], axis=0, dtype=np.float64)
                summed = c[idx] - c[np.maximum(idx - step, 0)]
                summed[0] = 0
                item[key] = torch.from_numpy(summed.astype(np.float32))
        for key in ("local", "action"):  # the last step into each clip frame
            if key in v:
                vals = v[key][idx].astype(np.int64)
                vals[0] = -1
                item[key] = torch.from_numpy(vals)
        if "pos" in v:
            item["pos"] = torch.from_numpy(v["pos"][idx].astype(np.float32))
        if "done" in v:
            d = np.cumsum(v["done"].astype(np.int64))
            done = (d[idx] - d[np.maximum(idx - step, 0)]) > 0
            done[0] = False  # row 0 is "nothing happened yet", as for reward (was start-dependent)
            item["done"] = torch.from_numpy(done)
        if "mask" in v:
            item["mask"] = torch.from_numpy(v["mask"][idx][:, None].astype(np.float32))
        return item


def make_loader(dataset: ClipDataset, batch_size: int, shuffle: bool = True, workers: int = 2,
                seed: int = 0, drop_last: bool = True, sampler: Sampler | None = None) -> DataLoader:
    """A DataLoader with worker processes (persistent, prefetching) and a seeded shuffle.

    ``sampler`` (e.g. a ``DistributedSampler``) replaces the shuffle; ``seed`` still seeds the loader's own
    generator (worker seeds), so the global torch RNG is never consumed.
    """
    g = torch.Generator().manual_seed(seed)
    return DataLoader(
        dataset, batch_size=batch_size, shuffle=shuffle and sampler is None, sampler=sampler,
        num_workers=workers, generator=g,
        drop_last=drop_last and len(dataset) >= batch_size, persistent_workers=workers > 0,
        prefetch_factor=4 if workers > 0 else None, pin_memory=torch.cuda.is_available(),
    )
