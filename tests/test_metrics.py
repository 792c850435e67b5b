"""Metric functions of worldmodel.metrics on hand-made inputs with known answers."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from worldmodel import metrics as M

# ---------------------------------------------------------------------------------------------- segmentation

def test_soft_iou_of_known_binary_masks() -> None:
    a = torch.zeros(1, 1, 8, 8)
    b = torch.zeros(1, 1, 8, 8)
    a[..., 0:4, 0:4] = 1  # 16 px
    b[..., 2:6, 0:4] = 1  # 16 px, 8 shared
    iou = M.soft_iou(a, b)
    assert iou.shape == (1, 1)
    assert iou.item() == pytest.approx(8 / 24)
    assert M.soft_iou(a, a).item() == pytest.approx(1.0)
    assert M.soft_iou(a, 1 - a).item() == pytest.approx(0.0)


def test_soft_iou_is_soft_and_handles_empty_frames() -> None:
    m = torch.full((2, 4, 4), 0.5)
    g = torch.zeros(2, 4, 4)
    g[0, :2] = 1
    # frame 0: inter = 8 * 0.5 = 4; union = 8 * 1 + 8 * 0.5 = 12
    assert M.soft_iou(m, g)[0].item() == pytest.approx(4 / 12)
    # frame 1: GT empty, prediction 0.5 everywhere: inter 0
    assert M.soft_iou(m, g)[1].item() == pytest.approx(0.0)
    z = torch.zeros(3, 4, 4)
    assert torch.equal(M.soft_iou(z, z), torch.ones(3))  # both empty: agree
    assert M.mean_iou(torch.stack([g[0], g[0]]), torch.stack([g[0], 1 - g[0]])) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="same shape"):
        M.soft_iou(torch.zeros(1, 4, 4), torch.zeros(1, 5, 5))


# ---------------------------------------------------------------------------------------------- shifts

def test_shift_error_and_angle_accuracy_of_known_vectors() -> None:
    gt = np.array([[3.0, 4.0], [1.0, 0.0], [0.0, 2.0], [0.0, 0.0], [-1.0, -1.0]])
    pred = np.array([[0.0, 0.0], [1.0, 0.9], [0.0, 5.0], [1.0, 1.0], [1.0, 1.0]])
    np.testing.assert_allclose(M.shift_error(pred, gt), [5.0, 0.9, 3.0, math.sqrt(2), math.sqrt(8)])
    hit, valid = M.angle_correct(pred, gt)
    # zero prediction: miss; 42 deg: hit; same direction: hit; zero GT: excluded; opposite: miss
    assert valid.tolist() == [True, True, True, False, True]
    assert hit.tolist() == [False, True, True, False, False]
    assert M.angle_accuracy(pred, gt) == pytest.approx(2 / 4)
    # 46 degrees is a miss, 44 degrees a hit
    for deg, expect in ((44.0, 1.0), (46.0, 0.0)):
        r = math.radians(deg)
        assert M.angle_accuracy([[math.cos(r), math.sin(r)]], [[1.0, 0.0]]) == expect
    assert math.isnan(M.angle_accuracy(np.ones((3, 2)), np.zeros((3, 2))))
    assert M.shift_error(torch.ones(2, 5, 2), torch.zeros(2, 5, 2)).shape == (2, 5)


# ---------------------------------------------------------------------------------------------- NMI

def test_nmi_of_permuted_and_independent_labels() -> None:
    rng = np.random.default_rng(0)
    a = rng.integers(0, 6, size=2000)
    perm = np.array([3, 5, 0, 1, 4, 2])
    assert M.nmi(a, perm[a]) == pytest.approx(1.0)
    assert M.nmi(a, perm[a] + 100) == pytest.approx(1.0)  # label values do not matter
    b = rng.integers(0, 6, size=2000)
    assert M.nmi(a, b) < 0.01
    assert M.nmi([0, 0, 0], [1, 1, 1]) == 1.0  # sklearn's convention
    assert M.nmi([0, 0, 1, 1], [5, 5, 5, 5]) == 0.0
    assert math.isnan(M.nmi([], []))


def test_nmi_matches_sklearn() -> None:
    from sklearn.metrics import normalized_mutual_info_score

    rng = np.random.default_rng(1)
    for _ in range(5):
        a = rng.integers(0, 5, size=300)
        b = np.where(rng.random(300) < 0.6, a, rng.integers(0, 8, size=300))
        assert M.nmi(a, b) == pytest.approx(normalized_mutual_info_score(a, b), abs=1e-10)


def test_nmi_by_identity_and_consistency() -> None:
    # Each identity uses its own renaming of the codes: perfect within identities, worse across them.
    rng = np.random.default_rng(2)
    gt = rng.integers(0, 3, size=600)
    ids = np.repeat(["a", "b"], 300)
    pred = np.where(ids == "a", gt, (gt + 1) % 3)
    nmi_s = M.nmi_by_identity(gt, pred, ids)
    nmi_g = M.nmi(gt, pred)
    assert nmi_s == pytest.approx(1.0)
    assert nmi_g < 0.5
    assert M.consistency(nmi_s, nmi_g) == pytest.approx(nmi_s - nmi_g)
    assert M.consistency(nmi_s, nmi_g) > 0.5


# ---------------------------------------------------------------------------------------------- image quality

def test_psnr_of_known_mse() -> None:
    x = torch.zeros(2, 3, 8, 8)
    y = torch.full((2, 3, 8, 8), 0.1)  # MSE 0.01 -> 20 dB
    np.testing.assert_allclose(M.psnr(x, y).numpy(), [20.0, 20.0], rtol=1e-5)
    y2 = y.clone()
    y2[1] = 0.01  # MSE 1e-4 -> 40 dB
    np.testing.assert_allclose(M.psnr(x, y2).numpy(), [20.0, 40.0], rtol=1e-5)
    assert M.psnr(x, x)[0].item() == 100.0  # identical images: capped, not inf


def test_ssim_identity_noise_and_closed_form() -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.rand(1, 3, 32, 32, generator=g)
    assert M.ssim(x, x).item() == pytest.approx(1.0, abs=1e-6)
    values = []
    for s in (0.02, 0.1, 0.3):
        noisy = (x + s * torch.randn(x.shape, generator=g)).clamp(0, 1)
        values.append(M.ssim(x, noisy).item())
    assert 1.0 > values[0] > values[1] > values[2]
    # Two constant images: variances are zero, so SSIM = (2ab + C1) / (a^2 + b^2 + C1) with C1 = (0.01 * 1)^2.
    # A data_range bug (method.md 11.1) changes C1 and so this value.
    a, b = 0.2, 0.3
    expect = (2 * a * b + 1e-4) / (a * a + b * b + 1e-4)
    got = M.ssim(torch.full((1, 1, 16, 16), a), torch.full((1, 1, 16, 16), b)).item()
    assert got == pytest.approx(expect, rel=1e-6)
    assert M.ssim(torch.full((1, 1, 16, 16), a), torch.full((1, 1, 16, 16), b), data_range=255.0).item() \
        == pytest.approx((2 * a * b + 6.5025) / (a * a + b * b + 6.5025), rel=1e-6)
    with pytest.raises(ValueError, match="smaller than"):
        M.ssim(torch.zeros(1, 3, 8, 8), torch.zeros(1, 3, 8, 8))


def test_ssim_batch_is_per_image() -> None:
    x = torch.rand(3, 3, 16, 16, generator=torch.Generator().manual_seed(3))
    y = x.clone()
    y[1] = 1 - y[1]
    s = M.ssim(x, y)
    assert s.shape == (3,)
    assert s[0].item() == pytest.approx(1.0, abs=1e-6) and s[2].item() == pytest.approx(1.0, abs=1e-6)
    assert s[1].item() < 0.5


# ---------------------------------------------------------------------------------------------- position

def test_mask_centroid_of_known_square_and_missing() -> None:
    m = torch.zeros(2, 1, 20, 30)
    m[0, 0, 4:8, 10:20] = 0.9  # rows 4..7, columns 10..19
    m[1, 0, 0, 0] = 0.9  # one pixel, below min_area=2
    c = M.mask_centroid(m, threshold=0.5, min_area=2)
    assert c.shape == (2, 1, 2)
    assert c[0, 0].tolist() == pytest.approx([14.5, 5.5])
    assert torch.isnan(c[1, 0]).all()
    assert torch.isnan(M.mask_centroid(torch.zeros(3, 5, 5))).all()  # empty masks: no agent
    faint = torch.full((1, 5, 5), 0.4)  # below threshold: no agent
    assert torch.isnan(M.mask_centroid(faint)).all()
    flood = torch.ones(1, 10, 10)  # covers the whole frame: locates nothing (by default: over half the frame)
    assert torch.isnan(M.mask_centroid(flood)).all()
    assert torch.isnan(M.mask_centroid(flood, max_area=50)).all()
    assert M.mask_centroid(flood, max_area=100)[0].tolist() == pytest.approx([4.5, 4.5])
    assert M.mask_centroid(m, min_area=2, max_area=40)[0, 0].tolist() == pytest.approx([14.5, 5.5])


def test_locate_agent_is_the_rule_of_mask_centroid() -> None:
    """One rule: locate_agent's (pos, found) and mask_centroid's NaN form agree on random soft masks."""
    g = torch.Generator().manual_seed(0)
    masks = torch.rand(64, 1, 12, 16, generator=g) ** torch.linspace(0.2, 6.0, 64).view(64, 1, 1, 1)  # sparse..dense
    pos, found = M.locate_agent(masks, threshold=0.5, min_area_px=3.0)
    assert pos.shape == (64, 2) and found.shape == (64,) and found.dtype == torch.bool
    assert 0 < found.sum() < 64  # both kinds occur: floods (dense masks) and agents
    nan_form = M.mask_centroid(masks, threshold=0.5, min_area=3.0)  # (64, 1, 2)
    assert torch.equal(torch.isfinite(nan_form[:, 0, 0]), found)
    torch.testing.assert_close(nan_form[found, 0], pos[found])
    on = masks[:, 0] > 0.5
    assert torch.equal(found, (on.sum((1, 2)) >= 3) & (on.sum((1, 2)) <= M.MAX_MASK_FRAC * 12 * 16))
    with pytest.raises(ValueError, match=r"\(N, 1, H, W\)"):
        M.locate_agent(torch.zeros(2, 3, 4, 4))
    b, t = M.locate_agent(torch.zeros(2, 5, 1, 4, 4))  # leading dims: (B, T, 1, H, W) -> (B, T, 2), (B, T)
    assert b.shape == (2, 5, 2) and t.shape == (2, 5) and not t.any()


def test_position_distances_horizons_and_miss_rate() -> None:
    gt = np.zeros((2, 5, 2))
    gt[..., 0] = 10.0
    pred = gt.copy()
    pred[..., 0] += 3.0
    pred[..., 1] += 4.0  # 5 px off everywhere
    pred[1, 4] = np.nan  # no agent found in one frame
    gt[0, 2] = np.nan  # unknown GT: not counted anywhere
    d = M.position_distances(pred, gt, height=64, width=128)  # 64-px scale: x 0.5
    assert d.shape == (2, 5)
    assert d[0, 1] == pytest.approx(2.5)
    errs = M.errors_at_horizons(d, [1, 2, 4, 8])
    assert errs == {"1": pytest.approx(2.5), "2": pytest.approx(2.5), "4": pytest.approx(2.5), "8": None}
    assert M.position_distances(pred, gt, 32, 64)[0, 1] == pytest.approx(5.0)
    assert M.miss_rate(pred, gt) == pytest.approx(1 / 9)
    empty = np.full((4, 2), np.nan)
    assert M.miss_rate(empty, np.zeros((4, 2))) == 1.0  # no agent in any generated frame
    assert math.isnan(M.miss_rate(np.zeros((4, 2)), empty))


def test_jump_threshold_and_windows_spanning_a_jump() -> None:
    walk = np.stack([np.arange(40.0), np.zeros(40)], axis=1)  # 1 px per step
    walk[25:] += (30, 0)  # a teleport of 31 px between steps 24 and 25
    thr = M.jump_threshold(walk)
    assert 3.0 <= thr < 31.0
    windows = np.stack([walk[i:i + 5] for i in range(0, 35)])  # (35, 5, 2)
    jumps = M.spans_jump(windows, thr)
    assert jumps.tolist() == [21 <= i <= 24 for i in range(35)]
    assert M.jump_threshold(np.zeros((5, 2))) == float("inf")  # standing still: nothing is a jump
    with_nan = windows.copy()
    with_nan[0, 2] = np.nan  # unknown positions are not jumps
    assert not M.spans_jump(with_nan, thr)[0]


def test_miss_rate_from_empty_masks() -> None:
    masks = torch.zeros(2, 3, 1, 16, 16)
    masks[0, :, :, 2:6, 2:6] = 1
    pos = M.mask_centroid(masks).squeeze(2).numpy()  # (2, 3, 2)
    assert M.miss_rate(pos, np.zeros((2, 3, 2))) == pytest.approx(0.5)


# ---------------------------------------------------------------------------------------------- Frechet distance

def test_frechet_distance_identical_and_shifted() -> None:
    rng = np.random.default_rng(4)
    f = rng.normal(size=(500, 6)) @ rng.normal(size=(6, 6))  # correlated Gaussian features
    assert M.frechet_distance_from_features(f, f) == pytest.approx(0.0, abs=1e-6)
    d = np.array([1.0, -2.0, 0.5, 0.0, 3.0, 1.0])
    assert M.frechet_distance_from_features(f, f + d) == pytest.approx(float(d @ d), rel=1e-6)


def test_frechet_distance_of_known_gaussians() -> None:
    # N(0, diag(1, 4)) vs N((1, 1), diag(4, 9)): |dmu|^2 + sum (s1 - s2)^2 = 2 + (1 + 1) = 4
    fd = M.frechet_distance(np.zeros(2), np.diag([1.0, 4.0]), np.ones(2), np.diag([4.0, 9.0]))
    assert fd == pytest.approx(4.0, rel=1e-9)
    # rank-deficient covariances (fewer samples than dimensions) still give a finite number
    rng = np.random.default_rng(5)
    fd2 = M.frechet_distance_from_features(rng.normal(size=(4, 16)), rng.normal(size=(4, 16)) + 1.0)
    assert math.isfinite(fd2) and fd2 > 10
    with pytest.raises(ValueError, match="N >= 2"):
        M.gaussian_stats(np.zeros((1, 3)))


def test_frechet_distance_low_rank_shortcut_matches_sqrtm() -> None:
    # fewer samples than dimensions: the SVD route must equal the D x D sqrtm route
    rng = np.random.default_rng(6)
    a = rng.normal(size=(12, 30)) @ rng.normal(size=(30, 30))
    b = 0.7 * rng.normal(size=(9, 30)) @ rng.normal(size=(30, 30)) + 0.5
    direct = M.frechet_distance(*M.gaussian_stats(a), *M.gaussian_stats(b))
    assert M.frechet_distance_from_features(a, b) == pytest.approx(direct, rel=1e-6)
    assert M.frechet_distance_from_features(a, a) == pytest.approx(0.0, abs=1e-8)
    assert M.frechet_distance_from_features(a, a + 2.0) == pytest.approx(4.0 * 30, rel=1e-9)
