"""Datasets: fetch and verify raw sources, prepare tensors, serve them to Lightning."""
