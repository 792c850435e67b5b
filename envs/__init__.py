"""glassworld environments: world models as Gymnasium games (one flat registry, as Gymnasium's own).

Importing ``envs`` registers:

* ``GlassWorld-v0`` — any checkpoint: ``gym.make("GlassWorld-v0", checkpoint=PATH)``;
  batched: ``gym.make_vec("GlassWorld-v0", num_envs=N, vectorization_mode="vector_entry_point", checkpoint=PATH)``.
* one id per checkpoint shipped in ``envs/checkpoints/`` (:data:`SHIPPED`), with the checkpoint preset.
  An id whose file is not in this install is still registered, but ``gym.make`` stops with an error that says
  which file is missing and how to make it (an unregistered id would only get Gymnasium's generic
  "doesn't exist"); :func:`available_ids` lists the ids that can be made.

:func:`register_checkpoint_env` registers a new id for any checkpoint file; :func:`make_dream` is the one factory
of dream envs (single or batched) that agents, the viewer and the benchmarks share.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import gymnasium as gym

CHECKPOINT_DIR = Path(__file__).resolve().parent / "checkpoints"
ENTRY_POINT = "envs.dream:GlassWorldEnv"
VECTOR_ENTRY_POINT = "envs.dream:GlassWorldVectorEnv"
MAX_EPISODE_STEPS = 200  # ~13 s of play at 15 fps; long enough to cross a 96x128 frame at 4 px per step

# id -> checkpoint file name in envs/checkpoints/ (absent files fail clearly at gym.make). To ship a world, put
# its checkpoint there and add a line here (plus default gym.make arguments in SHIPPED_KWARGS if it needs any).
SHIPPED: dict[str, str] = {
    "GlassTennis-v0": "tennis.pt",
    "GlassBreakout-v0": "breakout.pt",
    "GlassSprites-v0": "sprites.pt",
    "GlassSkiing-v0": "skiing.pt",
    "KeypointTennis-v0": "kp_tennis.pt",  # the keypoint model (Struct-VRNN) on the same data
    "KeypointSprites-v0": "kp_sprites.pt",
}
SHIPPED_KWARGS: dict[str, dict[str, Any]] = {}  # none needed: target axes follow each world's shift grid


class MissingCheckpointError(FileNotFoundError):
    """An env id points at a checkpoint that is not in this install."""


def _missing(env_id: str, path: Path):
    def make(*args: Any, **kwargs: Any) -> gym.Env:
        raise MissingCheckpointError(
            f"{env_id} needs the checkpoint {path}, which is not in this install. Train one "
            f"(`glassworld train ...`) and copy it there, or use gym.make('GlassWorld-v0', checkpoint=PATH)."
        )
    return make


def register_checkpoint_env(env_id: str, checkpoint: str | os.PathLike, *,
                            max_episode_steps: int = MAX_EPISODE_STEPS, **kwargs: Any) -> None:
    """Register ``env_id`` as the dream of ``checkpoint`` (single and vector entry points).

    ``kwargs`` become default ``gym.make`` arguments (``task``, ``task_kwargs``, ``device``). When the file does
    not exist the id is registered with an entry point that raises :class:`MissingCheckpointError` naming it.
    """
    path = Path(checkpoint).expanduser()
    if not path.is_absolute():
        path = path.resolve()
    if not path.is_file():
        gym.register(id=env_id, entry_point=_missing(env_id, path), vector_entry_point=_missing(env_id, path),
                     max_episode_steps=max_episode_steps, kwargs={"checkpoint": str(path), **kwargs},
                     disable_env_checker=True)
        return
    gym.register(id=env_id, entry_point=ENTRY_POINT, vector_entry_point=VECTOR_ENTRY_POINT,
                 max_episode_steps=max_episode_steps, kwargs={"checkpoint": str(path), **kwargs})


def make_dream(env_id: str = "GlassWorld-v0", num_envs: int | None = None, *,
               checkpoint: str | os.PathLike | None = None, **kwargs: Any) -> Any:
    """The dream of a glassworld id: ``gym.make`` when ``num_envs`` is None, else ``gym.make_vec`` with the batched
    vector entry point (``autoreset_mode`` etc. in ``kwargs``). The single and the batched env get the same id
    defaults (task options, episode limit).

    ``checkpoint=PATH`` replaces a shipped id's own file, which may not be in this install: PATH is played as
    ``GlassWorld-v0`` with the id's other defaults. Raises ValueError for an unknown id or ``GlassWorld-v0``
    without a checkpoint, and FileNotFoundError (:class:`MissingCheckpointError`) for a missing file, each naming
    the fix.
    """
    if env_id not in gym.registry:
        known = ", ".join(["GlassWorld-v0", *SHIPPED])
        raise ValueError(f"unknown env {env_id!r}; glassworld ids: {known} (env=ID)")
    if checkpoint is not None:
        kwargs["checkpoint"] = str(checkpoint)
    elif env_id == "GlassWorld-v0":
        raise ValueError("env=GlassWorld-v0 needs checkpoint=PATH (a model trained with `glassworld train`)")
    if checkpoint is not None and env_id != "GlassWorld-v0":
        reg = gym.spec(env_id)
        kwargs = {**{k: v for k, v in (reg.kwargs or {}).items() if k != "checkpoint"}, **kwargs}
        kwargs.setdefault("max_episode_steps", reg.max_episode_steps)
        env_id = "GlassWorld-v0"
    if num_envs is None:
        return gym.make(env_id, **kwargs)
    return gym.make_vec(env_id, num_envs=num_envs, vectorization_mode="vector_entry_point", **kwargs)


def available_ids() -> list[str]:
    """The registered glassworld ids that can be made in this install (GlassWorld-v0 needs checkpoint=)."""
    return ["GlassWorld-v0"] + [i for i, f in SHIPPED.items() if (CHECKPOINT_DIR / f).is_file()]


def checkpoint_of(env_id: str) -> Path | None:
    """The checkpoint a registered id points at, or None (GlassWorld-v0)."""
    spec = gym.spec(env_id)
    ckpt = (spec.kwargs or {}).get("checkpoint")
    return Path(ckpt) if ckpt else None


gym.register(id="GlassWorld-v0", entry_point=ENTRY_POINT, vector_entry_point=VECTOR_ENTRY_POINT,
             max_episode_steps=MAX_EPISODE_STEPS)
for _id, _file in SHIPPED.items():
    register_checkpoint_env(_id, CHECKPOINT_DIR / _file, **SHIPPED_KWARGS.get(_id, {}))
