"""Training: streaming data, the Lightning module, the training run."""
