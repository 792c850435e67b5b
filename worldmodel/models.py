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
