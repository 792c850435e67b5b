"""The `glassworld` console script's dispatch."""

import subprocess
import sys

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
