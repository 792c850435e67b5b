"""``glassworld upgrade``: re-save checkpoints you made yourself in the safe (code-free) format.

Usage::

    glassworld upgrade runs/tennis/checkpoint.pt      # rewritten in place as format version 2
    glassworld upgrade old.pt --out new.pt             # write a copy, leave old.pt as it is

Older files pickled a few numpy and torch objects; upgrade reads them with ``torch.load(weights_only=True)``
admitting only those types, so nothing in any file runs and a crafted file is refused (see docs/security.md).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .checkpoint import upgrade_checkpoint
from .data.format import DatasetError


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="glassworld upgrade", description="Re-save checkpoints in the safe format (loads without running code).",
        epilog="examples:\n  glassworld upgrade runs/tennis/checkpoint.pt\n  glassworld upgrade old.pt --out new.pt\n\n"
               "Nothing in the file runs: older files are read admitting only the numpy/torch types they held.",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("paths", nargs="+", type=Path, help="checkpoint files (.pt)")
    p.add_argument("--out", type=Path, default=None, help="write here instead of in place (one input only)")
    return p


def cli_main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    if args.out is not None and len(args.paths) != 1:
        print("glassworld upgrade: --out takes one input checkpoint", file=sys.stderr)
        return 2
    failed = 0
    for path in args.paths:
        try:
            written = upgrade_checkpoint(path, args.out)
        except DatasetError as e:  # also UnsafeCheckpointError: not a file glassworld wrote
            print(f"glassworld upgrade: {e}", file=sys.stderr)
            failed += 1
            continue
        print(f"{path} -> {written} (safe format)")
    return 1 if failed else 0
