"""SparseNewton against the dense solver (``sparse_solver.py``), run in a background process
beside the rest of the suite (conftest), since its compilations take minutes."""

import pathlib
import re

import pytest


@pytest.mark.background("sparse_solver")
def test_sparse_solver_checks(background_job):
    returncode, output = background_job.wait(timeout=1500)
    assert returncode == 0, output[-6000:]
    # every test of the file ran and passed (a count that follows the file)
    source = (pathlib.Path(__file__).parent / "sparse_solver.py").read_text()
    n_tests = len(re.findall(r"^def test_", source, flags=re.MULTILINE))
    assert f"{n_tests} passed" in output, output[-3000:]
