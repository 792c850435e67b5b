"""Health checks (worldmodel/health.py): computed by eval, stored by ship, enforced by gym.make."""

from __future__ import annotations

import json
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch

import envs  # noqa: F401 - registers the ids
from test_evaluate import make_dataset, save_tiny_glass
from worldmodel.checkpoint import load_checkpoint, save_checkpoint
from worldmodel.evaluate import cli_main as eval_main
from worldmodel.export import ship
from worldmodel.health import HealthAccumulator, HealthEvidence, UnhealthyWorldError, assess


def healthy_evidence(**kw) -> HealthEvidence:
    base = dict(height=64, width=64, agent_found=0.99, psnr=30.0, copy_psnr=28.0, psnr_moving=15.0,
                copy_psnr_moving=12.0, shift_step=(2.0, 1.5),
                data_motion=(2.1, 1.4), motion_source="ground-truth shifts", code_counts=[40, 30, 30, 0], frames=100,
                shift_explained=0.8, track_moves=50)
    return HealthEvidence(**{**base, **kw})


def test_a_healthy_world_has_no_problems():
    h = assess(healthy_evidence())
    assert h["healthy"] and h["problems"] == [] and h["beats_copy"] and h["shift_grid_ok"]
    assert h["codes_used"] == 3 and h["num_codes"] == 4 and h["warnings"] == []


@pytest.mark.parametrize("change, words", [
    ({"agent_found": 0.5}, "found on only 50%"),
    ({"agent_found": None}, "agent_found unknown"),
    ({"psnr_moving": 11.0}, "where the real video moves, generation scores PSNR 11.00 dB, no better"),
    ({"psnr_moving": None, "psnr": 27.0}, "over whole frames, generation scores PSNR 27.00 dB, no better"),
    ({"psnr_moving": None, "psnr": None}, "beats_copy unknown"),
    ({"shift_step": (428.0, 1.5)}, "more than 25% of the frame"),
    ({"shift_step": (12.7, 1.5), "data_motion": (None, 1.4)}, "never moves along x"),
    ({"shift_step": (0.0, 1.5)}, "moves ~2.1 px per step along x"),
    ({"shift_step": (0.0, 0.0), "data_motion": None}, "no step on either axis"),
    ({"shift_explained": 0.1}, "explain 10% of the motion of the model's own segmented agent (needs >= 25%)"),
    ({"agent_kept": 0.9}, "the dream loses its agent: its rendered mask locates one on only 90% of generated"),
    ({"agent_kept": 0.9482}, "locates one on only 94.8% of generated frames whose real frame has one (needs >= 95%)"),  # not "95%"
    ({"agent_found": 0.9499}, "found on only 94.99% of real frames (needs >= 95%)"),
    ({"agent_pos_err": 6.3}, "not the labelled one: on real frames it is located 6.3 px from the ground-truth"),
])
def test_each_failed_check_is_a_named_problem(change, words):
    h = assess(healthy_evidence(**change))
    assert not h["healthy"] and len(h["problems"]) == 1 and words in h["problems"][0], h["problems"]


def test_losing_to_a_copy_only_on_still_pixels_is_a_warning():
    h = assess(healthy_evidence(psnr=29.7, copy_psnr=31.2))
    assert h["healthy"] and h["beats_copy"] and "draws the still parts" in h["warnings"][0]


def test_one_code_in_use_is_a_warning_not_a_problem():
    h = assess(healthy_evidence(code_counts=[100, 0, 0, 0]))
    assert h["healthy"] and h["codes_used"] == 1 and "1 of 4" in h["warnings"][0]


