"""glassworld's world-model package: datasets, networks, training, evaluation and the CLI.

Imports point one way: ``worldmodel`` <- ``envs`` <- ``agents``. Nothing here imports gymnasium or
stable-baselines3.
"""

__version__ = "0.1.0"
