"""Nothing a user is handed runs code: checkpoints and policy files with planted code, through every entry point.

Each planted object, when unpickled, creates a marker file. Every test asserts that the marker never appears, that
the user gets one clear error, and that nothing already saved changed.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import pickle
import zipfile
from pathlib import Path

import gymnasium as gym
import pytest
import torch

import envs  # noqa: F401 - registers the ids
from square_world import save_tiny_glass_checkpoint
from worldmodel.checkpoint import FORMAT_VERSION, UnsafeCheckpointError, load_checkpoint, save_checkpoint
from worldmodel.cli import main
from worldmodel.data.format import DatasetError


class Planted:
    """Unpickling this runs ``touch MARKER`` (a stand-in for any code an attacker wants)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.fixture
def marker(tmp_path) -> Path:
    return tmp_path / "PWNED"


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def plant_in_checkpoint(src: Path, dst: Path, marker: Path) -> Path:
    """A working checkpoint plus one extra key holding planted code, saved the old (pickle-anything) way."""
    ckpt = torch.load(src, weights_only=True)
    ckpt["extra"] = Planted(marker)
    torch.save(ckpt, dst)
    return dst


@pytest.fixture
def evil_checkpoint(glass_checkpoint, tmp_path, marker) -> Path:
    return plant_in_checkpoint(glass_checkpoint, tmp_path / "evil.pt", marker)


def assert_refused(err: str, path: Path, marker: Path) -> None:
    assert not marker.exists(), "planted code ran"
    assert str(path) in err and f"glassworld upgrade {path}" in err, err


# ------------------------------------------------------------------------------------------------ checkpoints
def test_saved_checkpoints_are_plain_data(glass_checkpoint):
    assert torch.serialization.get_unsafe_globals_in_checkpoint(glass_checkpoint) == []
    assert load_checkpoint(glass_checkpoint)["version"] == FORMAT_VERSION


@pytest.mark.parametrize("name", ["tennis.pt", "breakout.pt", "sprites.pt", "kp_tennis.pt", "kp_sprites.pt"])
def test_shipped_checkpoints_load_with_weights_only(name):
    path = envs.CHECKPOINT_DIR / name
    assert torch.serialization.get_unsafe_globals_in_checkpoint(path) == []
    torch.load(path, weights_only=True)


def test_numpy_state_round_trips_through_the_safe_format(tmp_path):
    import numpy as np

    state = np.random.RandomState(3).get_state()
    payload = {"model": "glass", "model_config": {}, "state_dict": {}, "step": 0,
               "rng": {"numpy": state, "scalar": np.float32(2.5), "version": torch.__version__}}
    back = load_checkpoint(save_checkpoint(tmp_path / "c.pt", payload))["rng"]
    assert back["numpy"][0] == "MT19937" and back["numpy"][1].dtype == np.uint32
    assert (back["numpy"][1] == state[1]).all() and back["numpy"][2:] == state[2:]
    assert back["scalar"] == np.float32(2.5) and type(back["version"]) is str
    np.random.set_state(back["numpy"])


def test_saving_an_object_without_a_safe_form_fails_before_writing(tmp_path):
    path = tmp_path / "c.pt"
    path.write_bytes(b"previous")
    with pytest.raises(TypeError, match=r"payload\.card\.x"):
        save_checkpoint(path, {"model": "glass", "model_config": {}, "state_dict": {}, "step": 0,
                               "card": {"x": object()}})
    assert path.read_bytes() == b"previous"


def test_load_checkpoint_refuses_planted_code(evil_checkpoint, marker):
    with pytest.raises(UnsafeCheckpointError) as e:
        load_checkpoint(evil_checkpoint)
    assert_refused(str(e.value), evil_checkpoint, marker)
    assert "posix.system" in str(e.value) or "os.system" in str(e.value)


def test_gym_make_refuses_planted_code(evil_checkpoint, marker):
    with pytest.raises(DatasetError) as e:
        gym.make("GlassWorld-v0", checkpoint=str(evil_checkpoint))
    assert_refused(str(e.value), evil_checkpoint, marker)
    with pytest.raises(DatasetError):
        gym.make_vec("GlassWorld-v0", num_envs=2, vectorization_mode="vector_entry_point",
                     checkpoint=str(evil_checkpoint))
    assert not marker.exists()


