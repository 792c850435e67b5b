"""Turn a training checkpoint into a shippable world: code meanings from labelled data, a slim file, a model card.

``code_meanings``: for each local action code, the most frequent labelled action among the real transitions the
model assigns to that code, with its share (e.g. ``"FIRE 81%"``). Labels come from the dataset: the raw joystick
action (ALE: ``manifest["atari"]["action_names"]``) or the local action label (W-Sprites:
``manifest["local_actions"]``).
"""

from __future__ import annotations

import json
import logging
import platform
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .checkpoint import load_checkpoint, save_checkpoint
from .health import health_summary
from .data.dataset import ClipConfig, ClipDataset
from .data.format import atomic_write_bytes, atomic_write_json, read_manifest
from .discovery import share
from .envinfo import agent_box, estimate_shift_grid, recorded_places, spread_clip_batches
from .models import GENERATION_FIELDS, generation_settings, load_world_model
from .paths import portable_paths

log = logging.getLogger(__name__)

SHIP_DROP = ("optimizer", "scheduler", "rng", "trainer")  # training-only payload keys


@dataclass
class ExportConfig:
    clips: int = 128  # labelled clips used for code meanings
    clip_len: int = 8
    split: str = "train"
    seed: int = 0


def label_names(manifest: dict[str, Any]) -> tuple[str, list[str]] | None:
    """(ground-truth key, label names) of the labelled action a dataset carries, or None."""
    if "local_actions" in manifest and "local" in manifest.get("ground_truth", []):
        return "local", list(manifest["local_actions"])
    names = (manifest.get("atari") or {}).get("action_names")
    if names and "action" in manifest.get("ground_truth", []):
        return "action", list(names)
    return None


