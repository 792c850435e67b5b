"""GlassModel: losses and schedules, training behaviour, generation API, checkpoints, perceptual network."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from worldmodel.checkpoint import save_checkpoint
from worldmodel.data.format import DatasetError
from worldmodel.glass import GlassConfig, GlassModel
from worldmodel.glass.config import agent_window
from worldmodel.glass.blocks import pixels_to_normalized
from worldmodel.glass.losses import LMA_TERMS, TERMS, gradient_match_loss
from worldmodel.metrics import abs_gradients, kept_in_box, locate_agent
from worldmodel.precision import autocast


GMA_PARTS = ("masking", "inpainting", "pose_fg", "pose_bg")
LMA_PARTS = ("encoder", "compressor", "action", "dynamics", "renderer")


def _clips(b: int = 2, t: int = 4, h: int = 32, w: int = 32, seed: int = 0) -> torch.Tensor:
    """A bright square walking over a fixed textured background: (B, T, 3, H, W) in [-1, 1]."""
    g = torch.Generator().manual_seed(seed)
    bg = torch.rand(b, 1, 3, h, w, generator=g) * 0.6 - 0.8
    frames = bg.expand(b, t, 3, h, w).clone()
    for i in range(b):
        y, x = 6 + 3 * i, 4
        for k in range(t):
            frames[i, k, :, y:y + 8, x + 3 * k:x + 3 * k + 8] = torch.tensor([0.9, 0.2, -0.3])[:, None, None]
    return frames


def _model(h: int = 32, w: int = 32, seed: int = 0, **overrides) -> GlassModel:
    torch.manual_seed(seed)
    return GlassModel(GlassConfig.preset("tiny", h, w, **overrides))


class _BrightMask(torch.nn.Module):
    """A masking network that finds the squares of :func:`_clips` (their red channel is 0.9; the background's at
    most -0.2): (N, 3, H, W) in [-1, 1] -> (N, 1, H, W) in {0, 1}."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x[:, :1] > 0.5).to(x.dtype)


def _grads(model: GlassModel, part: str) -> float:
    return sum(float(p.grad.abs().sum()) for p in getattr(model, part).parameters() if p.grad is not None)


# ------------------------------------------------------------------------------------------------ config
def test_paper_parameter_counts_match_official_model() -> None:
    """method.md 2 table, without A's unused "mapping" MLP (16,832) and Tennis' dead noise inputs."""
    counts = GlassModel(GlassConfig.preset("paper", 96, 128)).parameter_counts()
    assert counts == {"M": 12963009, "P_f": 117986, "P_b": 117986, "N": 139814, "E": 249951, "C": 520,
                      "A": 3547824 - 16832, "dynamics": 532448, "renderer": 510346, "total": 18179884 - 16832}
    tennis = GlassModel(GlassConfig.preset("paper", 96, 256)).parameter_counts()
    assert (tennis["C"], tennis["A"], tennis["renderer"]) == (1040, 3547792 - 16832, 547210)
    assert tennis["dynamics"] < 2219728  # official minus the always-zero noise channels


def test_presets_and_schedules() -> None:
    ws = GlassConfig.preset("paper", 96, 128)
    assert [ws.num_gt(s) for s in (0, 6249, 6250, 12500, 18750, 24999, 25000, 10**6)] == [5, 5, 4, 3, 2, 2, 1, 1]
    assert [ws.num_obs(s) for s in (0, 54999, 55000, 60000, 79999, 80000)] == [6, 6, 7, 8, 11, 12]
    assert (ws.num_codes, ws.state_channels, ws.mask_size, ws.frame_skip, ws.clip_len_max) == (6, 8, 0.06, 0, 12)
    assert (ws.lr, ws.weight_decay, ws.lr_milestones, ws.lr_gamma, ws.batch_size) == \
        (4e-4, 1e-6, [300000, 1000000], 0.3333, 4)
    tennis = GlassConfig.preset("paper", 96, 256)
    assert (tennis.num_codes, tennis.state_channels, tennis.dynamics_hidden, tennis.mask_size,
            tennis.frame_skip, tennis.clip_len_max) == (4, 16, 64, 0.01, 4, 11)
    assert [tennis.num_gt(s) for s in (0, 9249, 9250, 28000)] == [5, 5, 4, 1]
    cpu = GlassConfig.preset("cpu", 96, 128)
    assert cpu.num_codes == 6 and cpu.pretraining_steps < 1000 and cpu.num_gt(cpu.pretraining_steps + 2000) == 1
    assert GlassConfig.preset("cpu", 64, 64, num_codes=9).num_codes == 9
    for name in ("tiny", "cpu", "paper"):
        cfg = GlassConfig.preset(name, 64, 64)
        assert GlassConfig.from_dict(cfg.to_dict()) == cfg


def test_config_errors_name_the_fix() -> None:
    with pytest.raises(ValueError, match="divisible by 16"):
        GlassConfig.preset("tiny", 30, 32)
    with pytest.raises(ValueError, match="unknown GLASS preset"):
        GlassConfig.preset("huge", 32, 32)
    with pytest.raises(ValueError, match="unknown GLASS config keys"):
        GlassConfig.from_dict({"height": 32, "width": 32, "bogus": 1})


# ------------------------------------------------------------------------------------------------ training
def test_all_loss_terms_finite_and_aux_shapes() -> None:
    model = _model()
    frames = _clips()
    total, terms, aux = model.training_losses(frames, step=100)
    assert total.requires_grad and math.isfinite(total.item())
    expected = set(TERMS) - {"background_perceptual", "multiscale_perceptual"}  # weight 0 in tiny: skipped
    assert expected | {"vq_perplexity", "vq_usage"} == set(terms)
    for name, value in terms.items():
        assert value.dim() == 0 and not value.requires_grad and math.isfinite(float(value)), name
    assert 1.0 <= float(terms["vq_perplexity"]) <= model.num_codes and 0 < float(terms["vq_usage"]) <= 1
    shapes = {k: tuple(v.shape) for k, v in aux.items()}
    assert shapes == {"mask": (2, 4, 1, 32, 32), "fg": (2, 4, 3, 32, 32), "bg": (2, 4, 3, 32, 32),
                      "composite": (2, 3, 3, 32, 32), "recon_fg": (2, 3, 3, 32, 32), "codes": (2, 3)}
    assert aux["codes"].dtype == torch.long and int(aux["codes"].max()) < model.num_codes
    assert float(aux["mask"].min()) >= 0 and float(aux["mask"].max()) <= 1
    for k in ("fg", "bg", "composite", "recon_fg"):
        assert float(aux[k].abs().max()) <= 1 and not aux[k].requires_grad


