"""Tests of ``glassworld data atari`` (worldmodel/data/atari.py): RAM ground truth against the sprites' pixels,
the round trip through ClipDataset, deterministic splits and frames, resume, and argument errors."""

from __future__ import annotations

import argparse
import json
import re
from collections import deque
from pathlib import Path

import numpy as np
import pytest

from worldmodel.data import ClipConfig, ClipDataset, DatasetError, atari, load_video, read_manifest
from worldmodel.data.atari import AtariConfig, AtariRecorder, generate, native_to_output, resolve_game

from .kill import assert_same_files, run_and_kill

# ---------------------------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------------------------


def component(mask: np.ndarray, y0: int, x0: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows and columns of the 8-connected component of ``mask`` (H, W) bool containing (y0, x0)."""
    h, w = mask.shape
    seen = np.zeros_like(mask, dtype=bool)
    seen[y0, x0] = True
    queue, ys, xs = deque([(y0, x0)]), [], []
    while queue:
        y, x = queue.popleft()
        ys.append(y)
        xs.append(x)
        for dy in (-1, 0, 1):
            for dx in (-1, 0, 1):
                yy, xx = y + dy, x + dx
                if 0 <= yy < h and 0 <= xx < w and mask[yy, xx] and not seen[yy, xx]:
                    seen[yy, xx] = True
                    queue.append((yy, xx))
    return np.array(ys), np.array(xs)


def nearest(mask: np.ndarray, x: float, y: float) -> tuple[float, int, int]:
    """Distance from (x, y) to the nearest True pixel of ``mask``, and that pixel's (row, col)."""
    ys, xs = np.nonzero(mask)
    assert len(ys), "no pixel of the agent's colour in the frame"
    d = np.hypot(xs - x, ys - y)
    i = int(d.argmin())
    return float(d[i]), int(ys[i]), int(xs[i])


def orange(frame: np.ndarray) -> np.ndarray:
    """Orange-player pixels (240, 128, 128), also blended ones, of an (H, W, 3) uint8 frame on the green court."""
    f = frame.astype(np.int64)
    return (f[..., 0] - f[..., 1] > 40) & (f[..., 0] - f[..., 2] > 40)


def tiny(tmp: Path, **kw) -> AtariConfig:
    base = {"game": "Tennis", "episodes": 2, "out": tmp, "max_steps": 60, "seed": 0, **kw}
    return AtariConfig(**base)


def cli_args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    atari.add_arguments(parser)
    return parser.parse_args(list(argv))


@pytest.fixture(scope="module")
def tennis_ds(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("tennis")
    generate(tiny(out, episodes=3), progress=False)
    return out


# ---------------------------------------------------------------------------------------------------------------
# RAM ground truth against pixels
# ---------------------------------------------------------------------------------------------------------------


def test_tennis_ram_position_is_sprite_centre_at_native_resolution() -> None:
    """At the crop's own size frames are exact native pixels: pos must be the orange sprite's centre of mass, on
    both ends of the court (the players change ends between games, and the RAM slots with them)."""
    top, bottom, left, right = atari.GAME_PRESETS["tennis"].crop
    rec = AtariRecorder(AtariConfig(game="Tennis", size=(bottom - top, right - left), max_steps=700, seed=0))
    ep = rec.record(0)
    rec.close()
    assert ep.pos is not None and ep.shift is not None
    np.testing.assert_allclose(ep.shift[1:], np.diff(ep.pos, axis=0), atol=1e-5)
    assert np.all(ep.shift[0] == 0)
    errors, bottom_half = [], []
    for frame, (x, y) in zip(ep.frames, ep.pos):
        mask = np.all(frame == np.array([240, 128, 128], np.uint8), axis=-1)
        dist, y0, x0 = nearest(mask, x, y)
        assert dist <= 2.0, f"pos ({x:.1f}, {y:.1f}) is {dist:.1f} px from the orange player"
        ys, xs = component(mask, y0, x0)
        if np.ptp(ys) + 1 == 23 and np.ptp(xs) + 1 <= 16:  # the whole sprite (16 wide mid-swing), off the lines
            assert xs.min() <= x <= xs.max() and ys.min() <= y <= ys.max()
            errors.append((xs.mean() - x, ys.mean() - y))
        bottom_half.append(y > (bottom - top) / 2)
    errors_ = np.abs(np.array(errors))
    # the rest touch an orange side line (same colour): the nearest-pixel check above covers them
    assert len(errors_) >= 0.7 * len(ep.frames), "too few frames show the orange player unobstructed"
    assert errors_.max() <= 1.5, f"worst centre error {errors_.max(axis=0)} native px"
    assert np.median(errors_, axis=0).max() <= 0.5, f"median centre error {np.median(errors_, axis=0)} native px"
    assert 0.2 <= np.mean(bottom_half) <= 0.8, "the episode should show the orange player at both ends"


def test_tennis_ram_position_on_sprite_at_default_size() -> None:
    """At the default 96x128 the resized orange player (~10x13 px) lies on pos in every frame."""
    rec = AtariRecorder(AtariConfig(game="Tennis", max_steps=700, seed=1))
    assert rec.cfg.size == (96, 128)
    ep = rec.record(0)
    w, h = rec.agent_output_px()
    rec.close()
    assert 9 <= w <= 11 and 12 <= h <= 13.5, "the documented agent size"
    assert ep.pos is not None
    errors, bottom_half = [], []
    for frame, (x, y) in zip(ep.frames, ep.pos):
        mask = orange(frame)
        dist, y0, x0 = nearest(mask, x, y)
        assert dist <= 1.5, f"pos ({x:.1f}, {y:.1f}) is {dist:.1f} px from the orange player"
        ys, xs = component(mask, y0, x0)
        if np.ptp(ys) + 1 <= 16 and np.ptp(xs) + 1 <= 15:  # not merged with a court line
            assert xs.min() - 0.5 <= x <= xs.max() + 0.5 and ys.min() - 0.5 <= y <= ys.max() + 0.5
            errors.append((xs.mean() - x, ys.mean() - y))
        bottom_half.append(y > 48)
    errors_ = np.abs(np.array(errors))
    assert len(errors_) >= 0.7 * len(ep.frames)
    assert errors_.max() <= 2.5 and errors_.mean(axis=0).max() <= 1.0, f"centre errors {errors_.mean(axis=0)} px"
    assert 0.2 <= np.mean(bottom_half) <= 0.8


def test_breakout_ram_position_on_paddle() -> None:
    """pos lies on the paddle (red, in its row) and at the centre of its run of red pixels."""
    rec = AtariRecorder(AtariConfig(game="Breakout", max_steps=400, seed=0))
    errors, xs_seen = [], []
    for i in range(3):
        ep = rec.record(i)
        assert ep.pos is not None and ep.done[-1], "random Breakout ends at game over within 400 steps"
        for frame, (x, y) in zip(ep.frames.astype(np.int64), ep.pos):
            row = frame[int(np.rint(y))]
            red = (row[:, 0] > 120) & (row[:, 0] - row[:, 1] > 60)  # the paddle (200, 72, 72), also blended
            c = int(np.rint(x))
            assert red[c], f"no paddle pixel at pos ({x:.1f}, {y:.1f})"
            a, b = c, c
            while a > 0 and red[a - 1]:
                a -= 1
            while b < len(red) - 1 and red[b + 1]:
                b += 1
            if b - a + 1 <= 15:  # the ball is not touching the paddle
                errors.append((a + b) / 2 - x)
            xs_seen.append(x)
    rec.close()
    errors_ = np.abs(np.array(errors))
    assert len(errors_) >= 0.95 * len(xs_seen)
    assert errors_.max() <= 1.0, f"paddle centre off by up to {errors_.max():.2f} px"
    assert np.ptp(xs_seen) > 40, "the random policy should move the paddle across the screen"


NEW_GAMES = ["pong", "freeway", "skiing", "boxing", "ms_pacman", "seaquest", "space_invaders"]


@pytest.mark.parametrize("rom", NEW_GAMES)
def test_ram_position_is_the_sprite_centre(rom: str) -> None:
    """On a fresh episode at native resolution, the RAM position lies in the agent's bounding box (found by its
    colour) in >= 95 % of the frames that show it, and is the box's centre whenever the whole sprite is seen."""
    from worldmodel.data.atari_truth import check_agent

    preset = atari.GAME_PRESETS[rom]
    assert preset.agent is not None and preset.pixels is not None
    top, bottom, left, right = preset.crop
    rec = AtariRecorder(AtariConfig(game=rom, size=(bottom - top, right - left), max_steps=250, seed=2))
    ep = rec.record(0)
    rec.close()
    assert ep.pos is not None
    np.testing.assert_allclose(ep.pos, native_to_output(preset.agent(ep.ram), preset.crop, rec.cfg.size), atol=1e-4)
    chk = check_agent(ep.frames, ep.ram, preset.agent, preset.pixels, preset.crop)
    assert chk.visible >= 0.6 * chk.frames, "the agent's colour should show it in most frames"
    assert chk.inside >= 0.95, f"RAM position outside the agent's pixels in {100 * (1 - chk.inside):.1f} % of frames"
    for axis, err, moves, coord in (("u", chk.err_u, preset.agent.u.moves, chk.pos[:, 0]),
                                    ("v", chk.err_v, preset.agent.v.moves, chk.pos[:, 1])):
        assert len(err) >= 20, f"{axis}: too few frames show the whole sprite ({len(err)})"
        assert np.median(np.abs(err)) <= 0.5 and np.percentile(np.abs(err), 95) <= 2.0, \
            f"{axis}: centre error median {np.median(np.abs(err)):.2f}, max {np.abs(err).max():.2f} native px"
        if moves:
            assert np.ptp(coord) >= 20, f"{axis}: the random policy should move the agent along this axis"


@pytest.mark.parametrize("rom", NEW_GAMES)
def test_mask_and_position_agree_at_64x64(rom: str) -> None:
    """At 64x64 the stored mask (the agent's colour, area-resized) shows the agent in most frames, pos lies on or
    next to it, and at the crop's own size the mask is exactly the agent-coloured pixels."""
    rec = AtariRecorder(AtariConfig(game=rom, size=(64, 64), max_steps=150, seed=3))
    ep = rec.record(0)
    rec.close()
    assert ep.mask is not None and ep.pos is not None and ep.mask.shape == ep.frames.shape[:3]
    assert set(ep.gt()) == {"action", "reward", "done", "pos", "shift", "mask"}
    shown = [t for t in range(len(ep.mask)) if ep.mask[t].any()]
    assert len(shown) >= 0.6 * len(ep.mask)
    dists = [nearest(ep.mask[t].astype(bool), *ep.pos[t])[0] for t in shown]
    assert np.mean(np.array(dists) <= 1.5) >= 0.95, f"pos off the mask: distances {np.percentile(dists, 95):.1f}"
    preset = atari.GAME_PRESETS[rom]
    top, bottom, left, right = preset.crop
    native = AtariRecorder(AtariConfig(game=rom, size=(bottom - top, right - left), max_steps=20, seed=3))
    ep = native.record(0)
    native.close()
    assert ep.mask is not None and ep.mask.any()
    np.testing.assert_array_equal(ep.mask, np.all(ep.frames == preset.pixels.colour, axis=-1) & ep.mask.astype(bool))
    np.testing.assert_array_equal(ep.mask, preset.pixels.mask(ep.frames, preset.crop))


def test_ram_axis_centre_of_the_drawn_part() -> None:
    from worldmodel.data.atari_truth import RamAxis

    ram = np.zeros((3, 128), np.uint8)
    ram[:, 5] = [10, 100, 250]
    np.testing.assert_allclose(RamAxis(5, 2.0, scale=-1.0)(ram), [-8, -98, -248])
    np.testing.assert_allclose(RamAxis(None, 7.5)(ram), [7.5, 7.5, 7.5])
    # a 16-px sprite (centre c, rows c-7.5..c+7.5) drawn only on rows 20..200: the centre of what shows
    np.testing.assert_allclose(RamAxis(5, 0.0, half=7.5, lo=20, hi=200)(ram), [(20 + 17.5) / 2, 100, (242.5 + 200) / 2])


def test_help_names_exactly_the_games_with_ground_truth() -> None:
    parser = argparse.ArgumentParser()
    atari.add_arguments(parser)
    text = parser.format_help()
    with_truth = {atari.display_name(g) for g, p in atari.GAME_PRESETS.items() if p.agent is not None}
    assert with_truth >= {"Tennis", "Breakout", *(atari.display_name(g) for g in NEW_GAMES)}
    listed = set(re.search(r"Ground truth \(agent position `pos`, `shift`\) for: ([^.]+)\.", " ".join(text.split()))
                 .group(1).replace(" and ", ", ").split(", "))
    assert listed == with_truth
    for g in with_truth:
        assert re.search(rf"^  {g} ", text, re.M), f"{g}: the help's table of agents misses it"


def test_native_to_output_geometry() -> None:
    crop, size = (14, 190, 8, 160), (96, 128)
    # the first native pixel of the crop lies inside output pixel 0; the crop's far corner is the last pixel's edge
    np.testing.assert_allclose(native_to_output((8, 14), crop, size), [0.5 * 128 / 152 - 0.5, 0.5 * 96 / 176 - 0.5])
    np.testing.assert_allclose(native_to_output((159.5, 189.5), crop, size), [127.5, 95.5])
    np.testing.assert_allclose(native_to_output((10, 20), crop, (176, 152)), [2, 6])  # identity size: a shift


# ---------------------------------------------------------------------------------------------------------------
# dataset: round trip, determinism, resume
# ---------------------------------------------------------------------------------------------------------------


def test_round_trip_through_clip_dataset(tennis_ds: Path) -> None:
    m = read_manifest(tennis_ds)
    assert m["source"] == "atari" and (m["height"], m["width"]) == (96, 128) and m["fps"] == 15.0
    assert m["splits"] == {"train": ["ep00000"], "val": ["ep00002"], "test": ["ep00001"]}
    assert m["generator"]["game"] == "Tennis" and m["generator"]["seed"] == 0 and m["generator"]["max_steps"] == 60
    assert m["atari"]["action_names"][:2] == ["NOOP", "FIRE"] and m["atari"]["crop"]["top"] == 14
    assert set(m["ground_truth"]) == {"action", "reward", "done", "pos", "shift"}
    v = load_video(tennis_ds, "ep00000")
    assert v["frames"].shape == (61, 96, 128, 3) and v["action"][0] == -1 and (v["action"][1:] >= 0).all()
    assert not v["done"].any(), "a 60-step Tennis episode is cut, not over"
    assert len(np.unique(v["action"][1:])) >= 4, "the behaviour policy varies its actions"
    assert np.abs(v["shift"]).sum() > 10, "the agent moves"

    ds = ClipDataset(tennis_ds, "train", ClipConfig(clip_len=6, frame_skip=2))
    assert len(ds) == 61 - 16 + 1
    for i in (0, 7, len(ds) - 1):
        item = ds[i]
        idx = np.arange(item["start"], item["start"] + 16, 3)
        np.testing.assert_array_equal(item["frames"].numpy(), v["frames"][idx].transpose(0, 3, 1, 2))
        np.testing.assert_array_equal(item["pos"].numpy(), v["pos"][idx])
        np.testing.assert_array_equal(item["action"].numpy()[1:], v["action"][idx[1:]])
        # shift summed over the skipped steps equals the position change between clip frames
        np.testing.assert_allclose(item["shift"].numpy()[1:], np.diff(v["pos"][idx], axis=0), atol=1e-4)
        # the ground truth is aligned with the frames: the orange player is at pos in each clip frame
        for frame, (x, y) in zip(item["frames"].numpy().transpose(0, 2, 3, 1), item["pos"].numpy()):
            assert nearest(orange(frame), x, y)[0] <= 1.5


def test_same_seed_same_split_and_frames(tmp_path: Path, tennis_ds: Path) -> None:
    cfg = tiny(tmp_path / "again", episodes=3)
    m = generate(cfg, progress=False)
    ref = read_manifest(tennis_ds)
    assert m["splits"] == ref["splits"]
    for name in ref["videos"]:
        a, b = load_video(tennis_ds, name), load_video(cfg.out, name)
        assert a.keys() == b.keys()
        for k in a:
            np.testing.assert_array_equal(a[k], b[k], err_msg=f"{name}/{k} differs between two runs")
    other = generate(tiny(tmp_path / "seed7", episodes=1, seed=7), progress=False)
    assert other["splits"]["train"] == ["ep00000"]
    assert not np.array_equal(load_video(tmp_path / "seed7", "ep00000")["action"],
                              load_video(tennis_ds, "ep00000")["action"]), "another seed plays differently"


def test_resume_regenerates_an_identical_video(tmp_path: Path) -> None:
    cfg = tiny(tmp_path / "ds", episodes=3)
    generate(cfg, progress=False)
    videos = cfg.out / "videos"
    before = {p.stem: p.stat().st_mtime_ns for p in videos.glob("*.npz")}
    original = load_video(cfg.out, "ep00001")
    (videos / "ep00001.npz").unlink()
    (videos / ".ep00002.npz.junk.tmp").write_bytes(b"half a file")  # what a killed run leaves
    m = generate(cfg, progress=False)  # resumes: only ep00001 is made again (as the first episode of this run)
    assert m["num_videos"] == 3 and sorted(m["videos"]) == ["ep00000", "ep00001", "ep00002"]
    assert not list(videos.glob(".*.tmp"))
    for name in ("ep00000", "ep00002"):
        assert (videos / f"{name}.npz").stat().st_mtime_ns == before[name], f"{name} was rewritten"
    again = load_video(cfg.out, "ep00001")
    assert original.keys() == again.keys()
    for k in original:
        np.testing.assert_array_equal(original[k], again[k], err_msg=f"regenerated ep00001/{k} differs")
    # more episodes extend the dataset; other settings are refused
    m = generate(tiny(tmp_path / "ds", episodes=4), progress=False)
    assert m["num_videos"] == 4 and m["generator"]["episodes"] == 4
    with pytest.raises(DatasetError, match="same settings"):
        generate(tiny(tmp_path / "ds", episodes=4, seed=3), progress=False)
    with pytest.raises(DatasetError, match="already holds"):
        generate(tiny(tmp_path / "ds", episodes=4, size=(64, 64)), progress=False)
    assert read_manifest(cfg.out)["num_videos"] == 4, "a refused run loses nothing"


def test_an_episode_does_not_depend_on_the_episodes_played_before_it() -> None:
    """Episode 3 recorded fourth in a process equals episode 3 recorded first in a fresh one (at 100 Tennis steps
    the emulator's random-number generator, carried on from episode to episode, used to change it)."""
    cfg = AtariConfig(game="Tennis", max_steps=100, size=(24, 32), seed=0)
    rec = AtariRecorder(cfg)
    try:
        after_others = [rec.record(i) for i in range(4)][3]
    finally:
        rec.close()
    fresh_rec = AtariRecorder(cfg)
    try:
        fresh = fresh_rec.record(3)
    finally:
        fresh_rec.close()
    np.testing.assert_array_equal(after_others.frames, fresh.frames)
    np.testing.assert_array_equal(after_others.ram, fresh.ram)


def test_a_folder_of_an_older_version_is_not_extended(tmp_path: Path) -> None:
    """Videos made before episodes started from the power-on state carry no episode_start: new episodes would not
    match theirs, so adding to such a folder is refused (with why), and nothing in it changes."""
    from worldmodel.data.format import DatasetWriter, npz_bytes

    cfg = tiny(tmp_path / "old", episodes=1, max_steps=5)
    generate(cfg, progress=False)
    path = cfg.out / "videos" / "ep00000.npz"
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files}
    meta = json.loads(str(arrays["meta"]))
    del meta["atari"]["episode_start"]
    arrays["meta"] = np.array(json.dumps(meta))
    path.write_bytes(npz_bytes(arrays))
    DatasetWriter(cfg.out, source="atari", height=96, width=128, fps=15.0).close()
    before = {p.name: p.read_bytes() for p in (cfg.out / "videos").iterdir()}
    with pytest.raises(DatasetError, match="older glassworld.*another --out"):
        generate(tiny(tmp_path / "old", episodes=2, max_steps=5), progress=False)
    assert {p.name: p.read_bytes() for p in (cfg.out / "videos").iterdir()} == before


def test_killed_and_resumed_run_writes_byte_identical_files(tmp_path: Path) -> None:
    """kill -9 after the first episode file, run the command again: every file equals an uninterrupted run's."""
    from worldmodel.data.cli import cli_main

    out = tmp_path / "ds"
    argv = ["atari", "--game", "Tennis", "--episodes", "4", "--max-steps", "100", "--size", "24x32", "--out",
            str(out), "--no-progress"]
    assert cli_main(argv) == 0
    out.rename(tmp_path / "reference")  # the manifest records --out: both runs write to the same path
    left = run_and_kill(argv, out)
    assert 1 <= left < 4 and not (out / "manifest.json").exists()
    assert cli_main(argv) == 0
    assert_same_files(out, tmp_path / "reference")


def test_cli_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from worldmodel.cli import main

    out = tmp_path / "bo"
    rc = main(["data", "atari", "--game", "Breakout", "--episodes", "2", "--max-steps", "20", "--size", "48x64",
               "--frame-skip", "2", "--out", str(out), "--no-progress"])
    assert rc == 0
    m = json.loads((out / "manifest.json").read_text())
    assert (m["height"], m["width"], m["fps"]) == (48, 64, 30.0) and m["num_videos"] == 2
    assert set(m["atari"]["action_names"]) == {"NOOP", "FIRE", "RIGHT", "LEFT"}
    v = load_video(out, "ep00000")
    assert v["frames"].shape == (21, 48, 64, 3) and set(v["action"][1:]) <= {0, 1, 3, 4}  # raw ALE ids
    assert "2 videos" in capsys.readouterr().out


# ---------------------------------------------------------------------------------------------------------------
# names and errors
# ---------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name, rom", [("Tennis", "tennis"), ("tennis", "tennis"), ("ALE/Tennis-v5", "tennis"),
                                       ("MontezumaRevenge", "montezuma_revenge"), ("space_invaders", "space_invaders"),
                                       ("Pong", "pong")])
