"""Reach targets drawn from recorded agent positions (worldmodel.envinfo.recorded_places, envs.tasks.ReachTask)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from envs.dream import GlassWorldVectorEnv
from envs.tasks import make_task
from worldmodel.data.format import DatasetWriter
from worldmodel.envinfo import BoxConfig, PlacesConfig, agent_box, recorded_places

H, W = 40, 48


def _places() -> tuple[torch.Tensor, torch.Tensor]:
    """Two regions: from around (10, 10) the agent went down to y = 35; from around (40, 30) up to y = 5.
    Each region also has pairs that end too close to their start to be a target."""
    rng = np.random.default_rng(0)
    a_src = np.array([10.0, 10.0]) + rng.uniform(-3, 3, (20, 2))
    a_dst = np.stack([rng.uniform(5, 15, 20), np.full(20, 35.0)], 1)
    b_src = np.array([40.0, 30.0]) + rng.uniform(-3, 3, (20, 2))
    b_dst = np.stack([rng.uniform(35, 45, 20), np.full(20, 5.0)], 1)
    near_src = np.concatenate([a_src[:5], b_src[:5]])
    near_dst = near_src + 2.0  # too close: never a target
    src = np.concatenate([a_src, b_src, near_src])
    dst = np.concatenate([a_dst, b_dst, near_dst])
    return torch.tensor(src, dtype=torch.float32), torch.tensor(dst, dtype=torch.float32)


def test_recorded_targets_are_where_agents_went_from_near_the_start():
    src, dst = _places()
    task = make_task("reach", H, W, None, (src, dst))
    pos = torch.tensor([[11.0, 9.0]] * 16 + [[39.0, 31.0]] * 16)
    ts = task.init(pos, torch.ones(32, dtype=torch.bool), np.random.default_rng(1))
    t = ts["target"]
    assert torch.all(t[:16, 1] == 35.0) and torch.all(t[16:, 1] == 5.0)  # each region's own destinations
    assert torch.all(ts["dist"] >= task.cfg.min_start_distance)
    # every target is a recorded destination, and the random choice really varies
    assert all(bool((dst == row).all(1).any()) for row in t)
    assert len({tuple(r.tolist()) for r in t[:16]}) > 3


def test_recorded_targets_fall_back_to_the_nearest_recorded_start():
    src, dst = _places()
    task = make_task("reach", H, W, {"match_radius": 2.0}, (src, dst))
    pos = torch.tensor([[20.0, 14.0]])  # no recorded start within 2 px; region A's starts are the nearest
    ts = task.init(pos, torch.ones(1, dtype=torch.bool), np.random.default_rng(0))
    assert float(ts["target"][0, 1]) == 35.0


def test_recorded_targets_keep_fixed_axes_and_uniform_ignores_places():
    src, dst = _places()
    pos = torch.tensor([[11.0, 9.0]] * 8)
    task = make_task("reach", H, W, {"target_axes": "x", "min_start_distance": 0.0}, (src, dst))
    ts = task.init(pos, torch.ones(8, dtype=torch.bool), np.random.default_rng(0))
    assert torch.all(ts["target"][:, 1] == 9.0)
    uniform = make_task("reach", H, W, {"targets": "uniform"}, (src, dst))
    ts = uniform.init(pos, torch.ones(8, dtype=torch.bool), np.random.default_rng(0))
    assert not any(bool((dst == row).all(1).any()) for row in ts["target"])
    with pytest.raises(ValueError, match="'recorded' or 'uniform'"):
        make_task("reach", H, W, {"targets": "anywhere"})


def _write(root: Path, tracks: list[np.ndarray], with_pos: bool = True) -> None:
    """A dataset of videos (all train) with a red 4x4 square drawn at each track position."""
    w = DatasetWriter(root, source="test", height=H, width=W, fps=10.0)
    for k, track in enumerate(tracks):
        frames = np.full((len(track), H, W, 3), 128, np.uint8)
        for t, (x, y) in enumerate(np.round(track).astype(int)):
            frames[t, y - 2:y + 2, x - 2:x + 2] = (230, 25, 25)
        gt = {"pos": (track - 0.5).astype(np.float32)} if with_pos else {}
        w.write(f"v{k}", frames, split="train", **gt)
    w.close()


def test_recorded_places_from_ground_truth_never_span_a_jump(tmp_path):
    walk = np.stack([np.linspace(6, 20, 30), np.full(30, 10.0)], 1)  # slow walk along y = 10
    after = np.stack([np.linspace(30, 42, 30), np.full(30, 32.0)], 1)  # a teleport, then a walk along y = 32
    _write(tmp_path, [np.concatenate([walk, after]), walk[::-1].copy()])
    p = recorded_places(tmp_path, cfg=PlacesConfig(horizon=40, max_pairs=500))
    assert p is not None and p["reach_source"] == "ground truth"
    a, b = p["reach_from"], p["reach_to"]
    assert a.shape == b.shape and a.shape[1] == 2 and 100 <= a.shape[0] <= 500
    same_row = (a[:, 1] < 20) == (b[:, 1] < 20)
    assert bool(same_row.all()), "a pair spans the teleport"
    assert bool((b[:, 1] > 20).any()) and bool((b[:, 1] < 20).any())  # both walks are used


def test_recorded_places_from_model_masks_without_ground_truth(tmp_path, square_model):
    track = np.stack([np.linspace(8, 40, 24), np.linspace(8, 30, 24)], 1)
    _write(tmp_path, [track], with_pos=False)
    assert recorded_places(tmp_path) is None  # no positions and no model to measure them
    p = recorded_places(tmp_path, square_model)
    assert p is not None and p["reach_source"] == "model masks"
    # every measured position lies on the drawn track (the square's centre, within a pixel)
    d = torch.cdist(p["reach_from"].double(), torch.tensor(track - 0.5))
    assert float(d.min(dim=1).values.max()) < 1.5


def test_agent_box_spans_where_the_models_masks_found_the_agent(tmp_path, square_model):
    track = np.stack([np.linspace(8, 40, 24), np.linspace(8, 30, 24)], 1)
    _write(tmp_path, [track], with_pos=False)
    box = agent_box(tmp_path, square_model, cfg=BoxConfig(min_positions=8))
    assert box is not None and box.shape == (4,)
    # the square's centre (track - 0.5) from first to last place, within a pixel
    assert torch.allclose(box, torch.tensor([7.5, 7.5, 39.5, 29.5]), atol=1.0)
    assert agent_box(tmp_path, square_model, cfg=BoxConfig(min_positions=100)) is None  # too few positions


def test_dream_env_draws_targets_from_the_models_recorded_places(square_model):
    start = square_model.start_frames[:1]
    pos0 = square_model.segment(start[:, None].float() / 255)[:, 0]
    centre = torch.stack(torch.where(pos0[0, 0] > 0.5)[::-1], 1).float().mean(0)  # (x, y) of the square
    dst = torch.tensor([[centre[0].item(), 2.0], [centre[0].item(), H - 3.0]])
    square_model.reach_places = (centre.expand(2, 2).clone(), dst)
    venv = GlassWorldVectorEnv(4, model=square_model, task="reach", task_kwargs={"min_start_distance": 10.0})
    _, info = venv.reset(seed=0, options={"frame": 0})
    allowed = dst[torch.cdist(centre[None], dst)[0] >= 10.0]
    assert len(allowed) >= 1
    assert all(bool((allowed - torch.tensor(t)).abs().max(1).values.min() < 1e-4) for t in info["target"])


def test_code_meanings_read_raw_ale_action_ids(tmp_path, square_model):
    """Breakout's minimal action set is ALE ids 0, 1, 3, 4: labels are looked up by id, not used as indices."""
    from worldmodel.export import ExportConfig, code_meanings

    w = DatasetWriter(tmp_path, source="atari", height=H, width=W, fps=10.0,
                      extra={"atari": {"action_ids": [0, 1, 3, 4], "action_names": ["NOOP", "FIRE", "RIGHT", "LEFT"]}})
    frames = np.full((12, H, W, 3), 128, np.uint8)
    for t in range(12):
        frames[t, 10:16, 4 + 2 * t:10 + 2 * t] = (230, 25, 25)  # a red square walking right (code 0's colour)
    w.write("v0", frames, split="train", action=np.array([-1] + [4] * 11, np.int64))  # every step labelled LEFT
    w.close()
    meanings = code_meanings(square_model, tmp_path, ExportConfig(clips=4, clip_len=4))
    assert meanings is not None and meanings[0] == "LEFT 100%" and meanings[1:] == ["unused"] * 3
