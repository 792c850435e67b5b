"""The ``glassworld`` console script: one subcommand per job.

Each subcommand lives in its own module and exposes ``cli_main(argv: list[str]) -> int``; modules are
imported only when their subcommand runs, so ``worldmodel`` never imports gymnasium or stable-baselines3
itself (``agent``/``play`` resolve to ``agents.*`` by name). Subcommands configured by Hydra take
``key=value`` overrides (``data.path=DIR model=glass model.preset=cpu train.steps=N run_dir=DIR
device=auto seed=N``). ``COMMAND --help`` prints the short usage of :data:`HELP` (people, not docstrings).
"""

from __future__ import annotations

import difflib
import importlib
import logging
import sys

# name -> (module, one-line help). Only implemented commands are listed.
COMMANDS: dict[str, tuple[str, str]] = {
    "data": ("worldmodel.data.cli", "make a dataset: `data atari|sprites|videos ...` (see `data --help`)"),
    "world": ("worldmodel.world", "video -> a playable, health-checked world in one command: `world IN OUT`"),
    "train": ("worldmodel.train", "train a world model: `train data.path=DIR model.preset=cpu train.steps=N ...`"),
    "eval": ("worldmodel.evaluate", "score a checkpoint: `eval checkpoint=PATH data.path=DIR out=FILE.json ...`"),
    "bench": ("bench.cli", "measure speed as JSON: `bench train|env|play|data [key=value ...] [out=FILE.json]`"),
    "play": ("agents.play", "play a dream with the keyboard: `play GlassTennis-v0 | checkpoint=PATH [--headless ...]`"),
    "agent": ("agents.train", "train an SB3 agent in a dream: `agent env=ID checkpoint=PATH algo=ppo n_envs=N ...`"),
    "upgrade": ("worldmodel.upgrade", "re-save older checkpoints in the safe format: `upgrade PATH`"),
    "agent-eval": ("agents.evaluate", "play a policy in the dream and the real game: "
                                      "`agent-eval policy=PATH|planner|random env=ID real=true episodes=N`"),
    "envs": ("agents.catalog", "list the installed worlds: model card summary and health"),
    "inspect": ("worldmodel.describe", "summarise a dataset folder or a checkpoint file: `inspect PATH`"),
}

