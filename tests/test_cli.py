"""The `glassworld` console script's dispatch."""

import subprocess
import sys

import pytest

from worldmodel.cli import COMMANDS, main


def test_help_lists_every_command(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for name in COMMANDS:
        assert name in out


def test_unknown_command_is_one_clear_error(capsys):
    assert main(["frobnicate"]) == 2
    err = capsys.readouterr().err
    assert "unknown command 'frobnicate'" in err


def test_console_script_entry_point_runs():
    r = subprocess.run([sys.executable, "-m", "worldmodel.cli", "--help"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and "commands:" in r.stdout


# ------------------------------------------------------------------------------------------------ help for people
MARKUP = ("``", ":class:", ":func:", ":mod:", ":data:", ":meth:", "::", "**")


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_command_help_is_a_short_usage_with_examples(name, capsys):
    assert main([name, "--help"]) == 0
    out = capsys.readouterr().out
    lines = out.rstrip("\n").splitlines()
    assert len(lines) <= 40 and max(map(len, lines)) <= 100, f"{name} --help does not fit on one screen"
    assert not [m for m in MARKUP if m in out], f"{name} --help has markup"
    assert f"glassworld {name}" in lines[0] and "example" in out


def test_unknown_key_names_the_nearest_valid_key(capsys):
    assert main(["agent", "total_timestep=100"]) == 2
    assert "unknown key total_timestep; did you mean total_timesteps?" in capsys.readouterr().err
    assert main(["agent", "policy.lrr=1"]) == 2
    assert "unknown key policy.lrr; did you mean policy.lr?" in capsys.readouterr().err
    assert main(["train", "trian.steps=1"]) == 2
    assert "did you mean train.steps?" in capsys.readouterr().err
    assert main(["agent", "zzzz=1"]) == 2  # nothing near: the top-level keys and how to add one
    err = capsys.readouterr().err
    assert "unknown key zzzz; keys: env, checkpoint" in err and "+zzzz=" in err


def test_unknown_command_names_the_nearest(capsys):
    assert main(["trian"]) == 2
    assert "did you mean train?" in capsys.readouterr().err


def test_unknown_env_id_lists_every_glassworld_id(capsys):
    import envs

    assert main(["agent", "env=NoSuch-v0"]) == 2
    err = capsys.readouterr().err
    assert "unknown env 'NoSuch-v0'" in err
    for env_id in ["GlassWorld-v0", *envs.SHIPPED]:
        assert env_id in err  # the keypoint worlds too, not only Glass* ids


# ------------------------------------------------------------------------------------------------ envs and inspect
def test_envs_lists_installed_worlds_with_card_and_health(tmp_path, monkeypatch, capsys):
    import json

    import envs

    monkeypatch.setattr(envs, "CHECKPOINT_DIR", tmp_path)
    (tmp_path / "tennis.pt").write_bytes(b"x")  # installed, a card with a failed health check
    card = {"model": "glass", "preset": "cpu", "generator": {"game": "Tennis"}, "resolution": [64, 64],
            "steps": 12, "eval": {"split": "test", "pos_err": {"16": 2.25}, "mdr": 0.5},
            "health": {"healthy": False, "problems": ["agent_found 0.10 < 0.50"], "warnings": []}}
    (tmp_path / "tennis.json").write_text(json.dumps(card))
    (tmp_path / "breakout.pt").write_bytes(b"x")  # installed, an old card without health
    (tmp_path / "breakout.json").write_text(json.dumps({**card, "health": None, "generator": {"game": "Breakout"}}))
    assert main(["envs"]) == 0
    out = capsys.readouterr().out
    block = out.split("GlassTennis-v0", 1)[1].split("GlassBreakout-v0", 1)[0]
    assert "installed" in block and "glass (cpu); Tennis 64x64; 12 steps; test: pos_err@16 2.2 px, mdr 0.50" in block
    assert "health: unhealthy: agent_found 0.10 < 0.50" in block
    assert "health: unknown" in out.split("GlassBreakout-v0", 1)[1].split("GlassSprites-v0", 1)[0]
    assert "GlassSprites-v0" in out and "missing envs/checkpoints/sprites.pt" in out
    assert main(["envs", "extra"]) == 2


def _dataset(root, identities: int, per_identity: int = 2):
    import numpy as np

    from worldmodel.data.format import DatasetWriter

    w = DatasetWriter(root, source="test", height=8, width=8, fps=10)
    for i in range(identities * per_identity):
        w.write(f"v{i}", np.zeros((20, 8, 8, 3), np.uint8), split="train", identity=f"id{i % identities}")
    w.close()
    return root


def test_inspect_a_dataset_and_an_empty_split_error(tmp_path, capsys):
    from worldmodel.data import ClipConfig, ClipDataset, DatasetError

    root = _dataset(tmp_path / "ds", identities=2)
    assert main(["inspect", str(root)]) == 0
    out = capsys.readouterr().out
    assert "test, 8x8 at 10 fps, 4 videos, 80 frames" in out
    assert "train     4 videos       80 frames      2 identities" in out
    assert "test      0 videos        0 frames      0 identities  <- empty" in out
    with pytest.raises(DatasetError) as e:  # evaluating the empty split: what, why and the fix
        ClipDataset(root, "test", ClipConfig(clip_len=17))
    msg = str(e.value)
    assert "split 'test'" in msg and "is empty" in msg and "train: 4 videos of 2 identities" in msg
    assert "test: 0 videos of 0 identities" in msg and "more identities" in msg and "split=train" in msg
    assert "at least" not in msg


def test_inspect_a_checkpoint(glass_checkpoint, capsys):
    assert main(["inspect", str(glass_checkpoint)]) == 0
    out = capsys.readouterr().out
    assert f"checkpoint {glass_checkpoint}: glass" in out and "actions: 9 shifts (none, right" in out
    assert "health: unknown" in out


def test_inspect_errors_are_one_line(tmp_path, capsys):
    assert main(["inspect", str(tmp_path / "nope")]) == 2
    assert "does not exist" in capsys.readouterr().err
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    assert main(["inspect", str(tmp_path / "junk.pt")]) == 2
    assert "glassworld inspect: error:" in capsys.readouterr().err
    assert main(["inspect"]) == 2


# ------------------------------------------------------------------------------------------------ no machine paths
def test_portable_paths_are_relative_to_the_repo_or_home():
    from pathlib import Path

    from worldmodel.paths import REPO, portable_path, portable_paths

    assert portable_path(REPO / "runs" / "x" / "policy.zip") == "runs/x/policy.zip"
    assert portable_path(REPO.parent / "data" / "tennis64") == "../data/tennis64"  # a folder beside the repo
    home = portable_path(Path.home() / ".cache" / "w.pth")  # ~/.cache/w.pth (../... when home holds the repo)
    assert home.endswith(".cache/w.pth") and not home.startswith("/")
    assert portable_path("/nonexistent-root/x/y") == "/nonexistent-root/x/y"  # elsewhere: as given
    assert portable_path("runs/x") == "runs/x" and portable_path(None) is None
    card = {"dataset": str(REPO.parent / "data" / "t"), "reasons": {"fid": f"looked for {REPO}/a/b.pth, nothing"},
            "list": [str(REPO / "envs" / "m.pt"), 3], "url": "https://example.org/a/b"}
    assert portable_paths(card) == {"dataset": "../data/t", "reasons": {"fid": "looked for a/b.pth, nothing"},
                                    "list": ["envs/m.pt", 3], "url": "https://example.org/a/b"}


def test_committed_results_and_cards_carry_no_absolute_paths():
    import re
    from pathlib import Path

    from worldmodel.paths import REPO

    files = [*(REPO / "docs" / "results").rglob("*.json"), *(REPO / "docs" / "results").rglob("*.md"),
             *(REPO / "envs" / "checkpoints").glob("*.json"), *(REPO / "envs" / "checkpoints").glob("*.md")]
    assert files
    absolute = re.compile(r"[\"`(]/[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+")  # as the repository's before-stop hook
    bad = [str(Path(f).relative_to(REPO)) for f in files if absolute.search(Path(f).read_text())]
    assert bad == [], f"absolute machine paths in {bad}"
