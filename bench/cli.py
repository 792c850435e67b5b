"""``glassworld bench NAME key=value ... [out=FILE.json]``: run one benchmark of :data:`bench.BENCHES`, print its
JSON and write it to ``out=``. Every user error is one line on stderr and exit status 2."""

from __future__ import annotations

import difflib
import importlib
import json
import sys
from pathlib import Path
from typing import Any

from worldmodel.config import compose, plain
from worldmodel.data.format import DatasetError, atomic_write_json, check_writable
from worldmodel.paths import portable_paths

from . import BENCHES


def usage() -> str:
    """The benchmarks, one line each, and the configs holding their keys."""
    lines = [f"  {name:<6} {b.help} (keys: configs/{b.config_name}.yaml)" for name, b in BENCHES.items()]
    return "usage: glassworld bench NAME [key=value ...] [out=FILE.json]\n\nbenchmarks:\n" + "\n".join(lines)


def run(name: str, overrides: list[str]) -> dict[str, Any]:
    """Benchmark ``name`` with Hydra ``overrides`` (``out=`` included: checked writable first, then written)."""
    spec = BENCHES[name]
    d = plain(compose(overrides, config_name=spec.config_name))
    out = d.pop("out", None)
    if out:
        check_writable(out, "out=", folder=False)  # before the benchmark runs
    module = importlib.import_module(spec.module)
    result = portable_paths({"bench": name, **module.run_bench(module.config_from(d))})  # no machine paths in JSON
    if out:
        atomic_write_json(Path(out), result)
        result["out"] = str(out)
    return result


def cli_main(argv: list[str]) -> int:
    """``glassworld bench NAME key=value ...``; 0 on success, 2 on a user error (one line on stderr)."""
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(usage())
        return 0
    name, rest = argv[0], argv[1:]
    if name not in BENCHES:
        near = difflib.get_close_matches(name, BENCHES, n=1)
        hint = f"did you mean {near[0]}?" if near else f"choose one of {', '.join(BENCHES)}"
        print(f"glassworld bench: unknown benchmark {name!r}; {hint}", file=sys.stderr)
        return 2
    try:
        result = run(name, rest)
    except DatasetError as e:
        print(f"glassworld bench {name}: error: {e}", file=sys.stderr)
        return 2
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(cli_main(sys.argv[1:]))
