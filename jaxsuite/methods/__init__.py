"""One package per paper; each imports jaxsuite.core and jaxsuite.nn, never another method."""
