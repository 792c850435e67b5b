"""Helpers for the kill -9 resume tests of ``glassworld data ...``: run a command, kill it mid-run, compare folders."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _pythonpath() -> str:
    """The repository first, then whatever PYTHONPATH already holds (where the dependencies may live)."""
    return os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))


# `glassworld data ...` with a pause after every finished video, so that a kill lands between two videos of a
# short run (the videos are small to keep the test fast; without the pause the run could end before the kill)
_SLOW_CLI = """
import sys, time
import worldmodel.data.format as fmt
_write = fmt.DatasetWriter.write
def write(self, *args, **kwargs):
    path = _write(self, *args, **kwargs)
    time.sleep(float(sys.argv[1]))
    return path
fmt.DatasetWriter.write = write
from worldmodel.data.cli import cli_main
sys.exit(cli_main(sys.argv[2:]))
"""


def run_and_kill(argv: list[str], out: Path, pause: float = 1.0, timeout: float = 120.0) -> int:
    """Start ``glassworld data ARGV`` (writing into ``out``), SIGKILL it as soon as its first video file exists,
    and return how many complete video files it left. Fails when the run ended before it could be killed."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": _pythonpath()}
    proc = subprocess.Popen([sys.executable, "-c", _SLOW_CLI, str(pause), *argv], cwd=REPO, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True)
    videos = out / "videos"
    deadline = time.monotonic() + timeout
    try:
        while proc.poll() is None and time.monotonic() < deadline:
            if videos.is_dir() and any(videos.glob("*.npz")):
                break
            time.sleep(0.01)
        os.killpg(proc.pid, signal.SIGKILL)  # the group: also worker processes, if any
    except ProcessLookupError:
        pass
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL, f"the run ended ({proc.returncode}) before the kill: {err[-2000:]}"
    return len(list(videos.glob("*.npz")))


def folder_bytes(root: Path) -> dict[str, bytes]:
    """{relative path: bytes} of every file under ``root`` (manifest.json and videos/*.npz)."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def assert_same_files(resumed: Path, reference: Path) -> None:
    """Every file of the two dataset folders is byte-for-byte identical, and they hold the same files."""
    a, b = folder_bytes(resumed), folder_bytes(reference)
    assert sorted(a) == sorted(b), f"different files: {sorted(set(a) ^ set(b))}"
    differ = [name for name in a if a[name] != b[name]]
    assert not differ, f"files differ between the resumed and the uninterrupted run: {differ}"
