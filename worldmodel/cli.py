"""The ``glassworld`` console script: one subcommand per job.

Each subcommand lives in its own module and exposes ``cli_main(argv: list[str]) -> int``; modules are
imported only when their subcommand runs, so ``worldmodel`` never imports gymnasium or stable-baselines3
itself (``agent``/``play`` resolve to ``agents.*`` by name). Subcommands configured by Hydra take
``key=value`` overrides (``data.path=DIR model=glass model.preset=cpu train.steps=N run_dir=DIR
device=auto seed=N``).
"""

from __future__ import annotations

import importlib
import logging
import sys

# name -> (module, one-line help). Only implemented commands are listed.
COMMANDS: dict[str, tuple[str, str]] = {
    "data": ("worldmodel.data.cli", "make a dataset: `data atari|sprites|videos ...` (see `data --help`)"),
    "train": ("worldmodel.train", "train a world model: `train data.path=DIR model.preset=cpu train.steps=N ...`"),
    "eval": ("worldmodel.evaluate", "score a checkpoint: `eval checkpoint=PATH data.path=DIR out=FILE.json ...`"),
    "bench": ("worldmodel.bench", "measure speed as JSON: `bench train|env|play [key=value ...] [out=FILE.json]`"),
    "play": ("agents.play", "play a dream with the keyboard: `play GlassTennis-v0 | checkpoint=PATH [--headless ...]`"),
    "agent": ("agents.train", "train an SB3 agent in a dream: `agent env=ID checkpoint=PATH algo=ppo n_envs=N ...`"),
    "upgrade": ("worldmodel.upgrade", "re-save older checkpoints in the safe format: `upgrade PATH`"),
    "agent-eval": ("agents.evaluate", "play a policy in the dream and the real game: "
                                      "`agent-eval policy=PATH|planner|random env=ID real=true episodes=N`"),
}


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
        print(f"glassworld: unknown command {name!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    module = importlib.import_module(COMMANDS[name][0])
    return int(module.cli_main(rest) or 0)


if __name__ == "__main__":
    sys.exit(main())
