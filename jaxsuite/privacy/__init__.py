"""Differential-privacy building blocks shared by the methods: DP-SGD as an optax transformation over
clipped per-example gradients (``dpsgd``; clipping by vmap or by ghost norms, ``ghost`` / ``ghost_rules`` /
``taps``), fixed-shape Poisson subsampling (``sampling``), PATE's noisy vote aggregation (``pate``) and
privacy accounting (``accounting``)."""
