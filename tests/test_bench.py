"""The benchmarks package (bench/): `glassworld bench train|env|play` and scripts/bench_*.py, with tiny untrained
models and sub-second timing budgets; one config style, one memory measure, one default world."""

from __future__ import annotations

import dataclasses
import json
import os
import runpy
import subprocess
import sys
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from worldmodel.cli import main

ROOT = Path(__file__).resolve().parents[1]


def _pythonpath() -> str:
    """The repository first, then whatever PYTHONPATH already holds (where the dependencies may live)."""
    return os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))


TINY_MODEL = ["checkpoint=null", "preset=tiny", "height=32", "width=48"]
TINY_TRAIN = ["model.preset=tiny", "bench.steps=1", "bench.warmup=0", "bench.threads=1"]


# ------------------------------------------------------------------------------------------------ train
def test_bench_train_writes_json(tmp_path, capsys):
    out = tmp_path / "bench.json"
    assert main(["bench", "train", *TINY_TRAIN, f"out={out}"]) == 0
    result = json.loads(out.read_text())
    assert result["bench"] == "train" and result["preset"] == "tiny" and (result["height"], result["width"]) == (32, 32)
    assert result["it_per_s"] > 0 and result["frames_per_s"] == pytest.approx(result["it_per_s"] * 2 * 4)
    assert result["peak_rss_mb"] > 50 and "reference" not in result
    assert result["train_step"] == 2 and result["precision"] == "float32"  # tiny: the first joint step is 2
    assert json.loads(capsys.readouterr().out)["s_per_step"] == result["s_per_step"]
    assert main(["bench", "train", *TINY_TRAIN, "bench.precision=bfloat16", f"out={out}"]) == 0
    assert json.loads(out.read_text())["precision"] == "bfloat16"
    capsys.readouterr()
    assert main(["bench", "train", "model.preset=tiny", "bench.precision=half"]) == 2
    assert "bench.precision must be one of ['float32', 'bfloat16']" in capsys.readouterr().err


def test_bench_train_times_the_trainers_own_step_scheduler_included(monkeypatch, capsys):
    """Every timed (and warm-up) iteration is worldmodel.train.optimisation_step, which steps the scheduler."""
    import worldmodel.train as trainer

    real, calls = trainer.optimisation_step, []

    def spy(losses, model, optimizer, scheduler, *args, **kwargs):
        out = real(losses, model, optimizer, scheduler, *args, **kwargs)
        calls.append(scheduler.last_epoch)
        return out

    monkeypatch.setattr(trainer, "optimisation_step", spy)
    assert main(["bench", "train", "model.preset=tiny", "bench.steps=2", "bench.warmup=1", "bench.threads=1"]) == 0
    assert calls == [1, 2, 3]  # one trainer step per iteration, the scheduler stepped by each
    assert json.loads(capsys.readouterr().out)["steps"] == 2


def test_training_runs_the_same_step_function(tmp_path, monkeypatch):
    """The trainer's loop calls worldmodel.train.optimisation_step once per step (what bench train times)."""
    import numpy as np

    import worldmodel.train as trainer
    from worldmodel.data.format import DatasetWriter

    rng = np.random.default_rng(0)
    writer = DatasetWriter(tmp_path / "data", source="synthetic", height=32, width=32, fps=10)
    for i in range(3):
        writer.write(f"v{i}", rng.integers(0, 256, (12, 32, 32, 3), dtype=np.uint8), split="train" if i < 2 else "val")
    writer.close()
    real, calls = trainer.optimisation_step, []

    def spy(losses, model, optimizer, scheduler, frames, step, *args):
        calls.append(step)
        return real(losses, model, optimizer, scheduler, frames, step, *args)

    monkeypatch.setattr(trainer, "optimisation_step", spy)
    metrics = trainer.train(trainer.compose_run_config([
        f"data.path={tmp_path / 'data'}", "model.preset=tiny", f"run_dir={tmp_path / 'run'}", "train.steps=2",
        "train.batch_size=2", "data.workers=0", "train.progress=false", "train.threads=1"]))
    assert metrics["step"] == 2 and calls == [0, 1]


