"""Data: the $JAXSUITE_DATA cache with verified downloads (cache.py), one loader per source, and
procedural generators that are deterministic given a seed. ``SOURCES`` lists what `jaxsuite data`
can fetch and check."""