def test_balanced_mask_loss_weighs_agent_and_background_equally() -> None:
    from worldmodel.glass.losses import balanced_l1

    target = torch.zeros(1, 1, 1, 10, 10)
    target[..., :1, :2] = 1  # a 2-pixel agent (2% of the frame)
    empty = torch.zeros_like(target)
    assert float(torch.nn.functional.l1_loss(empty, target)) == pytest.approx(0.02)  # plain L1: "empty is fine"
    assert float(balanced_l1(empty, target)) == pytest.approx(0.5)  # balanced: missing the agent costs half
    assert float(balanced_l1(target, target)) == 0.0
    even = (torch.arange(100).view(1, 1, 1, 10, 10) % 2).float()  # half the pixels are agent
    pred = torch.rand(even.shape, generator=torch.Generator().manual_seed(0))
    assert float(balanced_l1(pred, even)) == pytest.approx(float((pred - even).abs().mean()))  # = plain L1


def test_code_usage_loss_is_low_for_an_evenly_used_codebook_and_spreads_a_collapsed_one() -> None:
    """L_USE is ~0 when the batch uses the K codes evenly and near 1 - 1/K when every action sits on one code, however far from the codes; its
    gradient alone moves a collapsed batch of actions onto several codes."""
    from worldmodel.glass.losses import code_usage_loss

    torch.manual_seed(0)
    book = torch.eye(4)
    assert float(code_usage_loss(book.repeat(8, 1), book)) < 0.05
    one = book[:1].repeat(32, 1) + 0.05 * torch.randn(32, 4)
    assert float(code_usage_loss(one, book)) > 0.6
    assert float(code_usage_loss(100 * one, book)) > 0.6  # moving the actions far from every code does not meet it
    u = (book[:1].repeat(32, 1) + 0.3 * torch.randn(32, 4)).requires_grad_()
    nearest = lambda x: ((x[:, None] - book[None]) ** 2).sum(-1).argmin(1)  # noqa: E731
    before, start = len(set(nearest(u).tolist())), float(code_usage_loss(u.detach(), book))
    opt = torch.optim.SGD([u], lr=0.5)
    for _ in range(100):
        opt.zero_grad()
        code_usage_loss(u, book).backward()
        opt.step()
    assert len(set(nearest(u.detach()).tolist())) >= 3 > before
    assert float(code_usage_loss(u.detach(), book)) < start - 0.2


def test_motion_map_marks_what_moves_and_skips_frames_that_change_everywhere() -> None:
    from worldmodel.glass.losses import motion_map

    frames = _clips(b=1, t=3)
    frames[0, 2] = -frames[0, 2]  # frame 2: every pixel changes (a cut)
    moving = motion_map(frames, change=0.08)
    assert moving.shape == (1, 3, 1, 32, 32)
    assert float(moving[0, 2].sum()) == 0  # the cut says nothing about where the agent is
    square = torch.zeros(32, 32, dtype=torch.bool)
    square[6:14, 4:15] = True  # the square on frames 0 and 1 (x 4..11, then 7..14)
    assert bool((moving[0, 0, 0] <= square).all()) and bool((moving[0, 0, 0] > 0).any())  # only the square moves
    assert float(moving[0, 1].sum()) == 0  # frame 1 borders the cut: most of its pixels change too


def test_motion_guard_loss_pulls_only_masks_that_locate_nothing() -> None:
    from worldmodel.glass.losses import motion_guard_loss, motion_map

    frames = _clips(b=1, t=3)
    moving = motion_map(frames[:, :2], change=0.08)  # (1, 2, 1, H, W)
    empty = torch.zeros(1, 2, 1, 32, 32)
    assert float(motion_guard_loss(empty, moving, min_area_px=4)) == pytest.approx(1.0)
    found = empty.clone()
    found[..., 20:23, 20:23] = 1.0  # 9 px above 0.5, somewhere else: the agent is located, the guard is off
    assert float(motion_guard_loss(found, moving, min_area_px=4)) == 0.0
    half = empty.clone()
    half[:, 0, ..., 20:23, 20:23] = 1.0  # frame 0 located, frame 1 empty: half the frames are lost
    assert float(motion_guard_loss(half, moving, min_area_px=4)) == pytest.approx(0.5)


def test_motion_guard_forms_the_mask_of_a_small_agent() -> None:
    """A 3x3 agent (0.9 % of the frame) at the size prior: without the guard the mask stays empty (L_SIZE is met
    by a uniformly faint mask and L_BIN pulls it down); with it, the mask locates the agent on every frame."""
    from worldmodel.metrics import locate_agent

    g = torch.Generator().manual_seed(0)
    frames = (torch.rand(4, 1, 3, 32, 32, generator=g) * 0.6 - 0.8).expand(4, 4, 3, 32, 32).clone()
    for i in range(4):
        for k in range(4):
            frames[i, k, :, 6 + 4 * i:9 + 4 * i, 4 + 2 * k:7 + 2 * k] = torch.tensor([0.9, 0.2, -0.3])[:, None, None]
    found = {}
    for guard in (0.0, 1.0):
        model = _model(mask_size=0.009, w_motion_guard=guard, pretraining_steps=1000)
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        for step in range(30):
            total, _, aux = model.training_losses(frames, step)
            opt.zero_grad()
            total.backward()
            opt.step()
        found[guard] = float(locate_agent(aux["mask"], 0.5, 1.0)[1].float().mean())
    assert found[0.0] < 0.5 and found[1.0] >= 0.9, found


def test_mask_prior_init_starts_both_masks_at_the_size_prior() -> None:
    model = _model(mask_size=0.05, fg_carry=False).eval()
    with torch.no_grad():
        _, recon_mask, gate = model.renderer(torch.zeros(1, model.cfg.dynamics_hidden, 4, 4))
    assert gate is None  # no carry, no gate
    assert float(recon_mask.mean()) == pytest.approx(0.05, abs=0.02)
    assert model.cfg.mask_reconstruction_balanced and not GlassConfig().mask_reconstruction_balanced


