"""Hydra configuration: compose ``configs/`` with ``key=value`` overrides, without changing directories."""

from __future__ import annotations

import os
from pathlib import Path

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
        raise DatasetError(f"bad configuration override: {e}") from None
    OmegaConf.set_readonly(cfg, False)
    return cfg
