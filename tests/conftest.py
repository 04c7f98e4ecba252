"""Shared test setup: float64 (unless KIRCHHOFF_TEST_X64=0: the float32 pass), a seeded key,
warnings as errors (bar jaxopt's known one)."""

import os
import shutil
import warnings

import jax
import numpy as np
import pytest

# test_precision.py reruns itself in a second process with x64 off, as a new user's session is
jax.config.update("jax_enable_x64", os.environ.get("KIRCHHOFF_TEST_X64", "1") != "0")
# jaxopt is in maintenance mode and warns on import; kirchhoff filters it in its solver
# layer, and this keeps a direct import in a test from failing the run
warnings.filterwarnings(
    "ignore", message="JAXopt is no longer maintained", category=DeprecationWarning
)


def pytest_configure(config):
    config.addinivalue_line("filterwarnings", "error")
    config.addinivalue_line(
        "filterwarnings", "ignore:JAXopt is no longer maintained:DeprecationWarning"
    )
    # tfds/absl and matplotlib emit deprecation chatter from their own internals
    config.addinivalue_line("filterwarnings", "ignore::DeprecationWarning:tensorflow_datasets.*")
    config.addinivalue_line("filterwarnings", "ignore::DeprecationWarning:absl.*")


@pytest.fixture
def key():
    return jax.random.PRNGKey(0)


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def require_ngspice():
    """Skip when ngspice is missing, except in CI, where its absence is a failure."""
    if shutil.which("ngspice") is None:
        if os.environ.get("CI"):
            pytest.fail("ngspice is not installed; .ci/run installs it (apt-get install ngspice).")
        pytest.skip("ngspice is not installed (apt-get install ngspice)")


@pytest.fixture(autouse=True, scope="module")
def _fresh_compilation_caches():
    """Drop JAX's compiled programs after each test module: some 570 tests compile thousands
    of programs, and keeping them all for the whole session grew one process until XLA's
    compiler crashed (a segmentation fault late in a full run)."""
    yield
    jax.clear_caches()
