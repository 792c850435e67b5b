"""The dataset format (worldmodel.data.format) and the clip Dataset (worldmodel.data.dataset)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from worldmodel.data.dataset import ClipConfig, ClipDataset, make_loader
from worldmodel.data.format import (
    FORMAT_VERSION,
    DatasetError,
    DatasetWriter,
    atomic_write_bytes,
    load_video,
    parse_size,
    read_manifest,
    read_video_meta,
    split_by_hash,
)

H, W = 8, 12


def _frames(t: int, offset: int = 0) -> np.ndarray:
    """(T, H, W, 3) uint8 where every pixel of frame t holds (t + offset) so frames are identifiable."""
    return np.broadcast_to((np.arange(t) + offset).astype(np.uint8)[:, None, None, None], (t, H, W, 3)).copy()


def _gt(t: int) -> dict[str, np.ndarray]:
    """Per-frame ground truth with values that encode the frame index t."""
    ar = np.arange(t)
    mask = np.zeros((t, H, W), np.uint8)
    for i in range(t):
        mask[i, i % H, :] = 1
    done = np.zeros(t, bool)
    done[t // 2] = True
    return {
        "pos": np.stack([ar, -ar], 1).astype(np.float32),
        "shift": np.stack([ar, 10 * ar], 1).astype(np.float32),
        "bg_shift": np.stack([-ar, 0.5 * ar], 1).astype(np.float32),
        "local": (ar % 9).astype(np.int64),
        "action": (100 + ar).astype(np.int64),
        "reward": ar.astype(np.float32),
        "done": done,
        "mask": mask,
    }


def _writer(root: Path, **kw) -> DatasetWriter:
    return DatasetWriter(root, source="test", height=H, width=W, fps=10.0, generator={"seed": 1}, **kw)


# ----------------------------------------------------------------------------------------------- format


def test_round_trip_all_ground_truth(tmp_path: Path) -> None:
    w = _writer(tmp_path / "ds", extra={"note": "x"})
    gt = _gt(7)
    w.write("v0", _frames(7), split="train", identity="episode-0", info={"seed": 3}, **gt)
    w.write("v1", _frames(5, 50), split="val")
    man = w.close()

    assert man["num_videos"] == 2 and man["num_frames"] == 12 and man["version"] == FORMAT_VERSION
    assert man["splits"] == {"train": ["v0"], "val": ["v1"], "test": []}
    assert man["ground_truth"] == sorted(gt) and man["note"] == "x" and man["generator"] == {"seed": 1}
    assert man["videos"]["v0"]["identity"] == "episode-0" and man["videos"]["v1"]["identity"] == "v1"
    assert man["videos"]["v0"]["seed"] == 3 and man["videos"]["v1"]["ground_truth"] == []
    assert read_manifest(tmp_path / "ds") == json.loads((tmp_path / "ds/manifest.json").read_text()) == man

    back = load_video(tmp_path / "ds", "v0")
    np.testing.assert_array_equal(back["frames"], _frames(7))
    for k, v in gt.items():
        assert back[k].dtype == v.dtype, k
        np.testing.assert_array_equal(back[k], v)
    assert set(load_video(tmp_path / "ds", "v0", keys=("frames", "pos"))) == {"frames", "pos"}
    assert set(load_video(tmp_path / "ds", "v1")) == {"frames"}


def test_atomic_write_keeps_old_file_on_failure(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "f.bin"
    atomic_write_bytes(target, b"old")

    def boom(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError, match="disk full"):
        atomic_write_bytes(target, b"new contents")
    monkeypatch.undo()
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.bin"]  # temp file removed


def test_writer_failure_leaves_no_video(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    w = _writer(tmp_path)
    w.write("keep", _frames(3), split="train")
    monkeypatch.setattr(os, "replace", lambda *a: (_ for _ in ()).throw(KeyboardInterrupt()))
    with pytest.raises(KeyboardInterrupt):
        w.write("half", _frames(4), split="train")
    monkeypatch.undo()
    assert not w.has("half") and w.has("keep")
    assert [p.name for p in (tmp_path / "videos").iterdir()] == ["keep.npz"]


def test_stale_temp_files_are_removed_and_not_counted(tmp_path: Path) -> None:
    w = _writer(tmp_path)
    w.write("a", _frames(3), split="train")
    stale = tmp_path / "videos" / ".b.npz.abc123.tmp"
    stale.write_bytes(b"half a zip")
    assert not w.has("b")
    w2 = _writer(tmp_path)  # a new run (resume) cleans up what a killed run left
    assert not stale.exists()
    assert w2.has("a") and w2.close()["num_videos"] == 1


def test_manifest_rebuilt_from_videos(tmp_path: Path) -> None:
    w = _writer(tmp_path)
    for i, split in enumerate(["train", "train", "test"]):
        w.write(f"v{i}", _frames(3 + i), split=split, identity=f"id{i}")
    first = w.close()
    (tmp_path / "manifest.json").unlink()
    rebuilt = _writer(tmp_path).close()
    assert rebuilt == first
    (tmp_path / "videos" / "v1.npz").unlink()
    again = _writer(tmp_path).close()
    assert again["splits"]["train"] == ["v0"] and again["num_frames"] == 3 + 5


def test_manifest_rebuild_names_a_broken_video(tmp_path: Path) -> None:
    w = _writer(tmp_path)
    w.write("good", _frames(2), split="train")
    (tmp_path / "videos" / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(DatasetError, match=r"bad\.npz is unreadable.*delete it"):
        w.close()


def test_writer_refuses_other_dataset(tmp_path: Path) -> None:
    w = _writer(tmp_path)
    w.write("a", _frames(2), split="train")
    w.close()
    with pytest.raises(DatasetError, match="another --out"):
        DatasetWriter(tmp_path, source="test", height=H + 1, width=W, fps=10.0)
    with pytest.raises(DatasetError, match="another --out"):
        DatasetWriter(tmp_path, source="other", height=H, width=W, fps=10.0)


@pytest.mark.parametrize(
    ("frames", "gt", "split", "name", "match"),
    [
        (_frames(3).astype(np.float32), {}, "train", "v", "frames must be uint8"),
        (_frames(3)[:, :, :-1], {}, "train", "v", "frames must be uint8"),
        (_frames(3)[..., :2], {}, "train", "v", "frames must be uint8"),
        (_frames(0), {}, "train", "v", "has no frames"),
        (_frames(3), {"speed": np.zeros(3)}, "train", "v", "unknown ground-truth key 'speed'"),
        (_frames(3), {"pos": np.zeros((4, 2))}, "train", "v", r"'pos' of video v has shape \(4, 2\)"),
        (_frames(3), {"mask": np.zeros((3, H, W + 1))}, "train", "v", "'mask'"),
        (_frames(3), {}, "training", "v", "split must be one of"),
        (_frames(3), {}, "train", "a/b", "invalid video name"),
        (_frames(3), {}, "train", ".hidden", "invalid video name"),
    ],
)
def test_write_rejects_bad_input(tmp_path: Path, frames, gt, split, name, match) -> None:
    w = _writer(tmp_path)
    with pytest.raises(DatasetError, match=match):
        w.write(name, frames, split=split, **gt)
    assert list((tmp_path / "videos").iterdir()) == []


def test_split_by_hash_is_deterministic_and_balanced() -> None:
    ids = [f"video-{i}" for i in range(3000)]
    a = [split_by_hash(i) for i in ids]
    assert a == [split_by_hash(i) for i in reversed(ids)][::-1]
    counts = {s: a.count(s) / len(a) for s in ("train", "val", "test")}
    assert abs(counts["train"] - 0.8) < 0.03 and abs(counts["val"] - 0.1) < 0.02 and abs(counts["test"] - 0.1) < 0.02
    assert a != [split_by_hash(i, seed=1) for i in ids]


@pytest.mark.parametrize("text", ["0x5", "96x0", "-3x4", "96", "axb", "96x128x3", ""])
def test_parse_size_errors(text: str) -> None:
    with pytest.raises(DatasetError, match="HxW"):
        parse_size(text)


def test_parse_size_ok() -> None:
    assert parse_size("96x128") == (96, 128) and parse_size("32X48") == (32, 48)


def test_read_manifest_errors(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="does not exist"):
        read_manifest(tmp_path / "nope")
    with pytest.raises(DatasetError, match="no manifest.json"):
        read_manifest(tmp_path)
    (tmp_path / "manifest.json").write_text("{broken")
    with pytest.raises(DatasetError, match="not valid JSON.*delete it"):
        read_manifest(tmp_path)
    (tmp_path / "manifest.json").write_text(json.dumps({"format": "something-else"}))
    with pytest.raises(DatasetError, match="not a glassworld-dataset manifest"):
        read_manifest(tmp_path)
    (tmp_path / "manifest.json").write_text(json.dumps({"format": "glassworld-dataset", "version": 99}))
    with pytest.raises(DatasetError, match="upgrade glassworld"):
        read_manifest(tmp_path)


def test_video_meta_stands_alone(tmp_path: Path) -> None:
    w = _writer(tmp_path)
    path = w.write("v", _frames(4), split="test", identity="x/y.mp4", info={"fps": 5.0}, **{"reward": np.ones(4)})
    meta = read_video_meta(path)
    assert meta == {"split": "test", "identity": "x/y.mp4", "frames": 4, "ground_truth": ["reward"], "fps": 5.0}


# ----------------------------------------------------------------------------------------------- ClipDataset


@pytest.fixture()
def dataset(tmp_path: Path) -> Path:
    w = _writer(tmp_path)
    w.write("long", _frames(20), split="train", **_gt(20))
    w.write("short", _frames(4, 100), split="train", **_gt(4))
    w.write("other", _frames(9, 200), split="val")
    w.close()
    return tmp_path


@pytest.mark.parametrize("frame_skip", [0, 1, 3])
def test_clip_ground_truth_aligned_with_frame_skip(dataset: Path, frame_skip: int) -> None:
    cfg = ClipConfig(clip_len=4, frame_skip=frame_skip, stride=1)
    ds = ClipDataset(dataset, "train", cfg)
    step = frame_skip + 1
    span = 3 * step + 1
    assert len(ds) == sum(max(0, n - span + 1) for n in (20, 4))
    gt = _gt(20)
    for i in range(len(ds)):
        item = ds[i]
        if ds.videos[item["video"]] != "long":
            continue
        s = item["start"]
        idx = np.arange(s, s + span, step)
        assert item["frames"].shape == (4, 3, H, W) and item["frames"].dtype == torch.uint8
        np.testing.assert_array_equal(item["frames"][:, 0, 0, 0].numpy(), idx)  # frame value = its index
        np.testing.assert_array_equal(item["pos"].numpy(), gt["pos"][idx])
        for key in ("shift", "bg_shift"):
            expect = np.stack([gt[key][j - step + 1: j + 1].sum(0) for j in idx])
            expect[0] = 0
            np.testing.assert_allclose(item[key].numpy(), expect, err_msg=key)
        expect_r = np.array([gt["reward"][j - step + 1: j + 1].sum() for j in idx])
        expect_r[0] = 0
        np.testing.assert_allclose(item["reward"].numpy(), expect_r)
        for key in ("local", "action"):
            expect_a = gt[key][idx].copy()
            expect_a[0] = -1
            np.testing.assert_array_equal(item[key].numpy(), expect_a)
        expect_d = np.array([gt["done"][j - step + 1: j + 1].any() for j in idx])
        expect_d[0] = False
        np.testing.assert_array_equal(item["done"].numpy(), expect_d)
        assert item["mask"].shape == (4, 1, H, W) and item["mask"].dtype == torch.float32
        np.testing.assert_array_equal(item["mask"][:, 0].numpy(), gt["mask"][idx])


def test_clip_stride_and_no_ground_truth(dataset: Path) -> None:
    ds = ClipDataset(dataset, "train", ClipConfig(clip_len=3, frame_skip=1, stride=4, ground_truth=False))
    assert [(ds.videos[v], s) for v, s in ds.index] == [("long", s) for s in range(0, 16, 4)]
    item = ds[1]
    assert set(item) == {"frames", "video", "start"}
    np.testing.assert_array_equal(item["frames"][:, 0, 0, 0].numpy(), [4, 6, 8])
    assert ds.identity(0) == "long"


def test_clip_dataset_without_gt_keys(dataset: Path) -> None:
    ds = ClipDataset(dataset, "val", ClipConfig(clip_len=2))
    assert set(ds[0]) == {"frames", "video", "start"} and len(ds) == 8


def test_clip_dataset_errors(dataset: Path) -> None:
    with pytest.raises(DatasetError, match="split must be one of"):
        ClipDataset(dataset, "validation")
    with pytest.raises(DatasetError, match="no video with at least 31 frames"):
        ClipDataset(dataset, "train", ClipConfig(clip_len=11, frame_skip=2))
    with pytest.raises(DatasetError, match=r"split 'test' .* is empty: .* test: 0 videos of 0 identities"):
        ClipDataset(dataset, "test", ClipConfig(clip_len=2))
    with pytest.raises(DatasetError, match="invalid clip config"):
        ClipDataset(dataset, "train", ClipConfig(clip_len=0))
    with pytest.raises(DatasetError, match="no manifest.json"):
        ClipDataset(dataset / "videos", "train")


def test_clip_cache_evicts(dataset: Path) -> None:
    ds = ClipDataset(dataset, "train", ClipConfig(clip_len=2, cache_mb=0))
    for i in range(len(ds)):
        ds[i]
    assert len(ds._cache) == 1  # never more than the one video in use when the budget is 0


def test_make_loader_batches(dataset: Path) -> None:
    ds = ClipDataset(dataset, "train", ClipConfig(clip_len=3, frame_skip=1))
    batches = list(make_loader(ds, batch_size=4, workers=0, seed=0))
    assert batches[0]["frames"].shape == (4, 3, 3, H, W) and batches[0]["shift"].shape == (4, 3, 2)
    assert len(batches) == len(ds) // 4
    order = [b["start"].tolist() for b in make_loader(ds, batch_size=4, workers=0, seed=0)]
    assert order == [b["start"].tolist() for b in batches]  # seeded shuffle is reproducible


# ----------------------------------------------------------------------------------------------- checks on open


def _odd_size_file(tmp_path: Path, name: str, t: int) -> bytes:
    """The bytes of a valid video file of another frame size (H+2, W)."""
    w = DatasetWriter(tmp_path / "odd", source="test", height=H + 2, width=W, fps=10.0)
    return w.write(name, np.zeros((t, H + 2, W, 3), np.uint8), split="train").read_bytes()


def test_unusable_video_files_are_left_out_when_opened_and_named(dataset: Path, tmp_path: Path,
                                                                  caplog: pytest.LogCaptureFixture) -> None:
    videos = dataset / "videos"
    (videos / "short.npz").write_bytes((videos / "short.npz").read_bytes()[:-10])  # truncated: no zip directory
    (videos / "other.npz").write_bytes(_odd_size_file(tmp_path, "other", 9))  # listed, but 10x12 frames
    files = {p.name: p.read_bytes() for p in videos.iterdir()}
    with caplog.at_level("WARNING", logger="worldmodel.data.format"):
        m = read_manifest(dataset)
        again = read_manifest(dataset)  # remembered: no second warning
    assert m == again and m["splits"] == {"train": ["long"], "val": [], "test": []}
    assert m["num_videos"] == 1 and m["num_frames"] == 20 and sorted(m["skipped"]) == ["other", "short"]
    assert "BadZipFile" in m["skipped"]["short"] and f"(9, {H + 2}, {W}, 3)" in m["skipped"]["other"]
    warned = [r.getMessage() for r in caplog.records]
    assert len(warned) == 2 and all("left out of the dataset" in w for w in warned)
    assert any(str(videos / "short.npz") in w for w in warned) and any(str(videos / "other.npz") in w for w in warned)
    assert read_manifest(dataset, check="off")["num_videos"] == 3  # as written
    ds = ClipDataset(dataset, "train", ClipConfig(clip_len=3))
    assert ds.videos == ["long"] and sorted(ds.skipped) == ["other", "short"] and len(ds) == 18
    with pytest.raises(DatasetError, match=r"split 'val' .* has no usable video: 1 unusable video files .*other.npz"):
        ClipDataset(dataset, "val", ClipConfig(clip_len=3))
    assert {p.name: p.read_bytes() for p in videos.iterdir()} == files, "checking changed a file"
    with pytest.raises(DatasetError, match="data.check must be one of"):
        read_manifest(dataset, check="quick")


@pytest.mark.parametrize("problem, reason", [
    ("frames_count", "it holds 5 frames, but the manifest lists 4"),
    ("gt_length", "its ground truth 'pos' has shape (3, 2), expected (4, 2)"),
    ("missing", "the file is missing"),
    ("float_frames", "its frames are float32, not uint8"),
])
def test_header_check_reasons(tmp_path: Path, problem: str, reason: str) -> None:
    from worldmodel.data.format import check_video_file, npz_bytes

    path = tmp_path / "v.npz"
    meta = np.array(json.dumps({"frames": 4}))
    arrays = {"frames": _frames(4), "meta": meta}
    if problem == "frames_count":
        arrays["frames"] = _frames(5)
    elif problem == "gt_length":
        arrays["pos"] = np.zeros((3, 2), np.float32)
    elif problem == "float_frames":
        arrays["frames"] = _frames(4).astype(np.float32)
    if problem != "missing":
        path.write_bytes(npz_bytes(arrays))
    assert check_video_file(path, 4, (H, W)) == reason


def test_full_check_finds_corruption_the_header_check_cannot_see(tmp_path: Path) -> None:
    """A flipped byte late in a long deflate stream: headers read fine, decompressing the frames fails."""
    import zipfile

    from worldmodel.data.format import check_video_file

    w = DatasetWriter(tmp_path, source="test", height=32, width=32, fps=10.0)
    noise = np.random.default_rng(0).integers(0, 256, (12, 32, 32, 3), dtype=np.uint8)  # incompressible
    path = w.write("v", noise, split="train")
    w.close()
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo("frames.npy")
    raw = bytearray(path.read_bytes())
    start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    raw[start + info.compress_size - 50] ^= 0xFF
    path.write_bytes(bytes(raw))
    assert check_video_file(path, 12, (32, 32)) is None
    assert "corrupt" in check_video_file(path, 12, (32, 32), full=True) or "CRC" in check_video_file(
        path, 12, (32, 32), full=True)
    assert read_manifest(tmp_path)["splits"]["train"] == ["v"]
    assert read_manifest(tmp_path, check="full")["splits"]["train"] == []
    with pytest.raises(DatasetError, match=r"videos/v.npz is unreadable .*data.check=full"):
        load_video(tmp_path, "v")


# ----------------------------------------------------------------------------------------------- outputs


def test_check_writable(unwritable_dir: Path, tmp_path: Path) -> None:
    from worldmodel.data.format import check_writable

    new = tmp_path / "a" / "b"
    assert check_writable(new, "run_dir") == new
    assert not (tmp_path / "a").exists(), "the check leaves nothing behind"
    assert check_writable(tmp_path / "c" / "out.json", "out=", folder=False) == tmp_path / "c" / "out.json"
    assert sorted(p.name for p in tmp_path.iterdir()) == []
    bad = unwritable_dir / "run"
    with pytest.raises(DatasetError, match=rf"run_dir {bad} is not writable: .*choose a location you can write to"):
        check_writable(bad, "run_dir")
    with pytest.raises(DatasetError, match=rf"out= {bad / 'r.json'} is not writable"):
        check_writable(bad / "r.json", "out=", folder=False)
    with pytest.raises(DatasetError, match="is a folder; give a file name"):
        check_writable(tmp_path, "out=", folder=False)


@pytest.mark.parametrize("source, argv", [
    ("atari", ["--game", "Tennis", "--episodes", "1", "--max-steps", "5"]),
    ("sprites", ["--videos", "1", "--frames", "4"]),
    ("videos", ["--in", "IN", "--size", "8x8", "--fps", "5"]),
])
def test_data_commands_refuse_an_unwritable_out_first(unwritable_dir: Path, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str], source: str,
                                                     argv: list[str]) -> None:
    from worldmodel.data.cli import cli_main

    src = tmp_path / "in"
    src.mkdir()
    (src / "clip.gif").write_bytes(b"GIF89a")  # never read: the output is checked first
    out = unwritable_dir / "ds"
    argv = [a if a != "IN" else str(src) for a in argv]
    assert cli_main([source, *argv, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"--out {out} is not writable" in err and err.count("\n") == 1, err
