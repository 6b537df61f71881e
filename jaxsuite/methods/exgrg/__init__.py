"""ExGRG (Naseri & Biparva, arXiv 2402.06737): non-contrastive graph SSL whose invariance term is
weighted by an explicitly generated relation graph. See README.md in this folder."""
