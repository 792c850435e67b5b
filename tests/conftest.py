"""Suite-wide test settings.

Tests run with one torch thread and passive OpenMP waiting: on a busy 2-core machine torch's default (2 threads,
spinning waits) made steps of the tiny models 5-25x slower. Subprocesses started by tests inherit the environment.
"""

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("SDL_AUDIODRIVER", "dummy")

import pytest  # noqa: E402
import torch  # noqa: E402


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread():
    torch.set_num_threads(1)
    yield
