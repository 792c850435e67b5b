"""``glassworld data videos``: video files through PyAV, CADDY/GLASS frame folders, bad input, resuming."""

from __future__ import annotations

import json
import logging
import os
import pickle
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from worldmodel.data import videos as V
from worldmodel.data.cli import cli_main
from worldmodel.data.format import DatasetError, load_video, read_manifest, split_by_hash

from .kill import assert_same_files, run_and_kill

REPO = Path(__file__).resolve().parents[2]
SRC_H, SRC_W, N_SRC, SRC_FPS = 32, 48, 24, 24
SQ = 8  # square side; in source frame i it covers rows 10..17 and columns 4+i .. 11+i


def square_frame(i: int, h: int = SRC_H, w: int = SRC_W) -> np.ndarray:
    """(h, w, 3) uint8: black with a white 8x8 square whose left edge is at x = 4 + i."""
    a = np.zeros((h, w, 3), np.uint8)
    a[10:10 + SQ, 4 + i:4 + i + SQ] = 255
    return a


def make_video(path: Path, codec: str = "mpeg4", pix_fmt: str = "yuv420p", n: int = N_SRC, fps: int = SRC_FPS,
               fmt: str | None = None, pts: list[int] | None = None, time_base: Fraction | None = None) -> Path:
    """Encode n frames of the moving square with PyAV (optionally with explicit pts in time_base units)."""
    with av.open(str(path), "w", format=fmt) as c:
        s = c.add_stream(codec, rate=fps)
        s.width, s.height, s.pix_fmt = SRC_W, SRC_H, pix_fmt
        if time_base is not None:
            s.codec_context.time_base = time_base
        for i in range(n):
            f = av.VideoFrame.from_ndarray(square_frame(i), format="rgb24")
            if pts is not None:
                f.pts, f.time_base = pts[i], time_base
            for p in s.encode(f):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    return path


def centroid(frame: np.ndarray) -> tuple[float, float]:
    """Intensity-weighted (x, y) centroid of an (H, W, 3) frame, in pixel-index units."""
    g = frame.astype(np.float64).mean(-1)
    g = np.where(g > 40, g, 0)  # ignore compression noise on the black background
    ys, xs = np.mgrid[: g.shape[0], : g.shape[1]]
    return float((g * xs).sum() / g.sum()), float((g * ys).sum() / g.sum())


def cfg_for(src: Path, out: Path, size: tuple[int, int] = (SRC_H, SRC_W), fps: float = 12, crop: str = "center",
            seed: int = 0) -> V.VideosConfig:
    return V.VideosConfig(src=src, out=out, height=size[0], width=size[1], fps=fps, seed=seed, crop=crop,
                          progress=False)


def run_cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "worldmodel.cli", "data", "videos", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=timeout)


# --------------------------------------------------------------------------------------------- resampling


def _resample(times: list[float], fps: float, default: float = 1 / 25, last: float | None = None) -> list[int]:
    items = [(Fraction(t).limit_denominator(10**6), i) for i, t in enumerate(times)]
    lf = (lambda: Fraction(last)) if last is not None else None
    return list(V.resample_nearest(items, fps, Fraction(default), lf))


