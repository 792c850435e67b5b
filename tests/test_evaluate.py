"""`glassworld eval` (worldmodel.evaluate): the protocol on a tiny dataset, with an oracle model whose scores are
known, a model that only has the generation interface, and a tiny untrained GLASS checkpoint."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from worldmodel.data.format import DatasetError, DatasetWriter
from worldmodel.evaluate import METRIC_KEYS, EvalConfig, cli_main, evaluate

H = W = 32
SIZE = 4  # side of the square agent


def make_dataset(root: Path, videos: int = 4, frames: int = 20, seed: int = 0, gt: tuple[str, ...] =
                 ("pos", "shift", "bg_shift", "local", "mask"), split: str | tuple[str, ...] = "test") -> Path:
    """A square agent on a black background doing a random walk; its red level encodes the local label."""
    rng = np.random.default_rng(seed)
    w = DatasetWriter(root, source="test", height=H, width=W, fps=10)
    for v in range(videos):
        x, y = rng.integers(4, 24, size=2)
        f = np.zeros((frames, H, W, 3), np.uint8)
        pos = np.zeros((frames, 2), np.float32)
        shift = np.zeros((frames, 2), np.float32)
        local = np.full(frames, -1, np.int64)
        mask = np.zeros((frames, H, W), np.uint8)
        for t in range(frames):
            if t > 0:
                dx, dy = rng.choice([-2, 0, 2], size=2)
                nx, ny = int(np.clip(x + dx, 0, W - SIZE)), int(np.clip(y + dy, 0, H - SIZE))
                shift[t] = (nx - x, ny - y)
                x, y = nx, ny
                local[t] = rng.integers(0, 3)
            level = 100 + 50 * max(local[t], 0)
            f[t, y:y + SIZE, x:x + SIZE] = (level, 255, 255)
            mask[t, y:y + SIZE, x:x + SIZE] = 1
            pos[t] = (x + (SIZE - 1) / 2, y + (SIZE - 1) / 2)
        arrays = {"pos": pos, "shift": shift, "bg_shift": np.zeros_like(shift), "local": local, "mask": mask}
        w.write(f"v{v}", f, split=split if isinstance(split, str) else split[v % len(split)],
                identity=f"id{v % 2}", **{k: arrays[k] for k in gt})
    w.close()
    return root


class OracleModel(nn.Module):
    """Reads the answers off the frames: its masks, shifts, codes and generations are exact."""

    height, width = H, W

    def __init__(self) -> None:
        super().__init__()
        self.device = torch.device("cpu")

    def segment(self, frames: torch.Tensor) -> torch.Tensor:  # (B, T, 3, H, W) -> (B, T, 1, H, W)
        return (frames[:, :, 1:2] > 0.5).float()

    def _pos(self, frames: torch.Tensor) -> torch.Tensor:  # (B, T, 2)
        m = self.segment(frames)[:, :, 0]
        ys, xs = torch.arange(H).float(), torch.arange(W).float()
        a = m.sum((-2, -1))
        return torch.stack([(m.sum(-2) * xs).sum(-1) / a, (m.sum(-1) * ys).sum(-1) / a], -1)

    def estimate_shifts(self, frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        p = self._pos(frames)
        fg = p[:, 1:] - p[:, :-1]
        return fg, torch.zeros_like(fg)

    def infer_actions(self, video: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        red = (video[:, 1:, 0] * self.segment(video)[:, 1:, 0]).amax((-2, -1)) * 255  # (B, T-1)
        codes = ((red - 100) / 50).round().long() + 7  # renamed labels: NMI does not care
        return self.estimate_shifts(video)[0], codes

    def generate(self, video: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return video.clone(), self.segment(video)


class KeypointOracle(OracleModel):
    """The oracle plus a detector: keypoint 0 sits on the agent (scaled by 2, plus 3 px), keypoint 1 is noise."""

    def detect_keypoints(self, frames: torch.Tensor) -> torch.Tensor:  # (B, T, 3, H, W) -> (B, T, 2, 3)
        p = self._pos(frames)
        noise = torch.rand(p.shape, generator=torch.Generator().manual_seed(int(p.sum()))) * W
        ones = torch.ones_like(p[..., :1])
        return torch.stack([torch.cat([2 * p + 3, ones], -1), torch.cat([noise, ones], -1)], dim=2)


class ReplayOnlyModel:
    """Only the generation interface of worldmodel.api (start/step/infer_actions): no GMA, no generate().

    It never moves the agent, and after frame 2 it draws no agent at all.
    """

    height, width, device = H, W, torch.device("cpu")

    def infer_actions(self, video: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        b, t = video.shape[:2]
        return torch.zeros(b, t - 1, 2), torch.zeros(b, t - 1, dtype=torch.long)

    def start(self, frames: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"frame": frames.float(), "t": torch.zeros(frames.shape[0])}

    def step(self, state, shift, code, generator=None):
        t = state["t"] + 1
        keep = (t <= 2).float().view(-1, 1, 1, 1)
        frame = state["frame"] * keep
        mask = (frame[:, 1:2] > 0.5).float()
        return frame, mask, {"frame": frame, "t": t}


def cfg_for(data: Path, **kw) -> EvalConfig:
    base = {"data_path": str(data), "split": "test", "clips": 6, "clip_len": 9, "batch_size": 4, "device": "cpu",
            "lpips": False, "fid": False, "fvd": False}
    base.update(kw)
    return EvalConfig(**base)


@pytest.mark.parametrize("frame_skip", [0, 1])
def test_oracle_model_scores_perfectly(tmp_path: Path, frame_skip: int) -> None:
    data = make_dataset(tmp_path / "d")
    res = evaluate(cfg_for(data, horizons=(1, 4, 8), frame_skip=frame_skip), model=OracleModel())
    assert res["notes"]["frame_skip"] == frame_skip
    assert res["clips"] == 6 and res["split"] == "test"
    assert res["miou"] == pytest.approx(1.0)
    assert res["fg_shift_err"] == pytest.approx(0.0, abs=1e-5)
    assert res["fg_angle_acc"] == pytest.approx(1.0)
    assert res["bg_shift_err"] == pytest.approx(0.0)
    assert res["bg_angle_acc"] is None and "zero" in res["reasons"]["bg_angle_acc"]
    assert res["nmi_g"] == pytest.approx(1.0) and res["nmi_s"] == pytest.approx(1.0)
    assert res["con"] == pytest.approx(0.0)
    assert res["psnr"] == pytest.approx(100.0) and res["ssim"] == pytest.approx(1.0)
    assert res["pos_err"] == {"1": pytest.approx(0.0), "4": pytest.approx(0.0), "8": pytest.approx(0.0)}
    assert res["mdr"] == 0.0
    assert res["lpips"] is None and res["fid"] is None and res["fvd"] is None
    assert "disabled" in res["reasons"]["lpips"]
    json.dumps(res, allow_nan=False)  # strict JSON


def test_kp_track_err_fits_keypoints_to_positions_on_train_and_scores_test(tmp_path: Path) -> None:
    data = make_dataset(tmp_path / "d", videos=6, split=("train", "test"))
    res = evaluate(cfg_for(data, track_train_clips=8), model=KeypointOracle())
    assert res["kp_track_err"] == pytest.approx(0.0, abs=0.05)  # undoes x2 + 3 (up to the small ridge)
    steps = res["kp_track_last_pos_err"]  # the random walk moves 0, 2 or 2.83 px per frame
    assert 1.0 < steps < 2.83
    plain = evaluate(cfg_for(data), model=OracleModel())
    assert plain["kp_track_err"] is None and "keypoint" in plain["reasons"]["kp_track_err"]
    no_train = make_dataset(tmp_path / "t", videos=2)
    res = evaluate(cfg_for(no_train), model=KeypointOracle())
    assert res["kp_track_err"] is None and "train split" in res["reasons"]["kp_track_err"]


def test_evaluate_leaves_the_callers_model_mode_and_rng_alone(tmp_path: Path) -> None:
    data = make_dataset(tmp_path / "d", videos=2, frames=10)
    model = OracleModel().train()
    torch.manual_seed(123)
    expect = torch.rand(3)
    torch.manual_seed(123)
    res = evaluate(cfg_for(data, seed=5), model=model)
    assert torch.equal(torch.rand(3), expect)
    assert model.training
    again = evaluate(cfg_for(data, seed=5), model=model)
    assert again == res  # seeded: the same clips, the same numbers


def test_replay_only_model_and_missing_ground_truth(tmp_path: Path) -> None:
    data = make_dataset(tmp_path / "d", gt=("pos",))  # like an ALE dataset: positions only
    res = evaluate(cfg_for(data, clip_len=6), model=ReplayOnlyModel())
    for key in ("miou", "fg_shift_err", "fg_angle_acc", "bg_shift_err", "bg_angle_acc", "nmi_g", "nmi_s", "con"):
        assert res[key] is None, key
        assert res["reasons"][key], key
    assert "mask" in res["reasons"]["miou"] and "local" in res["reasons"]["nmi_g"]
    # the agent stays put for two frames, then vanishes: 3 of 5 generated frames miss it
    assert res["mdr"] == pytest.approx(3 / 5)
    assert res["pos_err"]["1"] is not None and res["pos_err"]["4"] is None
    assert "no generated frame 4" in res["reasons"]["pos_err.4"]
    assert res["pos_err"]["8"] is None and "clip_len >= 17" in res["reasons"]["pos_err.16"]
    assert res["psnr"] is not None and res["psnr"] < 100
    json.dumps(res, allow_nan=False)


class FloodModel(OracleModel):
    """Perfect frames, but an agent mask covering the whole frame: it locates nothing."""

    def generate(self, video: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return video.clone(), torch.ones_like(video[:, :, :1])


def test_a_mask_flooding_the_frame_is_a_missed_agent(tmp_path: Path) -> None:
    data = make_dataset(tmp_path / "d", videos=2, frames=10)
    res = evaluate(cfg_for(data), model=FloodModel())
    assert res["mdr"] == 1.0 and res["psnr"] == pytest.approx(100.0)
    assert res["pos_err"]["1"] is None and "no generated frame 1" in res["reasons"]["pos_err.1"]
    loose = evaluate(cfg_for(data, max_mask_frac=1.0), model=FloodModel())
    assert loose["mdr"] == 0.0 and loose["pos_err"]["1"] > 0  # found, at the frame centre


def test_positions_from_gt_masks_when_no_pos(tmp_path: Path) -> None:
    data = make_dataset(tmp_path / "d", gt=("mask",))
    res = evaluate(cfg_for(data, horizons=(1, 8)), model=OracleModel())
    assert res["pos_err"] == {"1": pytest.approx(0.0), "8": pytest.approx(0.0)}
    assert res["fg_shift_err"] is None and "shift" in res["reasons"]["fg_shift_err"]


class FrozenModel(OracleModel):
    """Never moves the agent: every generated frame is the first one."""

    def generate(self, video: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        frozen = video[:, :1].expand_as(video).clone()
        return frozen, self.segment(frozen)


def test_windows_where_the_agent_teleports_are_left_out_of_pos_err(tmp_path: Path) -> None:
    """The agent walks 1 px right per frame and teleports 8 px further at frame 10 (like a new point in Tennis)."""
    w = DatasetWriter(tmp_path / "d", source="test", height=H, width=W, fps=10)
    for v in range(2):
        f = np.zeros((20, H, W, 3), np.uint8)
        pos = np.zeros((20, 2), np.float32)
        for t in range(20):
            x, y = 1 + t + (8 if t >= 10 else 0), 4 + 10 * v
            f[t, y:y + SIZE, x:x + SIZE] = (100, 255, 255)
            pos[t] = (x + (SIZE - 1) / 2, y + (SIZE - 1) / 2)
        w.write(f"v{v}", f, split="test", identity="a", pos=pos)
    w.close()
    res = evaluate(cfg_for(tmp_path / "d", clips=24, horizons=(1, 4, 8)), model=FrozenModel())
    notes = res["notes"]
    # windows of 9 frames starting at 0..11: those starting at 2..9 contain the teleport into frame 10
    assert notes["pos_windows_with_jump"] == 16 and notes["pos_windows"] == 8
    scale = 64 / W
    # without the teleport, the frozen agent is exactly h px behind at frame h
    assert res["pos_err"] == {str(h): pytest.approx(h * scale) for h in (1, 4, 8)}
    # with it, the 16 windows that cross the teleport are 8 px further off at frame 8
    assert notes["pos_err_all_windows"]["8"] == pytest.approx((8 * 8 + 16 * 16) / 24 * scale)
    assert "teleport" in notes["jumps"]


def test_bad_inputs_give_clear_errors(tmp_path: Path) -> None:
    data = make_dataset(tmp_path / "d", videos=1, split="train")
    with pytest.raises(DatasetError, match=r"split 'test' .* is empty"):
        evaluate(cfg_for(data), model=OracleModel())  # empty test split
    with pytest.raises(DatasetError, match="clip_len"):
        cfg_for(data, clip_len=1)
    small = OracleModel()
    small.height = 16
    data2 = make_dataset(tmp_path / "d2", videos=1)
    with pytest.raises(DatasetError, match="16x32"):
        evaluate(cfg_for(data2), model=small)


# ------------------------------------------------------------------------------------ with a real GLASS model

def save_tiny_glass(path: Path) -> Path:
    """An untrained tiny GLASS checkpoint with the payload keys of the contract."""
    from worldmodel.checkpoint import save_checkpoint
    from worldmodel.glass.config import GlassConfig
    from worldmodel.glass.model import GlassModel

    torch.manual_seed(0)
    cfg = GlassConfig.preset("tiny", H, W)
    model = GlassModel(cfg)
    save_checkpoint(path, {
        "model": "glass", "model_config": cfg.to_dict(), "state_dict": model.state_dict(), "step": 0,
        "run_config": {"data": {"frame_skip": None}},
        "env_info": {"shift_grid": [[0.0, 0.0], [4.0, 0.0]], "shift_names": ["none", "right"],
                     "code_meanings": None, "start_frames": torch.zeros(1, 3, H, W, dtype=torch.uint8)},
        "perceptual": "off", "card": {"frame_skip": 1},
    })
    return path


@pytest.mark.slow  # 10-30 s on 2 busy cores (LPIPS with a VGG16 backbone)
def test_cli_with_tiny_glass_checkpoint(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = make_dataset(tmp_path / "d", videos=2, frames=36)  # frame_skip 1: 17-frame clips span 33 frames
    ckpt = save_tiny_glass(tmp_path / "tiny.pt")
    out = tmp_path / "res" / "eval.json"
    rc = cli_main([f"checkpoint={ckpt}", f"data.path={data}", f"out={out}", "eval.clips=3", "eval.clip_len=17",
                   "eval.batch_size=2", "device=cpu", "seed=1"])
    assert rc == 0
    res = json.loads(out.read_text())
    for key in (*METRIC_KEYS, "reasons", "split", "clips", "checkpoint", "dataset"):
        assert key in res, key
    floats = ("miou", "fg_shift_err", "fg_angle_acc", "bg_shift_err", "nmi_g", "nmi_s", "con", "psnr", "ssim",
              "mdr", "lpips")
    for key in floats:
        assert isinstance(res[key], float) and math.isfinite(res[key]), (key, res[key], res["reasons"].get(key))
    assert 0 <= res["miou"] <= 1 and 0 <= res["mdr"] <= 1 and -1 <= res["ssim"] <= 1
    assert res["lpips_backbone"] in ("pretrained", "random")
    assert set(res["pos_err"]) == {"1", "4", "8", "16"}
    for hz, v in res["pos_err"].items():
        assert (isinstance(v, float) and v >= 0) or (v is None and f"pos_err.{hz}" in res["reasons"])
    assert res["bg_angle_acc"] is None and res["reasons"]["bg_angle_acc"]
    for key in ("fid", "fvd"):
        assert res[key] is None and res["reasons"][key]
    assert res["clips"] == 3 and res["split"] == "test" and res["checkpoint"] == str(ckpt)
    assert res["notes"]["frame_skip"] == 1  # the checkpoint's training frame skip (its card)
    assert res["notes"]["model_generation"] == {"burn_in": 0, "reencode_every": 0}  # as trained
    printed = capsys.readouterr().out
    assert "miou" in printed and "pos_err@16" in printed
    # generation settings can be tried at eval time, without re-shipping the checkpoint
    rc = cli_main([f"checkpoint={ckpt}", f"data.path={data}", f"out={out}", "eval.clips=3", "eval.clip_len=17",
                   "eval.batch_size=2", "device=cpu", "seed=1", "eval.lpips=false",
                   "+eval.generation.reencode_every=3", "+eval.generation.burn_in=1"])
    regrounded = json.loads(out.read_text())
    assert rc == 0 and regrounded["notes"]["model_generation"] == {"burn_in": 1, "reencode_every": 3}
    assert regrounded["psnr"] != res["psnr"]  # the rollouts changed
    capsys.readouterr()
    assert cli_main([f"checkpoint={ckpt}", f"data.path={data}", "+eval.generation.lr=1"]) == 2
    assert "not generation settings of a glass model" in capsys.readouterr().err


def test_cli_reports_bad_arguments(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Each mistake gets its own one-line message naming what is wrong (not just exit code 2)."""
    assert cli_main([f"data.path={tmp_path}"]) == 2
    assert "checkpoint=PATH" in capsys.readouterr().err
    missing = tmp_path / "none.pt"
    assert cli_main([f"checkpoint={missing}", f"data.path={tmp_path}"]) == 2
    err = capsys.readouterr().err
    assert f"checkpoint {missing} does not exist" in err and "unknown key" not in err
    assert len(err.strip().splitlines()) == 1
    # a typo names the key and the nearest valid one, even beside a missing checkpoint (checked first)
    assert cli_main([f"checkpoint={missing}", f"data.path={tmp_path}", "eval.clps=3"]) == 2
    err = capsys.readouterr().err
    assert "unknown key eval.clps; did you mean eval.clips?" in err and "does not exist" not in err
    assert len(err.strip().splitlines()) == 1
    assert cli_main(["eval.nonsense=3"]) == 2
    assert "unknown key eval.nonsense" in capsys.readouterr().err


