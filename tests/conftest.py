"""Shared test setup: float64 (unless KIRCHHOFF_TEST_X64=0: the float32 pass), a seeded key,
warnings as errors (bar jaxopt's known one)."""

import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import threading
import warnings

# The suite is compile-bound: some 640 tests compile thousands of small XLA programs and run
# most of them a few times. XLA's CPU backend compiles them with LLVM's cheap settings here
# (the same programs, less optimised machine code; measured ~25 % off a compile-heavy module),
# before JAX starts its backend; the background processes below inherit it. Users' runs and
# the benchmarks keep XLA's defaults. KIRCHHOFF_TEST_FULL_OPT=1 tests with the defaults.
if os.environ.get("KIRCHHOFF_TEST_FULL_OPT") != "1":
    _CHEAP = "--xla_backend_optimization_level=0 --xla_llvm_disable_expensive_passes=true"
    if _CHEAP not in os.environ.get("XLA_FLAGS", ""):
        os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " " + _CHEAP).strip()

import jax  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

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
    config.addinivalue_line(
        "markers", "background(name): runs in a process started after collection (conftest)"
    )
    config.addinivalue_line(
        "markers", "offload: a slow test the full suite runs in its background process"
    )


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


# ---- work that runs in a process of its own, beside the rest of the suite ----------------------
# Parts of the suite are whole processes: test_precision.py's float32 twin (x64 off), the
# notebooks at the CI size (each in a Jupyter kernel), the documentation's examples (x64
# off), the data-parallel check (the CPU split into 4 devices) and the sparse solver's
# checks. Their tests (marked ``background``) are moved to the end of the run; the processes
# start right after collection, one after another, so they use the second core while the
# other tests run, and the tests only collect what they did.
ROOT = pathlib.Path(__file__).resolve().parent.parent


def _pytest_argv(*paths: str) -> list[str]:
    """The command line of a pytest run of ``paths`` in a process of its own."""
    return [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *paths]


def _background_commands(tmp: pathlib.Path, marked, offloaded=()) -> dict:
    _xla_flags = os.environ.get("XLA_FLAGS", "")
    notebooks = [
        i.callspec.params["path"].name
        for i in marked
        if i.get_closest_marker("background").args[0] == "notebooks"
    ]
    precision = ROOT / "tests" / "test_precision.py"
    return {
        "float32": (_pytest_argv(str(precision)), {"KIRCHHOFF_TEST_X64": "0"}),
        "doc_examples": (
            _pytest_argv(str(ROOT / "tests" / "doc_examples.py")),
            {"KIRCHHOFF_TEST_X64": "0"},
        ),
        "sparse_solver": (_pytest_argv(str(ROOT / "tests" / "sparse_solver.py")), {}),
        "offloaded": (_pytest_argv(*offloaded), {"KIRCHHOFF_OFFLOADED": "1"}),
        "data_parallel": (
            [sys.executable, str(ROOT / "tests" / "data_parallel_check.py")],
            {"XLA_FLAGS": (_xla_flags + " --xla_force_host_platform_device_count=4").strip()},
        ),
        "notebooks": (
            [sys.executable, str(ROOT / "notebooks" / "execute.py"), "--small", "--out", str(tmp)]
            + notebooks,
            {},
        ),
    }


class BackgroundJob:
    """A subprocess run after collection, one at a time beside the main process (conftest's
    runner thread); ``wait`` blocks until it has finished and returns (returncode, output)."""

    LIMIT = 1500  # seconds one job may run before it is killed (a hang fails its test)

    def __init__(self, argv, env, out_dir: pathlib.Path):
        self.argv, self.env, self.out_dir = argv, env, out_dir
        self.proc = None
        self.result = None
        self.cancelled = False
        self.done = threading.Event()

    def run(self):
        if self.cancelled:
            self.result = (None, "not run: the test session ended first")
            return
        with tempfile.TemporaryFile(mode="w+") as log:
            self.proc = subprocess.Popen(
                self.argv,
                cwd=ROOT,
                env={**os.environ, **self.env},
                stdout=log,
                stderr=subprocess.STDOUT,
                text=True,
            )
            try:
                self.proc.wait(timeout=self.LIMIT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            log.seek(0)
            self.result = (self.proc.returncode, log.read())

    def wait(self, timeout: float | None = None):
        """The job's (returncode, output); ``timeout`` is kept for the callers' sake, as the
        job's own limit (LIMIT) bounds the wait."""
        self.done.wait()
        return self.result

    def stop(self):
        self.cancelled = True
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()


_JOBS: dict[str, BackgroundJob] = {}


def _run_in_turn(jobs):
    for job in jobs:
        try:
            job.run()
        finally:
            job.done.set()


def _offload(config, items) -> list[str]:
    """Tests marked ``offload`` (slow ones that share no compilations with their neighbours)
    leave this process for the background job ``offloaded``, which runs them by node id
    beside the rest — when that job's own test is selected too, so that a run of a few
    tests never drops one. Returns their node ids."""
    if os.environ.get("KIRCHHOFF_OFFLOADED") == "1":
        return []  # this is the background process itself: run them here
    runs_job = any(
        (m := i.get_closest_marker("background")) and m.args[0] == "offloaded" for i in items
    )
    offload = [i for i in items if i.get_closest_marker("offload")] if runs_job else []
    if offload:
        items[:] = [i for i in items if i not in offload]
        config.hook.pytest_deselected(items=offload)
    return [i.nodeid for i in offload]


@pytest.hookimpl(trylast=True)  # after -k / -m have deselected what will not run
def pytest_collection_modifyitems(session, config, items):
    offloaded = _offload(config, items)
    marked = [i for i in items if i.get_closest_marker("background")]
    if not offloaded:  # nothing to run there: its report would have nothing to say
        idle = [i for i in marked if i.get_closest_marker("background").args[0] == "offloaded"]
        if idle:
            marked = [i for i in marked if i not in idle]
            items[:] = [i for i in items if i not in idle]
            config.hook.pytest_deselected(items=idle)
    if not marked:
        return
    items[:] = [i for i in items if i not in marked] + marked  # theirs last
    if config.option.collectonly:
        return
    tmp = pathlib.Path(tempfile.mkdtemp(prefix="kirchhoff-background-"))
    commands = _background_commands(tmp, marked, offloaded)
    for name in dict.fromkeys(i.get_closest_marker("background").args[0] for i in marked):
        if name in ("float32", "doc_examples") and not jax.config.jax_enable_x64:
            continue  # this is the float32 process itself
        argv, env = commands[name]
        _JOBS[name] = BackgroundJob(argv, env, tmp)
    # one at a time: the main process keeps one core, the jobs share the other
    threading.Thread(target=_run_in_turn, args=(list(_JOBS.values()),), daemon=True).start()


def pytest_sessionfinish(session, exitstatus):
    for job in _JOBS.values():
        job.stop()
    for job in _JOBS.values():
        if job.proc is not None:
            job.proc.wait()
    for out_dir in {job.out_dir for job in _JOBS.values()}:
        shutil.rmtree(out_dir, ignore_errors=True)


@pytest.fixture
def background_job(request):
    """The background job named by the test's ``background`` marker."""
    name = request.node.get_closest_marker("background").args[0]
    if name not in _JOBS:
        pytest.skip(f"background job {name!r} was not started")
    return _JOBS[name]