def test_accumulator_locates_agents_with_the_shared_rule():
    acc = HealthAccumulator(32, 32)
    masks = torch.zeros(2, 3, 1, 32, 32)
    masks[0, :, :, 4:10, 4:10] = 1.0  # clip 0: a 36-px agent on every frame
    masks[1, 0] = 1.0  # clip 1: frame 0 floods the frame, frames 1-2 are empty
    acc.add_real_masks(masks)
    acc.add_motion(torch.tensor([[[2.0, 0.0]] * 5]), ground_truth=True)
    acc.add_motion(torch.tensor([[[9.0, 9.0]] * 5]), ground_truth=False)  # estimates never replace ground truth
    video = torch.zeros(2, 3, 3, 32, 32)
    video[:, 1:, :, 4:8, 4:8] = 1.0  # 16 px change after frame 0 (48 values per frame)
    gen = video.clone()
    gen[:, 1:] += 0.1  # right where it moves, off by 0.1 elsewhere
    gen_mask = masks.clone()
    gen_mask[0, 2] = 0.0  # clip 0 keeps its agent on frame 1 and loses it on frame 2; clip 1 draws none, as real
    acc.add_generation(video, gen.clamp(0, 1), gen_mask=gen_mask)
    ev = acc.evidence((2.0, 0.0), 4)
    assert ev.agent_kept == pytest.approx(1 / 2)  # clip 1's real frames 1-2 have no agent: nothing to lose there
    assert ev.copy_psnr_moving == pytest.approx(0.0) and ev.psnr_moving == 100.0
    assert ev.psnr == pytest.approx(10 * np.log10(1 / (0.01 * (1 - 48 / 3072))), abs=1e-3)
    assert ev.copy_psnr == pytest.approx(10 * np.log10(3072 / 48), abs=1e-3) and ev.psnr > ev.copy_psnr
    assert ev.agent_found == pytest.approx(3 / 6) and ev.frames == 6
    assert ev.data_motion == (2.0, None) and ev.motion_source == "ground-truth shifts"


def test_too_few_moves_of_the_segmented_agent_is_a_warning():
    h = assess(healthy_evidence(shift_explained=None, track_moves=3))
    assert h["healthy"] and h["shift_explained"] is None and "moved on only 3 real transitions" in h["warnings"][0]


def _moving_square(steps: int = 9, dx: int = 2) -> torch.Tensor:
    """(2, steps, 1, 32, 32): a 5x5 agent moving dx px right per frame in two clips."""
    masks = torch.zeros(2, steps, 1, 32, 32)
    for t in range(steps):
        masks[:, t, :, 10:15, 2 + dx * t:7 + dx * t] = 1.0
    return masks


@pytest.mark.parametrize("estimate, explained", [((2.0, 0.0), 1.0), ((0.0, 0.0), 0.0), ((1.0, 0.0), 0.5),
                                                 ((0.0, 2.0), 1 - 2 ** 0.5), ((-2.0, 0.0), -1.0)])
def test_shift_explained_compares_estimates_with_the_segmented_agents_own_motion(estimate, explained):
    acc = HealthAccumulator(32, 32)
    masks = _moving_square()
    est = torch.tensor(estimate).expand(2, 8, 2)
    acc.add_real_masks(masks, shifts=est)
    ev = acc.evidence((2.0, 0.0), 4)
    assert ev.track_moves == 16 and ev.shift_explained == pytest.approx(explained, abs=1e-6)
    # without ground truth the axes are judged by how the segmented agent moved, not by the estimator
    assert ev.data_motion == (2.0, None) and ev.motion_source == "the motion of the model's segmented agent"
    h = assess(ev)
    assert (explained >= 0.25) == (not any("segmented agent" in p for p in h["problems"])), h["problems"]


def test_agent_track_skips_frames_without_an_agent_and_teleports():
    acc = HealthAccumulator(32, 32)
    masks = _moving_square(steps=12, dx=1)
    masks[0, 5] = 0.0  # clip 0 loses its agent on frame 5: transitions 4->5 and 5->6 are not scored
    masks[1, 11] = 0.0
    masks[1, 11, :, 25:30, 0:5] = 1.0  # clip 1: the mask jumps across the frame on its last transition
    acc.add_real_masks(masks, shifts=torch.tensor([1.0, 0.0]).expand(2, 11, 2))
    d, s = acc._track()
    assert len(d) == 9 + 10 and torch.allclose(d, torch.tensor([1.0, 0.0]).expand_as(d))
    assert acc.evidence((1.0, 0.0), 4).shift_explained == pytest.approx(1.0)


def _degenerate(tmp_path: Path) -> Path:
    """A tiny GLASS whose mask has collapsed: the mask head's output bias is pushed far negative."""
    path = save_tiny_glass(tmp_path / "tiny.pt")
    ckpt = load_checkpoint(path)
    sd = ckpt["state_dict"]
    mask_bias = [k for k in sd if "mask" in k and k.endswith("bias")]
    assert mask_bias, "the tiny GLASS has a mask head"
    for k in mask_bias:
        sd[k] = torch.full_like(sd[k], -50.0)
    ckpt.pop("format"), ckpt.pop("version")
    return save_checkpoint(path, ckpt)


