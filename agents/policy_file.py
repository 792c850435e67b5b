"""Policy files that load without running code.

``glassworld agent`` saves a trained SB3 policy as a zip of two members:

* ``policy.json`` — what to build: the format, the algorithm (``ppo`` | ``a2c``), the policy class and its
  constructor arguments, the observation and action spaces, and free metadata (e.g. the observation mode).
  Classes are named, never pickled, and only names in :func:`allowed_classes` are accepted.
* ``weights.pt`` — the policy's ``state_dict``, read with ``torch.load(weights_only=True)``.

Loading builds the named class with the named arguments and loads the weights: nothing in the file can run.
Stable-Baselines3's own archives (``model.save``) pickle Python objects into their ``data`` member, so
:func:`load_policy_file` refuses them unless the caller opts in with ``trust_sb3=True`` (see docs/security.md).
"""

from __future__ import annotations

import functools
import io
import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from gymnasium import spaces
from stable_baselines3.common.callbacks import BaseCallback

from worldmodel.data.format import DatasetError, atomic_write_bytes

FORMAT_NAME = "glassworld-policy"
FORMAT_VERSION = 1
SPEC_MEMBER, WEIGHTS_MEMBER = "policy.json", "weights.pt"


class UnsafePolicyError(DatasetError):
    """A policy file that would need unpickling (code) to load."""


@functools.cache
def allowed_classes() -> dict[str, type]:
    """The classes a policy file may name: SB3's actor-critic policies, feature extractors, activations, optimisers."""
    from stable_baselines3.common import policies, torch_layers

    from .features import PooledSmallCNN
    from .sb3 import SmallCNN

    named: list[type] = [
        policies.ActorCriticPolicy, policies.ActorCriticCnnPolicy, policies.MultiInputActorCriticPolicy,
        torch_layers.NatureCNN, torch_layers.FlattenExtractor, torch_layers.CombinedExtractor, SmallCNN,
        PooledSmallCNN, torch.nn.Tanh, torch.nn.ReLU, torch.nn.ELU, torch.nn.LeakyReLU, torch.nn.GELU,
        torch.nn.SiLU, torch.optim.Adam, torch.optim.AdamW, torch.optim.RMSprop, torch.optim.SGD,
    ]
    return {f"{c.__module__}.{c.__qualname__}": c for c in named}


# ------------------------------------------------------------------------------------------------
# spaces <-> JSON
# ------------------------------------------------------------------------------------------------
def _bound(a: np.ndarray) -> float | list[Any]:
    """A Box bound: one number when uniform (images), else the nested list."""
    flat = np.unique(a)
    return float(flat[0]) if flat.size == 1 else a.tolist()


def space_to_json(space: spaces.Space) -> dict[str, Any]:
    """A Box, Discrete, MultiDiscrete, MultiBinary or Dict space as plain JSON."""
    if isinstance(space, spaces.Box):
        return {"type": "Box", "shape": list(space.shape), "dtype": np.dtype(space.dtype).name,
                "low": _bound(space.low), "high": _bound(space.high)}
    if isinstance(space, spaces.Discrete):
        return {"type": "Discrete", "n": int(space.n), "start": int(space.start)}
    if isinstance(space, spaces.MultiDiscrete):
        return {"type": "MultiDiscrete", "nvec": np.asarray(space.nvec).tolist()}
    if isinstance(space, spaces.MultiBinary):
        return {"type": "MultiBinary", "n": np.asarray(space.n).tolist()}
    if isinstance(space, spaces.Dict):
        return {"type": "Dict", "spaces": {k: space_to_json(v) for k, v in space.spaces.items()}}
    raise TypeError(f"cannot save a policy for a {type(space).__name__} space")


def space_from_json(d: dict[str, Any]) -> spaces.Space:
    """Inverse of :func:`space_to_json`; raises DatasetError for anything it does not know."""
    kind = d.get("type")
    if kind == "Box":
        dtype = np.dtype(d["dtype"])
        if dtype.kind not in "uif":
            raise DatasetError(f"policy file: Box dtype {dtype} is not a number type")
        shape = tuple(int(s) for s in d["shape"])
        low = np.broadcast_to(np.asarray(d["low"], dtype), shape)
        high = np.broadcast_to(np.asarray(d["high"], dtype), shape)
        return spaces.Box(low=low.copy(), high=high.copy(), shape=shape, dtype=dtype)
    if kind == "Discrete":
        return spaces.Discrete(int(d["n"]), start=int(d.get("start", 0)))
    if kind == "MultiDiscrete":
        return spaces.MultiDiscrete(np.asarray(d["nvec"], np.int64))
    if kind == "MultiBinary":
        return spaces.MultiBinary(d["n"])
    if kind == "Dict":
        return spaces.Dict({k: space_from_json(v) for k, v in d["spaces"].items()})
    raise DatasetError(f"policy file: unknown space type {kind!r}")


# ------------------------------------------------------------------------------------------------
# constructor arguments <-> JSON (classes by allow-listed name)
# ------------------------------------------------------------------------------------------------
def _encode(x: Any, where: str) -> Any:
    names = {c: n for n, c in allowed_classes().items()}
    if isinstance(x, type):
        if x not in names:
            raise TypeError(f"{where}: class {x.__module__}.{x.__qualname__} is not one a policy file may name "
                            "(agents.policy_file.allowed_classes)")
        return {"class": names[x]}
    if x is None or isinstance(x, (bool, int, float, str)):
        return x
    if isinstance(x, (list, tuple)):
        return [_encode(v, f"{where}[{i}]") for i, v in enumerate(x)]
    if isinstance(x, dict):
        return {str(k): _encode(v, f"{where}.{k}") for k, v in x.items()}
    raise TypeError(f"{where}: {type(x).__name__} cannot be stored in a policy file")


