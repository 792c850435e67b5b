"""glassworld benchmarks, all in one place: ``glassworld bench train|env|play|data key=value ... [out=FILE.json]``.

* ``train`` (:mod:`bench.train`): iterations/s, frames/s and peak RSS of the trainer's own optimisation step
  (:func:`worldmodel.train.optimisation_step`) on synthetic clips; keys ``bench.*``, ``model.*``, ``device``,
  ``seed`` of ``configs/config.yaml``.
* ``env`` (:mod:`bench.env`): dream vector-env steps/s at several N against ALE Tennis in the same run, and one
  env's peak RSS in a fresh process; keys of ``configs/bench_env.yaml``.
* ``play`` (:mod:`bench.play`): frames/s of the headless ``glassworld play`` loop; keys of
  ``configs/bench_play.yaml``.
* ``data`` (:mod:`bench.data`): frames/s and MB per 1000 frames of ``glassworld data atari|sprites``; keys of
  ``configs/bench_data.yaml``.

Why a package of its own: the benchmarks measure all three packages, so they sit above them, as ``scripts/`` do.
Imports point one way, ``worldmodel`` <- ``envs`` <- ``agents`` <- ``bench``: nothing in worldmodel, envs or agents
imports ``bench`` (``glassworld bench`` resolves ``bench.cli`` by name, as it resolves ``agents.*``).

One way to do each thing: every benchmark is a config dataclass built from the composed Hydra config by
:func:`worldmodel.config.settings` (an unknown key names the nearest valid one) and a ``run_bench(config) -> dict``;
memory is :func:`bench.common.peak_rss_mb` (the kernel's VmHWM); the env and play benchmarks time
:data:`bench.common.DEFAULT_CHECKPOINT` unless ``checkpoint=`` names another world (or ``null``: an untrained model).
This module imports nothing heavy, so listing the benchmarks costs nothing.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Bench:
    """One benchmark: the module holding ``config_from(dict)`` and ``run_bench(config)``, the Hydra config it
    composes (``configs/<config_name>.yaml``) and a one-line description."""

    module: str
    config_name: str
    help: str


BENCHES: dict[str, Bench] = {
    "train": Bench("bench.train", "config", "training it/s, frames/s and peak RSS (synthetic data)"),
    "env": Bench("bench.env", "bench_env", "dream env steps/s at N = 1..256 (CPU, CUDA) vs ALE Tennis steps/s"),
    "play": Bench("bench.play", "bench_play", "frames/s of the `glassworld play` loop, headless"),
    "data": Bench("bench.data", "bench_data", "frames/s and MB per 1000 frames of `glassworld data atari|sprites`"),
}
