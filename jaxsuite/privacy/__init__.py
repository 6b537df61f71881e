"""Differential-privacy building blocks shared by the methods: DP-SGD as an optax transformation over
per-example gradients (``dpsgd``), fixed-shape Poisson subsampling (``sampling``), PATE's noisy vote
aggregation (``pate``) and privacy accounting (``accounting``)."""