def test_resolve_game(name: str, rom: str) -> None:
    assert resolve_game(name) == rom


@pytest.mark.parametrize("argv, message", [
    (["--game", "Tenis"], r"unknown ALE game 'Tenis'\. Did you mean Tennis"),
    (["--size", "0x128"], r"--size: size must be positive"),
    (["--size", "96"], r"--size: size must be HxW"),
    (["--episodes", "0"], r"--episodes must be a positive integer"),
    (["--episodes", "-2"], r"--episodes must be a positive integer"),
    (["--max-steps", "0"], r"--max-steps must be a positive integer"),
    (["--frame-skip", "0"], r"--frame-skip must be a positive integer"),
    (["--seed", "-1"], r"--seed must be a non-negative integer"),
])
def test_bad_arguments_raise_one_clear_error(tmp_path: Path, argv: list[str], message: str) -> None:
    out = tmp_path / "never"
    with pytest.raises(DatasetError, match=message):
        atari.run(cli_args("--out", str(out), *argv))
    assert not out.exists(), "a bad argument must not create the output folder"


def test_cli_reports_bad_game_with_names(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from worldmodel.data.cli import cli_main

    assert cli_main(["atari", "--game", "NoSuchGame", "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert "unknown ALE game 'NoSuchGame'" in err and "Breakout" in err and "Tennis" in err
