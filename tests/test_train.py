"""`glassworld train` (worldmodel/train.py) and env_info (worldmodel/envinfo.py); `glassworld bench train` is in
tests/test_bench.py.

Everything runs the real GLASS ``tiny`` preset on 32x32 datasets built in tmp_path: a red square moving over a
textured background.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from worldmodel.checkpoint import load_checkpoint
from worldmodel.data.format import DatasetError, DatasetWriter
from worldmodel.envinfo import SHIFT_NAMES, estimate_shift_grid, shift_grid, start_frame_bank, typical_magnitude
from worldmodel.models import load_world_model
from worldmodel.train import cli_main, compose_run_config, model_from_checkpoint, train

REPO = Path(__file__).resolve().parents[1]

def _pythonpath() -> str:
    """The repository first, then whatever PYTHONPATH already holds (where the dependencies may live)."""
    return os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))

SIZE = 32
SPEEDS = {"x": 3, "y": 2}  # px per frame of the square


def make_dataset(root: Path, n_train: int = 3, n_val: int = 2, frames: int = 12, seed: int = 0) -> Path:
    """Videos of an 8x8 red square moving 3 px/frame horizontally or 2 px/frame vertically."""
    rng = np.random.default_rng(seed)
    w = DatasetWriter(root, source="synthetic", height=SIZE, width=SIZE, fps=10, generator={"seed": seed})
    for i in range(n_train + n_val):
        bg = (rng.random((SIZE, SIZE, 3)) * 80 + 40).astype(np.uint8)
        x, y = (int(v) for v in rng.integers(4, SIZE - 12, 2))
        video, pos, shift = [], [], []
        dx = dy = 0
        for t in range(frames):
            if t % 4 == 0:
                dx, dy = [(SPEEDS["x"], 0), (-SPEEDS["x"], 0), (0, SPEEDS["y"]), (0, -SPEEDS["y"])][rng.integers(4)]
            nx, ny = min(max(x + dx, 0), SIZE - 8), min(max(y + dy, 0), SIZE - 8)
            shift.append((nx - x, ny - y) if t else (0, 0))
            x, y = nx, ny
            frame = bg.copy()
            frame[y:y + 8, x:x + 8] = (230, 40, 40)
            video.append(frame)
            pos.append((x + 4, y + 4))
        w.write(f"v{i}", np.stack(video), split="train" if i < n_train else "val",
                pos=np.array(pos, np.float32), shift=np.array(shift, np.float32))
    w.close()
    return root


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return make_dataset(tmp_path_factory.mktemp("data") / "squares")


def overrides(data: Path, run_dir: Path, *extra: str) -> list[str]:
    return [f"data.path={data}", "model=glass", "model.preset=tiny", f"run_dir={run_dir}", "data.workers=0",
            "train.progress=false", "train.threads=1", *extra]


def run(data: Path, run_dir: Path, *extra: str) -> dict:
    return train(compose_run_config(overrides(data, run_dir, *extra)))


@pytest.fixture(scope="module")
def trained(data, tmp_path_factory) -> tuple[Path, dict]:
    run_dir = tmp_path_factory.mktemp("runs") / "run"
    metrics = run(data, run_dir, "train.steps=4", "train.checkpoint_every=2", "train.keep_checkpoints=true",
                  "train.log_every=1", "train.image_every=2", "train.dead_code_window=2", "data.workers=1")
    return run_dir, metrics


def subprocess_env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": _pythonpath()}


# ------------------------------------------------------------------------------------------------ train()
def test_train_writes_checkpoint_tensorboard_config_and_metrics(trained, data):
    run_dir, metrics = trained
    assert metrics["step"] == 4 and metrics["interrupted"] is None
    assert np.isfinite(metrics["final_losses"]["total"]) and metrics["steps_per_s"] > 0
    for name in ("checkpoint.pt", "checkpoint_step2.pt", "config.yaml", "metrics.json"):
        assert (run_dir / name).is_file(), name
    assert json.loads((run_dir / "metrics.json").read_text())["step"] == 4
    assert "preset: tiny" in (run_dir / "config.yaml").read_text()

    ckpt = load_checkpoint(run_dir / "checkpoint.pt")
    assert ckpt["model"] == "glass" and ckpt["step"] == 4 and ckpt["model_config"]["preset_name"] == "tiny"
    assert load_checkpoint(run_dir / "checkpoint_step2.pt")["step"] == 2
    assert {"optimizer", "scheduler", "rng", "run_config", "env_info", "perceptual", "card"} <= set(ckpt)
    assert ckpt["perceptual"] == "off"  # the tiny preset has no perceptual terms
    assert ckpt["rng"]["world_size"] == 1 and set(ckpt["rng"]["states"][0]) >= {"python", "numpy", "torch"}
    assert ckpt["rng"]["sampler"]["batch"] == 4
    info = ckpt["env_info"]
    assert len(info["shift_grid"]) == 9 and info["shift_names"] == SHIFT_NAMES
    assert info["start_frames"].dtype == torch.uint8 and info["start_frames"].shape[1:] == (3, SIZE, SIZE)
    assert 1 <= info["start_frames"].shape[0] <= 64
    # reach targets: recorded (start, later) positions from the dataset's ground truth, inside the frame
    assert info["reach_source"] == "ground truth" and info["reach_from"].shape == info["reach_to"].shape
    assert info["reach_from"].shape[0] > 0 and info["reach_from"].shape[1] == 2
    assert float(info["reach_to"].min()) >= 0 and float(info["reach_to"].max()) <= SIZE - 1
    card = ckpt["card"]
    assert card["dataset"] == str(data.resolve()) and card["source"] == "synthetic"
    assert card["generator"] == {"seed": 0} and card["steps"] == 4 and card["torch"] == torch.__version__
    assert card["hardware"] and card["wall_time_s"] > 0

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    ea = EventAccumulator(str(run_dir / "tb"), size_guidance={"scalars": 0, "images": 0, "tensors": 0})
    ea.Reload()
    scalars, images = set(ea.Tags()["scalars"]), set(ea.Tags()["images"])
    assert {"losses/total", "losses/reconstruction", "losses/vq", "metrics/vq_perplexity", "metrics/vq_usage",
            "charts/SPS", "charts/learning_rate", "metrics/dead_codes_reset"} <= scalars
    assert [e.step for e in ea.Scalars("losses/total")] == [1, 2, 3, 4]
    assert ea.Scalars("losses/total")[-1].value == pytest.approx(metrics["final_losses"]["total"], rel=1e-6)
    assert {"images/masks", "images/foregrounds", "images/backgrounds"} <= images
    video_tags = {"videos/reconstruction", "videos/generated"}
    assert all(t in images or f"{t}_strip" in images or t in ea.Tags().get("tensors", []) for t in video_tags)
    assert "hyperparameters/text_summary" in ea.Tags()["tensors"]


def test_checkpoint_round_trip_gives_identical_outputs(trained, data, tmp_path):
    run_dir, _ = trained
    ckpt = load_checkpoint(run_dir / "checkpoint.pt")
    a = model_from_checkpoint(ckpt).eval()
    b = load_world_model(run_dir / "checkpoint.pt")  # the env's path: WorldModel.from_checkpoint
    clip = torch.from_numpy(np.load(data / "videos" / "v3.npz")["frames"][:4].transpose(0, 3, 1, 2))[None]
    fa, ma = a.generate(clip)
    fb, mb = b.generate(clip)
    assert torch.equal(fa, fb) and torch.equal(ma, mb)
    assert torch.equal(b.shift_grid.cpu(), torch.tensor(ckpt["env_info"]["shift_grid"]))
    assert torch.equal(b.start_frames.cpu(), ckpt["env_info"]["start_frames"])

    # save -> load -> save is lossless: resuming with no steps left rewrites the same weights and optimiser
    copy = tmp_path / "copy"
    shutil.copytree(run_dir, copy)
    metrics = run(data, copy, "resume=true", "train.steps=4")
    assert metrics["steps_run"] == 0
    again = load_checkpoint(copy / "checkpoint.pt")
    assert again["step"] == 4
    for k, v in ckpt["state_dict"].items():
        assert torch.equal(v, again["state_dict"][k]), k
    assert _equal(ckpt["optimizer"], again["optimizer"]) and ckpt["scheduler"] == again["scheduler"]


def _equal(a, b) -> bool:
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and torch.equal(a, b)
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b))
    return a == b


def test_resume_continues_bit_for_bit(tmp_path):
    """7 steps straight == 4 steps + resume to 7 (epochs of 3 batches: the data order crosses two epochs;
    dead-code restarts draw random numbers after the resume; checkpoints at different steps)."""
    small = make_dataset(tmp_path / "small", n_train=1, n_val=1, frames=10)  # 7 clips -> 3 batches of 2
    # on the CPU: CUDA's grid_sample backward is not deterministic, so a resumed CUDA run matches only to ~1e-3
    common = ("train.dead_code_window=2", "train.log_every=1", "data.workers=1", "train.image_every=3", "device=cpu")
    straight = run(small, tmp_path / "a", "train.steps=7", "train.checkpoint_every=3", *common)
    first = run(small, tmp_path / "b", "train.steps=4", "train.checkpoint_every=2", *common)
    assert first["step"] == 4
    resumed = run(small, tmp_path / "b", "resume=true", "train.steps=7", "train.checkpoint_every=2", *common)
    assert resumed["steps_run"] == 3 and resumed["step"] == 7
    assert straight["final_losses"] == resumed["final_losses"]
    a, b = load_checkpoint(tmp_path / "a" / "checkpoint.pt"), load_checkpoint(tmp_path / "b" / "checkpoint.pt")
    assert a["trainer"]["dead_codes_reset"] == b["trainer"]["dead_codes_reset"]
    for k, v in a["state_dict"].items():
        assert torch.equal(v, b["state_dict"][k]), k
    assert _equal(a["optimizer"], b["optimizer"])
    assert a["rng"]["sampler"] == b["rng"]["sampler"] == {"epoch": 2, "batch": 1}
    # the resumed run's TensorBoard continues the same curve
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    curves = []
    for name in ("a", "b"):
        ea = EventAccumulator(str(tmp_path / name / "tb"), size_guidance={"scalars": 0})
        ea.Reload()
        # sorted: the resumed run writes a second event file, and when both runs start in the same second the
        # reader's file order (by name: time, host, pid) may put it first
        curves.append(sorted((e.step, e.value) for e in ea.Scalars("losses/total")))
    assert curves[0] == curves[1] and [s for s, _ in curves[0]] == list(range(1, 8))


def _start_cli(data: Path, run_dir: Path, *extra: str) -> subprocess.Popen:
    args = overrides(data, run_dir, "train.steps=100000", "train.checkpoint_every=2", "data.workers=1", *extra)
    return subprocess.Popen([sys.executable, "-m", "worldmodel.cli", "train", *args], env=subprocess_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)


def _wait_for(path: Path, proc: subprocess.Popen, timeout: float = 180.0) -> None:
    end = time.monotonic() + timeout
    while not path.exists():
        if proc.poll() is not None:
            raise AssertionError(f"training exited early ({proc.returncode}): {proc.stderr.read()[-3000:]}")
        if time.monotonic() > end:
            proc.kill()
            raise AssertionError(f"no {path.name} after {timeout} s")
        time.sleep(0.1)


def _reap(proc: subprocess.Popen) -> None:
    """Kill what is left of the process group this test started (DataLoader workers)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait(timeout=30)


