"""W-Sprites generator (`glassworld data sprites`): protocol, ground truth, splits, resume, both asset sources."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from worldmodel.data import ClipConfig, ClipDataset, DatasetError, load_video, read_manifest
from worldmodel.data.cli import cli_main
from worldmodel.data.format import read_video_meta
from worldmodel.data.procedural import draw_character
from worldmodel.data.sprites import (
    GLOBAL_ACTIONS,
    LPCAssets,
    ProceduralAssets,
    RandomWalk,
    SpritesConfig,
    choose_videos,
    generate,
    lpc_attributes,
    plan_video,
    split_ranges,
    video_rng,
)

from .kill import assert_same_files, run_and_kill

REPO = Path(__file__).resolve().parents[2]
LPC = REPO.parent / "shared/data/lpc_sprites"  # the real sheets, used in place (never copied)
FRAMES = 40
# method.md 7.1: sheet row per (action walk/spellcast/slash, direction front/left/right) and loop columns
ROWS = {0: 10, 1: 9, 2: 11, 3: 2, 4: 1, 5: 3, 6: 14, 7: 13, 8: 15}
COLS = {0: [8, 1, 2, 3, 4, 5, 6, 7], 1: [0, 1, 2, 3, 4, 5, 4, 6], 2: [0, 1, 2, 3, 4, 5, 4, 0]}


def _make(root: Path, kind: str, videos: int = 6, per_sprite: int = 2, seed: int = 0, frames: int = FRAMES,
          workers: int = 1) -> Path:
    cfg = SpritesConfig(frames=frames, per_sprite=per_sprite, seed=seed)
    generate(root, videos, LPC if kind == "lpc" else None, cfg, workers=workers, progress=False)
    return root


@pytest.fixture(scope="module", params=["lpc", "procedural"])
def dataset(request, tmp_path_factory) -> tuple[str, Path]:
    if request.param == "lpc":
        request.getfixturevalue("lpc_sprites")  # skips (fails under CI=true) without ../shared
    root = tmp_path_factory.mktemp(f"sprites_{request.param}")
    return request.param, _make(root, request.param)


def _assets(kind: str):
    cfg = SpritesConfig(frames=FRAMES)
    return LPCAssets(LPC, cfg) if kind == "lpc" else ProceduralAssets(cfg)


def _videos(root: Path):
    m = read_manifest(root)
    for name in sorted(m["videos"]):
        yield name, m["videos"][name], load_video(root, name)


def _bg_offsets(meta: dict, bg_shift: np.ndarray) -> np.ndarray:
    """Crop offsets per frame from frame 0's offset and the pixel GT (content moves opposite the crop)."""
    steps = -bg_shift / np.array([128 / 256, 96 / 256], np.float32)  # (T, 2) crop offset change
    off = np.asarray(meta["bg_offset"]) + np.cumsum(steps, 0)
    assert np.allclose(off, np.rint(off), atol=1e-4)
    return np.rint(off).astype(int)


def test_lpc_sheets_are_present(lpc_sprites):
    assert (LPC / "body/0.png").is_file() and (LPC / "bg.JPEG").is_file(), f"LPC sheets expected at {LPC}"


