"""One device rule for every entry point (training, evaluation, the envs, the agents)."""

from __future__ import annotations

import torch

from .data.format import DatasetError


def resolve_device(pref: str | torch.device = "auto", local_rank: int | None = None) -> torch.device:
    """The torch device a ``device=`` setting names.

    ``"auto"`` is cuda when available, else cpu; a bare ``"cuda"`` with ``local_rank`` given (a torchrun worker)
    is ``cuda:<local_rank>``; anything else goes to :class:`torch.device` as given. Asking for cuda where there
    is none is one :class:`DatasetError` that names the fix.
    """
    name = str(pref)
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and local_rank is not None:
        return torch.device("cuda", int(local_rank))
    try:
        dev = torch.device(name)
    except RuntimeError as e:
        raise DatasetError(f"device={pref!r} is not a device torch knows ({e}); use device=cpu, cuda or auto") from e
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise DatasetError(f"device={pref} but CUDA is not available here; use device=cpu or device=auto")
    return dev