def test_bench_train_reports_the_one_peak_memory_measure(monkeypatch, capsys):
    import bench.train

    monkeypatch.setattr(bench.train, "peak_rss_mb", lambda: 1234.5)
    assert main(["bench", "train", *TINY_TRAIN]) == 0
    assert json.loads(capsys.readouterr().out)["peak_rss_mb"] == 1234.5


def test_peak_rss_is_the_process_own_not_inherited_from_its_parent():
    """A process started by a big one reports its own peak (VmHWM); ru_maxrss would report the parent's."""
    ballast = bytearray(400 * 2**20)
    ballast[::4096] = b"\1" * len(ballast[::4096])  # touch every page: the parent's RSS is now > 400 MB
    code = "from bench.common import peak_rss_mb; print(peak_rss_mb())"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": _pythonpath()})
    child = float(done.stdout.strip())
    from bench.common import peak_rss_mb

    parent = peak_rss_mb()
    del ballast
    assert 5 < child < parent - 200, (child, parent)  # ru_maxrss: the child would report >= the parent's peak


def test_bench_refuses_an_unwritable_out_before_running(tmp_path, capsys, monkeypatch):
    import bench.train

    ran = []
    monkeypatch.setattr(bench.train, "run_bench", lambda cfg: ran.append(cfg) or {})
    (tmp_path / "a-file").write_text("not a folder")
    out = tmp_path / "a-file" / "bench.json"
    assert main(["bench", "train", "model.preset=tiny", f"out={out}"]) == 2
    assert f"out= {out} is not writable" in capsys.readouterr().err and not ran


def test_bench_json_holds_no_machine_paths(tmp_path, capsys, monkeypatch):
    import bench.train

    monkeypatch.setattr(bench.train, "run_bench", lambda cfg: {"checkpoint": str(ROOT / "envs" / "x.pt")})
    out = tmp_path / "bench.json"
    assert main(["bench", "train", "model.preset=tiny", f"out={out}"]) == 0
    assert json.loads(out.read_text())["checkpoint"] == "envs/x.pt"
    assert json.loads(capsys.readouterr().out)["checkpoint"] == "envs/x.pt"


# ------------------------------------------------------------------------------------------------ env, play
def test_bench_env_writes_dream_and_ale_speeds(tmp_path, capsys):
    out = tmp_path / "env.json"
    rc = main(["bench", "env", *TINY_MODEL, "num_envs=[1,2]", "devices=[cpu]", "seconds=0.2", "ale_seconds=0.2",
               "threads=1", f"out={out}"])
    assert rc == 0, capsys.readouterr().err
    r = json.loads(out.read_text())
    assert r["bench"] == "env" and r["config"]["num_envs"] == [1, 2] and r["config"]["preset"] == "tiny"
    ale = r["ale_tennis"]["gym_v5_steps_per_s"]
    assert ale > 0 and r["ale_tennis"]["glassworld_real_env_steps_per_s"] > 0
    for n in ("1", "2"):
        d = r["dream"]["cpu"][n]
        assert d["env_steps_per_s"] > 0 and d["timed_vector_steps"] >= 3
        # the timed run honoured the budget: its steps took at least seconds=0.2 (not a few steps then a guess)
        assert d["timed_vector_steps"] * d["ms_per_vector_step"] / 1000 >= 0.2 * 0.95
        assert r["ratios_vs_gym_ale_tennis"]["cpu"][n] > 0
    assert r["target"]["met"] is None  # N=64 was not timed
    flops = r["flops"]  # counted, not timed: the networks a step runs, per env
    assert {"Encoder", "Dynamics", "Renderer"} <= set(flops["by_part"])
    assert 0 < sum(flops["by_part"].values()) <= flops["mflop_per_env_step"] * 1.001
    mem = r["single_env_memory"]
    assert mem["steps"] == 200 and 0 < mem["rss_after_imports_mb"] <= mem["peak_rss_mb"]
    assert isinstance(r["memory_target"]["met"], bool)
    assert json.loads(capsys.readouterr().out)["out"] == str(out)