def test_lpc_character_is_the_composed_sheets(lpc_sprites):
    """Characters are body, bottomwear, topwear, hair, shoes/1 alpha-composited onto black, read independently."""
    assets = _assets("lpc")
    sid = 777
    b, bo, t, h = lpc_attributes(sid)
    assert sid == (5 - b) * 216 + (5 - bo) * 36 + (5 - t) * 6 + (5 - h)
    rgb, alpha = assets.character(sid)
    assert rgb.shape == (9, 8, 64, 64, 3) and alpha.shape == (9, 8, 64, 64)
    layers = [Image.open(LPC / rel).convert("RGBA") for rel in
              (f"body/{b}.png", f"bottomwear/{bo}.png", f"topwear/{t}.png", f"hair/{h}.png", "shoes/1.png")]
    for a in (1, 5, 7):
        for k in (0, 5):
            col = COLS[a // 3][k]
            box = (col * 64, ROWS[a] * 64, col * 64 + 64, ROWS[a] * 64 + 64)
            canvas = Image.new("RGBA", (64, 64), (0, 0, 0, 255))
            cover = np.zeros((64, 64), bool)
            for im in layers:
                tile = im.crop(box)
                canvas = Image.alpha_composite(canvas, tile)
                cover |= np.asarray(tile)[..., 3] > 0
            np.testing.assert_array_equal(alpha[a, k], cover)
            expect = np.where(cover[..., None], np.asarray(canvas)[..., :3], 0)
            np.testing.assert_array_equal(rgb[a, k], expect)
    assert lpc_attributes(0) == (5, 5, 5, 5) and lpc_attributes(1295) == (0, 0, 0, 0)


def test_round_trip_through_clip_dataset(dataset):
    kind, root = dataset
    m = read_manifest(root)
    assert m["source"] == ("sprites" if kind == "lpc" else "sprites-procedural")
    assert (m["height"], m["width"]) == (96, 128) and m["num_videos"] == 6 and m["num_frames"] == 6 * FRAMES
    assert set(m["ground_truth"]) == {"pos", "shift", "bg_shift", "local", "action", "mask"}
    ds = ClipDataset(root, "train", ClipConfig(clip_len=5, frame_skip=2, stride=7))
    assert len(ds) > 0
    for i in range(0, len(ds), 3):
        item = ds[i]
        v = load_video(root, ds.videos[item["video"]])
        idx = item["start"] + np.arange(5) * 3
        np.testing.assert_array_equal(item["frames"].numpy(), v["frames"][idx].transpose(0, 3, 1, 2))
        np.testing.assert_array_equal(item["mask"].numpy()[:, 0], v["mask"][idx])
        np.testing.assert_allclose(item["pos"].numpy(), v["pos"][idx])
        # summed shifts over the skipped frames equal the position change
        np.testing.assert_allclose(item["shift"].numpy()[1:], np.diff(v["pos"][idx], axis=0), atol=1e-5)
        assert item["local"][0] == -1 and (item["local"].numpy()[1:] == v["local"][idx[1:]]).all()


def test_masks_cover_exactly_the_sprite_pixels(dataset):
    kind, root = dataset
    assets = _assets(kind)
    big = None
    if kind == "lpc":  # background read independently of the generator
        big = Image.open(LPC / "bg.JPEG").convert("RGB").resize((281, 281), Image.LANCZOS)
    for name, meta, v in _videos(root):
        rgb, alpha = assets.character(meta["sprite_id"])
        offs = _bg_offsets(meta, v["bg_shift"])
        assert set(np.unique(v["mask"])) <= {0, 1}
        for t in range(FRAMES):
            x, y = (v["pos"][t] - 31.5).astype(int)
            a, k = v["local"][t], meta["loop_frame"][t]
            expect = np.zeros((96, 128), bool)
            expect[y:y + 64, x:x + 64] = alpha[a, k]
            np.testing.assert_array_equal(v["mask"][t].astype(bool), expect, err_msg=f"{name} frame {t}")
            frame = v["frames"][t]
            np.testing.assert_array_equal(frame[y:y + 64, x:x + 64][alpha[a, k]], rgb[a, k][alpha[a, k]])
            bg = assets.backgrounds(offs[t:t + 1])[0]
            if big is not None and t % 13 == 0:
                ox, oy = offs[t]
                crop = big.crop((ox, oy, ox + 256, oy + 256)).resize((128, 96), Image.LANCZOS)
                np.testing.assert_array_equal(np.asarray(crop), bg)
            np.testing.assert_array_equal(frame[~expect], bg[~expect])


def test_pos_and_shift_follow_the_masks(dataset):
    kind, root = dataset
    bg_moves = 0
    for name, meta, v in _videos(root):
        pos, shift, mask, letter = v["pos"], v["shift"], v["mask"], v["action"]
        assert (shift[0] == 0).all() and (v["bg_shift"][0] == 0).all() and letter[0] == -1
        np.testing.assert_allclose(shift[1:], np.diff(pos, axis=0))
        ys, xs = np.mgrid[0:96, 0:128]
        offsets: dict[tuple[int, int], np.ndarray] = {}
        for t in range(FRAMES):
            m = mask[t].astype(bool)
            assert m.sum() > 150, f"{name} frame {t}: sprite nearly invisible"
            # the mask lies inside the 64x64 tile centred on pos
            assert xs[m].min() >= pos[t, 0] - 31.5 and xs[m].max() <= pos[t, 0] + 31.5
            assert ys[m].min() >= pos[t, 1] - 31.5 and ys[m].max() <= pos[t, 1] + 31.5
            # the same animation frame has the same mask-centroid offset from pos, wherever it is
            c = np.array([xs[m].mean(), ys[m].mean()]) - pos[t]
            key = (int(v["local"][t]), int(meta["loop_frame"][t]))
            if key in offsets:
                np.testing.assert_allclose(c, offsets[key], atol=1e-6)
            offsets[key] = c
        # walk letters move the sprite the right way, by at most 7 px along one axis
        sign = {0: (-1, 0), 1: (1, 0), 2: (0, -1), 3: (0, 1), 4: (0, 0)}
        for t in range(1, FRAMES):
            sx, sy = sign[int(letter[t])]
            dx, dy = shift[t]
            assert np.sign(dx) == sx and np.sign(dy) == sy and max(abs(dx), abs(dy)) <= 7, (name, t)
        bx, by = v["bg_shift"][1:, 0], v["bg_shift"][1:, 1]
        assert set(np.round(np.abs(bx), 4)) <= {0, 0.5, 1.0} and set(np.round(np.abs(by), 4)) <= {0, 0.375, 0.75}
        bg_moves += int((np.abs(v["bg_shift"][1:]).sum(1) > 0).sum())
    assert bg_moves > 0


def _check_protocol(letters: np.ndarray, local: np.ndarray, loop: np.ndarray) -> None:
    """Method.md 7.3 on one video (index 0 is checked too: ``letters`` are the raw walk letters)."""
    walk = {0: 1, 1: 2, 2: 0, 3: 0}
    T = len(local)
    cursor = {0: 0, 1: 0, 2: 0}
    t = 0
    prev = -1
    while t < T:
        if letters[t] != 4:
            assert local[t] == walk[int(letters[t])]
            assert loop[t] == cursor[int(local[t])] % 8, "walk loops continue across the video"
            cursor[int(local[t])] += 1
            prev = local[t]
            t += 1
            continue
        a = local[t]
        assert 3 <= a <= 8 and a != prev, "a static action differs from the previous local action"
        j = 0
        while t + j < T and letters[t + j] == 4 and local[t + j] == a and loop[t + j] == j:
            j += 1
        assert 1 <= j <= 8
        if j < 4:  # a static action shorter than 4 frames only where the s run (or the video) ends
            assert t + j == T or letters[t + j] != 4
        prev = a
        t += j


def test_local_actions_follow_the_protocol(dataset):
    kind, root = dataset
    for name, meta, v in _videos(root):
        letters = v["action"].copy()
        cfg = SpritesConfig(frames=FRAMES, seed=meta["seed"])
        plan = plan_video(video_rng(kind, meta["seed"], meta["sprite_id"], meta["video_index"]), cfg)
        letters[0] = plan.letter[0]
        np.testing.assert_array_equal(plan.local, v["local"])
        _check_protocol(letters, v["local"], np.asarray(meta["loop_frame"]))


def test_protocol_statistics_over_many_walks():
    cfg = SpritesConfig()
    counts = np.zeros(9)
    static_lens = []
    s_frac = []
    for i in range(150):
        plan = plan_video(random.Random(i), cfg)
        _check_protocol(plan.letter, plan.local, plan.loop_frame)
        assert (plan.corner[:, 0] >= 0).all() and (plan.corner[:, 0] <= 63).all()
        assert (plan.corner[:, 1] >= 0).all() and (plan.corner[:, 1] <= 31).all()
        assert (plan.bg_offset >= 0).all() and (plan.bg_offset <= 24).all()
        assert (np.abs(np.diff(plan.bg_offset, axis=0)).max(initial=0)) <= 2
        counts += np.bincount(plan.local, minlength=9)
        s_frac.append((plan.letter == 4).mean())
        change = np.flatnonzero(np.diff(plan.local) != 0) + 1
        for seg in np.split(np.arange(90), change):
            end = seg[-1] + 1
            if plan.local[seg[0]] >= 3 and end < 90 and plan.letter[end] == 4:  # cut by its own length
                static_lens.append(len(seg))
    assert (counts > 0).all(), counts
    assert set(static_lens) == {4, 5, 6, 7, 8}
    assert 0.05 < np.mean(s_frac) < 0.6


def test_random_walk_inertia_and_bounds():
    rng = random.Random(3)
    w = RandomWalk(32, 64, 1.0, 7, rng)  # inertia 1: a moving direction changes only at a wall
    prev = None
    for _ in range(2000):
        x0, y0 = w.x, w.y
        d, dx, dy = w.step()
        assert 0 <= w.x <= 63 and 0 <= w.y <= 31
        assert (dx, dy) == (w.x - x0, w.y - y0)
        if prev is not None and prev != "s" and d != prev:
            blocked = {"l": x0 == 0, "r": x0 == 63, "u": y0 == 0, "d": y0 == 31}[prev]
            assert blocked, f"direction {prev} -> {d} away from a wall with inertia 1"
        assert d in GLOBAL_ACTIONS
        prev = d


def test_identity_splits(tmp_path):
    r = split_ranges()
    assert (len(r["train"]), len(r["val"]), len(r["test"])) == (1037, 130, 129)
    a = choose_videos(40, 4, seed=5)
    assert a == choose_videos(40, 4, seed=5) and a != choose_videos(40, 4, seed=6)
    assert len(a) == 40 and len(set(a)) == 40
    sprites = sorted({s for s, _ in a})
    assert len(sprites) == 10
    assert sum(s in r["val"] for s in sprites) >= 1 and sum(s in r["test"] for s in sprites) >= 1
    full = choose_videos(12960, 10, seed=0)
    assert len({s for s, _ in full}) == 1296 and max(k for _, k in full) == 9
    root = _make(tmp_path / "ds", "procedural", videos=9, per_sprite=3, frames=3)
    m = read_manifest(root)
    owner: dict[str, str] = {}
    for split, names in m["splits"].items():
        for n in names:
            ident = m["videos"][n]["identity"]
            assert owner.setdefault(ident, split) == split, f"identity {ident} in two splits"
            assert m["videos"][n]["sprite_id"] in r[split]
    assert all(m["splits"][s] for s in ("train", "val", "test"))


def test_procedural_has_nine_distinguishable_actions():
    for ident in (0, 41, 1000):
        rgb, alpha = draw_character(ident)
        assert alpha.shape == (9, 8, 64, 64) and (rgb[~alpha] == 0).all()
        flat = alpha.reshape(9, 8, -1)
        for a in range(9):
            assert len({f.tobytes() for f in flat[a]}) >= 4, f"action {a} is barely animated"
            for b in range(a + 1, 9):
                diff = (flat[a][:, None] != flat[b][None]).sum(-1)  # (8, 8) pixels that differ
                assert diff.min() >= 25, f"identity {ident}: actions {a} and {b} share a near-identical frame"
    # a nearest-mean classifier fit on identity 1000 recognises the 9 actions of another identity
    other_alpha = draw_character(7)[1]
    means = alpha.reshape(9, 8, -1).mean(1)
    dist = ((other_alpha.reshape(72, 1, -1) - means[None]) ** 2).sum(-1)
    assert (dist.argmin(1) == np.repeat(np.arange(9), 8)).mean() > 0.9
    assert not np.array_equal(draw_character(0)[0], draw_character(1)[0])
    assert np.array_equal(draw_character(5)[0], draw_character(5)[0])


def test_resume_rewrites_identical_videos(tmp_path, lpc_sprites):
    root = _make(tmp_path / "ds", "lpc", videos=3, per_sprite=1, frames=12)
    names = sorted(read_manifest(root)["videos"])
    before = load_video(root, names[1])
    (root / "videos" / f"{names[1]}.npz").unlink()
    (root / "manifest.json").unlink()
    (root / "videos" / ".junk.npz.tmp").write_bytes(b"half")
    _make(root, "lpc", videos=3, per_sprite=1, frames=12)
    after = load_video(root, names[1])
    assert sorted(read_manifest(root)["videos"]) == names and not list((root / "videos").glob(".*.tmp"))
    for key in before:
        np.testing.assert_array_equal(before[key], after[key])
    with pytest.raises(DatasetError, match="seed=0"):
        _make(root, "lpc", videos=3, per_sprite=1, frames=12, seed=1)
    with pytest.raises(DatasetError, match="sprites"):  # a procedural run into an LPC folder
        _make(root, "procedural", videos=3, per_sprite=1, frames=12)


def test_killed_and_resumed_run_writes_byte_identical_files(tmp_path):
    """kill -9 after the first video file, run the command again: every file equals an uninterrupted run's."""
    out = tmp_path / "ds"
    argv = ["sprites", "--out", str(out), "--videos", "4", "--frames", "8", "--per-sprite", "2", "--seed", "3",
            "--no-progress"]
    assert cli_main(argv) == 0
    out.rename(tmp_path / "reference")
    left = run_and_kill(argv, out)
    assert 1 <= left < 4 and not (out / "manifest.json").exists()
    assert cli_main(argv) == 0
    assert_same_files(out, tmp_path / "reference")


def test_workers_write_the_same_videos(tmp_path):
    one = _make(tmp_path / "one", "procedural", videos=4, per_sprite=2, frames=8)
    two = _make(tmp_path / "two", "procedural", videos=4, per_sprite=2, frames=8, workers=2)
    m1, m2 = read_manifest(one), read_manifest(two)
    assert m1["splits"] == m2["splits"]
    for name in m1["videos"]:
        a, b = load_video(one, name), load_video(two, name)
        for key in a:
            np.testing.assert_array_equal(a[key], b[key])
        assert read_video_meta(one / "videos" / f"{name}.npz") == read_video_meta(two / "videos" / f"{name}.npz")


def test_bad_arguments_give_one_clear_error(tmp_path, capsys):
    with pytest.raises(DatasetError, match="--videos must be a positive"):
        _make(tmp_path / "a", "procedural", videos=0)
    with pytest.raises(DatasetError, match="--frames"):
        _make(tmp_path / "a", "procedural", frames=1)
    with pytest.raises(DatasetError, match="not a folder"):
        generate(tmp_path / "b", 2, tmp_path / "nowhere", SpritesConfig(frames=4), progress=False)
    with pytest.raises(DatasetError, match="holds none of the LPC files"):
        generate(tmp_path / "b", 2, LPC.parent, SpritesConfig(frames=4), progress=False)
    partial = tmp_path / "partial"
    (partial / "body").mkdir(parents=True)
    for i in range(6):
        (partial / "body" / f"{i}.png").write_bytes((LPC / "body" / f"{i}.png").read_bytes())
    with pytest.raises(DatasetError, match=r"lacks 20 file\(s\).*hair/0.png.*bg.JPEG"):
        generate(tmp_path / "c", 2, partial, SpritesConfig(frames=4), progress=False)
    assert not (tmp_path / "c").exists()
    rc = cli_main(["sprites", "--out", str(tmp_path / "d"), "--videos", "-3"])
    assert rc == 2 and "--videos must be a positive" in capsys.readouterr().err


def test_cli_writes_a_dataset(tmp_path, capsys):
    rc = cli_main(["sprites", "--out", str(tmp_path / "cli"), "--videos", "2", "--frames", "5", "--seed", "4",
                   "--sprites-dir", str(LPC), "--no-progress"])
    assert rc == 0 and "2 videos, 10 frames" in capsys.readouterr().out
    m = read_manifest(tmp_path / "cli")
    assert m["generator"]["seed"] == 4 and m["local_actions"][4] == "spellcast_left"
