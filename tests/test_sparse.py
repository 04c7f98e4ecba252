"""SparseNewton against the dense solver (``sparse_solver.py``), run in a background process
beside the rest of the suite (conftest), since its compilations take minutes."""

import pytest


@pytest.mark.background("sparse_solver")
def test_sparse_solver_checks(background_job):
    returncode, output = background_job.wait(timeout=1500)
    assert returncode == 0, output[-6000:]
    assert "4 passed" in output, output[-3000:]