def test_eval_refuses_planted_code(evil_checkpoint, marker, tmp_path, capsys):
    rc = main(["eval", f"checkpoint={evil_checkpoint}", f"data.path={tmp_path}", "device=cpu"])
    assert rc == 2
    assert_refused(capsys.readouterr().err, evil_checkpoint, marker)


def test_play_refuses_planted_code(evil_checkpoint, marker, capsys):
    rc = main(["play", f"checkpoint={evil_checkpoint}", "--headless", "frames=2"])
    assert rc != 0
    assert_refused(capsys.readouterr().err, evil_checkpoint, marker)


def test_agent_eval_refuses_a_planted_checkpoint(evil_checkpoint, marker, capsys):
    rc = main(["agent-eval", f"checkpoint={evil_checkpoint}", "episodes=1", "n_envs=1", "device=cpu"])
    assert rc == 2
    assert_refused(capsys.readouterr().err, evil_checkpoint, marker)


def _train_run(tmp_path: Path) -> tuple[Path, Path]:
    from test_train import make_dataset, run

    data = make_dataset(tmp_path / "data")
    run(data, tmp_path / "run", "train.steps=2", "train.checkpoint_every=2")
    return data, tmp_path / "run"


def test_train_resume_and_init_from_refuse_planted_code(tmp_path, marker):
    from test_train import run

    data, run_dir = _train_run(tmp_path)
    ckpt = run_dir / "checkpoint.pt"
    plant_in_checkpoint(ckpt, ckpt, marker)
    before = {p.name: digest(p) for p in run_dir.iterdir() if p.is_file()}
    with pytest.raises(UnsafeCheckpointError) as e:
        run(data, run_dir, "resume=true", "train.steps=4")
    assert_refused(str(e.value), ckpt, marker)
    assert {p.name: digest(p) for p in run_dir.iterdir() if p.is_file()} == before  # nothing saved changed
    with pytest.raises(UnsafeCheckpointError) as e:
        run(data, tmp_path / "ft", "train.steps=1", f"init_from={ckpt}")
    assert_refused(str(e.value), ckpt, marker)


def test_upgrade_re_saves_an_older_file_safely(glass_checkpoint, tmp_path, capsys):
    """Format-1 files pickled numpy RNG states and torch's version string: upgrade reads those, and only those."""
    import numpy as np

    old = torch.load(glass_checkpoint, weights_only=True)
    old["version"] = 1
    old["rng"] = {"numpy": np.random.RandomState(0).get_state(), "loss": np.float64(0.5)}
    old["card"] = {"torch": torch.torch_version.TorchVersion("2.0.0")}
    path = tmp_path / "old.pt"
    torch.save(old, path)
    before = digest(path)
    with pytest.raises(UnsafeCheckpointError, match="glassworld upgrade"):
        load_checkpoint(path)
    assert main(["upgrade", str(path), "--out", str(tmp_path / "new.pt")]) == 0
    assert digest(path) == before
    new = load_checkpoint(tmp_path / "new.pt")
    assert new["card"]["torch"] == "2.0.0" and new["version"] == FORMAT_VERSION and new["rng"]["loss"] == 0.5
    assert (new["rng"]["numpy"][1] == old["rng"]["numpy"][1]).all()
    assert torch.serialization.get_unsafe_globals_in_checkpoint(tmp_path / "new.pt") == []
    assert main(["upgrade", str(path)]) == 0 and digest(path) != before  # in place
    load_checkpoint(path)


def test_upgrade_refuses_planted_code_and_writes_nothing(evil_checkpoint, tmp_path, marker, capsys):
    before = digest(evil_checkpoint)
    assert main(["upgrade", str(evil_checkpoint), "--out", str(tmp_path / "out.pt")]) == 1
    err = capsys.readouterr().err
    assert not marker.exists() and "do not load it" in err and str(evil_checkpoint) in err
    assert not (tmp_path / "out.pt").exists() and digest(evil_checkpoint) == before


