"""The documentation's code examples (docs pages and docstrings) run in float32, as a user's
session is: ``doc_examples.py`` runs in a background process with x64 off (conftest)."""

import pytest


@pytest.mark.background("doc_examples")
def test_documentation_examples_run_in_float32(background_job):
    returncode, output = background_job.wait(timeout=900)
    assert returncode == 0, output[-6000:]
