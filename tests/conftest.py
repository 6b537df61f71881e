"""Test setup: 4 simulated CPU devices (DESIGN.md), a persistent compilation cache, no network."""
import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
REPO = Path(__file__).resolve().parents[1]
JIT_CACHE = REPO / ".pytest_cache" / "jax"
os.environ.setdefault("JAXSUITE_JIT_CACHE", str(JIT_CACHE))  # for CLI subprocesses
os.environ.setdefault("JAXSUITE_DATA", str(REPO.parent / "shared" / "data"))
os.environ["JAXSUITE_CACHE_GENERATED"] = "0"  # never write generated data into the (shared) data folder

import jax  # noqa: E402

jax.config.update("jax_num_cpu_devices", 4)
jax.config.update("jax_compilation_cache_dir", str(JIT_CACHE))
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)

import pytest  # noqa: E402

SHARED_DATA = Path(os.environ["JAXSUITE_DATA"])


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not (SHARED_DATA / "mnist").is_dir():
        pytest.skip(f"real data not found at {SHARED_DATA} (set JAXSUITE_DATA)")
    return SHARED_DATA