def test_resample_nearest_regular_rates() -> None:
    t24 = [i / 24 for i in range(24)]
    assert _resample(t24, 12) == list(range(0, 24, 2))
    assert _resample(t24, 10) == [0, 2, 5, 7, 10, 12, 14, 17, 19, 22]  # nearest of k * 2.4
    assert _resample(t24, 24) == list(range(24))
    assert _resample(t24, 48) == [i // 2 for i in range(48)]  # each frame twice
    assert _resample([t + 5.0 for t in t24], 12) == list(range(0, 24, 2))  # times relative to the first frame


def test_resample_nearest_irregular_and_edge_cases() -> None:
    # variable frame rate: a burst, then a long hold; output at 10 fps follows the real times
    times = [0.0, 0.01, 0.02, 0.03, 0.5, 0.52]
    assert _resample(times, 10) == [0, 3, 3, 4, 4, 4]  # end = 0.52 + 0.02 (last interval)
    assert _resample(times, 10, last=0.3) == [0, 3, 3, 4, 4, 4, 5, 5, 5]  # end = 0.52 + 0.3 (own duration)
    assert _resample([0.0, 0.1], 20) == [0, 0, 1, 1]  # tie (0.05) goes to the earlier frame
    assert _resample([0.0], 10, default=0.25) == [0, 0, 0]  # one frame lasting the default duration
    assert _resample([], 10) == []


# --------------------------------------------------------------------------------------------- video files

FORMATS = [  # (file name, codec, pixel format)
    ("a.mp4", "mpeg4", "yuv420p"),
    ("b.avi", "mjpeg", "yuvj420p"),
    ("c.mkv", "libx264", "yuv420p"),
    ("d.webm", "libvpx-vp9", "yuv420p"),
    ("e.mov", "mpeg4", "yuv420p"),
    ("f.gif", "gif", "rgb8"),
    ("g.ts", "mpeg2video", "yuv420p"),
    ("h.h264", "libx264", "yuv420p"),  # raw stream: no timestamps at all, timing from the guessed rate
    ("i.y4m", "rawvideo", "yuv420p"),
]


@pytest.mark.parametrize(("fname", "codec", "pix"), FORMATS, ids=[f[0] for f in FORMATS])
def test_video_file_round_trip(tmp_path: Path, fname: str, codec: str, pix: str) -> None:
    fmt = {"h264": "h264", "y4m": "yuv4mpegpipe"}.get(fname.split(".")[-1])
    path = make_video(tmp_path / fname, codec, pix, fmt=fmt)
    frames, info = V.decode_video_file(path, cfg_for(tmp_path, tmp_path / "out", fps=12))
    assert frames.shape == (12, SRC_H, SRC_W, 3) and frames.dtype == np.uint8  # 24 frames at 24 fps -> 12 at 12
    assert info["source_frames"] == N_SRC and info["source_size"] == [SRC_H, SRC_W]
    for k, f in enumerate(frames):  # output k shows source frame 2k: square centre x = 7.5 + 2k
        x, y = centroid(f)
        assert abs(x - (7.5 + 2 * k)) < 1.0 and abs(y - 13.5) < 1.0, (k, x, y)


def test_fps_resampling_counts_and_positions(tmp_path: Path) -> None:
    path = make_video(tmp_path / "a.mp4", "mpeg4")  # mp4 time base 1/12288: exact 24 fps timestamps
    for fps, expect in ((10, [0, 2, 5, 7, 10, 12, 14, 17, 19, 22]), (6, [0, 4, 8, 12, 16, 20]), (24, range(24)),
                        (48, [i // 2 for i in range(48)])):
        frames, _ = V.decode_video_file(path, cfg_for(tmp_path, tmp_path / "o", fps=fps))
        assert len(frames) == len(expect), fps
        xs = [centroid(f)[0] - 7.5 for f in frames]
        np.testing.assert_allclose(xs, list(expect), atol=0.8, err_msg=str(fps))


def test_variable_frame_rate_uses_timestamps(tmp_path: Path) -> None:
    # 24 frames whose pts (ms) are irregular: frames 0-11 every 20 ms, then every 100 ms.
    pts = [20 * i for i in range(12)] + [220 + 100 * (i - 11) for i in range(12, 24)]
    path = make_video(tmp_path / "vfr.mkv", "libx264", pts=pts, time_base=Fraction(1, 1000), fps=10)
    frames, _ = V.decode_video_file(path, cfg_for(tmp_path, tmp_path / "o", fps=10))
    times = [Fraction(p, 1000) for p in pts]
    expect = list(V.resample_nearest(list(zip(times, range(24))), 10, Fraction(1, 10)))
    assert len(frames) == len(expect) > 12
    np.testing.assert_allclose([centroid(f)[0] - 7.5 for f in frames], expect, atol=0.8)
    assert expect[:3] == [0, 5, 10]  # 100 ms apart in time, not 1 frame apart


@pytest.mark.parametrize("crop", ["center", "none"])
def test_resize_with_and_without_crop(tmp_path: Path, crop: str) -> None:
    path = make_video(tmp_path / "a.avi", "mjpeg", "yuvj420p")
    frames, _ = V.decode_video_file(path, cfg_for(tmp_path, tmp_path / "o", size=(16, 16), fps=24, crop=crop))
    assert frames.shape == (24, 16, 16, 3)
    for i in range(6, 18):  # square fully inside the centre crop (source x in [8, 40))
        x, y = centroid(frames[i])
        cx = 8 + i  # square centre in continuous source coordinates
        ex = (cx - 8) * 0.5 - 0.5 if crop == "center" else cx * 16 / 48 - 0.5
        assert abs(x - ex) < 0.6 and abs(y - (14 * 0.5 - 0.5)) < 0.6, (i, x, ex, y)


# --------------------------------------------------------------------------------------------- the command


def _bad_files(root: Path) -> dict[str, str]:
    """Bad inputs next to good ones; returns {identity: expected words in its warning}."""
    good = make_video(root / "good.mp4")
    (root / "empty.mp4").write_bytes(b"")
    (root / "text.mp4").write_text("this is a text file, not a video\n")
    (root / "noise.avi").write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    data = good.read_bytes()
    (root / "truncated.mp4").write_bytes(data[: len(data) // 2])  # mp4 index (moov) is at the end: corrupt
    for name in ("zero.avi", "zero.mkv", "zero.mp4"):  # containers written with no frames at all
        with av.open(str(root / name), "w") as c:
            s = c.add_stream("mpeg4", rate=24)
            s.width, s.height, s.pix_fmt = SRC_W, SRC_H, "yuv420p"
            c.start_encoding()
    (root / "dangling.mkv").symlink_to(root / "does-not-exist.mkv")  # unreadable
    return {"empty.mp4": "empty file", "text.mp4": "not a readable video", "noise.avi": "",
            "truncated.mp4": "", "zero.avi": "no decodable video frames", "zero.mkv": "", "zero.mp4": "",
            "dangling.mkv": "cannot read"}


def test_bad_files_are_warned_once_and_skipped(tmp_path: Path) -> None:
    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    bad = _bad_files(src)
    make_video(src / "sub" / "clip.mkv", "libx264")
    (src / "notes.txt").write_text("ignored: not a video extension")
    (src / "sub" / "deeper").mkdir()
    make_video(src / "sub" / "deeper" / "too_deep.mp4")  # only root + immediate subfolders are searched
    proc = run_cli("--in", str(src), "--out", str(tmp_path / "out"), "--size", "32x48", "--fps", "12")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stderr.splitlines()
    for name, words in bad.items():
        hits = [ln for ln in lines if name in ln]
        assert len(hits) == 1, (name, lines)  # exactly one line names each bad file ...
        assert hits[0].startswith("WARNING") and "skipping" in hits[0] and words in hits[0]
    assert not any("notes.txt" in ln or "too_deep" in ln for ln in lines)
    man = read_manifest(tmp_path / "out")
    ids = sorted(m["identity"] for m in man["videos"].values())
    assert ids == ["good.mp4", "sub/clip.mkv"] and man["num_frames"] == 24
    for name, meta in man["videos"].items():  # ... and every good one is in its hash split
        assert meta["split"] == split_by_hash(meta["identity"], seed=0) and name == V.output_name(meta["identity"])
        assert meta["fps"] == 12.0 and meta["frames"] == 12


def test_nothing_converted_exits_nonzero_with_reason(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    src = tmp_path / "in"
    src.mkdir()
    _bad_files(src)
    (src / "good.mp4").unlink()
    assert cli_main(["videos", "--in", str(src), "--out", str(tmp_path / "o"), "--size", "8x8", "--fps", "5"]) == 2
    err = capsys.readouterr().err
    assert "no video converted: all 8 inputs" in err and "unreadable" in err
    assert not (tmp_path / "o" / "manifest.json").exists()

    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "readme.txt").write_text("x")
    assert cli_main(["videos", "--in", str(empty), "--out", str(tmp_path / "o2"), "--size", "8x8", "--fps", "5"]) == 2
    assert "found no video files" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--size", "0x48", "--fps", "10"], "positive HxW"),
        (["--size", "32x-1", "--fps", "10"], "positive HxW"),
        (["--size", "big", "--fps", "10"], "HxW with two integers"),
        (["--size", "32x48", "--fps", "0"], "--fps must be a positive"),
        (["--size", "32x48", "--fps", "-2"], "--fps must be a positive"),
        (["--size", "32x48", "--fps", "nan"], "--fps must be a positive"),
        (["--size", "32x48", "--fps", "10", "MISSING"], "does not exist"),
        (["--size", "32x48", "--fps", "10", "FILE"], "is a file"),
    ],
)
def test_bad_arguments_get_one_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture, args: list[str],
                                           words: str) -> None:
    src = tmp_path / "in"
    src.mkdir()
    make_video(src / "a.mp4", n=3)
    if args[-1] == "MISSING":
        args, src = args[:-1], tmp_path / "missing"
    elif args[-1] == "FILE":
        args, src = args[:-1], src / "a.mp4"
    rc = cli_main(["videos", "--in", str(src), "--out", str(tmp_path / "out"), *args])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and words in err[0] and err[0].startswith("glassworld data videos: error:")
    assert not (tmp_path / "out" / "videos").exists() or not any((tmp_path / "out" / "videos").iterdir())


def test_resume_with_other_settings_is_refused(tmp_path: Path) -> None:
    src = tmp_path / "in"
    src.mkdir()
    make_video(src / "a.mp4", n=6)
    V.convert(cfg_for(src, tmp_path / "out", fps=12))
    again = V.convert(cfg_for(src, tmp_path / "out", fps=12))
    assert again.present == 1 and again.written == 0
    with pytest.raises(DatasetError, match="fps=12.0.*another --out"):
        V.convert(cfg_for(src, tmp_path / "out", fps=6))


def test_splits_are_deterministic_and_seeded(tmp_path: Path) -> None:
    src = tmp_path / "in"
    (src / "val").mkdir(parents=True)
    base = make_video(src / "v0.mp4", n=2)
    for i in range(1, 12):
        (src / f"v{i}.mp4").symlink_to(base)
    (src / "val" / "fixed.mp4").symlink_to(base)
    a = V.convert(cfg_for(src, tmp_path / "a", seed=0)).manifest
    b = V.convert(cfg_for(src, tmp_path / "b", seed=0)).manifest
    c = V.convert(cfg_for(src, tmp_path / "c", seed=7)).manifest
    assert a["splits"] == b["splits"] and a["splits"] != c["splits"]
    for man, seed in ((a, 0), (c, 7)):
        for meta in man["videos"].values():
            expect = "val" if meta["identity"] == "val/fixed.mp4" else split_by_hash(meta["identity"], seed=seed)
            assert meta["split"] == expect


# --------------------------------------------------------------------------------------------- CADDY folders


class _Evil:
    def __reduce__(self):
        return (os.system, ("touch PWNED",))


def _save_png(path: Path, arr: np.ndarray, mode: str | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr, mode).save(path)


def _wsprites_video(folder: Path, t: int, rng: np.random.Generator) -> dict:
    """A W-Sprites-like 128x96 video: a sprite (partly pure-red, so its mask is grey there) on a background."""
    sprite_xy = [(int(rng.integers(0, 64)), int(rng.integers(0, 32))) for _ in range(t)]
    for i, (x, y) in enumerate(sprite_xy):
        frame = np.full((96, 128, 3), 40, np.uint8)
        frame[y:y + 64, x:x + 64] = 200
        frame[y:y + 8, x:x + 64] = (255, 0, 0)
        mask3 = np.zeros((96, 128, 3), np.float64)
        mask3[y:y + 64, x:x + 64] = 1
        mask3[y:y + 8, x:x + 64] = (1, 0, 0)
        _save_png(folder / f"{i:05d}.png", frame)
        mask_l = Image.fromarray((mask3 * 255).astype(np.uint8)).convert("L")  # grey where only red is > 0
        _save_png(folder / "masks" / f"{i:05d}.png", np.asarray(mask_l))
    gl = {
        "global": [int(v) for v in rng.integers(0, 5, t)],
        "local": [int(v) for v in rng.integers(0, 9, t)],
        "shifts": [(float(a), float(b)) for a, b in rng.uniform(-0.25, 0.25, (t, 2))],
        "bg_shifts": [(float(a), float(b)) for a, b in rng.uniform(-0.2, 0.2, (t, 2))],
    }
    with open(folder / "glactions.pkl", "wb") as f:
        pickle.dump(gl, f, protocol=2)
    for name, val in (("actions", gl["global"]), ("rewards", [None] * t), ("dones", [None] * t),
                      ("metadata", [None] * t)):
        with open(folder / f"{name}.pkl", "wb") as f:
            pickle.dump(val, f, protocol=2)
    return {"gl": gl, "xy": sprite_xy}


def test_caddy_folders_import_with_ground_truth(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    root = tmp_path / "caddy"
    rng = np.random.default_rng(3)
    ws = _wsprites_video(root / "train" / "sprite_000001_video_000", 5, rng)
    # a generic CADDY video (64x64) with raw actions / rewards / dones and a hostile metadata pickle
    other = root / "val" / "episode_7"
    for i in range(4):
        _save_png(other / f"{i:05d}.png", np.full((64, 64, 3), 10 * i, np.uint8))
    pickle.dump([3, 1, 4, 1], open(other / "actions.pkl", "wb"))
    pickle.dump([0.0, 1.5, np.float64(0.0), 2.0], open(other / "rewards.pkl", "wb"))
    pickle.dump([False, False, False, True], open(other / "dones.pkl", "wb"))
    pickle.dump(_Evil(), open(other / "metadata.pkl", "wb"))
    # a flat-style frame folder (no split folder) with an RGBA frame, a bad pickle and a too-short pickle
    flat = root / "loose_clip"
    rgba = np.zeros((64, 64, 4), np.uint8)
    rgba[..., 0] = 255  # fully transparent red -> flattened onto white
    _save_png(flat / "00000.png", rgba, "RGBA")
    _save_png(flat / "00001.png", np.zeros((64, 64, 3), np.uint8))
    pickle.dump(_Evil(), open(flat / "actions.pkl", "wb"))
    pickle.dump([None, 1.0], open(flat / "rewards.pkl", "wb"))
    pickle.dump([True], open(flat / "dones.pkl", "wb"))

    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        with caplog.at_level(logging.WARNING, logger="worldmodel.data.videos"):
            s = V.convert(cfg_for(root, tmp_path / "out", size=(48, 64), fps=7))
    finally:
        os.chdir(cwd)
    assert not (tmp_path / "PWNED").exists()  # pickles cannot run code
    warnings = [r.getMessage() for r in caplog.records]
    assert any("loose_clip" in w and "actions.pkl" in w and "refusing to load" in w for w in warnings)
    assert any("loose_clip" in w and "rewards.pkl" in w and "mixes None" in w for w in warnings)
    assert any("loose_clip" in w and "dones.pkl" in w and "1 entries for 2 frames" in w for w in warnings)
    assert not any("episode_7" in w for w in warnings)  # its hostile metadata.pkl is never read

    man = s.manifest
    assert s.written == 3 and man["fps"] == 7.0
    by_id = {m["identity"]: (n, m) for n, m in man["videos"].items()}
    assert set(by_id) == {"train/sprite_000001_video_000", "val/episode_7", "loose_clip"}
    assert by_id["train/sprite_000001_video_000"][1]["split"] == "train"
    assert by_id["val/episode_7"][1]["split"] == "val"
    assert by_id["loose_clip"][1]["split"] == split_by_hash("loose_clip")

    # W-Sprites: 128x96 -> 64x48 is a uniform 0.5 scale; shifts in output pixels (method.md 7.4)
    v = load_video(tmp_path / "out", by_id["train/sprite_000001_video_000"][0])
    gl = ws["gl"]
    assert set(v) == {"frames", "action", "local", "shift", "bg_shift", "mask"}  # all-None rewards/dones: not GT
    assert v["frames"].shape == (5, 48, 64, 3)
    np.testing.assert_array_equal(v["action"], gl["global"])
    np.testing.assert_array_equal(v["local"], gl["local"])
    np.testing.assert_allclose(v["shift"], np.array(gl["shifts"]) * [32 * 0.5, 16 * 0.5], rtol=1e-6)
    np.testing.assert_allclose(v["bg_shift"], np.array(gl["bg_shifts"]) * [-6.25 * 0.5, -4.6875 * 0.5], rtol=1e-6)
    for i, (x, y) in enumerate(ws["xy"]):  # the mask (including the pure-red rows) is the sprite's 32x32 box
        expect = np.zeros((48, 64), np.uint8)
        expect[y // 2: (y + 64) // 2, x // 2: (x + 64) // 2] = 1
        assert np.abs(v["mask"][i].astype(int) - expect).sum() <= 2 * (32 + 32), i  # at most the border differs
        assert 32 * 32 <= int(v["mask"][i].sum()) <= 33 * 33

    from worldmodel.data.dataset import ClipConfig, ClipDataset

    clips = ClipDataset(tmp_path / "out", "train", ClipConfig(clip_len=3, frame_skip=1))  # the training view
    item = clips[0]
    assert len(clips) == 1 and item["frames"].shape == (3, 3, 48, 64) and item["mask"].shape == (3, 1, 48, 64)
    np.testing.assert_allclose(item["shift"][1].numpy(), v["shift"][1:3].sum(0), rtol=1e-6)
    assert item["local"].tolist() == [-1, gl["local"][2], gl["local"][4]]

    e = load_video(tmp_path / "out", by_id["val/episode_7"][0])
    assert set(e) == {"frames", "action", "reward", "done"}
    np.testing.assert_array_equal(e["action"], [3, 1, 4, 1])
    np.testing.assert_allclose(e["reward"], [0, 1.5, 0, 2])
    np.testing.assert_array_equal(e["done"], [False, False, False, True])
    assert e["frames"].shape == (4, 48, 64, 3)
    np.testing.assert_array_equal(e["frames"][:, 24, 32, 0], [0, 10, 20, 30])  # frame for frame, no resampling

    f = load_video(tmp_path / "out", by_id["loose_clip"][0])
    assert set(f) == {"frames"}
    assert (f["frames"][0] == 255).all() and (f["frames"][1] == 0).all()  # transparent -> white


def test_wsprites_shifts_with_plain_resize(tmp_path: Path) -> None:
    root = tmp_path / "ws"
    ws = _wsprites_video(root / "test" / "sprite_000002_video_001", 3, np.random.default_rng(0))
    s = V.convert(cfg_for(root, tmp_path / "out", size=(48, 32), fps=7, crop="none"))
    (name,) = s.manifest["videos"]
    v = load_video(tmp_path / "out", name)
    sx, sy = 32 / 128, 48 / 96
    np.testing.assert_allclose(v["shift"], np.array(ws["gl"]["shifts"]) * [32 * sx, 16 * sy], rtol=1e-6)
    assert s.manifest["videos"][name]["split"] == "test"


def test_in_may_be_one_frame_folder(tmp_path: Path) -> None:
    folder = tmp_path / "sprite_000003_video_002"
    _wsprites_video(folder, 2, np.random.default_rng(1))
    inputs, _ = V.find_inputs(folder)
    assert [(i.identity, i.kind) for i in inputs] == [("sprite_000003_video_002", "frames")]  # masks/ is no video
    s = V.convert(cfg_for(folder, tmp_path / "out", size=(96, 128)))
    (name,) = s.manifest["videos"]
    assert set(load_video(tmp_path / "out", name)) == {"frames", "action", "local", "shift", "bg_shift", "mask"}


def test_glactions_shifts_not_imported_for_other_sizes(tmp_path: Path) -> None:
    root = tmp_path / "in" / "clip"
    for i in range(2):
        _save_png(root / f"{i:05d}.png", np.zeros((40, 40, 3), np.uint8))
    pickle.dump({"global": [0, 1], "local": [2, 3], "shifts": [(0.1, 0.1)] * 2, "bg_shifts": [(0, 0)] * 2},
                open(root / "glactions.pkl", "wb"))
    s = V.convert(cfg_for(tmp_path / "in", tmp_path / "out", size=(20, 20)))
    v = load_video(tmp_path / "out", next(iter(s.manifest["videos"])))
    assert set(v) == {"frames", "action", "local"}


def test_corrupt_frame_folder_is_skipped(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    src = tmp_path / "in"
    _save_png(src / "ok" / "00000.png", np.zeros((8, 8, 3), np.uint8))
    _save_png(src / "broken" / "00000.png", np.zeros((8, 8, 3), np.uint8))
    (src / "broken" / "00001.png").write_bytes(b"\x89PNG garbage")
    with caplog.at_level(logging.WARNING, logger="worldmodel.data.videos"):
        s = V.convert(cfg_for(src, tmp_path / "out", size=(8, 8)))
    assert s.written == 1 and [i for i, _ in s.skipped] == ["broken"]
    (msg,) = [r.getMessage() for r in caplog.records]
    assert "broken" in msg and "00001.png is unreadable" in msg


# --------------------------------------------------------------------------------------------- interruption


def test_killed_run_leaves_complete_videos_and_resumes_byte_identical(tmp_path: Path) -> None:
    """kill -9 after the first video file; the finished files are complete and skipped on the re-run, and the
    resumed folder equals an uninterrupted run's byte for byte (manifest included)."""
    src = tmp_path / "in"
    src.mkdir()
    base = make_video(src / "base.mkv", "libx264")
    for i in range(4):
        (src / f"copy_{i:03d}.mkv").symlink_to(base)
    out = tmp_path / "out"
    argv = ["videos", "--in", str(src), "--out", str(out), "--size", "32x32", "--fps", "24"]
    assert cli_main(argv) == 0
    out.rename(tmp_path / "reference")
    left = run_and_kill(argv, out)
    assert 1 <= left < 5 and not (out / "manifest.json").exists()
    for p in (out / "videos").glob("*.npz"):  # every file left behind is complete
        assert np.load(p)["frames"].shape == (24, 32, 32, 3)
    before = {p.name: p.stat().st_mtime_ns for p in (out / "videos").glob("*.npz")}

    assert cli_main(argv) == 0
    after = {p.name: p.stat().st_mtime_ns for p in (out / "videos").glob("*.npz")}
    assert all(after[n] == t for n, t in before.items())  # finished videos were skipped, not rewritten
    assert not list((out / "videos").glob(".*"))  # no temp file left
    assert_same_files(out, tmp_path / "reference")
    assert read_manifest(out)["num_frames"] == 5 * 24