def test_cli_checks_out_before_evaluating_and_prints_the_table_before_writing(
        unwritable_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    import worldmodel.evaluate as E

    calls = []
    result = {"split": "test", "clips": 3, "checkpoint": "c.pt", "dataset": "d", "reasons": {}, "miou": 0.625}
    monkeypatch.setattr(E, "evaluate", lambda cfg: calls.append(cfg) or result)
    out = unwritable_dir / "eval.json"
    assert cli_main(["checkpoint=c.pt", f"data.path={tmp_path}", f"out={out}"]) == 2
    err = capsys.readouterr().err
    assert f"out= {out} is not writable" in err and not calls, "evaluated before checking out="
    # out= passes the check but the write fails later (the disk fills up): the table is shown all the same
    good = tmp_path / "res" / "eval.json"

    def full_disk(path, obj):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(E, "atomic_write_json", full_disk)
    assert cli_main(["checkpoint=c.pt", f"data.path={tmp_path}", f"out={good}"]) == 1
    printed = capsys.readouterr()
    assert "miou" in printed.out and "0.625" in printed.out and len(calls) == 1
    assert f"could not write {good}: No space left on device (the results are above)" in printed.err


# ------------------------------------------------------------------------------------ FID / FVD plumbing

class _FakeI3D(nn.Module):
    """Same call signature as the TorchScript I3D port: (N, 3, T, H, W) in [-1, 1] -> (N, 400)."""

    def __init__(self) -> None:
        super().__init__()
        self.proj = nn.Linear(3 * 4 * 4, 400)

    def forward(self, x: torch.Tensor, rescale: bool = False, resize: bool = True,
                return_features: bool = True) -> torch.Tensor:
        pooled = nn.functional.adaptive_avg_pool3d(x, (1, 4, 4)).flatten(1)  # (N, 48)
        return self.proj(pooled)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # torch.jit is deprecated, but the I3D port is TorchScript
def test_fvd_with_a_local_torchscript_network(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    torch.manual_seed(0)
    path = tmp_path / "i3d.pt"
    torch.jit.script(_FakeI3D()).save(str(path))
    monkeypatch.setenv("GLASSWORLD_I3D_WEIGHTS", str(path))
    data = make_dataset(tmp_path / "d", videos=4, frames=12)
    same = evaluate(cfg_for(data, fvd=True, clips=8), model=OracleModel())
    assert same["fvd"] == pytest.approx(0.0, abs=1e-6) and "fvd" not in same["reasons"]
    assert "I3D" in same["notes"]["fvd_network"]
    worse = evaluate(cfg_for(data, fvd=True, clips=8), model=ReplayOnlyModel())
    assert worse["fvd"] > 1e-3
    monkeypatch.setenv("GLASSWORLD_I3D_WEIGHTS", str(tmp_path / "missing.pt"))
    res = evaluate(cfg_for(data, fvd=True), model=OracleModel())
    assert res["fvd"] is None and "is not a file" in res["reasons"]["fvd"]


def test_fid_and_fvd_are_null_without_local_weights(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GLASSWORLD_I3D_WEIGHTS", raising=False)
    monkeypatch.delenv("GLASSWORLD_INCEPTION_WEIGHTS", raising=False)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))  # an empty cache
    data = make_dataset(tmp_path / "d", videos=2, frames=10)
    res = evaluate(cfg_for(data, fid=True, fvd=True), model=OracleModel())
    assert res["fid"] is None and "Inception" in res["reasons"]["fid"] and "downloaded" in res["reasons"]["fid"]
    assert res["fvd"] is None and "GLASSWORLD_I3D_WEIGHTS" in res["reasons"]["fvd"]


@pytest.mark.slow
def test_fid_with_local_torchvision_inception_weights(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Plumbing only: a random Inception loaded from $GLASSWORLD_INCEPTION_WEIGHTS (real weights cannot be had)."""
    from worldmodel._compat import ensure_torchvision_importable

    ensure_torchvision_importable()
    from torchvision.models import inception_v3

    torch.manual_seed(0)
    path = tmp_path / "inception.pth"
    torch.save(inception_v3(weights=None, aux_logits=True, init_weights=False).state_dict(), path)
    monkeypatch.setenv("GLASSWORLD_INCEPTION_WEIGHTS", str(path))
    data = make_dataset(tmp_path / "d", videos=2, frames=6)
    same = evaluate(cfg_for(data, fid=True, clips=2, clip_len=3), model=OracleModel())
    assert same["fid"] is not None and abs(same["fid"]) < 1e-6 and "fid" not in same["reasons"]
    assert "torchvision inception_v3" in same["notes"]["fid_network"]
    monkeypatch.setenv("GLASSWORLD_INCEPTION_WEIGHTS", str(tmp_path / "d" / "manifest.json"))  # not weights
    bad = evaluate(cfg_for(data, fid=True, clips=2, clip_len=3), model=OracleModel())
    assert bad["fid"] is None and "cannot load Inception" in bad["reasons"]["fid"]


def test_compare_evals_script_tables_like_for_like(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location("compare_evals", Path(__file__).resolve().parents[1] / "scripts" /
                                                  "compare_evals.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    data = make_dataset(tmp_path / "d", videos=6, split=("train", "test"))
    a = evaluate(cfg_for(data), model=OracleModel())
    b = evaluate(cfg_for(data, track_train_clips=8), model=KeypointOracle())
    (tmp_path / "a.json").write_text(json.dumps(a))
    (tmp_path / "b.json").write_text(json.dumps(b))
    out = tmp_path / "cmp.md"
    assert mod.main([f"oracle={tmp_path / 'a.json'}", f"kp={tmp_path / 'b.json'}", "--out", str(out)]) == 0
    text = out.read_text()
    assert "| metric | oracle | kp |" in text and "| miou | 1 | 1 |" in text
    kp_row = next(line for line in text.splitlines() if line.startswith("| kp_track_err |"))
    assert kp_row.split("|")[2].strip() == "-" and kp_row.split("|")[3].strip() != "-"
    hz, value = next((h, v) for h, v in a["agent_psnr_aligned_copy"].items() if v is not None)
    look = next(line for line in text.splitlines() if line.startswith(f"| agent_psnr_aligned_copy@{hz} |"))
    assert look.split("|")[2].strip() == f"{value:.3g}"  # the agent's look (baseline), one row per horizon
    assert "| agent_psnr_aligned_copy@1 |" in text and "| health.agent_found |" in text
    assert text == capsys.readouterr().out
    other = evaluate(cfg_for(data, split="train"), model=OracleModel())
    (tmp_path / "c.json").write_text(json.dumps(other))
    with pytest.raises(SystemExit, match="different datasets/splits"):
        mod.main([f"a={tmp_path / 'a.json'}", f"c={tmp_path / 'c.json'}"])
