"""Training layer: optimisers, the training loop, checkpoints, metrics, plots."""