@torch.no_grad()
def code_meanings(model: Any, data: str | Path, cfg: ExportConfig | None = None) -> list[str] | None:
    """Name each code by its majority labelled action over real transitions (None when the data has no labels)."""
    cfg = cfg or ExportConfig()
    manifest = read_manifest(Path(data))
    found = label_names(manifest)
    if found is None:
        return None
    key, names = found
    ds = ClipDataset(data, cfg.split, ClipConfig(clip_len=cfg.clip_len, frame_skip=model.metadata.get("frame_skip", 0)
                                                 if isinstance(model.metadata, dict) else 0))
    rng = np.random.default_rng(cfg.seed)
    idx = rng.choice(len(ds), size=min(cfg.clips, len(ds)), replace=False)
    counts = np.zeros((model.num_codes, len(names)), dtype=np.int64)
    # labels -> row of ``names``: Atari labels are raw ALE ids (Breakout's 0, 1, 3, 4 name NOOP, FIRE, RIGHT, LEFT)
    ids = (manifest.get("atari") or {}).get("action_ids") if key == "action" else None
    ids = list(ids) if ids and len(ids) == len(names) else list(range(len(names)))
    lut = np.full(max(ids) + 2, -1, dtype=np.int64)  # the last entry maps the "no label" -1 to -1
    lut[np.array(ids)] = np.arange(len(ids))
    for chunk in np.array_split(idx, max(1, len(idx) // 16)):
        items = [ds[int(i)] for i in chunk]
        video = torch.stack([it["frames"] for it in items]).to(model.device)  # (B, T, 3, H, W) uint8
        labels = lut[torch.stack([it[key] for it in items])[:, 1:].numpy()]  # (B, T-1): the step into frame t+1
        _, codes = model.infer_actions(video)
        codes = codes.cpu().numpy()
        ok = labels >= 0
        np.add.at(counts, (codes[ok], labels[ok]), 1)
    meanings = []
    for k in range(model.num_codes):
        total = counts[k].sum()
        if total == 0:
            meanings.append("unused")
            continue
        top = int(counts[k].argmax())
        meanings.append(f"{names[top]} {round(100 * counts[k, top] / total)}%")
    return meanings


def ship(checkpoint: str | Path, out: str | Path, data: str | Path | None = None,
         eval_json: str | Path | None = None, card: dict[str, Any] | None = None,
         cfg: ExportConfig | None = None, generation: dict[str, int] | None = None) -> dict[str, Any]:
    """Write a slim, env-ready copy of ``checkpoint`` to ``out`` plus ``out``'s model card (``.md``, ``.json``).

    ``generation`` sets the model's generation-only config fields (:data:`worldmodel.models.GENERATION_FIELDS`, e.g.
    ``{"reencode_every": 5, "burn_in": 1}`` for GLASS); the weights are unchanged.

    Drops the optimiser, scheduler and RNG state. With ``data`` (the training data) it re-estimates the shift grid
    with the final weights (:func:`worldmodel.envinfo.estimate_shift_grid`, 32 train clips), fills
    ``env_info.code_meanings`` when the data is labelled, ``env_info.agent_box``
    (:func:`worldmodel.envinfo.agent_box`) and ``env_info.reach_from`` / ``reach_to``
    (:func:`worldmodel.envinfo.recorded_places`). It merges ``eval_json`` and ``card`` into the checkpoint's
    card. Returns the card.
    """
    out = Path(out)
    ckpt = load_checkpoint(checkpoint)
    payload = {k: v for k, v in ckpt.items() if k not in SHIP_DROP and k not in ("format", "version")}
    full_card = dict(ckpt.get("card") or {})
    if generation:
        name = str(ckpt.get("model"))
        payload["model_config"] = {**payload["model_config"], **generation_settings(name, generation)}
        full_card["generation"] = {k: payload["model_config"][k] for k in GENERATION_FIELDS[name]}
    if data is not None:
        model = load_world_model(checkpoint, "cpu")
        env = dict(payload.get("env_info") or {})
        meanings = code_meanings(model, data, cfg)
        if meanings is not None:
            env["code_meanings"] = full_card["code_meanings"] = meanings
        train = ClipDataset(data, "train", ClipConfig(clip_len=6, frame_skip=int(full_card.get("frame_skip") or 0),
                                                      ground_truth=False))
        env.update(estimate_shift_grid(model, spread_clip_batches(train, 32, 8), "cpu"))
        box = agent_box(data, model)
        if box is not None:
            env["agent_box"] = box
        places = recorded_places(data, model)
        if places is not None:
            env.update(places)
            full_card["reach_targets"] = (f"{len(places['reach_from'])} recorded position pairs "
                                          f"({places['reach_source']}, up to {places['reach_horizon']} steps apart)")
        payload["env_info"] = env
    if eval_json is not None:
        full_card["eval"] = json.loads(Path(eval_json).read_text())
        if full_card["eval"].get("health") is not None:
            full_card["health"] = full_card["eval"]["health"]  # what gym.make enforces (worldmodel.health)
    full_card.update(card or {})
    full_card.setdefault("exported_on", platform.node() or "unknown")
    full_card = portable_paths(full_card)  # no machine paths in the card (data beside the repo: ../data/...)
    for key in ("run_config", "data_fingerprint"):  # nor in what the run recorded
        if payload.get(key) is not None:
            payload[key] = portable_paths(payload[key])
    payload["card"] = full_card
    save_checkpoint(out, payload)
    size_mb = out.stat().st_size / 2**20
    full_card["file_size_mb"] = round(size_mb, 2)
    atomic_write_json(out.with_suffix(".json"), _jsonable(full_card))
    atomic_write_bytes(out.with_suffix(".md"), model_card_markdown(out.name, full_card, payload).encode())
    log.info("shipped %s (%.2f MB)", out, size_mb)
    return full_card


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (np.generic,)):
        return obj.item()
    if isinstance(obj, torch.Tensor):
        return obj.tolist()
    return obj


def model_card_markdown(name: str, card: dict[str, Any], ckpt: dict[str, Any]) -> str:
    """A human-readable model card."""
    env = ckpt.get("env_info") or {}
    mc = ckpt["model_config"]
    preset = card.get("preset") or mc.get("preset_name") or mc.get("preset")
    lines = [f"# Model card: {name}", "", f"- model: {ckpt['model']} (preset {preset}), "
             f"{mc.get('height')}x{mc.get('width')} frames",
             f"- training steps: {ckpt['step']}", f"- perceptual backbone: {ckpt.get('perceptual')}"]
    crop = mc.get("agent_crop") or [0, 0]
    if ckpt["model"] == "glass":
        lines.append("- local part (E, A, dynamics, renderer) on: " + (
            f"a {crop[0]}x{crop[1]}-px agent window" if list(crop) != [0, 0] else "the whole frame"))
    disc = card.get("discovery")
    if disc:
        lines.append(f"- agent discovery: seed {disc['chosen_seed']} kept of " + ", ".join(
            f"{c['seed']} (agent found {share(c.get('agent_found'))}, shifts explain "
            f"{share(c.get('shift_explained'))})" for c in disc["candidates"])
            + f" after {disc['pretraining_steps']} pretraining steps each")
    snap = card.get("shipped_snapshot")
    if snap:
        lines.append(f"- shipped snapshot: step {snap['step']} ({snap['file']}" + (
            f"; best share of the agent's motion explained by its shifts on train clips: "
            f"{share(snap['train_shift_explained_best'])})" if snap.get("train_shift_explained_best") is not None
            else ")"))
    for key in ("command", "dataset", "dataset_command", "generator", "wall_time_s", "hardware", "torch",
                "file_size_mb", "generation"):
        if key in card:
            lines.append(f"- {key}: `{json.dumps(_jsonable(card[key]))}`")
    health = card.get("health")
    if health is None:
        lines.append("- health: **not checked** (no `glassworld eval` in this card)")
    else:
        verdict, figures = health_summary(health).split(" ", 1)
        lines.append(f"- health: **{verdict}** {figures}")
        lines += [f"  - problem: {p}" for p in health.get("problems", [])]
        lines += [f"  - warning: {w}" for w in health.get("warnings", [])]
    grid = env.get("shift_grid")
    if grid is not None:
        names = env.get("shift_names") or []
        lines.append("- shift grid (px): " + ", ".join(f"{n} ({g[0]:+.1f}, {g[1]:+.1f})" for n, g in zip(names, grid)))
    if card.get("code_meanings"):
        lines.append("- code meanings (majority labelled action per code): " + ", ".join(
            f"{i}: {m}" for i, m in enumerate(card["code_meanings"])))
    if card.get("eval"):
        lines += ["", "## Evaluation", "", "```json", json.dumps(_jsonable(card["eval"]), indent=1), "```"]
    if card.get("notes"):
        lines += ["", "## Notes", "", str(card["notes"])]
    return "\n".join(lines) + "\n"
