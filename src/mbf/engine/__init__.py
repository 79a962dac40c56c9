"""The engine: the training loop and its hooks, run folders, checkpoints, evaluation runs."""
