"""convrec's Optuna sweeper for Hydra `-m` runs (hydra/sweeper=optuna): see optuna_sweeper.py."""
