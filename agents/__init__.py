"""glassworld agents: who plays the dream (SB3 training, the VecEnv adapter, the CEM planner, evaluation in the
real game). Imports point one way: worldmodel <- envs <- agents."""
