"""The code examples of the documentation, run as a user runs them: x64 off (float32).

Not collected by name (``test_*.py``): ``test_doc_examples.py`` runs this file in a process of
its own with ``KIRCHHOFF_TEST_X64=0`` (a background job, conftest), as the float32 twin of
``test_precision.py`` is run. Run it alone with
``KIRCHHOFF_TEST_X64=0 python -m pytest tests/doc_examples.py``.

- Every ```` ```python ```` block of a page in ``docs/`` runs, in order, in one namespace per
  page, in a temporary working directory (so examples may write run directories).
- A page that needs a program says so in a comment, ``<!-- requires: ngspice -->``: without
  it the page is skipped locally and fails in CI (as ``conftest.require_ngspice``).
- Every docstring example (``>>>``) in ``kirchhoff`` runs as a doctest.
"""

import doctest
import importlib
import os
import pkgutil
import re
import shutil
from pathlib import Path

import pytest

import kirchhoff

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
FENCE = re.compile(r"^```python[^\n]*\n(.*?)^```", re.M | re.S)


def page_blocks(page: Path) -> list[str]:
    return FENCE.findall(page.read_text())


PAGES = sorted(p for p in DOCS.rglob("*.md") if page_blocks(p))


REQUIRES = re.compile(r"<!--\s*requires:\s*([\w, -]+?)\s*-->")


def require_programs(page: Path):
    for match in REQUIRES.finditer(page.read_text()):
        for program in (p.strip() for p in match.group(1).split(",")):
            if shutil.which(program) is None:
                message = f"{page.name} needs {program} on PATH"
                if os.environ.get("CI"):
                    pytest.fail(message + "; .ci/run installs it")
                pytest.skip(message)


@pytest.mark.parametrize("page", PAGES, ids=[str(p.relative_to(DOCS)) for p in PAGES])
def test_page_examples_run(page, tmp_path, monkeypatch):
    require_programs(page)
    monkeypatch.chdir(tmp_path)
    namespace = {"__name__": "__docs__"}
    for i, block in enumerate(page_blocks(page)):
        try:
            exec(compile(block, f"{page.relative_to(ROOT)} block {i + 1}", "exec"), namespace)
        except Exception as e:  # name the block in the failure
            raise AssertionError(f"{page.relative_to(ROOT)}, code block {i + 1}:\n{block}") from e


def _modules():
    names = [kirchhoff.__name__]
    for info in pkgutil.walk_packages(kirchhoff.__path__, prefix="kirchhoff."):
        if info.name != "kirchhoff.__main__":
            names.append(info.name)
    return names


def _doctests():
    finder = doctest.DocTestFinder(exclude_empty=True)
    found = []
    for name in _modules():
        module = importlib.import_module(name)
        for test in finder.find(module, name):
            if test.examples and test.name.startswith(name) and test.lineno is not None:
                found.append(test)
    # a name re-exported by a package is found twice: keep the defining module's copy
    unique = {}
    for test in found:
        unique.setdefault((test.filename, test.lineno), test)
    return sorted(unique.values(), key=lambda t: t.name)


DOCTESTS = _doctests()


@pytest.mark.parametrize("test", DOCTESTS, ids=[t.name for t in DOCTESTS])
def test_docstring_examples_run(test, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    runner = doctest.DocTestRunner(
        optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE, verbose=False
    )
    out = []
    runner.run(test, out=out.append)
    failed, _ = runner.summarize(verbose=False)
    assert not failed, "".join(out)


def test_examples_run_in_float32():
    import jax

    assert not jax.config.jax_enable_x64 or os.environ.get("KIRCHHOFF_TEST_X64") != "0"
