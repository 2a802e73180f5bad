"""MLflow: where runs go, and the lifecycle of one run."""
