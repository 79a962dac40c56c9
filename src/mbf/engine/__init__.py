"""Training and evaluation engine: steps, loop, checkpoints, distributed set-up."""