@pytest.mark.slow
def test_killed_run_resumes_from_its_last_checkpoint(data, tmp_path):
    run_dir = tmp_path / "run"
    proc = _start_cli(data, run_dir)
    try:
        _wait_for(run_dir / "checkpoint.pt", proc)
        time.sleep(1.5)  # let it train (and maybe be mid-save) a little longer
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        _reap(proc)
    ckpt = load_checkpoint(run_dir / "checkpoint.pt")  # complete and readable
    saved = ckpt["step"]
    assert saved >= 2 and saved % 2 == 0
    metrics = run(data, run_dir, "resume=true", f"train.steps={saved + 2}")
    assert metrics["step"] == saved + 2 and metrics["steps_run"] == 2
    assert not list(run_dir.glob(".*.tmp")), "a half-written checkpoint was left behind"
    assert load_checkpoint(run_dir / "checkpoint.pt")["step"] == saved + 2


@pytest.mark.slow
def test_sigint_saves_a_checkpoint_and_exits_130(data, tmp_path):
    run_dir = tmp_path / "run"
    proc = _start_cli(data, run_dir)
    try:
        _wait_for(run_dir / "checkpoint.pt", proc)
        first = load_checkpoint(run_dir / "checkpoint.pt")["step"]
        os.kill(proc.pid, signal.SIGINT)
        proc.wait(timeout=120)
        err = proc.stderr.read()
    finally:
        _reap(proc)
    assert proc.returncode == 130, err[-3000:]
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["interrupted"] == "SIGINT"
    ckpt = load_checkpoint(run_dir / "checkpoint.pt")
    assert ckpt["step"] == metrics["step"] >= first  # saved at the step it stopped, not only the last periodic one
    assert "SIGINT received" in err


