"""GLASS: Global and Local Action-driven Sequence Synthesis (Davtyan & Favaro, ECCV 2022). See method.md A-C."""

from .config import GlassConfig
from .model import GlassModel

__all__ = ["GlassConfig", "GlassModel"]