def _decode(x: Any) -> Any:
    if isinstance(x, dict):
        if set(x) == {"class"}:
            cls = allowed_classes().get(x["class"])
            if cls is None:
                raise UnsafePolicyError(f"policy file names class {x['class']!r}, which glassworld does not build "
                                        "(agents.policy_file.allowed_classes lists those it does)")
            return cls
        return {k: _decode(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_decode(v) for v in x]
    return x


_SKIP = ("observation_space", "action_space", "lr_schedule")  # stored apart / rebuilt


def save_policy(algo: Any, path: str | Path, meta: dict[str, Any] | None = None) -> Path:
    """Atomically write ``algo.policy`` (an SB3 PPO/A2C policy) as a safe policy zip; returns ``path``."""
    policy = algo.policy
    kwargs = {k: v for k, v in policy._get_constructor_parameters().items() if k not in _SKIP}
    spec = {"format": FORMAT_NAME, "version": FORMAT_VERSION, "algo": type(algo).__name__.lower(),
            "policy_class": _encode(type(policy), "policy_class"), "kwargs": _encode(kwargs, "kwargs"),
            "observation_space": space_to_json(policy.observation_space),
            "action_space": space_to_json(policy.action_space), "meta": _encode(dict(meta or {}), "meta")}
    weights = io.BytesIO()
    torch.save({k: v.detach().cpu() for k, v in policy.state_dict().items()}, weights)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr(SPEC_MEMBER, json.dumps(spec, indent=1))
        z.writestr(WEIGHTS_MEMBER, weights.getvalue())
    path = Path(path)
    atomic_write_bytes(path, buf.getvalue())
    return path


def read_spec(path: str | Path) -> dict[str, Any] | None:
    """The ``policy.json`` of a glassworld policy zip, or None when ``path`` is another kind of zip."""
    try:
        with zipfile.ZipFile(path) as z:
            if SPEC_MEMBER not in z.namelist():
                return None
            spec = json.loads(z.read(SPEC_MEMBER))
    except (zipfile.BadZipFile, OSError, json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DatasetError(f"policy {path} is unreadable ({type(e).__name__}: {e})") from None
    if not isinstance(spec, dict) or spec.get("format") != FORMAT_NAME:
        raise DatasetError(f"policy {path} has a policy.json that is not a glassworld policy spec")
    if int(spec.get("version", 0)) > FORMAT_VERSION:
        raise DatasetError(f"policy {path} has format version {spec['version']}; upgrade glassworld to read it")
    return spec


def load_policy_file(path: str | Path, device: str = "cpu", *, trust_sb3: bool = False, algo: str = "ppo") -> Any:
    """A saved policy -> an object with SB3's ``predict(obs, state=None, episode_start=None, deterministic=False)``.

    glassworld policy zips are rebuilt from their spec and weights (nothing runs). A Stable-Baselines3 archive
    is loaded only with ``trust_sb3=True``, through SB3's own loader as ``algo`` (ppo | a2c), which unpickles code
    from the file.
    """
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"policy {path} does not exist")
    spec = read_spec(path)
    if spec is None:
        if not trust_sb3:
            raise UnsafePolicyError(
                f"policy {path} is not a glassworld policy file (a Stable-Baselines3 archive or another zip); "
                "loading an SB3 archive unpickles Python objects from it, which can run code, so glassworld "
                f"refuses it. Only if you trust whoever made it: `glassworld agent-eval policy={path} trust_policy=true`")
        return _load_sb3(path, device, algo)
    cls = _decode(spec["policy_class"])
    try:
        policy = cls(observation_space=space_from_json(spec["observation_space"]),
                     action_space=space_from_json(spec["action_space"]), lr_schedule=lambda _: 0.0,
                     **_decode(spec["kwargs"]))
        with zipfile.ZipFile(path) as z:
            state = torch.load(io.BytesIO(z.read(WEIGHTS_MEMBER)), map_location=device, weights_only=True)
        policy.load_state_dict(state)
    except (DatasetError, KeyError) as e:
        raise DatasetError(f"policy {path}: {e}") from None
    except Exception as e:  # noqa: BLE001 - torch/SB3 raise many types for a wrong file
        raise DatasetError(f"policy {path} cannot be rebuilt ({type(e).__name__}: {e})") from None
    policy.set_training_mode(False)
    return policy.to(device)


def _load_sb3(path: Path, device: str, algo: str) -> Any:
    """An SB3 archive through SB3's own loader (the caller opted in to unpickling it)."""
    from stable_baselines3 import A2C, PPO

    cls = {"a2c": A2C, "ppo": PPO}.get(algo, PPO)
    try:
        return cls.load(path, device=device)
    except Exception as e:  # noqa: BLE001 - SB3 raises many types for a wrong file
        raise DatasetError(f"cannot load policy {path} as an SB3 {cls.__name__} archive ({type(e).__name__}: {e})") \
            from None



class SaveBestPolicy(BaseCallback):
    """For ``EvalCallback(callback_on_new_best=...)``: writes each new best policy to ``path`` as a policy file."""

    def __init__(self, path: str | Path, meta: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.path, self.meta = Path(path), meta

    def _on_step(self) -> bool:
        save_policy(self.model, self.path, self.meta)
        return True
