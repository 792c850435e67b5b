"""Import shims for third-party packages that do not import cleanly on a CPU-only torch.

torchvision / lpips
-------------------
``lpips`` imports ``torchvision.models`` for its VGG/AlexNet backbones. The only torchvision release built
for torch 2.13.0 (0.28.0) on PyPI is a CUDA build: its compiled extension ``torchvision/_C.so`` links
``libtorch_cuda.so`` and cannot load next to the CPU torch wheel. torchvision itself tolerates a missing
extension (``torchvision.extension._has_ops()`` is then False and every compiled op raises "Couldn't load
custom C++ ops"), except for two fake-kernel registrations in ``torchvision/_meta_registrations.py``
(``torchvision::nms`` and ``torchvision::qnms``) that are not guarded by ``_has_ops()`` and fail with
"operator torchvision::nms does not exist".

:func:`ensure_torchvision_importable` defines the schemas of exactly those two operators (no kernels) when,
and only when, the compiled extension cannot be loaded. torchvision then imports in its own documented
"no compiled ops" mode: ``torchvision.models`` works (all glassworld needs), and calling ``nms`` raises
torchvision's own error. Nothing is patched on disk and nothing changes on a machine where torchvision's
extension loads (a matching CUDA torch, or a CPU torchvision).
"""

from __future__ import annotations

import importlib.util
import logging
import sys
from pathlib import Path

log = logging.getLogger(__name__)

_SHIM_LIBRARY = None  # keeps the torch.library.Library alive (dropping it would undefine the ops)
_NMS_SCHEMAS = (
    "nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
    "qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
)


def torchvision_ops_loadable() -> bool:
    """True if torchvision's compiled extension loads (or torchvision is absent / already imported)."""
    import torch

    spec = importlib.util.find_spec("torchvision")
    if spec is None or spec.origin is None:
        return True
    if hasattr(torch.ops, "torchvision") and _has_op("nms"):
        return True
    lib = next(Path(spec.origin).parent.glob("_C*.so"), None)
    if lib is None:
        return False
    try:
        torch.ops.load_library(str(lib))
    except (OSError, RuntimeError):
        return False
    return True


def _has_op(name: str) -> bool:
    import torch

    try:
        getattr(torch.ops.torchvision, name)
        return True
    except (AttributeError, RuntimeError):
        return False


def ensure_torchvision_importable() -> bool:
    """Make ``import torchvision`` (and so ``import lpips``) work on a CPU-only torch.

    Returns True if the shim was applied, False if it was not needed.
    """
    global _SHIM_LIBRARY
    if "torchvision" in sys.modules or _SHIM_LIBRARY is not None:
        return _SHIM_LIBRARY is not None
    if torchvision_ops_loadable():
        return False
    import torch

    _SHIM_LIBRARY = torch.library.Library("torchvision", "FRAGMENT")
    for schema in _NMS_SCHEMAS:
        if not _has_op(schema.split("(")[0]):
            _SHIM_LIBRARY.define(schema)
    log.info("torchvision's compiled ops do not load with this torch build; using torchvision without them")
    return True


def import_lpips():
    """Import and return the ``lpips`` module, applying :func:`ensure_torchvision_importable` first."""
    ensure_torchvision_importable()
    import lpips

    return lpips
