"""OR-Bench (Cui et al., arXiv 2405.20947): over-refusal evaluation and the prompt-generation pipeline."""
