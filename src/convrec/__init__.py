"""convrec: compare CNN, RNN and hybrid networks on the same tasks."""
