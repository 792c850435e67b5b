"""``glassworld play`` settings: :class:`PlayConfig`, its ``key=value`` parser and :class:`PlayError`."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any


@dataclass
class PlayConfig:
    """Everything ``glassworld play`` takes (``key=value`` on the command line)."""

    env: str | None = None  # registered id; None = GlassWorld-v0 with checkpoint=
    checkpoint: str | None = None  # a checkpoint file (for GlassWorld-v0, or to override an id's file)
    task: str | None = None  # reach | track | none; None = the id's default (reach)
    device: str = "auto"  # cuda when there is one, else cpu
    fps: float | None = None  # frames (= model steps) per second; None = 15 in a window, unlimited headless
    scale: int = 0  # integer zoom of the frame; 0 = the largest that keeps the window ~800 px wide
    headless: bool = False  # SDL dummy video driver: no window (tests, CI)
    keys: str = ""  # scripted input, one token per frame (see the module docstring)
    frames: int = 0  # stop after this many frames; 0 = until quit (window) / the script's length or 100 (headless)
    screenshot: str | None = None  # save the last frame of the window here (PNG)
    record: str | None = None  # record the window from the first frame to the end (.mp4 or .gif)
    policy: str | None = None  # PATH | planner | random: an agent plays until a game key is pressed
    seed: int | None = None  # env seed (start frame and target)
    real: bool = False  # start with the real game side by side (as if Tab was pressed)
    game: str | None = None  # real game override (Tennis, Breakout) for models whose card does not name one
    allow_unhealthy: bool = False  # play a world whose model card records failed health checks
    threads: int = 0  # torch CPU threads; 0 = torch's default (1 is often fastest for one small env on a busy CPU)


DEFAULT_FPS = 15.0  # the frame rate of the data (Atari at frame skip 4), so a dream runs at real speed
HEADLESS_FRAMES = 100  # frames of a headless run with neither keys= nor frames=


class PlayError(ValueError):
    """Bad input to ``glassworld play`` (unknown id, missing checkpoint, no display, bad key script)."""



def _coerce(name: str, raw: str, typ: Any) -> Any:
    t = str(typ)
    if raw.lower() in ("none", "null", "") and "None" in t:
        return None
    try:
        if "bool" in t:
            if raw.lower() in ("1", "true", "yes", "on"):
                return True
            if raw.lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError(raw)
        if "int" in t:
            return int(raw)
        if "float" in t:
            return float(raw)
    except ValueError:
        raise PlayError(f"{name}={raw!r}: expected {t.replace(' | None', '')}") from None
    return raw


def parse_args(argv: list[str]) -> PlayConfig:
    """``[ENV_ID] [key=value ...] [--headless]`` -> :class:`PlayConfig` (one PlayError for bad input)."""
    fields = {f.name: f.type for f in dataclasses.fields(PlayConfig)}
    values: dict[str, Any] = {}
    for arg in argv:
        if arg in ("--headless", "headless"):
            values["headless"] = True
        elif arg.startswith("--") and "=" in arg:
            key, _, raw = arg[2:].partition("=")
            values[key.replace("-", "_")] = raw
        elif "=" in arg:
            key, _, raw = arg.partition("=")
            values[key] = raw
        elif arg.startswith("-"):
            raise PlayError(f"unknown option {arg!r}; options are key=value ({', '.join(fields)}) and --headless")
        elif "env" in values:
            raise PlayError(f"two env ids given ({values['env']!r} and {arg!r}); play one at a time")
        else:
            values["env"] = arg
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise PlayError(f"unknown setting(s) {unknown}; known: {', '.join(fields)}")
    out = {k: v if not isinstance(v, str) or k == "env" else _coerce(k, v, fields[k]) for k, v in values.items()}
    cfg = PlayConfig(**out)
    if cfg.fps is not None and cfg.fps <= 0:
        raise PlayError(f"fps={cfg.fps}: must be > 0")
    if cfg.scale < 0 or cfg.frames < 0:
        raise PlayError("scale and frames must be >= 0")
    return cfg