def test_bench_play_writes_viewer_speeds(tmp_path, capsys):
    out = tmp_path / "play.json"
    rc = main(["bench", "play", *TINY_MODEL, "frames=6", "threads=[1]", f"out={out}"])
    assert rc == 0, capsys.readouterr().err
    r = json.loads(out.read_text())
    assert r["bench"] == "play" and set(r["play"]) == {"threads_1"}
    m = r["play"]["threads_1"]
    assert m["frames"] == 6 and m["model_steps"] >= 6 and m["play_fps"] > 0 and m["env_step_fps"] > 0
    assert m["draw_only_fps"] > 0 and "tiny" in m["model"] and isinstance(m["meets_60fps"], bool)
    assert r["machine"]["cpus"] >= 1


def test_bench_play_script_takes_the_cli_keys(tmp_path):
    script = runpy.run_path(str(ROOT / "scripts" / "bench_play.py"))["main"]
    out = tmp_path / "play.json"
    assert script([*TINY_MODEL, "frames=3", "threads=1", f"out={out}"]) == 0
    r = json.loads(out.read_text())
    assert r["bench"] == "play" and r["play"]["threads_1"]["frames"] == 3 and r["config"]["height"] == 32
    assert script(["--frames", "3"]) == 2  # one config style: key=value, as glassworld bench


def test_bench_errors_are_one_clear_line(capsys):
    def one_line_error(argv: list[str]) -> str:
        assert main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1, err
        return err

    assert "unknown key nope" in one_line_error(["bench", "env", "nope=1"])
    assert "unknown key nope" in one_line_error(["bench", "play", "+nope=1"])  # past Hydra, caught by settings()
    assert "unknown key bench.stesp; did you mean bench.steps?" in one_line_error(["bench", "train", "bench.stesp=1"])
    assert "neither a file nor a registered env id" in one_line_error(["bench", "env", "checkpoint=NoSuchWorld-v0"])
    assert "frames must be >= 1" in one_line_error(["bench", "play", "frames=0"])
    assert "num_envs must be" in one_line_error(["bench", "env", "num_envs=[0]"])
    assert "unknown benchmark 'trian'; did you mean train?" in one_line_error(["bench", "trian"])


def test_bench_help_names_every_benchmark_and_its_config():
    from bench import BENCHES
    from bench.cli import usage
    from worldmodel.cli import usage_of

    helps = {"glassworld bench --help": usage_of("bench"), "bench.cli usage": usage()}
    for where, text in helps.items():
        for name, spec in BENCHES.items():
            assert name in text, (where, name)
            assert (ROOT / "configs" / f"{spec.config_name}.yaml").is_file()
            assert spec.config_name == "config" or f"configs/{spec.config_name}.yaml" in text, (where, name)


# ------------------------------------------------------------------------------------------------ one way
def test_env_and_play_time_the_one_default_world():
    """The one default checkpoint rule: both benchmarks, from the dataclass or the YAML, time GlassTennis-v0's
    shipped file; checkpoint=null is an untrained model."""
    import gymnasium as gym

    from bench import env, play
    from bench.common import DEFAULT_CHECKPOINT
    from worldmodel.config import compose, plain

    shipped = str(gym.spec(DEFAULT_CHECKPOINT).kwargs["checkpoint"])
    for module, config_name in ((env, "bench_env"), (play, "bench_play")):
        composed = {k: v for k, v in plain(compose([], config_name)).items() if k != "out"}  # out is the CLI's
        assert module.config_from(composed).checkpoint == shipped
        assert module.config_from({}).checkpoint == shipped  # the dataclass default agrees
        assert module.config_from({"checkpoint": None}).checkpoint is None
    breakout = str(gym.spec("GlassBreakout-v0").kwargs["checkpoint"])
    assert env.config_from({"checkpoint": "GlassBreakout-v0"}).checkpoint == breakout


@pytest.mark.parametrize("name", ["train", "env", "play", "data"])
def test_each_yaml_holds_exactly_its_dataclass_defaults(name):
    """One config style: configs/<bench>.yaml is the dataclass, key for key and default for default."""
    import importlib

    from bench import BENCHES

    spec = BENCHES[name]
    yaml = OmegaConf.to_container(OmegaConf.load(ROOT / "configs" / f"{spec.config_name}.yaml"))
    module = importlib.import_module(spec.module)
    if name == "train":  # the bench.* section of the root config
        yaml, config = yaml["bench"], module.BenchSettings()
    else:
        yaml.pop("out")  # the CLI's, not the benchmark's
        config = getattr(module, f"Bench{name.title()}Config")()
    assert yaml == dataclasses.asdict(config)


