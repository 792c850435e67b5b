"""Model registry: build a world model by name, or load any checkpoint as a :class:`~worldmodel.api.WorldModel`."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .api import WorldModel
from .checkpoint import load_checkpoint

# name -> (module, class name); the class has `preset(...)`-built configs and `from_checkpoint`.
MODELS: dict[str, tuple[str, str, str, str]] = {
    # name: (model module, model class, config module, config class)
    "glass": ("worldmodel.glass.model", "GlassModel", "worldmodel.glass.config", "GlassConfig"),
    "keypoint": ("worldmodel.keypoint.model", "KeypointModel", "worldmodel.keypoint.config", "KeypointConfig"),
}


def _lookup(name: str) -> tuple[type, type]:
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose one of {sorted(MODELS)} (model=NAME)")
    mod, cls, cmod, ccls = MODELS[name]
    return getattr(importlib.import_module(mod), cls), getattr(importlib.import_module(cmod), ccls)


def build_config(name: str, preset: str, height: int, width: int, overrides: dict[str, Any] | None = None):
    _, config_cls = _lookup(name)
    return config_cls.preset(preset, height, width, **(overrides or {}))


def build_model(name: str, preset: str, height: int, width: int, overrides: dict[str, Any] | None = None) -> nn.Module:
    model_cls, _ = _lookup(name)
    return model_cls(build_config(name, preset, height, width, overrides))


def load_world_model(path: str | Path, device: str | torch.device = "cpu") -> WorldModel:
    """Load any glassworld checkpoint as a ready-to-step world model (eval mode, on ``device``)."""
    name = load_checkpoint(path, map_location="cpu")["model"]
    model_cls, _ = _lookup(name)
    return model_cls.from_checkpoint(path, device)


# model-config fields that only change generation (start / step), so they may be set on a trained model
GENERATION_FIELDS: dict[str, tuple[str, ...]] = {"glass": ("reencode_every", "burn_in")}


def generation_settings(name: str, settings: dict[str, Any] | None) -> dict[str, int]:
    """Validate generation-only settings (:data:`GENERATION_FIELDS`) of a ``name`` model: {field: int >= 0}."""
    settings = dict(settings or {})
    allowed = GENERATION_FIELDS.get(name, ())
    bad = sorted(set(settings) - set(allowed))
    if bad:
        raise ValueError(f"{bad} are not generation settings of a {name} model; choose from {list(allowed)}")
    out = {}
    for key, value in settings.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"generation setting {key} must be an integer >= 0, got {value!r}")
        out[key] = value
    return out


def generation_of(model: Any) -> dict[str, int]:
    """The generation settings a loaded model runs with ({} for a model that has none)."""
    cfg = getattr(model, "cfg", None)
    fields = {f for names in GENERATION_FIELDS.values() for f in names}
    return {f: int(getattr(cfg, f)) for f in sorted(fields) if hasattr(cfg, f)}


def set_generation(model: Any, settings: dict[str, Any] | None) -> None:
    """Apply validated generation settings to a loaded model's config (weights unchanged)."""
    if not settings:
        return
    name = next((n for n, (_, cls, _, _) in MODELS.items() if type(model).__name__ == cls), type(model).__name__)
    for key, value in generation_settings(name, settings).items():
        setattr(model.cfg, key, value)
