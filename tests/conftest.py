"""Suite-wide test settings.

Tests run with one torch thread and passive OpenMP waiting: on a busy 2-core machine torch's default (2 threads,
spinning waits) made steps of the tiny models 5-25x slower. Subprocesses started by tests inherit the environment.
"""

import os
import sys
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("SDL_AUDIODRIVER", "dummy")

import pytest  # noqa: E402
import torch  # noqa: E402


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """One torch thread in every test, restored afterwards (a test may change it, e.g. train.threads=)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# ------------------------------------------------------------------------------------ shared data beside the repo
SHARED = Path(__file__).resolve().parents[1].parent / "shared"
LPC_SPRITES = SHARED / "data" / "lpc_sprites"  # the real LPC sheets (used in place, never copied)


def require_shared(path: Path, what: str) -> Path:
    """``path`` (under ``../shared``) when it exists; else skip the test with the reason, or fail it under CI=true.

    Outside CI a checkout without ``../shared`` still runs every other test; CI has ``shared/`` beside the clone,
    so a missing file there is a broken set-up, never a quiet skip.
    """
    if path.exists():
        return path
    reason = f"{what} not found at {path} (put the shared data folder beside this checkout: ../shared)"
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"CI=true: {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def lpc_sprites() -> Path:
    """The LPC sprite sheets in ``../shared/data/lpc_sprites`` (skip with a reason when missing; fail under CI)."""
    return require_shared(LPC_SPRITES, "the LPC sprite sheets")


# ------------------------------------------------------------------------------------ worlds for env/agent tests
# tests/envs/square_world.py: a hand-written "square world" model and tiny checkpoint writers (imported by path:
# tests/envs and tests/agents have no __init__.py, so that they do not shadow the envs/ and agents/ packages).
sys.path.insert(0, str(Path(__file__).resolve().parent / "envs"))
from square_world import SquareWorld, register_square_model, save_tiny_glass_checkpoint  # noqa: E402


@pytest.fixture
def square_model() -> SquareWorld:
    return SquareWorld()


@pytest.fixture
def square_checkpoint(tmp_path, monkeypatch) -> Path:
    """A square-world checkpoint loadable by ``worldmodel.models.load_world_model`` (model name "square")."""
    from worldmodel.checkpoint import save_checkpoint

    register_square_model(monkeypatch)
    return save_checkpoint(tmp_path / "square.pt", SquareWorld().checkpoint_payload())


@pytest.fixture(scope="session")
def glass_checkpoint(tmp_path_factory) -> Path:
    """An untrained tiny GLASS checkpoint (32x48)."""
    return save_tiny_glass_checkpoint(tmp_path_factory.mktemp("glass") / "tiny.pt")


@pytest.fixture(scope="session", params=["glass", "keypoint"])
def world_checkpoint(request, tmp_path_factory) -> Path:
    """An untrained tiny checkpoint (32x48) of each world model: GLASS and the keypoint model."""
    return save_tiny_glass_checkpoint(tmp_path_factory.mktemp(request.param) / "tiny.pt", model=request.param)


@pytest.fixture
def unwritable_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder nothing can be written into (outside the test's tmp_path): read-only for a normal user; root
    ignores permission bits, so there it is a path under a regular file (both fail with an OSError at mkdir or at
    the first write)."""
    tmp_path = tmp_path_factory.mktemp("unwritable")
    ro = tmp_path / "read-only"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        (ro / "probe").touch()
    except PermissionError:
        return ro
    (ro / "probe").unlink()
    ro.chmod(0o755)
    (tmp_path / "a-file").write_text("not a folder")
    return tmp_path / "a-file"
