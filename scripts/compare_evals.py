#!/usr/bin/env python
"""Side-by-side table of `glassworld eval` JSONs (e.g. GLASS vs the keypoint model on the same split).

    python scripts/compare_evals.py GLASS=runs/glass/eval_test.json keypoint=runs/kp/eval_test.json \
        [--out docs/results/tennis_glass_vs_keypoint.md]

Prints a markdown table (one column per JSON, one row per metric; '-' where the metric is null) and, with
``--out``, writes it atomically. Evaluations of different splits or datasets are refused: the point is a
like-for-like comparison.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from worldmodel.data.format import atomic_write_bytes
from worldmodel.evaluate import METRIC_KEYS


def load(spec: str) -> tuple[str, dict]:
    """``LABEL=PATH`` -> (label, eval dict)."""
    if "=" not in spec:
        raise SystemExit(f"expected LABEL=PATH.json, got {spec!r}")
    label, path = spec.split("=", 1)
    try:
        return label, json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise SystemExit(f"{path}: not a readable eval JSON ({e})") from None


LOOK_KEYS = ("agent_sharpness", "agent_sharpness_copy", "agent_psnr_aligned", "agent_psnr_aligned_copy")
HEALTH_KEYS = ("healthy", "agent_found", "agent_kept", "shift_explained", "agent_pos_err", "beats_copy", "codes_used")


def _fmt(v: object) -> str:
    return "-" if v is None else (f"{v:.3g}" if isinstance(v, float) else str(v))


def rows(result: dict) -> dict[str, str]:
    """metric name -> formatted value ('-' for null); metrics per horizon (pos_err, the agent-look figures and
    their frozen-frame-0 baselines) expand into one row per horizon; the health report's figures follow."""
    out: dict[str, str] = {}
    for key in (*METRIC_KEYS, *LOOK_KEYS):
        v = result.get(key)
        if isinstance(v, dict):
            for hz, e in v.items():
                out[f"{key}@{hz}"] = _fmt(e)
        else:
            out[key] = _fmt(v)
    health = result.get("health") or {}
    for key in HEALTH_KEYS:
        if key in health:
            out[f"health.{key}"] = _fmt(health[key])
    return out


def table(evals: list[tuple[str, dict]]) -> str:
    """The markdown comparison of ``evals`` (label, eval dict), which must share dataset and split."""
    where = {(e.get("dataset"), e.get("split")) for _, e in evals}
    if len(where) != 1:
        raise SystemExit(f"the evaluations are on different datasets/splits {sorted(map(str, where))}; compare "
                         "like with like")
    dataset, split = where.pop()
    per = [rows(e) for _, e in evals]
    names = list(dict.fromkeys(k for r in per for k in r))
    lines = [f"Dataset `{dataset}`, split `{split}`, clips: " + ", ".join(f"{lab} {e.get('clips')}" for lab, e in evals),
             "", "| metric | " + " | ".join(lab for lab, _ in evals) + " |",
             "|---|" + "---|" * len(evals)]
    lines += [f"| {n} | " + " | ".join(r.get(n, "-") for r in per) + " |"
              for n in names if any(r.get(n, "-") != "-" for r in per)]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("evals", nargs="+", help="LABEL=PATH.json (from glassworld eval ... out=PATH.json)")
    p.add_argument("--out", type=Path, help="also write the markdown table here")
    a = p.parse_args(argv)
    text = table([load(s) for s in a.evals])
    sys.stdout.write(text)
    if a.out:
        atomic_write_bytes(a.out, text.encode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
