"""LightningModules, one per kind of output. They own losses, metrics and optimisation."""