def test_agent_carry_moves_the_previous_agent_by_whole_pixels_and_keeps_the_remainder() -> None:
    """With the gate shut (logit -30) a step is the previous foreground and mask moved by the global action:
    4 px at once exactly, and 0.5 px steps move it 1 px every second step (nothing is lost, nothing blurs)."""
    model = _model(fg_carry=True).eval()
    assert GlassConfig.preset("cpu", 64, 64).fg_carry and not GlassConfig().fg_carry  # paper: the official renderer
    assert GlassConfig.preset("cpu", 64, 64).w_mask_area > 0 and GlassConfig().w_mask_area == 0  # L_AREA: cpu only
    with torch.no_grad():
        model.renderer.head3.conv.bias[4:] = -30.0
    x = (_clips()[:, 0] + 1) / 2
    state = model.start(x)
    code = torch.zeros(2, dtype=torch.long)
    _, mask, s1 = model.step(state, torch.tensor([[4.0, 0.0], [0.0, -4.0]]), code)
    assert torch.allclose(s1["fg"][0, :, :, 4:], state["fg"][0, :, :, :-4], atol=1e-5)
    assert torch.allclose(s1["fg"][1, :, :-4], state["fg"][1, :, 4:], atol=1e-5)
    assert torch.allclose(mask[0, :, :, 4:], state["mask"][0, :, :, :-4], atol=1e-5)
    half = torch.tensor([[0.5, 0.0], [0.5, 0.0]])
    _, _, a = model.step(state, half, code)
    _, _, b = model.step(a, half, code)
    assert torch.allclose(a["fg"], state["fg"], atol=1e-5) and torch.allclose(a["carry_rem"], half)  # 0.5 waits
    assert torch.allclose(b["fg"][..., 1:], state["fg"][..., :-1], atol=1e-5)  # 0.5 + 0.5: one whole pixel
    assert torch.allclose(b["mask"][..., 1:], state["mask"][..., :-1], atol=1e-5)
    assert torch.allclose(b["carry_rem"], torch.zeros(2, 2))
    with torch.no_grad():  # an open gate (logit +30) draws the renderer's output alone
        model.renderer.head3.conv.bias[4:] = 30.0
        opened, _, gate = model.renderer(torch.zeros(1, model.cfg.dynamics_hidden, 4, 4),
                                         carried=torch.ones(1, 4, 32, 32))
        assert gate is not None and float(gate.min()) > 0.99
        model.cfg.fg_carry = model.renderer.carry = False
        plain, _, _ = model.renderer(torch.zeros(1, model.cfg.dynamics_hidden, 4, 4))
    assert torch.allclose(opened[0], plain[0], atol=1e-5)


def test_carry_gate_term_is_the_mean_gate_and_training_on_it_shuts_the_gate() -> None:
    """L_KEEP (w_carry_gate) is the renderer's mean gate over the generated frames; with it, the same training
    shuts the gate (the agent is carried, not redrawn) where without it the gate stays open. No fg_carry, no term."""
    assert GlassConfig().w_carry_gate == 0  # paper: no carry, no gate
    frames = _clips()
    assert "carry_gate" not in _model(fg_carry=False, pretraining_steps=0).training_losses(frames, step=10)[1]
    gates = {}
    for w in (0.0, 10.0):
        model = _model(fg_carry=True, carry_gate_init=2.0, pretraining_steps=0, w_carry_gate=w).train()
        _, terms, _ = model.training_losses(frames, step=10)
        assert float(terms["carry_gate"]) == pytest.approx(float(torch.sigmoid(torch.tensor(2.0))), abs=0.1)
        opt = torch.optim.Adam(model.parameters(), lr=1e-2)
        for _ in range(25):
            total, terms, _ = model.training_losses(frames, step=10)
            opt.zero_grad()
            total.backward()
            opt.step()
        gates[w] = float(terms["carry_gate"])
    assert gates[10.0] < 0.6 * gates[0.0] and gates[0.0] > 0.6, gates


def test_hard_carry_gate_picks_each_pixel_whole_and_trains_like_the_soft_one() -> None:
    """carry_gate_hard: every output pixel (foreground and mask) is exactly the renderer's or exactly the carried
    one, chosen by gate > 0.5, and the gradient is the soft blend's, so the gate and the renderer still learn."""
    from worldmodel.glass.networks import Renderer

    with pytest.raises(ValueError, match="needs fg_carry"):
        GlassConfig.preset("tiny", 32, 32, carry_gate_hard=True, fg_carry=False)
    cfg = GlassConfig.preset("tiny", 32, 32, carry_gate_hard=True, carry_gate_init=0.0)
    torch.manual_seed(0)
    hard = Renderer(cfg)
    soft = Renderer(GlassConfig.preset("tiny", 32, 32, carry_gate_init=0.0))
    soft.load_state_dict(hard.state_dict())
    s = torch.randn(3, cfg.dynamics_hidden, *cfg.state_resolution)
    carried = torch.cat([torch.rand(3, 3, 32, 32) * 2 - 1, torch.rand(3, 1, 32, 32)], dim=1)
    carried_h, carried_s = carried.clone().requires_grad_(), carried.clone().requires_grad_()
    fg_h, m_h, g_h = hard(s, carried=carried_h)
    fg_s, m_s, g_s = soft(s, carried=carried_s)
    out_h, out_s = torch.cat([fg_h[0], m_h], 1), torch.cat([fg_s[0], m_s], 1)
    assert torch.equal(g_h, g_s)  # the same gate; only its use differs
    redraw = (g_h > 0.5).expand_as(out_h)
    assert 0.05 < float(redraw.float().mean()) < 0.95  # both choices occur (logit ~0 at init)
    assert torch.equal(out_h[~redraw], carried[~redraw])  # carried pixels are the carried values, unblurred
    assert not torch.allclose(out_h, out_s)  # ... where the soft gate mixes them
    redrawn = out_h[redraw]
    # the redrawn pixels are the renderer's own output: carried + g (D - carried) at g = 1
    d = (out_s - (1 - g_s) * carried) / g_s
    assert torch.allclose(redrawn, d[redraw], atol=1e-5)
    (out_h.square().sum()).backward()
    (out_s.square().sum()).backward()
    gate_grads = [r.head3.conv.weight.grad[4:].abs().sum() for r in (hard, soft)]
    assert all(float(g) > 0 for g in gate_grads)  # the gate learns through the straight-through gradient
    assert float(hard.head3.conv.weight.grad[:3].abs().sum()) > 0  # ... and so does the drawing


def test_agent_window_size_follows_the_mask_size_target() -> None:
    """The suggested window: a square of 3 sqrt(theta H W) px rounded up to 16, at most the frame; the whole frame
    is (0, 0); presets keep the whole frame unless asked; a bad window is one clear error."""
    assert agent_window(0.0117, 64, 64) == (32, 32)  # Tennis 64x64: a 5x8-px player
    assert agent_window(0.004, 64, 64) == (16, 16)  # Breakout 64x64
    assert agent_window(0.06, 96, 128) == (96, 96)
    assert agent_window(0.15, 96, 128) == (0, 0)  # as large as the frame: the whole frame
    cfg = GlassConfig.preset("cpu", 64, 64, agent_crop=agent_window(0.0117, 64, 64))
    assert cfg.agent_crop == (32, 32) and cfg.windowed and cfg.state_resolution == (4, 4)
    assert GlassConfig.preset("cpu", 64, 64, mask_size=0.0117).lma_size == (64, 64)  # off unless asked for
    assert GlassConfig.preset("cpu", 64, 64, agent_crop=(64, 64)).agent_crop == (0, 0)
    with pytest.raises(ValueError, match="multiples of 16"):
        GlassConfig.preset("cpu", 64, 64, agent_crop=(24, 24))


