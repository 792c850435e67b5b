"""Struct-VRNN (Minderer et al., NeurIPS 2019) keypoint world model behind glassworld's (shift, code) actions."""

from .config import KeypointConfig

__all__ = ["KeypointConfig"]