def test_a_collapsed_world_is_unhealthy_in_eval_card_and_gym_make(tmp_path, capsys):
    data = make_dataset(tmp_path / "d", videos=2, frames=24)
    ckpt = _degenerate(tmp_path)
    out = tmp_path / "eval.json"
    assert eval_main([f"checkpoint={ckpt}", f"data.path={data}", f"out={out}", "eval.clips=2", "eval.clip_len=9",
                      "eval.batch_size=2", "device=cpu"]) == 0
    printed = capsys.readouterr().out
    assert "UNHEALTHY" in printed and "copy frame 0:" in printed
    res = json.loads(out.read_text())
    health = res["health"]
    assert health["healthy"] is False and health["agent_found"] == 0.0
    assert any("found on only 0%" in p for p in health["problems"])
    assert set(res["copy_frame0"]) == {"psnr", "ssim", "lpips"} and res["copy_frame0"]["psnr"] is not None
    assert health["copy_psnr"] is not None and health["psnr"] is not None

    world = tmp_path / "world.pt"
    card = ship(ckpt, world, eval_json=out)
    assert card["health"]["healthy"] is False
    assert json.loads(world.with_suffix(".json").read_text())["health"]["problems"] == health["problems"]
    assert "UNHEALTHY" in world.with_suffix(".md").read_text()
    with pytest.raises(UnhealthyWorldError, match="found on only 0%.*allow_unhealthy=True"):
        gym.make("GlassWorld-v0", checkpoint=str(world))
    with pytest.raises(UnhealthyWorldError):
        gym.make_vec("GlassWorld-v0", num_envs=2, vectorization_mode="vector_entry_point", checkpoint=str(world))
    env = gym.make("GlassWorld-v0", checkpoint=str(world), allow_unhealthy=True)
    env.reset(seed=0)
    env.close()


def test_play_agent_and_agent_eval_refuse_an_unhealthy_world_unless_allowed(tmp_path, capsys):
    from worldmodel.cli import main

    data = make_dataset(tmp_path / "d", videos=2, frames=24)
    ckpt = _degenerate(tmp_path)
    out = tmp_path / "eval.json"
    assert eval_main([f"checkpoint={ckpt}", f"data.path={data}", f"out={out}", "eval.clips=2", "eval.clip_len=9",
                      "eval.batch_size=2", "device=cpu", "eval.lpips=false"]) == 0
    world = tmp_path / "world.pt"
    ship(ckpt, world, eval_json=out)
    capsys.readouterr()
    common = [f"checkpoint={world}", "device=cpu"]
    for cmd in (["play", "--headless", "frames=1"], ["agent-eval", "episodes=1", "n_envs=1", "max_episode_steps=2"]):
        assert main([*cmd, *common]) != 0
        err = capsys.readouterr().err
        assert "unhealthy world" in err and "found on only 0%" in err and "allow_unhealthy=true" in err, err
        assert main([*cmd, *common, "allow_unhealthy=true"]) == 0, capsys.readouterr().err
    assert main(["agent", *common, "total_timesteps=8", f"run_dir={tmp_path / 'agent'}"]) == 2
    assert "unhealthy world" in capsys.readouterr().err


def test_ship_script_puts_a_health_report_in_the_card_and_keeps_its_eval(tmp_path):
    import runpy
    import sys

    from worldmodel.paths import REPO

    ckpt = save_tiny_glass(tmp_path / "tiny.pt")
    first = tmp_path / "first.json"
    first.write_text(json.dumps({"psnr": 1.0, "health": None}))
    ship(ckpt, ckpt, eval_json=first)
    report = tmp_path / "fresh.json"
    health = assess(healthy_evidence())
    report.write_text(json.dumps({"split": "test", "clips": 64, "dataset": str(tmp_path), "health": health}))
    argv = sys.argv
    try:
        sys.argv = ["ship_checkpoint.py", str(ckpt), str(ckpt), "--health", str(report)]
        runpy.run_path(str(REPO / "scripts" / "ship_checkpoint.py"), run_name="__main__")
    finally:
        sys.argv = argv
    card = load_checkpoint(ckpt)["card"]
    assert card["health"] == health and card["eval"]["psnr"] == 1.0 and card["health_source"]["clips"] == 64
    assert json.loads(ckpt.with_suffix(".json").read_text())["health"]["healthy"] is True