def test_agent_window_follows_the_agent_and_runs_the_local_part_on_it_alone() -> None:
    """With an agent window the encoder, dynamics and renderer see only a 16x16 window that starts centred on the
    agent and moves with the global action by whole pixels; with the gate shut a rollout is the start agent moved
    exactly as the whole-frame carry moves it (the same frames), while the networks ran on 1/4 of the pixels."""
    h = w = 32
    x = (_clips(h=h, w=w)[:, 0] + 1) / 2  # 8x8 squares at (4, 6) and (4, 9)
    frames = {}
    for crop in ((16, 16), (0, 0)):
        model = _model(h, w, agent_crop=crop).eval()
        model.masking = _BrightMask()
        with torch.no_grad():
            model.renderer.head3.conv.bias[4:] = -30.0  # gate shut: the carried layer alone
        seen = []
        hook = model.encoder.register_forward_pre_hook(lambda m, a: seen.append(tuple(a[0].shape[-2:])))
        state = model.start(x)
        start_win = state["win"].clone()
        if crop != (0, 0):
            assert state["fg"].shape == (2, 3, 16, 16) and state["mask"].shape == (2, 1, h, w)
            pos, found = locate_agent(state["mask"])
            assert bool(found.all())
            centre = state["win"] + 7.5  # the agent is at the window's centre (to half a pixel)
            assert float((centre - pos).abs().max()) <= 0.5
        out = []
        for shift in ([[3.0, 0.0], [0.0, 2.0]], [[1.4, 0.0], [0.0, -1.0]], [[1.4, 0.0], [0.0, -1.0]]):
            frame, _, state = model.step(state, torch.tensor(shift), torch.zeros(2, dtype=torch.long))
            out.append(frame)
        hook.remove()
        frames[crop] = torch.stack(out, dim=1)
        assert set(seen) == {(16, 16) if crop != (0, 0) else (h, w)}
        if crop != (0, 0):  # row 0: 3 + 1 + 2 px right (1.4 + 1.4 = 2.8 moves 1, then 2); row 1: 2 - 1 - 1 = 0
            assert (state["win"] - start_win).tolist() == [[6.0, 0.0], [0.0, 0.0]]
    torch.testing.assert_close(frames[(16, 16)], frames[(0, 0)], atol=1e-5, rtol=0)


def test_agent_window_cuts_the_cost_of_a_step_by_its_share_of_the_frame() -> None:
    """A 16x16 window on 32x32 frames: the encoder, dynamics and renderer of a step cost a quarter."""
    from torch.utils.flop_counter import FlopCounterMode

    x = (_clips()[:, 0] + 1) / 2
    cost = {}
    for crop in ((16, 16), (0, 0)):
        model = _model(agent_crop=crop).eval()
        state = model.start(x)
        with FlopCounterMode(display=False) as counter:
            model.step(state, torch.zeros(2, dtype=torch.long), torch.zeros(2, dtype=torch.long))
        counts = counter.get_flop_counts()
        cost[crop] = sum(sum(counts[k].values()) for k in ("Encoder", "Dynamics", "Renderer"))
    assert cost[(16, 16)] == pytest.approx(cost[(0, 0)] / 4, rel=0.02)


def test_windowed_training_sees_agent_windows_and_pastes_them_back() -> None:
    """Training with an agent window: the local losses are computed on the windows (the encoder sees 16x16
    inputs), gradients reach every local part, and the logged reconstruction is pasted back into the frame."""
    model = _model(32, 32, agent_crop=(16, 16))
    seen = []
    hook = model.encoder.register_forward_pre_hook(lambda m, a: seen.append(tuple(a[0].shape[-2:])))
    total, terms, aux = model.training_losses(_clips(), step=10)
    hook.remove()
    total.backward()
    assert set(seen) == {(16, 16)}
    for part in ("encoder", "action", "dynamics", "renderer"):
        assert _grads(model, part) > 0, part
    assert aux["recon_fg"].shape == (2, 3, 3, 32, 32)
    outside = aux["recon_fg"][0, 0].abs().sum(0) == 0  # nothing drawn outside the window
    assert 0.6 < float(outside.float().mean()) < 0.8  # 16x16 of 32x32 drawn: 3/4 of the frame stays empty


def test_windowed_action_inference_sees_what_training_saw() -> None:
    """``infer_actions`` of a windowed model gives A the agent windows training gives it, so A's pre-quantisation
    actions are those of ``training_losses`` on the same clip (eval mode). It used to give A the whole frame (other
    pooled features, other BatchNorm statistics): every shipped windowed world then put all transitions on one
    code."""
    model = _model(32, 32, agent_crop=(16, 16))
    model.masking = _BrightMask()
    clip = _clips(t=5)[:, :1].repeat(1, 5, 1, 1, 1)  # the squares stay put and change colour: a local action
    for k in range(5):
        square = clip[:, k, 0] > 0.5
        for c, v in ((1, -0.8 + 0.4 * k), (2, 0.6 - 0.3 * k)):
            clip[:, k, c][square] = v
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(5):  # a few steps, so that A's output depends on its input (at init it is ~constant)
        total, _, _ = model.training_losses(clip, step=10)
        opt.zero_grad()
        total.backward()
        opt.step()
    with torch.no_grad():  # no shift: training's windows (first one + shifts) are the per-frame ones
        model.pose_fg.head[-1].weight.zero_()
        model.pose_fg.head[-1].bias.zero_()
    model.eval()
    outs = []
    hook = model.action.register_forward_hook(lambda m, a, out: outs.append(out.detach()))
    with torch.no_grad():
        model.training_losses(clip, step=10)
    _, codes = model.infer_actions((clip + 1) / 2)
    hook.remove()
    assert len(outs) == 2 and codes.shape == (2, 4)
    torch.testing.assert_close(outs[1], outs[0], atol=1e-5, rtol=0)
    assert float((outs[1][1:] - outs[1][:-1]).abs().max()) > 1e-3  # the transitions differ: not a constant