def test_bench_sits_above_the_three_packages():
    """worldmodel <- envs <- agents <- bench: no module of the three imports bench, and the train benchmark
    (and the CLI's listing) loads neither envs, agents, gymnasium nor stable-baselines3."""
    import ast

    for package in ("worldmodel", "envs", "agents"):
        for path in (ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                         [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else [])
                assert not any(n == "bench" or n.startswith("bench.") for n in names), path
    code = ("import sys, bench.cli, bench.train; assert {'env', 'play', 'train'} <= set(bench.BENCHES); "
            "bad = [m for m in ('envs', 'agents', 'gymnasium', 'stable_baselines3') if m in sys.modules]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True, env={**os.environ, "PYTHONPATH": _pythonpath()}, cwd=ROOT)


def test_one_settings_helper_names_the_nearest_key_everywhere():
    """worldmodel.config.settings builds the bench configs, train's data/train sections, eval's and the agent's
    (every section): a key Hydra lets through (+KEY=...) is one error naming the nearest valid key."""
    from agents.train import AgentConfig
    from worldmodel.config import compose, settings
    from worldmodel.data.format import DatasetError
    from worldmodel.evaluate import EvalConfig
    from worldmodel.train import TrainRunConfig

    @dataclasses.dataclass
    class Section:
        steps: int = 1
        nested: dict | None = None

    assert settings(Section, {"steps": 3}, "s", nested={"a": 1}) == Section(3, {"a": 1})
    with pytest.raises(DatasetError, match=r"unknown key s\.stesp; did you mean s\.steps\?"):
        settings(Section, {"stesp": 3}, "s")
    with pytest.raises(DatasetError, match=r"unknown key s\.nested"):  # a field the caller builds itself
        settings(Section, {"nested": {}}, "s", nested=None)
    cases = [
        (lambda: AgentConfig.from_dict({"policy": {"lrr": 1}}), r"unknown key policy\.lrr; did you mean policy\.lr\?"),
        (lambda: AgentConfig.from_dict({"final_eval": {"mapping": {"stepz": 1}}}),
         r"unknown key final_eval\.mapping\.stepz; did you mean final_eval\.mapping\.steps\?"),
        (lambda: EvalConfig.from_omegaconf(compose(["+eval.clps=3"], "eval")), r"unknown key eval\.clps; did you mean"),
        (lambda: TrainRunConfig.from_omegaconf(compose(["+train.stesp=3"])), r"unknown key train\.stesp; did you"),
    ]
    for build, message in cases:
        with pytest.raises(DatasetError, match=message):
            build()


def test_bench_data_times_both_generators(tmp_path, capsys):
    out = tmp_path / "data.json"
    script = runpy.run_path(str(ROOT / "scripts" / "bench_data.py"))["main"]
    assert script(["atari_games=[Tennis]", "atari_episodes=1", "atari_max_steps=8", "sprites_videos=2",
                   "sprites_per_sprite=1", "sprites_workers=[1]", f"lpc_dir={tmp_path / 'no-sheets'}",
                   f"out={out}"]) == 0
    r = json.loads(out.read_text())
    assert r["bench"] == "data" and set(r["atari"]) >= {"Tennis"} and "Breakout" not in r["atari"]
    tennis = r["atari"]["Tennis"]
    assert tennis["frames"] >= 8 and tennis["frames_per_s"] > 0 and tennis["mb_per_1000_frames"] > 0
    assert r["sprites"]["lpc"].startswith("skipped: no LPC sheets at")
    procedural = r["sprites"]["procedural"]
    assert procedural["frames_per_s_w1"] > 0 and procedural["render_frames_per_s"] > 0
    capsys.readouterr()
    assert main(["bench", "data", "only=[video]"]) == 2
    assert "only must list some of ['atari', 'sprites']" in capsys.readouterr().err