# ------------------------------------------------------------------------------------------------ policies
def sb3_zip_with_planted_code(path: Path, marker: Path) -> Path:
    """An archive shaped like Stable-Baselines3's: its ``data`` member carries a pickled object."""
    blob = base64.b64encode(pickle.dumps(Planted(marker))).decode()
    data = {"policy_class": {":type:": "<class 'type'>", ":serialized:": blob}}
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("data", json.dumps(data))
        z.writestr("policy.pth", b"")
    return path


def test_agent_eval_refuses_an_sb3_archive_unless_trusted(glass_checkpoint, tmp_path, marker, capsys):
    policy = sb3_zip_with_planted_code(tmp_path / "evil.zip", marker)
    before = digest(policy)
    rc = main(["agent-eval", f"policy={policy}", f"checkpoint={glass_checkpoint}", "episodes=1", "n_envs=1",
               "device=cpu", "threads=1"])
    assert rc == 2
    err = capsys.readouterr().err
    assert not marker.exists() and str(policy) in err and "trust_policy=true" in err, err
    assert digest(policy) == before


def test_play_refuses_an_sb3_archive(glass_checkpoint, tmp_path, marker, capsys):
    policy = sb3_zip_with_planted_code(tmp_path / "evil.zip", marker)
    rc = main(["play", f"checkpoint={glass_checkpoint}", "--headless", "frames=2", f"policy={policy}"])
    assert rc != 0
    assert not marker.exists() and "trust" in capsys.readouterr().err


def _tiny_policy(tmp_path: Path) -> tuple[Path, object]:
    import numpy as np
    from gymnasium import spaces
    from stable_baselines3 import PPO

    from agents.features import PooledSmallCNN
    from agents.policy_file import save_policy

    class Frames(gym.Env):
        observation_space = spaces.Box(0, 255, (16, 24, 3), np.uint8)
        action_space = spaces.MultiDiscrete([9, 4])

        def reset(self, *, seed=None, options=None):
            return self.observation_space.sample(), {}

        def step(self, action):
            return self.observation_space.sample(), 0.0, False, False, {}

    algo = PPO("CnnPolicy", Frames(), n_steps=8, batch_size=8, device="cpu", seed=0,
               policy_kwargs={"features_extractor_class": PooledSmallCNN,
                              "features_extractor_kwargs": {"features_dim": 16, "channels": 4, "pool": 2}})
    return save_policy(algo, tmp_path / "policy.zip", {"observation": "rgb"}), algo


def test_policy_file_round_trip_predicts_the_same(tmp_path):
    import numpy as np

    from agents.policy_file import load_policy_file, read_spec

    path, algo = _tiny_policy(tmp_path)
    with zipfile.ZipFile(path) as z:
        assert sorted(z.namelist()) == ["policy.json", "weights.pt"]
    assert read_spec(path)["algo"] == "ppo" and read_spec(path)["meta"] == {"observation": "rgb"}
    obs = np.random.default_rng(0).integers(0, 256, (5, 16, 24, 3)).astype(np.uint8)
    policy = load_policy_file(path)
    assert (policy.predict(obs, deterministic=True)[0] == algo.predict(obs, deterministic=True)[0]).all()


def test_policy_file_naming_another_class_or_planting_weights_is_refused(tmp_path, marker):
    from agents.policy_file import UnsafePolicyError, load_policy_file

    path, _ = _tiny_policy(tmp_path)
    with zipfile.ZipFile(path) as z:
        spec, weights = json.loads(z.read("policy.json")), z.read("weights.pt")

    def write(name: str, spec: dict, weights: bytes) -> Path:
        out = tmp_path / name
        with zipfile.ZipFile(out, "w") as z:
            z.writestr("policy.json", json.dumps(spec))
            z.writestr("weights.pt", weights)
        return out

    bad_class = write("cls.zip", {**spec, "policy_class": {"class": "posix.system"}}, weights)
    with pytest.raises(UnsafePolicyError, match="posix.system"):
        load_policy_file(bad_class)
    buf = io.BytesIO()
    torch.save({"w": Planted(marker)}, buf)
    with pytest.raises(DatasetError, match="cannot be rebuilt"):
        load_policy_file(write("weights.zip", spec, buf.getvalue()))
    assert not marker.exists()