def test_training_carries_the_agent_as_generation_does() -> None:
    """Training's free-running steps move the carried layer as ``step`` does: whole pixels, the sub-pixel rest kept
    for later steps, never resampled. (They used to shift it bilinearly by the sub-pixel action: after a few
    free-running steps the carried agent was a blur, and longer training taught the gate to draw the renderer's
    blob instead; Tennis, 45-minute world: agent sharpness@16 0.24.)"""
    model = _model(fg_carry=True).eval()
    with torch.no_grad():
        model.renderer.head3.conv.bias[4:] = -30.0  # gate shut: the output is the carried layer
    torch.manual_seed(1)
    b, t, h, w = 1, 5, 32, 32
    fg = torch.rand(b, t, 3, h, w) * 2 - 1
    mask = torch.rand(b, t, 1, h, w)
    step_px = 0.6
    shifts = pixels_to_normalized(torch.tensor([step_px, 0.0]), h, w).expand(b, t - 1, 2).clone()
    codes = model.action.vq.codebook[torch.zeros(b, t - 1, dtype=torch.long)]
    with torch.no_grad():
        e = model.compressor(model.encoder(fg.flatten(0, 1))[0])
        e = e.reshape(b, t, *e.shape[1:])
        fgs, masks, _, _ = model._lma(fg, codes, shifts, e, num_gt=1, mask=mask)
    moved = 0
    for k in range(t - 1):  # output k is frame k+1: frame 0 moved by round(0.6 (k+1)) px = 1, 1, 2, 2
        moved = round(step_px * (k + 1) + 1e-6)
        want = torch.zeros_like(fg[:, 0])
        want[..., moved:] = fg[:, 0, :, :, : w - moved]
        assert torch.allclose(fgs[0][:, k], want, atol=1e-5), k
        assert torch.allclose(masks[:, k, :, :, moved:], mask[:, 0, :, :, : w - moved], atol=1e-5), k
    assert moved == 2


@pytest.mark.parametrize("precision", ["float32", "bfloat16"])
def test_total_decreases_when_overfitting_a_tiny_batch(precision: str) -> None:
    """Also under bfloat16 autocast (train.precision=bfloat16): parameters and losses stay float32."""
    model = _model()
    frames = _clips()
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    totals = []
    for _ in range(50):
        with autocast(torch.device("cpu"), precision):
            total, _, _ = model.training_losses(frames, step=100)
        assert total.dtype == torch.float32
        opt.zero_grad()
        total.backward()
        opt.step()
        totals.append(total.item())
    assert all(math.isfinite(v) for v in totals)
    first, last = sum(totals[:3]) / 3, sum(totals[-3:]) / 3
    assert last < 0.7 * first, f"total did not decrease enough: {first:.4f} -> {last:.4f}"
    assert all(p.dtype == torch.float32 for p in model.parameters())


def test_gma_pretraining_trains_only_the_gma() -> None:
    model = _model()
    frames = _clips()
    total, terms, _ = model.training_losses(frames, step=0)  # tiny: pretraining_steps = 2
    total.backward()
    assert all(_grads(model, p) > 0 for p in GMA_PARTS)
    assert all(_grads(model, p) == 0 for p in LMA_PARTS)
    assert all(math.isfinite(float(terms[k])) for k in LMA_TERMS if k in terms)  # still computed for logging
    model.zero_grad()
    total, _, _ = model.training_losses(frames, step=100)
    total.backward()
    assert all(_grads(model, p) > 0 for p in LMA_PARTS)


def test_static_background_has_no_background_shift_in_training_or_generation() -> None:
    frames = _clips()
    moving, still = _model(), _model(static_background=True)
    still.load_state_dict(moving.state_dict())
    total, _, _ = still.training_losses(frames, step=0)
    total.backward()
    assert _grads(still, "pose_bg") == 0 and _grads(still, "pose_fg") > 0  # P_b takes no part
    video = ((frames + 1) / 2).clamp(0, 1)
    with still._eval_mode(), torch.no_grad():
        assert float(still._infer(video)["shift_b"].abs().max()) == 0
    with moving._eval_mode(), torch.no_grad():
        assert float(moving._infer(video)["shift_b"].abs().max()) > 0  # an untrained P_b is not zero
    out_still, _ = still.generate(video)
    out_moving, _ = moving.generate(video)
    assert not torch.equal(out_still[:, 1:], out_moving[:, 1:])  # only the background shifts differ


def test_agent_box_keeps_the_dreamed_agent_where_the_video_showed_it() -> None:
    model = _model()
    model.set_env_info({"agent_box": [8.0, 8.0, 20.0, 20.0]})
    pos = torch.tensor([[18.0, 10.0], [30.0, 10.0], [30.0, 10.0], [10.0, 10.0]])
    shift = torch.tensor([[4.0, -5.0], [4.0, 0.0], [-4.0, 0.0], [40.0, 0.0]])
    kept = kept_in_box(shift, pos, torch.tensor([True, True, True, False]), model.agent_box)
    # stopped at the edges; an agent outside may not go farther out but may come back; no agent found: as asked
    assert kept.tolist() == [[2.0, -2.0], [0.0, 0.0], [-4.0, 0.0], [40.0, 0.0]]
    with pytest.raises(ValueError, match="agent_box"):
        model.set_env_info({"agent_box": [8.0, 8.0, 4.0, 20.0]})

    # in step: an agent carried right (tiny preset: fg_carry) stops at the box's edge
    state = model.start(((_clips(b=1)[:, 0] + 1) / 2).clamp(0, 1))
    mask = torch.zeros(1, 1, 32, 32)
    mask[..., 8:13, 14:19] = 1.0  # centroid x = 16
    state = {**state, "mask": mask, "fg_mask": mask, "fg": mask.expand(1, 3, 32, 32).clone()}
    right = torch.tensor([[8.0, 0.0]])
    _, boxed, _ = model.step(state, right, torch.zeros(1, dtype=torch.long))
    model.agent_box = None
    _, free, _ = model.step(state, right, torch.zeros(1, dtype=torch.long))
    assert float(locate_agent(boxed)[0][0, 0]) == pytest.approx(20.0)
    assert float(locate_agent(free)[0][0, 0]) == pytest.approx(24.0)


def test_lma_gradients_never_reach_the_gma() -> None:
    gma_off = {f"w_{k}": 0.0 for k in TERMS if k not in LMA_TERMS}
    model = _model(**gma_off)
    total, _, _ = model.training_losses(_clips(), step=100)
    total.backward()
    assert all(_grads(model, p) == 0 for p in GMA_PARTS)
    assert all(_grads(model, p) > 0 for p in LMA_PARTS)


def test_teacher_forcing_changes_only_the_autoregressive_frames() -> None:
    model = _model(gt_start=3, gt_end=1, gt_decrease_start=10, gt_decrease_steps=10)
    frames = _clips()
    with torch.no_grad():  # calibrate the BatchNorm running statistics (at init they do not normalise)
        for _ in range(20):
            model.training_losses(frames, step=100)
    model.eval()  # BatchNorm running statistics: the batch composition does not change the outputs
    _, _, aux_tf = model.training_losses(frames, step=0)  # num_gt 3 = T-1: all teacher-forced
    _, _, aux_ar = model.training_losses(frames, step=100)  # num_gt 1: frames 3.. autoregressive
    torch.testing.assert_close(aux_tf["recon_fg"][:, 0], aux_ar["recon_fg"][:, 0])
    assert float((aux_tf["recon_fg"][:, 1:] - aux_ar["recon_fg"][:, 1:]).abs().max()) > 1e-3