# ------------------------------------------------------------------------------------------------ bad input
def test_bad_config_is_one_clear_error(data, tmp_path, capsys):
    assert cli_main(["model.preset=tiny"]) == 2
    assert "data.path is required" in capsys.readouterr().err
    assert cli_main([f"data.path={tmp_path / 'nowhere'}", "model.preset=tiny"]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert cli_main([f"data.path={data}", "+train.stepz=3"]) == 2
    assert "train.stepz" in capsys.readouterr().err
    assert cli_main([f"data.path={data}", f"run_dir={tmp_path / 'r'}", "resume=true"]) == 2
    assert "does not exist" in capsys.readouterr().err
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "checkpoint.pt").write_bytes(b"not a checkpoint")
    assert cli_main([f"data.path={data}", f"run_dir={tmp_path / 'r'}"]) == 2
    assert "resume=true" in capsys.readouterr().err  # never overwrites a saved run
    assert cli_main([f"data.path={data}", "train.batch_size=1000", "model.preset=tiny"]) == 2
    assert "fewer than train.batch_size" in capsys.readouterr().err
    assert cli_main([f"data.path={data}", "model.preset=tiny", "+model.frobnicate=1", f"run_dir={tmp_path / 'm'}"]) == 2
    assert "frobnicate" in capsys.readouterr().err
    with pytest.raises(DatasetError, match="train.steps must be >= 1"):
        run(data, tmp_path / "x", "train.steps=0")
    with pytest.raises(DatasetError, match=r"train.precision must be one of \['float32', 'bfloat16'\]"):
        run(data, tmp_path / "x", "train.precision=half")


