"""Datasets, losses and one training script per network."""