def test_reset_dead_codes() -> None:
    model = _model()
    with pytest.raises(ValueError, match="one per code"):
        model.reset_dead_codes(torch.ones(model.num_codes + 1))
    model.training_losses(_clips(), step=100)
    before = model.action.vq.codebook.detach().clone()
    n = model.reset_dead_codes(torch.tensor([0, 5, 0, 1]))
    after = model.action.vq.codebook.detach()
    assert n == 2
    assert torch.equal(before[[1, 3]], after[[1, 3]]) and not torch.allclose(before[[0, 2]], after[[0, 2]])
    assert model.reset_dead_codes(torch.ones(4)) == 0


@pytest.mark.parametrize("h,w", [(64, 64), (96, 128), (96, 256)])
def test_shapes_at_several_resolutions(h: int, w: int) -> None:
    model = _model(h, w)
    frames = torch.rand(2, 3, 3, h, w) * 2 - 1
    total, _, aux = model.training_losses(frames, step=100)
    total.backward()
    assert aux["recon_fg"].shape == (2, 2, 3, h, w) and aux["mask"].shape == (2, 3, 1, h, w)
    video = torch.rand(2, 3, 3, h, w)
    gen, masks = model.generate(video)
    assert gen.shape == (2, 3, 3, h, w) and masks.shape == (2, 3, 1, h, w)


def test_bad_frames_get_a_clear_error() -> None:
    model = _model()
    with pytest.raises(ValueError, match="32x32"):
        model.training_losses(torch.zeros(2, 4, 3, 32, 48), step=0)
    with pytest.raises(ValueError, match="at least 2 frames"):
        model.training_losses(torch.zeros(2, 1, 3, 32, 32), step=0)


# ------------------------------------------------------------------------------------------------ generation
def _trained_model(steps: int = 3) -> GlassModel:
    """A tiny model with non-trivial weights and BatchNorm statistics."""
    model = _model(seed=3)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(steps):
        total, _, _ = model.training_losses(_clips(seed=1), step=100)
        opt.zero_grad()
        total.backward()
        opt.step()
    return model