def test_bfloat16_mixed_precision_run(data, tmp_path):
    metrics = run(data, tmp_path / "bf", "train.steps=3", "train.precision=bfloat16", "train.image_every=0",
                  "data.workers=0")
    assert metrics["step"] == 3 and np.isfinite(metrics["final_losses"]["total"])
    ckpt = load_checkpoint(tmp_path / "bf" / "checkpoint.pt")
    assert ckpt["run_config"]["train"]["precision"] == "bfloat16"
    assert all(v.dtype == torch.float32 for v in ckpt["state_dict"].values() if v.is_floating_point())


def test_resume_refuses_a_different_model(trained, data, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(trained[0], copy)
    with pytest.raises(DatasetError, match="cannot change model"):
        run(data, copy, "resume=true", "train.steps=6", "+model.num_codes=5")


def test_init_from_starts_a_new_run_from_another_runs_weights(trained, data, tmp_path):
    src = load_checkpoint(trained[0] / "checkpoint.pt")
    run(data, tmp_path / "ft", "train.steps=1", f"init_from={trained[0] / 'checkpoint.pt'}",
        "+model.pretraining_steps=100")  # GMA-only step: the LMA weights must stay exactly the source's
    ft = load_checkpoint(tmp_path / "ft" / "checkpoint.pt")
    assert ft["step"] == 1 and ft["run_config"]["init_from"] == str(trained[0] / "checkpoint.pt")
    renderer = [k for k in src["state_dict"] if k.startswith("renderer.") and k.endswith(("weight", "bias"))]
    assert renderer and all(torch.equal(src["state_dict"][k], ft["state_dict"][k]) for k in renderer)
    fresh = run(data, tmp_path / "fresh", "train.steps=1", "+model.pretraining_steps=100")
    fresh = load_checkpoint(tmp_path / "fresh" / "checkpoint.pt")
    assert not all(torch.equal(src["state_dict"][k], fresh["state_dict"][k]) for k in renderer)
    with pytest.raises(DatasetError, match="does not fit model"):
        run(data, tmp_path / "bad", "train.steps=1", f"init_from={trained[0] / 'checkpoint.pt'}",
            "+model.num_codes=7")


def test_resume_refuses_a_change_of_model_preset_or_data_naming_it(trained, data, tmp_path, capsys):
    copy = tmp_path / "copy"
    shutil.copytree(trained[0], copy)
    before = {p.name: p.read_bytes() for p in copy.iterdir() if p.is_file()}
    base = [f"run_dir={copy}", "resume=true", "train.steps=6", "data.workers=0", "train.progress=false"]
    # the model group on the command line (it used to be dropped silently in favour of the saved config)
    assert cli_main([*base, "model=keypoint"]) == 2
    assert "cannot change model: saved 'glass', now 'keypoint'" in capsys.readouterr().err
    assert cli_main([*base, "model.preset=cpu"]) == 2
    assert "cannot change model.preset: saved 'tiny', now 'cpu'" in capsys.readouterr().err
    other = make_dataset(tmp_path / "other", n_train=4, seed=5)
    assert cli_main([*base, f"data.path={other}"]) == 2
    err = capsys.readouterr().err
    assert "cannot change data train split: saved 3 videos / 36 frames, now 4 / 48" in err and str(other) in err
    assert {p.name: p.read_bytes() for p in copy.iterdir() if p.is_file()} == before, "a refused resume wrote"
    # the same data in another folder is the same data: the run continues
    moved = tmp_path / "moved"
    shutil.copytree(data, moved)
    assert run(moved, copy, "resume=true", "train.steps=5")["step"] == 5


def _bad_files(root: Path) -> dict[str, str]:
    """Make v0 a truncated archive and v1 a video of another frame size (listed in the manifest); return
    {name: file} of the two."""
    (root / "videos" / "v0.npz").write_bytes((root / "videos" / "v0.npz").read_bytes()[:300])
    odd = DatasetWriter(root.parent / "odd", source="synthetic", height=SIZE, width=SIZE + 8, fps=10)
    odd.write("v1", np.zeros((12, SIZE, SIZE + 8, 3), np.uint8), split="train")
    (root / "videos" / "v1.npz").write_bytes((root.parent / "odd" / "videos" / "v1.npz").read_bytes())
    return {"v0": "BadZipFile", "v1": f"(12, {SIZE}, {SIZE + 8}, 3)"}


def test_unusable_video_files_are_named_and_left_out_before_step_1(tmp_path, caplog):
    root = make_dataset(tmp_path / "d" / "data", n_train=4)
    bad = _bad_files(root)
    files = {p.name: p.read_bytes() for p in (root / "videos").iterdir()}
    with caplog.at_level("WARNING", logger="worldmodel.data.format"):
        metrics = run(root, tmp_path / "run", "train.steps=3", "train.checkpoint_every=2", "train.image_every=0")
    assert metrics["step"] == 3 and metrics["steps_run"] == 3  # no step lost
    warned = [r.getMessage() for r in caplog.records]
    for name, why in bad.items():  # each bad file named once, with why
        hits = [m for m in warned if f"videos/{name}.npz" in m]
        assert len(hits) == 1 and why in hits[0] and "left out" in hits[0], warned
    ckpt = load_checkpoint(tmp_path / "run" / "checkpoint.pt")
    assert ckpt["step"] == 3 and ckpt["data_fingerprint"]["skipped"] == ["v0", "v1"]
    assert ckpt["data_fingerprint"]["train_videos"] == 2
    assert {p.name: p.read_bytes() for p in (root / "videos").iterdir()} == files, "the data was changed"
    # a split left with no usable video: one error before step 1, naming the files
    only = make_dataset(tmp_path / "e" / "data", n_train=2)
    _bad_files(only)
    with pytest.raises(DatasetError, match=r"has no usable video: 2 unusable video files .*v0.npz: not a readable"):
        run(only, tmp_path / "run2", "train.steps=1")
    assert not (tmp_path / "run2" / "checkpoint.pt").exists()


def _corrupt_inside(path: Path) -> None:
    """Flip bytes late in the compressed frames of an .npz: its directory and array headers stay readable, so
    only decompressing the frames (the full check, or training) finds it."""
    import zipfile

    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo("frames.npy")
    raw = bytearray(path.read_bytes())
    data_start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    for k in range(10):
        raw[data_start + info.compress_size - 40 - k] ^= 0x5A
    path.write_bytes(bytes(raw))


def test_a_file_corrupt_inside_stops_training_with_a_checkpoint_and_data_check_full_skips_it(tmp_path, monkeypatch):
    import zipfile

    from worldmodel import train as T

    root = make_dataset(tmp_path / "data", n_train=8)
    noise = DatasetWriter(tmp_path / "noisy", source="synthetic", height=SIZE, width=SIZE, fps=10)
    frames = np.random.default_rng(0).integers(0, 256, (12, SIZE, SIZE, 3), dtype=np.uint8)  # incompressible
    noise.write("v5", frames, split="train")
    target = root / "videos" / "v5.npz"
    target.write_bytes((tmp_path / "noisy" / "videos" / "v5.npz").read_bytes())
    _corrupt_inside(target)
    with zipfile.ZipFile(target) as zf:  # the header check decompresses a few kB at the start only
        assert zf.getinfo("frames.npy").compress_size > 32 * 1024
    forward, calls = T._LossModule.forward, []

    def counting(self, frames, step):
        calls.append(step)
        return forward(self, frames, step)

    monkeypatch.setattr(T._LossModule, "forward", counting)
    with pytest.raises(DatasetError, match=r"videos/v5.npz is unreadable .*data.check=full"):
        run(root, tmp_path / "run", "train.steps=200", "train.checkpoint_every=1000", "train.image_every=0")
    assert calls, "the bad file was read before the first step (the seeded order should reach it later)"
    assert load_checkpoint(tmp_path / "run" / "checkpoint.pt")["step"] == len(calls)  # the steps done are saved
    metrics = run(root, tmp_path / "full", "train.steps=2", "data.check=full", "train.image_every=0")
    assert metrics["step"] == 2
    assert load_checkpoint(tmp_path / "full" / "checkpoint.pt")["data_fingerprint"]["skipped"] == ["v5"]


def _fail_at(monkeypatch, at_step: int, exc: Exception, then=None) -> None:
    """Make the training step ``at_step`` (0-based) raise ``exc`` before the model runs (calling ``then()``
    first, if given)."""
    from worldmodel import train as T

    forward = T._LossModule.forward

    def failing(self, frames, step):
        if step == at_step:
            if then is not None:
                then()
            raise exc
        return forward(self, frames, step)

    monkeypatch.setattr(T._LossModule, "forward", failing)


def test_an_error_mid_training_saves_a_checkpoint_first_and_resume_is_exact(data, tmp_path, monkeypatch):
    common = ("train.checkpoint_every=2", "train.dead_code_window=2", "train.image_every=0", "data.workers=1",
              "device=cpu")  # bit-exact on the CPU (see test_resume_continues_bit_for_bit)
    straight = run(data, tmp_path / "a", "train.steps=6", *common)
    with monkeypatch.context() as m:
        _fail_at(m, 3, RuntimeError("injected failure"))
        with pytest.raises(RuntimeError, match="injected failure"):  # the error still reaches the caller
            run(data, tmp_path / "b", "train.steps=6", *common)
    ckpt = load_checkpoint(tmp_path / "b" / "checkpoint.pt")
    assert ckpt["step"] == 3  # steps 0, 1, 2 completed; the periodic checkpoint only had 2
    assert not list((tmp_path / "b").glob(".*.tmp"))
    resumed = run(data, tmp_path / "b", "resume=true", "train.steps=6", *common)
    assert resumed["steps_run"] == 3 and resumed["final_losses"] == straight["final_losses"]
    a, b = load_checkpoint(tmp_path / "a" / "checkpoint.pt"), load_checkpoint(tmp_path / "b" / "checkpoint.pt")
    for k, v in a["state_dict"].items():
        assert torch.equal(v, b["state_dict"][k]), k
    assert a["rng"]["sampler"] == b["rng"]["sampler"]


def test_a_save_that_fails_after_an_error_leaves_the_last_checkpoint_intact(data, tmp_path, monkeypatch, caplog):
    import worldmodel.data.format as F

    run_dir = tmp_path / "run"
    common = ("train.checkpoint_every=2", "train.image_every=0")
    run(data, run_dir, "train.steps=2", *common)
    saved = (run_dir / "checkpoint.pt").read_bytes()

    def full_disk(fd):
        raise OSError(28, "No space left on device")

    # at step 3 the disk fills up (every later save fails after writing its temp file), then the step fails
    _fail_at(monkeypatch, 3, RuntimeError("injected failure"), lambda: monkeypatch.setattr(F.os, "fsync", full_disk))
    with pytest.raises(RuntimeError, match="injected failure"):  # the original error, not the save's
        run(data, run_dir, "resume=true", "train.steps=6", *common)
    assert (run_dir / "checkpoint.pt").read_bytes() == saved
    assert not list(run_dir.glob(".*.tmp"))
    assert any("saving a checkpoint failed too" in r.getMessage() for r in caplog.records)


def test_unwritable_run_dir_is_one_error_before_any_work(unwritable_dir, data, tmp_path, capsys,
                                                         monkeypatch):
    from worldmodel import train as T

    built = []
    monkeypatch.setattr(T._Trainer, "_build_model", lambda self, ckpt: built.append(1))
    run_dir = unwritable_dir / "run"
    assert cli_main(overrides(data, run_dir, "train.steps=1")) == 2
    err = capsys.readouterr().err
    assert f"run_dir {run_dir} is not writable" in err and "Traceback" not in err
    assert not built, "work started before the run_dir was checked"


# ------------------------------------------------------------------------------------------------ env_info
class _KnownMotion(torch.nn.Module):
    """estimate_shifts returns the moving square's true motion (red-pixel centroid)."""

    def estimate_shifts(self, frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        red = ((frames[:, :, 0] > 0.8) & (frames[:, :, 1] < 0.3)).float()  # (B, T, H, W)
        ys, xs = torch.meshgrid(torch.arange(SIZE).float(), torch.arange(SIZE).float(), indexing="ij")
        n = red.sum((-2, -1)).clamp_min(1)
        c = torch.stack([(red * xs).sum((-2, -1)) / n, (red * ys).sum((-2, -1)) / n], -1)  # (B, T, 2)
        fg = c[:, 1:] - c[:, :-1]
        return fg, torch.zeros_like(fg)


def test_shift_grid_comes_from_estimated_motion(data):
    from worldmodel.data.dataset import ClipConfig, ClipDataset

    ds = ClipDataset(data, "train", ClipConfig(clip_len=6, ground_truth=False))
    batches = [torch.stack([ds[i]["frames"] for i in range(j, j + 4)]) for j in range(0, 16, 4)]
    info = estimate_shift_grid(_KnownMotion(), batches)
    assert info["shift_source"] == "estimated"
    assert info["shift_step"] == pytest.approx([SPEEDS["x"], SPEEDS["y"]], abs=0.01)
    grid = dict(zip(info["shift_names"], map(tuple, info["shift_grid"])))
    assert grid["none"] == (0, 0) and grid["right"] == (3, 0) and grid["up"] == (0, -2)
    assert grid["down-left"] == (-3, 2)
    # a model without estimate_shifts keeps the default 4 px grid
    assert estimate_shift_grid(torch.nn.Linear(1, 1), batches)["shift_grid"] == shift_grid(4.0, 4.0)[0]


class _SidewaysOnly(_KnownMotion):
    """Only the x part of the square's motion (a Breakout paddle)."""

    def estimate_shifts(self, frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        fg, bg = super().estimate_shifts(frames)
        return fg * torch.tensor([1.0, 0.0]), bg


def test_an_axis_without_motion_gets_a_zero_step(data):
    from worldmodel.data.dataset import ClipConfig, ClipDataset

    ds = ClipDataset(data, "train", ClipConfig(clip_len=6, ground_truth=False))
    batches = [torch.stack([ds[i]["frames"] for i in range(j, j + 4)]) for j in range(0, 16, 4)]
    info = estimate_shift_grid(_SidewaysOnly(), batches)
    assert info["shift_source"] == "estimated, no motion on y"
    grid = dict(zip(info["shift_names"], map(tuple, info["shift_grid"])))
    assert grid["right"] == pytest.approx((SPEEDS["x"], 0), abs=0.01) and grid["up"] == (0, 0)


def test_typical_magnitude_ignores_still_frames_and_outliers():
    v = torch.tensor([0.0] * 50 + [0.1, -0.2] * 10 + [3.0, -3.1, 2.9, -3.0, 3.05] * 4 + [40.0])
    assert typical_magnitude(v) == pytest.approx(3.0, abs=0.06)
    assert typical_magnitude(torch.zeros(30)) is None


def test_start_frames_are_first_frames_of_val_clips(data):
    frames, split = start_frame_bank(data, clip_len=4, frame_skip=0, max_frames=5)
    assert split == "val" and frames.dtype == torch.uint8 and frames.shape == (5, 3, SIZE, SIZE)
    first = torch.from_numpy(np.load(data / "videos" / "v3.npz")["frames"][0].transpose(2, 0, 1))
    assert torch.equal(frames[0], first)


# ------------------------------------------------------------------------------------------------ ship
def test_ship_writes_a_slim_env_ready_checkpoint_and_card(trained, data, tmp_path):
    from worldmodel.export import ship

    run_dir, _ = trained
    (tmp_path / "eval.json").write_text(json.dumps({"pos_err": {"16": 1.5}, "mdr": 0.0}))
    out = tmp_path / "world.pt"
    card = ship(run_dir / "checkpoint.pt", out, data, tmp_path / "eval.json", {"command": "glassworld train ..."})
    ckpt = load_checkpoint(out)
    assert not {"optimizer", "scheduler", "rng"} & set(ckpt) and ckpt["state_dict"]
    from worldmodel.paths import portable_paths  # the recorded run config carries no machine paths either

    assert ckpt["run_config"] == portable_paths(load_checkpoint(run_dir / "checkpoint.pt")["run_config"])
    info = ckpt["env_info"]
    assert len(info["shift_grid"]) == 9 and info["shift_source"]  # re-estimated with the final weights
    assert info["reach_from"].shape[1] == 2 and info["reach_source"] == "ground truth"
    assert card["eval"]["mdr"] == 0.0 and card["command"] == "glassworld train ..." and card["file_size_mb"] > 0
    assert json.loads(out.with_suffix(".json").read_text())["reach_targets"].startswith(str(len(info["reach_from"])))
    md = out.with_suffix(".md").read_text()
    assert "Model card: world.pt" in md
    right = dict(zip(info["shift_names"], info["shift_grid"]))["right"]
    assert f"right ({right[0]:+.1f}, {right[1]:+.1f})" in md  # the card shows the re-estimated grid
    model = load_world_model(out, "cpu")  # the env can load it
    assert model.reach_places is not None and torch.equal(model.shift_grid, torch.tensor(info["shift_grid"]))
    assert (model.cfg.reencode_every, model.cfg.burn_in) == (0, 0)
    regrounded = tmp_path / "regrounded.pt"
    card = ship(out, regrounded, generation={"reencode_every": 5, "burn_in": 1})
    model = load_world_model(regrounded, "cpu")
    assert (model.cfg.reencode_every, model.cfg.burn_in) == (5, 1) and card["generation"]["reencode_every"] == 5
    assert "reencode_every" in regrounded.with_suffix(".md").read_text()
    with pytest.raises(ValueError, match="not generation settings"):
        ship(out, tmp_path / "bad.pt", generation={"lr": 1})
    assert not (tmp_path / "bad.pt").exists()


@pytest.mark.parametrize("explained, best_step", [([0.5, 0.3, 0.48], 6), ([0.5, 0.3, 0.2], 2),
                                                   ([0.1, 0.4, 0.7], 6)])
def test_keep_best_keeps_the_latest_snapshot_near_the_best_explained_one(data, tmp_path, monkeypatch, explained,
                                                                         best_step):
    """train.keep_best scores the agent at each checkpoint (steps 2, 4 and the end, 6) and copies the latest one
    within 5 points of the best shift_explained to best.pt; the scoring leaves the training itself unchanged."""
    import worldmodel.discovery as discovery

    calls = []

    def fake_score(checkpoint, data_path, cfg=None, device="cpu", seed=0, model=None):
        assert checkpoint is None and model is not None
        torch.rand(3)  # scoring that draws random numbers must not move the training streams
        calls.append(len(calls))
        return {"agent_found": 1.0, "shift_explained": explained[len(calls) - 1], "track_moves": 50, "clips": 2}

    monkeypatch.setattr(discovery, "score", fake_score)
    common = ("train.steps=6", "train.checkpoint_every=2", "device=cpu")
    kept = run(data, tmp_path / "kept", "train.keep_best=true", *common)
    assert len(calls) == 3
    best = load_checkpoint(tmp_path / "kept" / "best.pt")
    assert best["step"] == best_step and best["trainer"]["best_step"] == best_step
    assert best["trainer"]["best_explained"] == pytest.approx(max(explained[: best_step // 2]))
    plain = run(data, tmp_path / "plain", *common)
    assert not (tmp_path / "plain" / "best.pt").exists()
    assert kept["final_losses"] == plain["final_losses"]
    a, b = load_checkpoint(tmp_path / "kept" / "checkpoint.pt"), load_checkpoint(tmp_path / "plain" / "checkpoint.pt")
    for k, v in a["state_dict"].items():
        assert torch.equal(v, b["state_dict"][k]), k


def test_keep_best_skips_a_snapshot_that_loses_its_agent():
    from worldmodel.discovery import DiscoveryConfig, keeps

    cfg = DiscoveryConfig(min_found=0.95, tolerance=0.05)
    assert keeps({"agent_found": 0.9, "shift_explained": 0.9}, 0.9, cfg) == (False, 0.9)
    assert keeps({"agent_found": 1.0, "shift_explained": None}, None, cfg) == (False, None)
    assert keeps({"agent_found": 1.0, "shift_explained": 0.1}, None, cfg) == (True, 0.1)
    assert keeps({"agent_found": 1.0, "shift_explained": 0.56}, 0.6, cfg) == (True, 0.6)
    assert keeps({"agent_found": 1.0, "shift_explained": 0.54}, 0.6, cfg) == (False, 0.6)
    assert keeps({"agent_found": 1.0, "shift_explained": 0.7}, 0.6, cfg) == (True, 0.7)
