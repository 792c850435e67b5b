"""Fixtures for agent tests: the square world of tests/envs and a tiny GLASS checkpoint."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "envs"))
from square_world import SquareWorld, register_square_model, save_tiny_glass_checkpoint  # noqa: E402


@pytest.fixture
def square_model() -> SquareWorld:
    return SquareWorld()


@pytest.fixture
def square_checkpoint(tmp_path, monkeypatch) -> Path:
    from worldmodel.checkpoint import save_checkpoint

    register_square_model(monkeypatch)
    return save_checkpoint(tmp_path / "square.pt", SquareWorld().checkpoint_payload())


@pytest.fixture(scope="session")
def glass_checkpoint(tmp_path_factory) -> Path:
    return save_tiny_glass_checkpoint(tmp_path_factory.mktemp("glass") / "tiny.pt")


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Tiny models run fastest on one thread, above all on a busy machine; restored after each test."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
