"""``glassworld envs``: the worlds registered here, whether each is installed, its model card summary and health.

Cards are the JSON files beside the checkpoints (``envs/checkpoints/<name>.json``, written when a checkpoint is
shipped); no checkpoint is loaded. A card without a ``health`` key (cards older than the health checks) reads
"unknown".
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from worldmodel.describe import card_summary, health_summary


def read_card(checkpoint: Path) -> dict[str, Any] | None:
    """The card JSON beside a checkpoint (``tennis.pt`` -> ``tennis.json``), or None."""
    path = checkpoint.with_suffix(".json")
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def world_rows() -> list[dict[str, str]]:
    """One row per glassworld id: ``id``, ``state`` (installed / missing FILE / any checkpoint), ``card``,
    ``health``."""
    import envs

    rows = [{"id": "GlassWorld-v0", "state": "any checkpoint: checkpoint=PATH", "card": "", "health": ""}]
    for env_id, fname in envs.SHIPPED.items():
        path = envs.CHECKPOINT_DIR / fname
        card = read_card(path)
        rows.append({"id": env_id, "state": "installed" if path.is_file() else f"missing envs/checkpoints/{fname}",
                     "card": card_summary(card) if card else "no model card",
                     "health": health_summary((card or {}).get("health"))})
    return rows


def format_worlds(rows: list[dict[str, str]]) -> str:
    """The rows as an aligned listing: id and state on one line, card and health indented below."""
    width = max(len(r["id"]) for r in rows)
    lines = ["glassworld worlds (gym.make(ID); play: glassworld play ID; train an agent: glassworld agent env=ID):"]
    for r in rows:
        lines.append(f"  {r['id']:<{width}}  {r['state']}")
        if r["card"]:
            lines.append(f"  {'':<{width}}  {r['card']}")
            lines.append(f"  {'':<{width}}  health: {r['health']}")
    return "\n".join(lines)


def cli_main(argv: list[str]) -> int:
    """``glassworld envs`` (no arguments)."""
    if argv:
        print(f"glassworld envs: takes no arguments, got {argv}; `glassworld inspect PATH` describes one file",
              file=sys.stderr)
        return 2
    print(format_worlds(world_rows()))
    return 0
