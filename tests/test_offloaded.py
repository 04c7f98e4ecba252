"""The slow tests marked ``offload`` (conftest): in a full run they leave the main process and
run in a background process beside it, and this test reports how they did."""

import pytest


@pytest.mark.background("offloaded")
def test_offloaded_tests_pass(background_job):
    returncode, output = background_job.wait(timeout=1500)
    assert returncode == 0, output[-6000:]
    assert " passed" in output and " failed" not in output, output[-3000:]
