"""Agent-look metrics (worldmodel/agent_look.py): sharpness and aligned PSNR of agent crops vs a frozen frame 0."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from worldmodel.agent_look import AgentLookAccumulator, crop_boxes, mean_gradient


def clip(positions: list[tuple[int, int]], size: int = 64) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A checkered 8x8 agent on grey at the given (x, y) centres: video (1, T, 3, H, W), masks, pos (1, T, 2)."""
    t = len(positions)
    video = torch.full((1, t, 3, size, size), 0.5)
    mask = torch.zeros(1, t, 1, size, size)
    checker = (torch.arange(8)[:, None] + torch.arange(8)[None, :]) % 2  # (8, 8) 0/1
    for i, (x, y) in enumerate(positions):
        video[0, i, :, y - 4:y + 4, x - 4:x + 4] = checker.float()
        mask[0, i, 0, y - 4:y + 4, x - 4:x + 4] = 1.0
    pos = torch.tensor([[(x - 0.5, y - 0.5) for x, y in positions]], dtype=torch.float32)
    return video, mask, pos


def test_crop_boxes_stay_inside_the_frame():
    boxes = crop_boxes(torch.tensor([[0.0, 0.0], [63.0, 63.0], [30.0, 20.0]]), torch.tensor([[12, 8]] * 3), 64, 64)
    assert boxes.tolist() == [[0, 0, 12, 8], [52, 56, 12, 8], [14, 26, 12, 8]]


def test_a_perfect_dream_scores_one_and_a_blur_scores_less():
    path = [(20 + 2 * i, 30) for i in range(5)]
    video, mask, pos = clip(path)
    perfect = AgentLookAccumulator(64, 64, horizons=(1, 4))
    perfect.add(video, video, mask, pos, mask)
    res = perfect.result()
    assert res["agent_sharpness"]["4"] == pytest.approx(1.0) and res["agent_psnr_aligned"]["4"] == 100.0
    # the frozen copy keeps the agent crisp (its crop sits on frame 0's agent) but its look is the same here
    assert res["agent_sharpness_copy"]["4"] == pytest.approx(1.0)

    blurred = F.avg_pool2d(video[0], 3, stride=1, padding=1, count_include_pad=False)[None]
    blur = AgentLookAccumulator(64, 64, horizons=(1, 4))
    blur.add(video, blurred, mask, pos, mask)
    res = blur.result()
    assert res["agent_sharpness"]["4"] < 0.5 and res["agent_psnr_aligned"]["4"] < 20


def test_a_dream_that_draws_the_agent_elsewhere_is_cropped_where_it_drew_it():
    video, mask, pos = clip([(20, 30), (22, 30), (24, 30)])
    gen, gen_mask, _ = clip([(20, 30), (40, 40), (44, 44)])  # the same crisp agent, in the wrong place
    acc = AgentLookAccumulator(64, 64, horizons=(1, 2))
    acc.add(video, gen, gen_mask, pos, mask)
    res = acc.result()
    assert res["agent_sharpness"]["2"] == pytest.approx(1.0) and res["agent_psnr_aligned"]["2"] == 100.0


def test_mean_gradient_of_flat_and_checkered_images():
    assert mean_gradient(torch.zeros(3, 4, 4)) == 0.0
    assert mean_gradient(((torch.arange(4)[:, None] + torch.arange(4)) % 2).float().expand(3, 4, 4)) == 1.0
