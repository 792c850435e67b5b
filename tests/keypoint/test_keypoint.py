"""The keypoint world model (Struct-VRNN with (shift, code) actions): maths, losses, dynamics, generation API,
checkpoints, the trainer and the tracking probe. Everything uses the ``tiny`` preset on 32x32 frames."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from worldmodel.checkpoint import save_checkpoint
from worldmodel.data.format import DatasetError, DatasetWriter
from worldmodel.keypoint.config import KeypointConfig
from worldmodel.keypoint.keypoints import (
    delta_from_pixels,
    delta_to_pixels,
    from_pixels,
    heatmaps_to_keypoints,
    keypoints_to_maps,
    separation_loss,
    to_pixels,
    weighted_median,
)
from worldmodel.keypoint.model import KeypointModel, best_of_many
from worldmodel.keypoint.track import collect_keypoints, kp_track_err
from worldmodel.metrics import kept_in_box, locate_agent
from worldmodel.models import build_model, load_world_model

SIZE = 32


def tiny(**overrides) -> KeypointModel:
    torch.manual_seed(0)
    return KeypointModel(KeypointConfig.preset("tiny", SIZE, SIZE, **overrides))


def square_clips(b: int = 2, t: int = 4, step: int = 3, seed: int = 0) -> torch.Tensor:
    """A red 8x8 square moving ``step`` px/frame to the right on a dark texture: (B, T, 3, 32, 32) in [0, 1]."""
    g = torch.Generator().manual_seed(seed)
    bg = torch.rand(b, 1, 3, SIZE, SIZE, generator=g) * 0.3
    video = bg.repeat(1, t, 1, 1, 1)
    for i in range(b):
        y = 4 + 10 * i
        for k in range(t):
            x = 2 + step * k
            video[i, k, :, y:y + 8, x:x + 8] = torch.tensor([0.95, 0.1, 0.1]).view(3, 1, 1)
    return video


# ---------------------------------------------------------------------------------------------- keypoint maths
def test_spatial_expectation_recovers_a_gaussian_blob():
    h, w = 16, 24
    ys, xs = torch.meshgrid(torch.arange(h).float(), torch.arange(w).float(), indexing="ij")
    heat = torch.zeros(1, 2, h, w)
    heat[0, 0] = 5 * torch.exp(-((xs - 17) ** 2 + (ys - 4) ** 2) / (2 * 0.8**2))  # bright blob at column 17, row 4
    heat[0, 1] = 1 * torch.exp(-((xs - 3) ** 2 + (ys - 12) ** 2) / (2 * 0.8**2))  # dimmer blob
    kp = heatmaps_to_keypoints(heat)  # (1, 2, 3)
    # normalised coordinates: x = -1 + 2 u / (w - 1), y = 1 - 2 v / (h - 1) (y up)
    assert kp[0, 0, 0].item() == pytest.approx(-1 + 2 * 17 / (w - 1), abs=0.02)
    assert kp[0, 0, 1].item() == pytest.approx(1 - 2 * 4 / (h - 1), abs=0.02)
    assert kp[0, 1, 0].item() == pytest.approx(-1 + 2 * 3 / (w - 1), abs=0.02)
    assert kp[0, 1, 1].item() == pytest.approx(1 - 2 * 12 / (h - 1), abs=0.02)
    # max-normalised intensities: the brightest keypoint has mu = 1, the other its relative mean
    assert kp[0, 0, 2].item() == pytest.approx(1.0, abs=1e-4)
    assert kp[0, 1, 2].item() == pytest.approx(0.2, abs=0.01)
    # in frame pixels (4x larger frame): heatmap cell (17, 4) covers frame pixels 68..71 x 16..19
    px = to_pixels(kp, 4 * h, 4 * w, h, w)
    assert px[0, 0, 0].item() == pytest.approx(69.5, abs=0.1)
    assert px[0, 0, 1].item() == pytest.approx(17.5, abs=0.1)
    assert torch.allclose(from_pixels(px, 4 * h, 4 * w, h, w), kp, atol=1e-5)
    d = torch.tensor([[0.1, -0.2]])
    assert torch.allclose(delta_from_pixels(delta_to_pixels(d, 64, 96, 16, 24), 64, 96, 16, 24), d, atol=1e-6)
    assert delta_to_pixels(d, 64, 96, 16, 24)[0, 1] > 0  # y up in keypoint units -> +y down in pixels


def test_detector_without_coordinates_sees_things_not_places():
    """detector_coords=False: moving the image content moves the heatmaps by the same amount (a channel answers to
    what it sees, wherever it is); with the coordinate channels it does not."""
    img = torch.zeros(1, 3, SIZE, SIZE)  # model range [-0.5, 0.5]: 0 is the zero padding's value
    img[0, :, 12:18, 10:14] = torch.tensor([0.45, -0.3, -0.4]).view(3, 1, 1)
    moved = torch.roll(img, shifts=(4, 8), dims=(2, 3))  # 1 and 2 heatmap cells (heatmap_downsample 4)
    for coords, equivariant in ((False, True), (True, False)):
        det = tiny(detector_coords=coords).detector.eval()
        assert det.encoder.net[0].conv.in_channels == (5 if coords else 3)
        with torch.no_grad():
            heat, _ = det(img)
            heat_moved, _ = det(moved)
        same = torch.allclose(heat_moved[..., 2:7, 3:7], heat[..., 1:6, 1:5], atol=1e-5)
        assert same == equivariant, coords


def test_gaussian_maps_peak_at_the_keypoint_and_round_trip():
    kp = torch.tensor([[[0.2, -0.4, 0.7], [-0.6, 0.5, 1.0]]])
    maps = keypoints_to_maps(kp, 16, 16, sigma=1.5)  # (1, 2, 16, 16)
    assert maps.shape == (1, 2, 16, 16)
    assert maps[0, 0].max().item() <= 0.7 + 1e-6 and maps[0, 0].max().item() > 0.5
    back = heatmaps_to_keypoints(maps)
    assert torch.allclose(back[..., :2], kp[..., :2], atol=0.05)


def test_separation_loss_falls_as_two_trajectories_decorrelate():
    t = torch.linspace(0, 1, 8)
    a = torch.stack([0.5 * t, 0.3 * t], dim=-1)  # keypoint 0 moves right-up
    losses = []
    for alpha in (0.0, 0.25, 0.5, 1.0):  # keypoint 1: the same motion, turning into the opposite one
        b_traj = (1 - 2 * alpha) * a + torch.tensor([0.2, -0.1])  # offsets vanish after centring
        kp = torch.stack([a, b_traj], dim=1)  # (T, 2, 2)
        kp = torch.cat([kp, torch.ones(8, 2, 1)], dim=-1).unsqueeze(0)  # (1, T, 2, 3)
        losses.append(separation_loss(kp, sigma=0.1).item())
    assert losses[0] == pytest.approx(1.0, abs=1e-6)  # identical (centred) trajectories: maximal loss
    assert all(x > y for x, y in itertools.pairwise(losses)), losses
    assert losses[-1] < 0.01


def test_weighted_median_ignores_outliers_and_zero_weights():
    v = torch.tensor([[1.0, 1.1, 0.9, 50.0, -30.0]])
    w = torch.tensor([[1.0, 1.0, 1.0, 1.0, 0.0]])
    assert weighted_median(v, w).item() == pytest.approx(1.0)
    assert weighted_median(v, torch.zeros_like(w)).item() == pytest.approx(1.0)  # plain median


# ---------------------------------------------------------------------------------------------- actions
def _fake_keypoints(agent_step: float, bg_step: float, t: int = 6) -> torch.Tensor:
    """(1, T, 4, 3): keypoints 0, 1 move by ``agent_step`` per frame in x, 2, 3 by ``bg_step`` (normalised)."""
    kp = torch.zeros(1, t, 4, 3)
    kp[..., 2] = 1.0
    base = torch.tensor([-0.5, -0.3, 0.4, 0.6])
    for k in range(t):
        kp[0, k, :2, 0] = base[:2] + agent_step * k
        kp[0, k, 2:, 0] = base[2:] + bg_step * k
        kp[0, k, :, 1] = torch.tensor([0.1, -0.2, 0.5, -0.6])
    return kp


def test_agent_keypoints_are_the_ones_moving_against_the_background():
    model = tiny(agent_warmup_steps=0, agent_momentum=0.0)
    assert torch.equal(model.agent_weights, torch.ones(4))  # no statistics yet: every keypoint counts
    kp = _fake_keypoints(agent_step=0.1, bg_step=0.02)
    for step in range(3):
        model._update_motion_stats(kp, step)
    assert model.agent_weights.tolist() == [1.0, 1.0, 0.0, 0.0]
    m = model._motion(kp)
    assert torch.allclose(m["shift"][..., 0], torch.full((1, 5), 0.1), atol=1e-5)  # the agent's own motion
    assert torch.allclose(m["bg"][..., 0], torch.full((1, 5), 0.02), atol=1e-5)  # the others'
    assert torch.allclose(m["features"].view(1, 5, 4, 6)[:, :, 2:], torch.zeros(1, 5, 2, 6))  # no agent: no feature
    # in pixels: the model's shift estimate has the same sign and the delta_to_pixels size
    model.eval()
    shift_px = model._delta_px(m["shift"])
    assert shift_px[0, 0, 0].item() == pytest.approx(0.1 * (8 - 1) / 2 * SIZE / 8, rel=1e-4)


def test_agent_set_survives_when_the_agent_holds_most_keypoints():
    """After warm-up the background is measured by non-agent keypoints only, not by the overall median."""
    model = tiny(agent_warmup_steps=1, agent_momentum=0.0)
    kp = torch.zeros(1, 6, 4, 3)
    kp[..., 2] = 1.0
    for k in range(6):
        kp[0, k, :3, 0] = torch.tensor([-0.5, -0.4, -0.3]) + 0.1 * k  # three agent keypoints
        kp[0, k, 3, 0] = 0.5 + 0.01 * k  # one slowly panning background keypoint
    for step in range(4):
        model._update_motion_stats(kp, step)
    assert model.agent_weights.tolist() == [1.0, 1.0, 1.0, 0.0]


def test_a_dim_moving_keypoint_outranks_a_bright_jittering_one():
    model = tiny(agent_warmup_steps=0, agent_momentum=0.0)
    kp = _fake_keypoints(agent_step=0.1, bg_step=0.0, t=7)  # jitter back and forth: no net co-motion
    kp[..., :2, 2] = 0.3  # the moving (agent) keypoints are dim
    kp[0, 1::2, 2, 0] += 0.2  # a bright static keypoint jitters a lot, on its own
    kp[0, 0::3, 3, 1] += 0.15  # and so does another one
    model._update_motion_stats(kp, 0)
    assert model.agent_weights.tolist() == [1.0, 1.0, 0.0, 0.0]


def test_agent_keypoints_chosen_by_a_person_replace_the_rule():
    model = tiny(agent_warmup_steps=0, agent_momentum=0.0, agent_keypoints=[3, 2])
    kp = _fake_keypoints(agent_step=0.1, bg_step=0.02)  # the rule would pick keypoints 0 and 1
    model._update_motion_stats(kp, 0)
    assert model.agent_weights.tolist() == [0.0, 0.0, 1.0, 1.0]
    m = model._motion(kp)
    assert torch.allclose(m["shift"][..., 0], torch.full((1, 5), 0.02), atol=1e-5)  # their motion is the shift
    with pytest.raises(ValueError, match="agent_keypoints must be a non-empty list"):
        tiny(agent_keypoints=[4])
    with pytest.raises(ValueError, match="agent_keypoints must be a non-empty list"):
        tiny(agent_keypoints=[])


# ---------------------------------------------------------------------------------------------- dynamics
def test_best_of_many_picks_the_closest_sample():
    target = torch.tensor([[0.0, 0.0], [1.0, 1.0]])  # (B=2, D=2)
    samples = torch.tensor([
        [[0.5, 0.5], [1.0, 1.1]],  # sample 0: best for batch 1
        [[0.3, -0.3], [0.0, 0.0]],
        [[0.1, 0.0], [2.0, 2.0]],  # sample 2: best for batch 0
    ])
    assert best_of_many(samples, target).tolist() == [2, 0]


def test_more_best_of_many_samples_lower_the_coordinate_loss():
    clips = square_clips() * 2 - 1
    losses = {}
    for n in (1, 16):
        model = tiny(num_samples_bom=n)
        torch.manual_seed(1)
        _, terms, _ = model.training_losses(clips, 0)
        losses[n] = terms["coord"].item()
    assert losses[16] < losses[1], losses


def test_losses_are_finite_and_decrease_on_a_tiny_overfit_set():
    model = tiny(ss_ramp_steps=0, p_true_obs_end=1.0, p_true_pred_end=1.0)
    clips = square_clips() * 2 - 1  # (2, 4, 3, 32, 32) in [-1, 1]
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    history = []
    for step in range(40):
        total, terms, aux = model.training_losses(clips, step)
        assert torch.isfinite(total), terms
        assert all(math.isfinite(float(v)) for v in terms.values())
        opt.zero_grad()
        total.backward()
        opt.step()
        history.append({k: float(v) for k, v in terms.items()} | {"total": total.item()})
    first, last = history[:3], history[-3:]
    for key in ("total", "image", "coord"):
        a, b = np.mean([h[key] for h in first]), np.mean([h[key] for h in last])
        assert b < 0.8 * a, (key, a, b)
    assert set(aux) == {"mask", "fg", "composite", "codes"}
    assert aux["mask"].shape == (2, 4, 1, SIZE, SIZE) and aux["composite"].shape == (2, 3, 3, SIZE, SIZE)
    assert aux["codes"].shape == (2, 3) and aux["codes"].dtype == torch.long
    assert {"vq_perplexity", "vq_usage", "kl", "separation", "sparsity", "kernel_l2", "vq"} <= set(history[-1])


def test_gradients_are_clipped_per_tensor_like_keras_clipnorm():
    model = tiny(clip_grad_norm=0.01, w_image=1000.0)
    total, _, _ = model.training_losses(square_clips() * 2 - 1, 0)
    total.backward()
    norms = [p.grad.norm().item() for p in model.parameters() if p.grad is not None]
    assert norms and max(norms) <= 0.01 + 1e-6


def test_image_frames_reconstructs_a_subset():
    model = tiny(image_frames=2, observed_steps=3, predicted_steps=3)
    clips = square_clips(t=6) * 2 - 1
    total, _, aux = model.training_losses(clips, 0)
    total.backward()
    assert torch.isfinite(total)
    grey = (aux["composite"] == 0).flatten(2).all(-1)  # (B, T-1): frames that were not reconstructed
    assert grey.sum(1).tolist() == [4, 4]
    # the keypoints of the skipped frames are detected too, and put back in frame order
    with torch.no_grad():
        _, kp = model._detect(clips / 2)  # (B, T, K, 3)
        expected = model._agent_mask(kp.flatten(0, 1)).view(2, 6, 1, SIZE, SIZE)
    assert torch.equal(aux["mask"], expected)
    assert not torch.equal(expected[:, 0], expected[:, -1])  # the square moved: the order matters


# ---------------------------------------------------------------------------------------------- generation API
def test_generation_api_shapes_and_determinism():
    model = tiny().eval()
    video = square_clips(t=5)
    k = model.cfg.num_keypoints
    state = model.start(video[:, 0])
    assert state["keypoints"].shape == (2, k, 3)
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    s1, s2 = state, dict(state)
    for t in range(3):
        shift = torch.tensor([1, 4]) if t % 2 else torch.tensor([[2.0, -1.0], [0.0, 3.0]])
        code = torch.tensor([0, model.num_codes - 1])
        f1, m1, s1 = model.step(s1, shift, code, generator=g1)
        f2, m2, s2 = model.step(s2, shift, code, generator=g2)
        assert torch.equal(f1, f2) and torch.equal(m1, m2)
        assert f1.shape == (2, 3, SIZE, SIZE) and m1.shape == (2, 1, SIZE, SIZE)
        assert f1.min() >= 0 and f1.max() <= 1 and set(m1.unique().tolist()) <= {0.0, 1.0}
        assert s1.keys() == state.keys() and all(v.shape[0] == 2 for v in s1.values())
    f3, _, _ = model.step(s1, torch.tensor([0, 0]), torch.tensor([0, 0]), generator=torch.Generator().manual_seed(4))
    f4, _, _ = model.step(s1, torch.tensor([0, 0]), torch.tensor([0, 0]), generator=torch.Generator().manual_seed(5))
    assert not torch.equal(f3, f4)  # the prior is sampled
    f5, _, _ = model.step(s1, torch.tensor([0, 0]), torch.tensor([0, 0]), temperature=0.0)
    f6, _, _ = model.step(s1, torch.tensor([0, 0]), torch.tensor([0, 0]), temperature=0.0)
    assert torch.equal(f5, f6)

    shifts, codes = model.infer_actions(video)
    assert shifts.shape == (2, 4, 2) and shifts.dtype == torch.float32
    assert codes.shape == (2, 4) and codes.dtype == torch.long and codes.max() < model.num_codes
    fg, bg = model.estimate_shifts((video * 255).to(torch.uint8))
    assert fg.shape == bg.shape == (2, 4, 2)
    assert model.segment(video).shape == (2, 5, 1, SIZE, SIZE)
    kp = model.detect_keypoints(video)
    assert kp.shape == (2, 5, k, 3)
    assert kp[..., 0].min() >= -1 and kp[..., 0].max() <= SIZE and kp[..., 2].max() <= 1 + 1e-5
    gen, masks = model.generate(video)
    gen2, masks2 = model.generate(video)
    assert gen.shape == video.shape and masks.shape == (2, 5, 1, SIZE, SIZE)
    assert torch.equal(gen, gen2) and torch.equal(masks, masks2)
    assert torch.allclose(gen[:, 0], video[:, 0])
    assert model.training is False


def test_residual_keypoints_carry_out_the_shift_on_the_agent_keypoints():
    """residual_keypoints: a rollout starts from the detected keypoints, and with a silent decoder a step moves the
    agent keypoints by exactly the global shift and leaves the others where they were."""
    model = tiny(agent_keypoints=[0, 2]).eval()
    assert model.cfg.residual_keypoints  # the tiny and cpu presets use it
    video = square_clips(t=2)
    state = model.start(video[:, 0])
    assert torch.allclose(state["keypoints"], model.detect_keypoints(video)[:, 0], atol=1e-5)
    with torch.no_grad():
        model.vrnn.dec_out.weight.zero_()
        model.vrnn.dec_out.bias.zero_()
    before = state["keypoints"].clone()
    shift = torch.tensor([[2.0, -1.0], [-3.0, 2.0]])  # (dx, dy) px, +y down
    _, _, state = model.step(state, shift, torch.tensor([0, 1]), temperature=0.0)
    moved = state["keypoints"] - before  # (B, K, 3)
    agent = torch.tensor([True, False, True, False])
    inside = (before[..., :2] - shift[:, None] > 1) & (before[..., :2] + shift[:, None] < SIZE - 2)
    ok = inside.all(-1) & agent  # away from the frame's edge (keypoints are clamped to the frame)
    assert ok.any()
    assert torch.allclose(moved[..., :2][ok], shift[:, None].expand(-1, 4, -1)[ok], atol=1e-4)
    assert torch.allclose(moved[:, ~agent], torch.zeros_like(moved[:, ~agent]), atol=1e-5)
    # the paper's absolute decoder does neither
    absolute = tiny(agent_keypoints=[0, 2], residual_keypoints=False).eval()
    s0 = absolute.start(video[:, 0])
    assert not torch.allclose(s0["keypoints"], absolute.detect_keypoints(video)[:, 0], atol=1e-3)


def test_step_keeps_the_agent_in_its_box():
    model = tiny().eval()
    state = model.start(square_clips(t=2)[:, 0])
    pos, found = locate_agent(model._agent_mask(model._unpx(state["keypoints"])))
    assert bool(found.all())  # the tiny model's agent keypoints make a mask on both starts
    big = torch.tensor([[30.0, 0.0], [-30.0, 0.0]])
    code = torch.tensor([0, 0])
    model.agent_box = torch.cat([pos.min(0).values - 2, pos.max(0).values + 2])
    kept = kept_in_box(big, pos, found, model.agent_box)
    assert 0 < kept[0, 0] < 30 and -30 < kept[1, 0] < 0  # both moves end at the box's edge
    boxed, _, _ = model.step(state, big, code, temperature=0.0)
    model.agent_box = None
    asked, _, _ = model.step(state, big, code, temperature=0.0)
    shortened, _, _ = model.step(state, kept, code, temperature=0.0)
    assert torch.equal(boxed, shortened) and not torch.equal(boxed, asked)


def test_step_rejects_bad_actions_and_frames():
    model = tiny().eval()
    state = model.start(square_clips()[:, 0])
    with pytest.raises(ValueError, match="codes must lie"):
        model.step(state, torch.tensor([0, 0]), torch.tensor([0, 99]))
    with pytest.raises(ValueError, match="shift indices"):
        model.step(state, torch.tensor([0, 42]), torch.tensor([0, 0]))
    with pytest.raises(ValueError, match="shift must be"):
        model.step(state, torch.zeros(2, 3), torch.tensor([0, 0]))
    with pytest.raises(ValueError, match="32x32"):
        model.segment(torch.rand(1, 2, 3, 16, 16))
    with pytest.raises(ValueError, match="divisible by 16"):
        KeypointConfig.preset("tiny", 30, 32)
    with pytest.raises(ValueError, match="unknown keypoint config keys"):
        KeypointConfig.preset("tiny", 32, 32, no_such_field=1)


def test_agent_mask_covers_the_agent_keypoints():
    model = tiny()
    model.motion_cov.copy_(torch.tensor([[1.0, 1.0, 0, 0], [1.0, 1.0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]]))
    model.mu_pair.fill_(1.0)
    model.mu_mean.fill_(1.0)
    model.motion_updates.fill_(1)
    kp = torch.tensor([[[-0.5, 0.5, 1.0], [-0.3, 0.5, 1.0], [0.6, -0.6, 1.0], [0.8, -0.8, 1.0]]])
    mask = model._agent_mask(kp)[0, 0]
    px = to_pixels(kp, SIZE, SIZE, 8, 8)[0]
    for k, inside in ((0, True), (1, True), (2, False), (3, False)):
        assert bool(mask[int(px[k, 1].round()), int(px[k, 0].round())]) is inside


# ---------------------------------------------------------------------------------------------- checkpoints
def _payload(model: KeypointModel) -> dict:
    start = (square_clips()[:, 0] * 255).to(torch.uint8)
    return {"model": "keypoint", "model_config": model.cfg.to_dict(), "state_dict": model.state_dict(), "step": 7,
            "run_config": {}, "perceptual": "off", "card": {"dataset": "squares", "steps": 7},
            "env_info": {"shift_grid": [[0, 0], [3, 0], [-3, 0]], "shift_names": ["none", "right", "left"],
                         "code_meanings": None, "start_frames": start}}


def test_checkpoint_round_trip_gives_identical_outputs(tmp_path: Path):
    model = tiny()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    for step in range(3):  # trained a little, with agent statistics
        total, _, _ = model.training_losses(square_clips() * 2 - 1, step)
        opt.zero_grad()
        total.backward()
        opt.step()
    model.eval()
    payload = _payload(model)
    path = save_checkpoint(tmp_path / "kp.pt", payload)
    model.set_env_info(payload["env_info"])  # the same shift grid on both sides
    loaded = load_world_model(path)
    assert isinstance(loaded, KeypointModel) and not loaded.training
    assert torch.equal(loaded.motion_cov, model.motion_cov) and int(loaded.motion_updates) == 3
    assert torch.equal(loaded.agent_weights, model.agent_weights)
    assert loaded.shift_grid.tolist() == [[0, 0], [3, 0], [-3, 0]] and loaded.shift_names[1] == "right"
    assert loaded.start_frames.shape == (2, 3, SIZE, SIZE) and loaded.metadata["steps"] == 7
    video = square_clips(t=4)
    for a, b in zip(model.generate(video), loaded.generate(video)):
        assert torch.equal(a, b)
    s_a, s_b = model.start(video[:, 0]), loaded.start(video[:, 0])
    fa, _, _ = model.step(s_a, torch.tensor([1, 2]), torch.tensor([0, 1]), generator=torch.Generator().manual_seed(0))
    fb, _, _ = loaded.step(s_b, torch.tensor([1, 2]), torch.tensor([0, 1]), generator=torch.Generator().manual_seed(0))
    assert torch.equal(fa, fb)
    assert torch.equal(model.detect_keypoints(video), loaded.detect_keypoints(video))


def test_from_checkpoint_refuses_another_model(tmp_path: Path):
    model = tiny()
    payload = _payload(model) | {"model": "glass"}
    path = save_checkpoint(tmp_path / "g.pt", payload)
    with pytest.raises(DatasetError, match="not a keypoint"):
        KeypointModel.from_checkpoint(path)


def test_reset_dead_codes():
    model = tiny()
    model.training_losses(square_clips() * 2 - 1, 0)
    before = model.action.vq.codebook.detach().clone()
    n = model.reset_dead_codes(torch.tensor([5, 0, 3, 0]))
    assert n == 2
    after = model.action.vq.codebook.detach()
    assert torch.equal(after[[0, 2]], before[[0, 2]]) and not torch.equal(after[[1, 3]], before[[1, 3]])
    with pytest.raises(ValueError, match="one per code"):
        model.reset_dead_codes(torch.tensor([1, 2]))


# ---------------------------------------------------------------------------------------------- tracking probe
def test_kp_track_err_is_small_for_informative_keypoints_and_large_otherwise():
    rng = np.random.default_rng(0)
    pos = rng.uniform(0, 64, size=(200, 2))
    kp = rng.normal(size=(200, 5, 3))
    kp[:, 0, :2] = pos + rng.normal(scale=0.5, size=(200, 2))  # keypoint 0 tracks the agent
    good = kp_track_err(kp[:150], pos[:150], kp[150:], pos[150:])
    assert good < 1.5
    noise = rng.normal(size=(200, 5, 3))
    bad = kp_track_err(noise[:150], pos[:150], noise[150:], pos[150:])
    assert bad > 10
    pos_nan = pos.copy()
    pos_nan[150:160] = np.nan  # unknown positions are skipped
    assert math.isfinite(kp_track_err(kp[:150], pos[:150], kp[150:], pos_nan[150:]))
    with pytest.raises(ValueError, match="train frames"):
        kp_track_err(kp[:3], pos[:3], kp[150:], pos[150:])


def test_collect_keypoints_runs_the_detector():
    model = tiny().eval()
    video = square_clips(t=3)
    kp, pos = collect_keypoints(model, [(video, torch.zeros(2, 3, 2))])
    assert kp.shape == (6, model.cfg.num_keypoints, 3) and pos.shape == (6, 2)


# ---------------------------------------------------------------------------------------------- registry + trainer
def test_registry_builds_every_preset():
    for preset, size in (("tiny", (32, 32)), ("cpu", (96, 128)), ("paper", (64, 64))):
        model = build_model("keypoint", preset, *size, {})
        assert isinstance(model, KeypointModel) and model.cfg.preset == preset
        cfg = model.cfg
        assert cfg.num_obs(0) == cfg.clip_len_max == cfg.observed_steps + cfg.predicted_steps
        assert KeypointConfig.from_dict(cfg.to_dict()) == cfg
    paper = KeypointConfig.preset("paper", 64, 64)
    assert (paper.num_keypoints, paper.heatmap_height, paper.appearance_channels, paper.rnn_units) == (64, 16, 128, 512)
    assert KeypointConfig.preset("cpu", 96, 256).frame_skip == 4  # Tennis-like frames


def _square_dataset(root: Path) -> Path:
    rng = np.random.default_rng(0)
    w = DatasetWriter(root, source="synthetic", height=SIZE, width=SIZE, fps=10, generator={"seed": 0})
    for i in range(4):
        bg = (rng.random((SIZE, SIZE, 3)) * 80 + 40).astype(np.uint8)
        frames, pos = [], []
        x, y = 4, 4 + 4 * i
        for t in range(10):
            x = min(x + 2, SIZE - 8)
            f = bg.copy()
            f[y:y + 8, x:x + 8] = (230, 40, 40)
            frames.append(f)
            pos.append((x + 3.5, y + 3.5))
        w.write(f"v{i}", np.stack(frames), split="train" if i < 3 else "val", pos=np.array(pos, np.float32))
    w.close()
    return root


def test_glassworld_train_model_keypoint(tmp_path: Path):
    from worldmodel.train import compose_run_config, train

    data = _square_dataset(tmp_path / "data")
    metrics = train(compose_run_config([
        f"data.path={data}", "model=keypoint", "model.preset=tiny", f"run_dir={tmp_path / 'run'}", "data.workers=0",
        "train.progress=false", "train.threads=1", "train.steps=4", "train.image_every=2", "train.log_every=2",
        "train.dead_code_window=2"]))
    assert metrics["step"] == 4 and math.isfinite(metrics["final_losses"]["total"])
    model = load_world_model(tmp_path / "run" / "checkpoint.pt")
    assert isinstance(model, KeypointModel) and model.start_frames.shape[1:] == (3, SIZE, SIZE)
    assert model.shift_grid.shape == (9, 2)
