"""NNX modules shared by several papers."""