# `glassworld COMMAND --help`: a short usage with examples, one screen each (`upgrade` and `data SOURCE --help`
# print their own argparse help).
HELP: dict[str, str] = {
    "data": """usage: glassworld data atari|sprites|videos [--flags]

Make a dataset folder (manifest.json, one .npz per video; resumable). `data SOURCE --help`: flags.

examples:
  glassworld data atari --game Tennis --episodes 60 --out data/tennis64 --size 64x64 --seed 0
  glassworld data sprites --out data/sprites_proc --videos 600           # procedural W-Sprites
  glassworld data sprites --out data/lpc --videos 600 --sprites-dir ../shared/data/lpc_sprites
  glassworld data videos --in my_videos/ --out data/mine --size 96x128 --fps 10""",
    "train": """usage: glassworld train [key=value ...]

Train a world model (GLASS or the keypoint model) on a dataset folder (resumable; TensorBoard).

examples:
  glassworld train data.path=data/tennis64 model.preset=cpu train.steps=3000 run_dir=runs/tennis
  glassworld train model=keypoint data.path=data/tennis64 model.preset=cpu run_dir=runs/kp
  glassworld train resume=true run_dir=runs/tennis           # continue where it stopped
  glassworld train data.path=data/tennis64 init_from=runs/tennis/checkpoint.pt run_dir=runs/ft

common keys: data.path=DIR  model=glass|keypoint  model.preset=tiny|cpu|paper  train.steps=N
             train.batch_size=B  run_dir=DIR  device=auto|cpu|cuda  seed=N  resume=true
all keys and defaults: configs/config.yaml, configs/model/*.yaml (add a new key with +key=value)""",
    "eval": """usage: glassworld eval checkpoint=PATH data.path=DIR [key=value ...]

Score a world model on the val or test split of a dataset and write the figures as JSON.

examples:
  glassworld eval checkpoint=runs/tennis/checkpoint.pt data.path=data/tennis64 out=eval.json
  glassworld eval checkpoint=envs/checkpoints/tennis.pt data.path=data/tennis64 split=val

common keys: split=val|test  eval.clips=N  eval.clip_len=T  out=FILE.json  device=auto|cpu|cuda
all keys and defaults: configs/eval.yaml""",
    "bench": """usage: glassworld bench train|env|play|data [key=value ...] [out=FILE.json]

Measure speed (and memory) and write it as JSON.

benchmarks:
  train  training it/s, frames/s and peak RSS (synthetic data)
  env    dream env steps/s at N = 1..256 vs ALE Tennis, and one env's peak RSS
  play   frames/s of the `glassworld play` loop, headless
  data   frames/s and MB per 1000 frames of `glassworld data atari|sprites`

examples:
  glassworld bench train model.preset=cpu out=runs/bench_train.json
  glassworld bench env out=runs/bench_env.json   # GlassTennis-v0 steps/s, N = 1..256, vs ALE
  glassworld bench env checkpoint=PATH threads=1
  glassworld bench play frames=300 out=runs/bench_play.json
  glassworld bench data only=[atari] out=runs/bench_data.json

all keys and defaults: configs/config.yaml (bench.*), configs/bench_env.yaml,
configs/bench_play.yaml, configs/bench_data.yaml""",
    "play": """usage: glassworld play [ENV_ID] [key=value ...] [--headless]

Play a world with the keyboard in a pygame window (or headless, from a key script).

examples:
  glassworld play GlassTennis-v0
  glassworld play checkpoint=runs/tennis/checkpoint.pt policy=planner
  glassworld play GlassTennis-v0 --headless keys="right*20 1 noop*5" screenshot=shot.png

keys: arrows/WASD move, 1..K the codes in use (shown with their meanings), 0 the idle code,
      Tab the real game side by side (R re-syncs it to the dream), Backspace reset, Space pause,
      V record, F12 screenshot, K keypoints, P policy, H help, Esc/Q quit
settings: env, checkpoint, task, policy=PATH|planner|random, real=true, game, seed, fps,
          scale, device, threads, keys, frames, screenshot, record
`glassworld envs` lists the ids installed here.""",
    "agent": """usage: glassworld agent [key=value ...]

The main job: train a PPO/A2C agent in a dream, score it in the dream and in the real game
against a random policy, film it (rollout.mp4, rollout_real.mp4, rollout.png), write summary.json.

examples:
  glassworld agent                                   # PPO in GlassTennis-v0, a few CPU minutes
  glassworld agent env=KeypointTennis-v0 seed=1
  glassworld agent env=GlassWorld-v0 checkpoint=runs/tennis/checkpoint.pt total_timesteps=100000
  glassworld agent train_in=real                     # the same PPO trained in the real game

common keys: env=ID  checkpoint=PATH  algo=ppo|a2c  n_envs=N  total_timesteps=N  seed=N
             time_budget_s=S|null  observation=mask|rgb  task=reach|track|none  threads=N
             run_dir=DIR  video.steps=N
all keys and defaults: configs/agent.yaml; `glassworld envs` lists the ids installed here""",
    "agent-eval": """usage: glassworld agent-eval policy=PATH|planner|greedy|random [key=value ...]

Play a policy in a dream and (real=true) in the real game, against a baseline; print the figures.

examples:
  glassworld agent-eval policy=runs/agent-x/policy.zip env=GlassTennis-v0 real=true episodes=32
  glassworld agent-eval policy=planner env=GlassTennis-v0 real=true
  glassworld agent-eval policy=greedy env=GlassBreakout-v0 real=true

common keys: env=ID  checkpoint=PATH  episodes=N  n_envs=N  real=true  baseline=random|null
             observation=mask|rgb  out=FILE.json  seed=N
all keys and defaults: configs/agent_eval.yaml""",
    "envs": """usage: glassworld envs

List the worlds installed here: id, model, data, training steps, test figures and health
(from the model card beside each checkpoint in envs/checkpoints/).

example:
  glassworld envs""",
    "inspect": """usage: glassworld inspect PATH

Summarise a dataset folder (source, size, ground truth, videos and identities per split) or a
checkpoint file (model, preset, step, frame size, actions, card and health).

examples:
  glassworld inspect data/tennis64
  glassworld inspect envs/checkpoints/tennis.pt""",
}


def usage_of(name: str) -> str:
    """The short ``--help`` text of a command."""
    return HELP[name]


def _usage() -> str:
    width = max(map(len, COMMANDS))
    lines = [f"  {name:<{width}}  {help_}" for name, (_, help_) in COMMANDS.items()]
    return "usage: glassworld COMMAND [ARGS...]\n\ncommands:\n" + "\n".join(lines) + \
        "\n\n`glassworld COMMAND --help` describes each command."


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(_usage())
        return 0
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        near = difflib.get_close_matches(name, COMMANDS, n=1)
        hint = f"; did you mean {near[0]}?" if near else ""
        print(f"glassworld: unknown command {name!r}{hint}\n\n{_usage()}", file=sys.stderr)
        return 2
    asked = rest[:1] if name == "data" else rest  # `data SOURCE --help` is argparse's, per source
    if name in HELP and any(a in ("-h", "--help") for a in asked):
        print(HELP[name])
        return 0
    module = importlib.import_module(COMMANDS[name][0])
    try:
        return int(module.cli_main(rest) or 0)
    except SystemExit as e:  # argparse's own --help and usage errors
        return e.code if isinstance(e.code, int) else (0 if e.code is None else 2)


if __name__ == "__main__":
    sys.exit(main())
