"""``glassworld play``: play a dreamed game with the keyboard in a pygame window (or headless, scripted).

    glassworld play GlassTennis-v0                      # a shipped id (``envs.available_ids()``)
    glassworld play checkpoint=runs/x/model.pt          # any checkpoint (GlassWorld-v0)
    glassworld play GlassTennis-v0 policy=random        # watch an agent; any game key takes over, P gives back
    glassworld play checkpoint=m.pt --headless keys="right*20 1 noop*5" screenshot=shot.png record=play.mp4

Keys (window): arrows / WASD = global shift (two keys held = diagonal, none held = no move); 1..n = the n local
codes *in use*, in order (the model card's code meanings, shown in the HUD and the help; codes it calls "unused"
get no key; the code stays until changed); 0 = the *idle* code (below); Backspace = reset; Space = pause; Tab =
the real game side by side (models trained on Atari): the real game starts and the dream starts from its screen
and target, both receive the same (shift, code) (the real game's as a joystick action, by the map learned from
labelled real transitions, cached beside the checkpoint), and both restart together; R = re-sync: the dream
restarts from the real game's current screen (the real game goes on); V = start/stop recording (mp4 via PyAV,
or GIF when the path ends in .gif); H = help overlay; K = keypoint overlay on/off (keypoint models: each keypoint
a circle, brighter for larger intensity mu; on by default); P = hand control back to the policy; F12 =
screenshot; Esc / Q = quit. Other settings: ``device=auto|cpu|cuda``, ``fps=N``,
``scale=N``, ``task=reach|track|none``, ``seed=N``, ``real=true`` (start side by side), ``game=Tennis``,
``threads=N`` (torch CPU threads).

**The idle code (key 0).** Codes are learned, so none of them means "do nothing" by construction. When the
model's code meanings name one (a meaning whose first word is NOOP / NONE / IDLE / STAND, e.g. "NOOP 74%" from
evaluation against the true Atari actions), key 0 selects it (the most confident one when several do); otherwise
key 0 selects the first code in use. The viewer starts on the idle code. :func:`idle_code` implements this.

**Headless** (``--headless``: the SDL dummy video driver, no window) replays a script ``keys="..."``: one token
per frame, space separated; a token is ``+``-joined parts, optionally repeated with ``*N``:
``up down left right`` (held this frame; ``up+left`` = diagonal), a digit (select that code key), ``noop``
(nothing held), ``reset``, ``pause`` (toggle), ``tab``, ``sync`` (R), ``record`` (toggle), ``help`` (toggle),
``keypoints`` (toggle the overlay), ``policy``
(give control back to the policy), ``quit``. ``frames=N`` runs N frames (default: the script's length, or 100).
Headless runs as fast as it can unless ``fps=N`` is given; a window runs at ``fps`` (default 15), one model
step per frame.

The viewer only drives a Gymnasium env (``env.unwrapped.action_meanings``, ``MultiDiscrete([n_shifts, K])``
actions, ``render()`` rgb_array, ``info`` position/target/distance) and, for Tab, an optional real-game env
with the same spaces; it knows nothing about the model behind them (building the real game and the planner is
left to :mod:`envs.real` and :mod:`agents.planner`). What the person pressed becomes an action
through pure functions (:func:`parse_keys`, :func:`shift_index`, :func:`code_for_digit`) so tests need no window.

Modules: :mod:`agents.play_config` (settings, errors), :mod:`agents.play_input` (keys -> actions),
:mod:`agents.play_envs` (the dream, the policy, the real game), :mod:`agents.play_viewer` (the loop),
:mod:`agents.play_draw` (frames, HUD, help), :mod:`agents.play_record` (mp4/GIF); this module runs a session.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

# the viewer's parts, split by responsibility; ``agents.play`` stays the one import for users and tests
from .play_config import DEFAULT_FPS, HEADLESS_FRAMES, PlayConfig, PlayError, parse_args
from .play_envs import Policy, RealPane, check_env_api, glassworld_ids, make_env, make_policy, make_real_env
from .play_input import COMMANDS, DIRECTIONS, NOOP, FrameInput, code_for_digit, idle_code, parse_keys, shift_index
from .play_record import Recorder
from .play_viewer import PlayResult, Viewer, check_display, import_pygame

__all__ = ["COMMANDS", "DEFAULT_FPS", "DIRECTIONS", "HEADLESS_FRAMES", "NOOP", "FrameInput", "PlayConfig",
           "PlayError", "PlayResult", "Policy", "RealPane", "Recorder", "Viewer", "check_display", "check_env_api",
           "cli_main", "code_for_digit", "glassworld_ids", "idle_code", "import_pygame", "make_env", "make_policy",
           "make_real_env", "parse_args", "parse_keys", "play", "shift_index"]

def play(cfg: PlayConfig, env: Any = None, policy: Policy | None = None,
         real_factory: Callable[[], Any] | None = None) -> PlayResult:
    """Run a play session. ``env`` (made with render_mode="rgb_array") replaces :func:`make_env`; ``policy``
    replaces ``cfg.policy``; ``real_factory`` replaces :func:`make_real_env` for Tab."""
    script = parse_keys(cfg.keys) if cfg.keys else None  # bad scripts fail before anything opens
    if cfg.threads > 0:
        import torch

        torch.set_num_threads(cfg.threads)
    import_pygame(cfg.headless)  # no display / no pygame: say so before loading a model
    own_env = env is None
    env = make_env(cfg) if own_env else env
    try:
        if policy is None and cfg.policy:
            policy = make_policy(cfg.policy, env, cfg.seed)
        if real_factory is None:
            real_factory = lambda: make_real_env(env, cfg.game)
        frames = cfg.frames
        if cfg.headless and frames <= 0:
            frames = len(script) if script else HEADLESS_FRAMES
        viewer = Viewer(env, cfg, policy, real_factory)
        try:
            return viewer.run(script, frames)
        finally:
            viewer.close()
    finally:
        if own_env:
            env.close()


def cli_main(argv: list[str]) -> int:
    """``glassworld play ...``: see the module docstring (``--help``: the short usage and the ids here)."""
    if any(a in ("-h", "--help", "help") for a in argv):
        from worldmodel.cli import usage_of

        print(usage_of("play"))
        print(glassworld_ids())
        return 0
    try:
        cfg = parse_args(argv)
        result = play(cfg)
    except PlayError as e:
        print(f"glassworld play: {e}", file=sys.stderr)
        return 2
    print(f"played {result.frames} frames, {result.steps} steps, {result.fps:.1f} fps"
          + (f"; screenshot {result.screenshot}" if result.screenshot else "")
          + "".join(f"; recording {r}" for r in result.recordings))
    return 0


if __name__ == "__main__":
    sys.exit(cli_main(sys.argv[1:]))
