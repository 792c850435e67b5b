"""Ship a trained world model as an environment checkpoint (slim file + model card).

    python scripts/ship_checkpoint.py runs/tennis/checkpoint.pt envs/checkpoints/tennis.pt \
        --data data/tennis64 --eval runs/tennis/eval_test.json --command "glassworld train ..." \
        [--set reencode_every=5 --set burn_in=1]

Writes OUT (weights, config, env_info with code meanings; no optimiser/RNG state), OUT.json and OUT.md.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from worldmodel.export import ExportConfig, ship


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoint")
    p.add_argument("out")
    p.add_argument("--data", help="labelled dataset for code meanings (the training data)")
    p.add_argument("--eval", dest="eval_json", help="eval JSON from `glassworld eval` to put in the card")
    p.add_argument("--health", dest="health_json", help="eval JSON whose health report alone goes in the card "
                   "(keeps the card's eval), e.g. a check on fresh clips of a shipped world")
    p.add_argument("--command", help="the training command, for the card")
    p.add_argument("--dataset-command", help="the command that made the dataset, for the card")
    p.add_argument("--notes", help="free text for the card")
    p.add_argument("--clips", type=int, default=128)
    p.add_argument("--set", dest="generation", action="append", default=[], metavar="KEY=N",
                   help="a generation setting of the model config, e.g. --set reencode_every=5 --set burn_in=1")
    a = p.parse_args()
    generation = {}
    for item in a.generation:
        key, sep, value = item.partition("=")
        if not sep or not value.strip().lstrip("-").isdigit():
            p.error(f"--set takes KEY=INTEGER, got {item!r}")
        generation[key.strip()] = int(value)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    extra = {k: v for k, v in {"command": a.command, "dataset_command": a.dataset_command, "notes": a.notes}.items()
             if v}
    if a.health_json:
        from worldmodel.paths import portable_path

        report = json.loads(Path(a.health_json).read_text())
        if "health" not in report:
            p.error(f"{a.health_json} has no health report; run `glassworld eval` with this version")
        extra["health"] = report["health"]
        extra["health_source"] = {"eval": portable_path(Path(a.health_json).resolve()), "split": report.get("split"),
                                  "clips": report.get("clips"), "dataset": portable_path(report.get("dataset"))}
    try:
        card = ship(a.checkpoint, a.out, a.data, a.eval_json, extra, ExportConfig(clips=a.clips), generation)
    except ValueError as e:
        p.error(str(e))
    print(json.dumps({k: card[k] for k in ("code_meanings", "file_size_mb") if k in card}, indent=1))


if __name__ == "__main__":
    main()