def test_training_warns_the_moment_the_agent_mask_collapses(caplog):
    from worldmodel.health import MaskWatch

    watch = MaskWatch(32, 32)
    mask = torch.zeros(2, 3, 1, 32, 32)
    mask[..., 4:10, 4:10] = 1.0
    with caplog.at_level("WARNING", logger="worldmodel.train"):
        assert watch.update(torch.zeros_like(mask), 1) == 0.0  # not formed yet: no warning
        assert watch.update(mask, 2) == 1.0
        assert not caplog.records
        watch.update(torch.ones_like(mask), 3)  # floods the frame: collapsed
    assert len(caplog.records) == 1 and "collapsed at step 3" in caplog.records[0].getMessage()
    assert "found on 0%" in watch.final_problem()


def test_training_warns_once_when_the_agent_mask_never_forms(caplog):
    from worldmodel.health import MaskWatch

    watch = MaskWatch(32, 32, formed_by_step=20)
    empty = torch.zeros(2, 3, 1, 32, 32)
    with caplog.at_level("WARNING", logger="worldmodel.train"):
        for step in (0, 10, 19):
            watch.update(empty, step)
        assert not caplog.records  # not yet due
        for step in (20, 30, 40):
            watch.update(empty, step)
    assert len(caplog.records) == 1 and "after 20 steps the agent mask has not formed" in caplog.records[0].getMessage()


def test_agent_pos_err_is_the_median_distance_to_the_labelled_agent_at_the_64px_scale():
    acc = HealthAccumulator(64, 128)  # 64-px scale: distances x 0.5
    masks = torch.zeros(1, 4, 1, 64, 128)
    masks[..., 10:14, 20:24] = 1.0  # located at (21.5, 11.5) on every frame
    masks[0, 3] = 0.0  # frame 3: nothing located, left out
    gt = torch.tensor([[[21.5, 11.5], [21.5, 15.5], [31.5, 11.5], [0.0, 0.0]]])  # 0, 4 and 10 px away
    acc.add_real_masks(masks, gt_pos=gt)
    ev = acc.evidence((2.0, 1.0), 4)
    assert ev.agent_pos_err == pytest.approx(2.0)  # median of 0, 2, 5 (px at the 64-px scale)
    assert assess(ev)["agent_pos_err"] == pytest.approx(2.0)
    assert HealthAccumulator(64, 64).evidence((2.0, 1.0), 4).agent_pos_err is None  # no labels: no check


def test_agent_kept_counts_only_frames_whose_real_frame_has_an_agent():
    masks = torch.zeros(1, 4, 1, 32, 32)
    masks[0, :2, :, 4:10, 4:10] = 1.0  # the real agent is there on frames 0-1, gone (died) on frames 2-3
    video = torch.zeros(1, 4, 3, 32, 32)
    faithful, lost = masks.clone(), torch.zeros_like(masks)  # a dream that also drops it / one that never draws it
    scores = []
    for gen_mask in (faithful, lost):
        acc = HealthAccumulator(32, 32)
        acc.add_real_masks(masks)
        acc.add_generation(video, video, gen_mask=gen_mask)
        scores.append(acc.evidence((2.0, 0.0), 4).agent_kept)
    assert scores == [1.0, 0.0]
    late = masks.flip(1)  # the agent appears on frame 2 (it respawned): the dream started without one
    acc = HealthAccumulator(32, 32)
    acc.add_real_masks(late)
    acc.add_generation(video, video, gen_mask=torch.zeros_like(late))
    assert acc.evidence((2.0, 0.0), 4).agent_kept is None  # no clip started with an agent: nothing to judge
    alone = HealthAccumulator(32, 32)  # no real masks of the batch: every generated frame counts
    alone.add_generation(video, video, gen_mask=faithful)
    assert alone.evidence((2.0, 0.0), 4).agent_kept == pytest.approx(1 / 3)
