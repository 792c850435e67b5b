"""``glassworld upgrade``: re-save checkpoints you made yourself in the safe (code-free) format.

Usage::

    glassworld upgrade runs/tennis/checkpoint.pt            # already safe: rewritten as format version 2
    glassworld upgrade old.pt --trust                        # an older file that pickled Python objects
    glassworld upgrade old.pt --out new.pt --trust           # write a copy, leave old.pt as it is

``--trust`` is the one place glassworld unpickles arbitrary objects: it states that you made the file. Never pass
it for a file someone handed you (see docs/security.md).
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
        epilog="examples:\n  glassworld upgrade runs/tennis/checkpoint.pt --trust\n"
               "  glassworld upgrade old.pt --out new.pt --trust\n\n"
               "--trust only for files you made yourself: reading an unsafe file can run code.",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("paths", nargs="+", type=Path, help="checkpoint files (.pt)")
    p.add_argument("--out", type=Path, default=None, help="write here instead of in place (one input only)")
    p.add_argument("--trust", action="store_true",
                   help="also read files that hold pickled Python objects (you made them; they can run code)")
    return p


def cli_main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    if args.out is not None and len(args.paths) != 1:
        print("glassworld upgrade: --out takes one input checkpoint", file=sys.stderr)
        return 2
    failed = 0
    for path in args.paths:
        try:
            written = upgrade_checkpoint(path, args.out, trust=args.trust)
        except DatasetError as e:  # also UnsafeCheckpointError (no --trust)
            print(f"glassworld upgrade: {e}", file=sys.stderr)
            failed += 1
            continue
        print(f"{path} -> {written} (safe format)")
    return 1 if failed else 0
