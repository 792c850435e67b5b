"""Hydra configuration: compose ``configs/`` with ``key=value`` overrides, without changing directories."""

from __future__ import annotations

import dataclasses
import difflib
import os
import re
from pathlib import Path
from typing import Any, TypeVar

from omegaconf import DictConfig, OmegaConf

from .data.format import DatasetError


def configs_dir() -> Path:
    """The ``configs/`` folder: ``$GLASSWORLD_CONFIGS`` or the one beside the installed packages."""
    env = os.environ.get("GLASSWORLD_CONFIGS")
    candidates = [Path(env)] if env else []
    candidates.append(Path(__file__).resolve().parent.parent / "configs")
    for c in candidates:
        if (c / "config.yaml").exists():
            return c
    raise DatasetError(
        f"cannot find glassworld's configs/ (looked in {', '.join(map(str, candidates))}); install glassworld "
        "from its source tree with `pip install -e .` or set GLASSWORLD_CONFIGS=/path/to/configs"
    )


def compose(overrides: list[str], config_name: str = "config") -> DictConfig:
    """Compose ``configs/<config_name>.yaml`` with Hydra ``key=value`` overrides."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    bad = [o for o in overrides if "=" not in o]
    if bad:
        raise DatasetError(f"arguments must be key=value overrides (e.g. train.steps=100), got {bad}")
    try:
        with initialize_config_dir(config_dir=str(configs_dir()), version_base="1.3"):
            cfg = hydra_compose(config_name=config_name, overrides=list(overrides))
    except (HydraException, OmegaConfBaseException) as e:
        raise DatasetError(_unknown_key_message(str(e), config_name) or f"bad configuration override: {e}") from None
    OmegaConf.set_readonly(cfg, False)
    return cfg


T = TypeVar("T")


def plain(cfg: DictConfig | dict[str, Any]) -> dict[str, Any]:
    """A composed config as plain Python containers (interpolations resolved); a dict is copied."""
    d = OmegaConf.to_container(cfg, resolve=True) if isinstance(cfg, DictConfig) else dict(cfg)
    assert isinstance(d, dict), f"a config is a mapping, got {type(d).__name__}"
    return d


def settings(cls: type[T], values: dict[str, Any], prefix: str = "", **given: Any) -> T:
    """The dataclass ``cls`` from ``key: value`` pairs (one section of a composed config), plus the fields
    ``given`` by the caller (built from other sections: nested dataclasses, top-level keys).

    A key of ``values`` that is no field of ``cls`` (or one the caller gives) is one :class:`DatasetError` naming
    it (as ``PREFIX.KEY``) and the nearest valid key (Hydra refuses keys missing from the YAML; this catches the
    ``+KEY=...`` ones and plain dicts). Values, None included, are passed as they are: the dataclass or its user
    checks them.
    """
    names = [f.name for f in dataclasses.fields(cls)]  # type: ignore[arg-type]
    dot = f"{prefix}." if prefix else ""
    unknown = sorted(set(values) - (set(names) - set(given)))
    if unknown:
        key = unknown[0]
        near = difflib.get_close_matches(key, names, n=1, cutoff=0.6)
        hint = f"did you mean {dot}{near[0]}?" if near else f"valid: {', '.join(dot + n for n in names)}"
        more = f" (and {', '.join(dot + k for k in unknown[1:])})" if len(unknown) > 1 else ""
        raise DatasetError(f"unknown key {dot}{key}{more}; {hint}")
    return cls(**values, **given)


def config_keys(cfg: DictConfig) -> list[str]:
    """Every dotted key of a config, sections included (``policy``, ``policy.lr``, ...)."""
    out: list[str] = []

    def walk(node: object, prefix: str) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                out.append(f"{prefix}{k}")
                walk(v, f"{prefix}{k}.")

    walk(OmegaConf.to_container(cfg, resolve=False), "")
    return out


def _unknown_key_message(error: str, config_name: str) -> str | None:
    """"unknown key K; did you mean N?" for Hydra's "Could not override 'K'" (None for any other error)."""
    m = re.search(r"Could not override '([^']+)'", error)
    if not m or "To append to your config" not in error:
        return None
    key = m.group(1)
    keys = config_keys(compose([], config_name))
    near = difflib.get_close_matches(key, keys, n=1, cutoff=0.6)
    hint = f"did you mean {near[0]}?" if near else f"keys: {', '.join(k for k in keys if '.' not in k)}"
    return f"unknown key {key}; {hint} (to add a key the config does not have, write +{key}=...)"
