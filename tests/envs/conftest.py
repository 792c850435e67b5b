"""Env tests import ``envs`` first so that every id is registered (fixtures: tests/conftest.py)."""

import envs  # noqa: F401  (registers the ids)
