"""What the metric families of the evaluation share: the result table with its reasons, and small helpers."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

NO_METHOD = "the model has no {}()"  # the reason of a metric whose model method is missing


class Results:
    """The metric values of one evaluation and, for each null one, why it is null.

    ``values`` starts as ``{key: None}`` for ``keys`` (their order is the JSON's). ``reasons`` is shared with
    whatever recorded reasons before aggregation (a feature network that could not be loaded, a failed I3D); the
    first reason given for a key is kept.
    """

    def __init__(self, keys: tuple[str, ...], reasons: dict[str, str]) -> None:
        self.values: dict[str, Any] = {k: None for k in keys}
        self.reasons = reasons

    def put(self, key: str, value: float | None, why: str) -> None:
        """Store ``value`` as a float, or None with ``why`` (unless a reason is known) when it is None or not
        finite."""
        if value is None or not math.isfinite(value):
            self.values[key] = None
            self.reasons.setdefault(key, why)
        else:
            self.values[key] = float(value)


def cat(xs: list[np.ndarray]) -> np.ndarray:
    """The arrays of ``xs`` flattened and joined end to end; an empty (0,) array when there are none."""
    return np.concatenate([x.ravel() for x in xs]) if xs else np.zeros(0)


def chunks(n: int, size: int) -> list[slice]:
    """Slices cutting ``range(n)`` into pieces of at most ``size``."""
    return [slice(i, min(i + size, n)) for i in range(0, n, size)]
