#!/usr/bin/env python
"""``glassworld bench data``, from a checkout: ``python scripts/bench_data.py [key=value ...] [out=FILE.json]``.

The keys are those of ``configs/bench_data.yaml``; the benchmark lives in :mod:`bench.data`.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run from a checkout
    sys.path.insert(0, str(ROOT))

from bench.cli import cli_main  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark with ``key=value`` overrides; 0 on success, 2 on a user error."""
    return cli_main(["data", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
