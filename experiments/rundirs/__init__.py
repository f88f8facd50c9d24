"""Run directories: their files, lock, draws, sharded runs and failure messages (imports experiments.setup)."""