def _rollout(model: GlassModel, start: torch.Tensor, n: int = 3, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    state = model.start(start)
    frames, masks = [], []
    for k in range(n):
        frame, mask, state = model.step(state, torch.tensor([k % 9, (k + 4) % 9]), torch.tensor([k % 4, 1]),
                                        generator=g)
        frames.append(frame)
        masks.append(mask)
    return torch.stack(frames, 1), torch.stack(masks, 1), state


def test_generation_api_shapes_ranges_and_determinism() -> None:
    model = _trained_model()
    model.train()
    start = (_clips()[:, 0] + 1) / 2  # (2, 3, 32, 32) in [0, 1]
    state = model.start(start)
    assert all(v.shape[0] == 2 for v in state.values())
    assert state["fg"].shape == (2, 3, 32, 32) and state["bg"].shape == (2, 3, 32, 32)
    assert state["bg_offset"].shape == (2, 2)
    frames, masks, _ = _rollout(model, start)
    assert frames.shape == (2, 3, 3, 32, 32) and masks.shape == (2, 3, 1, 32, 32)
    assert float(frames.min()) >= 0 and float(frames.max()) <= 1
    assert float(masks.min()) >= 0 and float(masks.max()) <= 1
    assert model.training  # the caller's mode is restored
    frames2, masks2, _ = _rollout(model, start)
    assert torch.equal(frames, frames2) and torch.equal(masks, masks2)
    # generation runs in eval mode: same result when the model is in eval mode, and BN stats untouched
    running = model.masking.stem[1].running_mean.clone()
    model.eval()
    frames3, _, _ = _rollout(model, start)
    assert torch.equal(frames, frames3) and torch.equal(running, model.masking.stem[1].running_mean)
    # uint8 frames are accepted
    frames4, _, _ = _rollout(model, (start * 255).round().to(torch.uint8))
    assert torch.allclose(frames, frames4, atol=0.05)


def test_step_with_index_equals_step_with_pixels() -> None:
    model = _trained_model()
    state = model.start(torch.rand(2, 3, 32, 32))
    idx = torch.tensor([1, 6])
    f1, m1, s1 = model.step(state, idx, torch.tensor([0, 3]))
    f2, m2, _ = model.step(state, model.shift_grid[idx].clone(), torch.tensor([0, 3]))
    assert torch.equal(f1, f2) and torch.equal(m1, m2)
    f3, _, _ = model.step(state, torch.tensor([[2.5, -1.0], [0.0, 3.0]]), torch.tensor([0, 3]))
    assert not torch.equal(f1, f3)  # the shift is used
    f4, _, _ = model.step(state, idx, torch.tensor([2, 1]))
    assert not torch.equal(f1, f4)  # the code is used
    assert torch.equal(s1["bg_offset"], state["bg_offset"])  # zero background shift by default
    _, _, s5 = model.step(state, idx, torch.tensor([0, 3]), bg_shift=torch.tensor([[1.0, 2.0], [0.0, -3.0]]))
    assert torch.equal(s5["bg_offset"], torch.tensor([[1.0, 2.0], [0.0, -3.0]]))
    assert model.shift_grid.shape == (9, 2) and model.shift_names[0] == "none"
    assert torch.equal(model.shift_grid[0], torch.zeros(2)) and len(model.start_frames) == 0
    with pytest.raises(ValueError, match="shift_grid"):
        model.step(state, torch.tensor([0, 9]), torch.tensor([0, 0]))
    with pytest.raises(ValueError, match="codes must lie"):
        model.step(state, idx, torch.tensor([0, 4]))
    with pytest.raises(ValueError, match="float pixels"):
        model.step(state, torch.zeros(2, 3), torch.tensor([0, 0]))


def test_reencode_every_and_burn_in_reground_long_rollouts() -> None:
    """reencode_every=k restarts rollouts at steps k, 2k, ... from the masking network's foreground of their own
    last frame; burn_in primes the fresh recurrent state with no-move steps. Rows are independent."""
    class SquareMask(torch.nn.Module):  # finds an "agent" (a square) in every frame
        def __init__(self) -> None:
            super().__init__()
            self.calls = 0

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            m = torch.zeros(x.shape[0], 1, *x.shape[2:])
            m[:, :, 8:16, 8:16] = 1.0
            return m

    model = _trained_model()
    model.masking = SquareMask()
    x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    shift, code = torch.tensor([1, 6]), torch.tensor([0, 3])
    plain = model.start(x)
    assert plain["t"].tolist() == [0, 0] and torch.equal(plain["frame"], x * 2 - 1)

    def rollout(state, n):
        for _ in range(n):
            frame, mask, state = model.step(state, shift, code)
        return frame, state

    model.cfg.reencode_every = 2
    _, s2 = rollout(model.start(x), 2)
    assert s2["t"].tolist() == [2, 2]
    f3, _, s3 = model.step(s2, shift, code)
    expected = model.start((s2["frame"] + 1) / 2)  # what the third step must start from
    expected.update(bg=s2["bg"], bg_offset=s2["bg_offset"], t=torch.ones(2, dtype=torch.long))
    model.cfg.reencode_every = 0
    f3_expected, _, _ = model.step(expected, shift, code)
    assert torch.allclose(f3, f3_expected, atol=1e-5)
    _, s3_plain = rollout(plain, 3)
    assert not torch.allclose(s3["h0"], s3_plain["h0"], atol=1e-3)  # re-encoding restarted the recurrent state

    model.cfg.burn_in = 1  # one no-move step on the start foreground, with the step's code, before the first action
    f1, _, _ = model.step(model.start(x), shift, code)
    model.cfg.burn_in = 0
    _, _, primed = model.step(model.start(x), torch.zeros(2, 2), code)
    primed.update(fg=plain["fg"], fg_mask=plain["fg_mask"], mask=plain["mask"], win=plain["win"], t=torch.ones(2, dtype=torch.long))
    f1_expected, _, _ = model.step(primed, shift, code)
    assert torch.allclose(f1, f1_expected, atol=1e-5)

    model.cfg.reencode_every, model.cfg.burn_in = 2, 1  # rows at different steps: each as if alone
    _, s1 = rollout(model.start(x), 1)
    mixed = {k: torch.cat([v[:1], s2[k][1:]]) for k, v in s1.items()}  # row 0 at t=1, row 1 at t=2
    f_mixed, _, _ = model.step(mixed, shift, code)
    f_row0, _, _ = model.step({k: v[:1] for k, v in s1.items()}, shift[:1], code[:1])
    f_row1, _, _ = model.step({k: v[1:] for k, v in s2.items()}, shift[1:], code[1:])
    assert torch.allclose(f_mixed, torch.cat([f_row0, f_row1]), atol=1e-5)

    class LostAgent(SquareMask):  # finds the agent in the start frames only; later its mask peaks at 0.4
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            self.calls += 1
            return super().forward(x) * (1.0 if self.calls == 1 else 0.4)

    with autocast(torch.device("cpu"), "bfloat16"):  # re-grounding mixes dtypes under autocast (the env's option)
        frame, _ = rollout(model.start(x), 5)
    assert torch.isfinite(frame).all()

    model.masking = LostAgent()
    model.cfg.reencode_every, model.cfg.burn_in = 2, 0
    _, s2 = rollout(model.start(x), 2)  # start() saw the agent (call 1)
    f3_kept, _, s3_kept = model.step(s2, shift, code)  # the re-segmentation (call 2) finds none
    model.cfg.reencode_every = 0
    f3_plain, _, _ = model.step(s2, shift, code)
    assert torch.equal(f3_kept, f3_plain) and s3_kept["t"].tolist() == [3, 3]
    with pytest.raises(ValueError, match="reencode_every and burn_in must be >= 0"):
        GlassConfig.preset("tiny", 32, 32, burn_in=-1)


def test_analysis_api() -> None:
    model = _trained_model()
    video = (_clips(t=5) + 1) / 2
    shifts, codes = model.infer_actions(video)
    assert shifts.shape == (2, 4, 2) and shifts.dtype == torch.float32
    assert codes.shape == (2, 4) and codes.dtype == torch.long and 0 <= int(codes.min()) <= int(codes.max()) < 4
    fg, bg = model.estimate_shifts(video)
    torch.testing.assert_close(fg, shifts)
    assert bg.shape == (2, 4, 2)
    masks = model.segment(video)
    assert masks.shape == (2, 5, 1, 32, 32) and 0 <= float(masks.min()) and float(masks.max()) <= 1
    gen, gmasks = model.generate(video)
    assert gen.shape == video.shape and gmasks.shape == (2, 5, 1, 32, 32)
    torch.testing.assert_close(gen[:, 0], video[:, 0])
    torch.testing.assert_close(gmasks[:, 0], masks[:, 0])
    assert float(gen.min()) >= 0 and float(gen.max()) <= 1


def test_from_checkpoint_round_trip(tmp_path) -> None:
    model = _trained_model()
    model.eval()
    start = torch.rand(2, 3, 32, 32)
    video = torch.rand(2, 4, 3, 32, 32)
    ref_frames, ref_masks, _ = _rollout(model, start)
    ref_gen, _ = model.generate(video)
    env_info = {"shift_grid": [[0.0, 0.0], [3.0, 0.0], [-3.0, 0.0]], "shift_names": ["none", "right", "left"],
                "code_meanings": ["a", "b", "c", "d"],
                "start_frames": torch.randint(0, 256, (5, 3, 32, 32), dtype=torch.uint8),
                "reach_from": torch.rand(7, 2) * 31, "reach_to": torch.rand(7, 2) * 31}
    path = save_checkpoint(tmp_path / "glass.pt", {
        "model": "glass", "model_config": model.cfg.to_dict(), "state_dict": model.state_dict(), "step": 3,
        "env_info": env_info, "perceptual": model.perceptual_status(), "card": {"dataset": "squares"}})
    loaded = GlassModel.from_checkpoint(path, "cpu")
    assert not loaded.training and loaded.cfg == model.cfg and loaded.metadata == {"dataset": "squares"}
    assert loaded.shift_names == ["none", "right", "left"] and loaded.code_meanings == ["a", "b", "c", "d"]
    assert torch.equal(loaded.shift_grid, torch.tensor(env_info["shift_grid"]))
    assert torch.equal(loaded.start_frames, env_info["start_frames"])
    assert torch.equal(loaded.reach_places[0], env_info["reach_from"])
    assert torch.equal(loaded.reach_places[1], env_info["reach_to"])
    with pytest.raises(ValueError, match="reach_from / reach_to"):
        loaded.set_env_info({"reach_from": torch.zeros(3, 2), "reach_to": torch.zeros(4, 2)})
    loaded.set_env_info({"shift_grid": model.shift_grid.tolist(), "shift_names": model.shift_names})
    frames, masks, _ = _rollout(loaded, start)
    gen, _ = loaded.generate(video)
    assert torch.equal(frames, ref_frames) and torch.equal(masks, ref_masks) and torch.equal(gen, ref_gen)
    # a checkpoint of another model is refused with a clear error
    other = save_checkpoint(tmp_path / "kp.pt", {"model": "keypoint", "model_config": {}, "state_dict": {},
                                                 "step": 0})
    with pytest.raises(DatasetError, match="not a GLASS"):
        GlassModel.from_checkpoint(other)


def test_set_env_info_validates() -> None:
    model = _model()
    with pytest.raises(ValueError, match="shift_names"):
        model.set_env_info({"shift_grid": [[0, 0], [1, 0]], "shift_names": ["none"]})
    with pytest.raises(ValueError, match="code_meanings"):
        model.set_env_info({"code_meanings": ["a"]})
    with pytest.raises(ValueError, match="start_frames"):
        model.set_env_info({"start_frames": torch.zeros(2, 3, 16, 16, dtype=torch.uint8)})


# ------------------------------------------------------------------------------------------------ perceptual
@pytest.fixture(scope="module")
def perceptual():
    from worldmodel.perceptual import Perceptual

    return Perceptual()


def test_perceptual_network(perceptual) -> None:
    import os

    from worldmodel.perceptual import ENV_VAR, VGG16_FILE

    # where the weights would be, found here (not by the code under test); when there, they are what runs
    env = os.environ.get(ENV_VAR)
    file = Path(env).expanduser() if env else Path(torch.hub.get_dir()) / "checkpoints" / VGG16_FILE
    if file.is_file():
        assert perceptual.backbone == "pretrained"
        sd = torch.load(file, map_location="cpu", weights_only=True)
        torch.testing.assert_close(perceptual.net.net.slice1[0].weight.cpu(), sd["features.0.weight"])
    else:
        assert perceptual.backbone == "random"
    assert not any(p.requires_grad for p in perceptual.parameters())
    perceptual.train()
    assert not perceptual.training  # always eval (no dropout)
    x = torch.rand(3, 3, 24, 32) * 2 - 1
    y = (torch.rand(3, 3, 24, 32) * 2 - 1).requires_grad_()
    d = perceptual(x, y)
    assert d.shape == (3,) and float(d.detach().min()) > 0
    assert float(perceptual(x, x).abs().max()) < 1e-6
    d.sum().backward()
    assert y.grad is not None and float(y.grad.abs().sum()) > 0
    assert perceptual(x[:, :, :8, :8], y[:, :, :8, :8].detach()).shape == (3,)  # small images are upsampled


def test_perceptual_random_backbone_is_fixed_and_leaves_global_rng(perceptual, monkeypatch, tmp_path) -> None:
    from worldmodel import perceptual as perceptual_mod

    monkeypatch.delenv(perceptual_mod.ENV_VAR, raising=False)
    monkeypatch.setattr(perceptual_mod.torch.hub, "get_dir", lambda: str(tmp_path))  # no cached weights
    torch.manual_seed(123)
    expected_next = torch.rand(3)
    torch.manual_seed(123)
    p = perceptual_mod.Perceptual()
    assert torch.equal(torch.rand(3), expected_next)  # construction does not consume the global RNG
    assert p.backbone == "random"
    if perceptual.backbone == "random":
        assert torch.equal(p.net.net.slice1[0].weight, perceptual.net.net.slice1[0].weight)


def test_perceptual_loads_local_vgg_weights(perceptual, monkeypatch, tmp_path) -> None:
    from worldmodel import perceptual as perceptual_mod

    # a file in torchvision's VGG16 layout (features.N.*) with recognisable values
    fake = {f"features.{k.split('.')[1]}.{k.split('.')[2]}": torch.full_like(v, 0.01 * i)
            for i, (k, v) in enumerate(perceptual.net.net.state_dict().items())}
    path = tmp_path / "vgg16.pth"
    torch.save(fake, path)
    monkeypatch.setenv(perceptual_mod.ENV_VAR, str(path))
    p = perceptual_mod.Perceptual()
    assert p.backbone == "pretrained"
    assert torch.equal(p.net.net.slice2.get_submodule("5").weight, fake["features.5.weight"])
    monkeypatch.setenv(perceptual_mod.ENV_VAR, str(tmp_path / "missing.pth"))
    with pytest.raises(ValueError, match="GLASSWORLD_VGG_WEIGHTS"):
        perceptual_mod.Perceptual()
    torch.save({"features.0.weight": torch.zeros(1)}, path)
    monkeypatch.setenv(perceptual_mod.ENV_VAR, str(path))
    with pytest.raises(ValueError, match="not torchvision's VGG16"):
        perceptual_mod.Perceptual()


def test_losses_with_perceptual_terms(perceptual) -> None:
    model = _model(w_background_perceptual=0.02, w_multiscale_perceptual=1.0)
    assert model.perceptual_status() == perceptual.backbone
    total, terms, _ = model.training_losses(_clips(), step=100)
    assert set(TERMS) <= set(terms)
    assert all(math.isfinite(float(v)) for v in terms.values())
    assert float(terms["background_perceptual"]) > 0 and float(terms["multiscale_perceptual"]) > 0
    total.backward()
    assert _grads(model, "renderer") > 0
    assert "_perceptual" not in dict(model.named_modules()) and not any(
        k.startswith("_perceptual") for k in model.state_dict())  # not saved with the model
    _, terms_pre, _ = model.training_losses(_clips(), step=0)  # pretraining: LMA perceptual skipped
    assert "multiscale_perceptual" not in terms_pre and "background_perceptual" in terms_pre
    assert _model().perceptual_status() == "off"


def test_gradient_match_loss_prefers_edges_to_a_blur_and_sharpens_it() -> None:
    """L_GRAD: 0 for the target itself, no lower for a blur in the right place than for the sharp agent one pixel
    off, and gradient descent on it alone raises the blur's edge strength."""
    target = torch.full((1, 1, 3, 16, 16), -1.0)
    target[..., 5:11, 6:10] = 1.0  # a 6x4 agent
    blur = torch.nn.functional.avg_pool2d(target.flatten(0, 1), 5, 1, 2, count_include_pad=False).view_as(target)
    moved = torch.roll(target, 1, dims=-1)
    assert float(gradient_match_loss(target, target)) == 0.0
    assert float(gradient_match_loss(moved, target)) < float(gradient_match_loss(blur, target))
    pred = blur.clone().requires_grad_(True)
    opt = torch.optim.SGD([pred], lr=100.0)
    edge = lambda x: float(sum(g.mean() for g in abs_gradients(x)))  # noqa: E731
    before = edge(pred.detach())
    for _ in range(20):
        opt.zero_grad()
        gradient_match_loss(pred, target).backward()
        opt.step()
    assert edge(pred.detach()) > 1.2 * before
    assert GlassConfig.preset("cpu", 64, 64).w_gradient_match == 0 == GlassConfig().w_gradient_match  # off
