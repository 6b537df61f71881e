"""PATE-TripleGAN (Jiang, Ni, Zhang 2024): a differentially private Triple-GAN (work in progress)."""
