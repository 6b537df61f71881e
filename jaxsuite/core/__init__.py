"""The shared core: configs, host loop, checkpoints, sharding, metrics, results and the method registry."""
