"""``glassworld data atari|sprites|videos``: make a dataset folder (argparse flags, not Hydra overrides).

Each source module exposes ``add_arguments(parser)`` and ``run(args) -> int``.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from .format import DatasetError

SOURCES: dict[str, tuple[str, str]] = {
    "atari": ("worldmodel.data.atari", "record an ALE game (agent position from RAM: games in `data atari --help`)"),
    "sprites": ("worldmodel.data.sprites", "W-Sprites: LPC characters (or procedural ones) walking on a background"),
    "videos": ("worldmodel.data.videos", "import video files (any PyAV format) or CADDY/GLASS frame folders"),
}


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The ``glassworld data`` parser. ``only``: import just this source's module for its arguments (the
    others stay listed with their help), so one source's heavy or missing dependencies never break another."""
    parser = argparse.ArgumentParser(prog="glassworld data", description="Make a glassworld dataset folder.")
    sub = parser.add_subparsers(dest="source", required=True, metavar="SOURCE")
    for name, (module, help_) in SOURCES.items():
        sp = sub.add_parser(name, help=help_, description=help_)
        if only is None or name == only:
            importlib.import_module(module).add_arguments(sp)
    return parser


def cli_main(argv: list[str]) -> int:
    only = argv[0] if argv and argv[0] in SOURCES else ""
    args = build_parser(only).parse_args(argv)
    module = importlib.import_module(SOURCES[args.source][0])
    try:
        return int(module.run(args) or 0)
    except DatasetError as e:
        print(f"glassworld data {args.source}: error: {e}", file=sys.stderr)
        return 2
