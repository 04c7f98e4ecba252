"""The distribution: one version string (kirchhoff.__version__) that the package metadata,
CITATION.cff and CHANGELOG.md agree with, and a distribution name that is not the package
index's unrelated ``kirchhoff``. CI builds the wheel and smoke-checks it in a fresh
environment (.ci/run, .ci/smoke.py)."""

import importlib.metadata
import re
import tomllib
from pathlib import Path

import kirchhoff as kh

ROOT = Path(__file__).resolve().parents[1]


def test_distribution_name_and_one_version_string():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert project["project"]["name"] == "kirchhoff-jax"
    assert "version" not in project["project"]  # read from the package, not written twice
    assert project["project"]["dynamic"] == ["version"]
    assert project["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "kirchhoff.__version__"}
    assert re.fullmatch(r"\d+\.\d+\.\d+(?:(?:a|b|rc)\d+)?", kh.__version__)


def test_installed_metadata_matches_the_package():
    assert importlib.metadata.version("kirchhoff-jax") == kh.__version__


def test_citation_and_changelog_name_this_version():
    citation = (ROOT / "CITATION.cff").read_text()
    assert re.search(r"^version: (\S+)$", citation, re.M).group(1) == kh.__version__
    assert re.search(r"^cff-version: 1\.2\.0$", citation, re.M)
    for arxiv in ("2006.01981", "2402.11674"):  # Kendall et al. 2020, Scellier 2024
        assert arxiv in citation
    assert "10.3389/fncom.2017.00024" in citation  # Scellier & Bengio 2017
    changelog = (ROOT / "CHANGELOG.md").read_text()
    first = re.search(r"^## \[([^\]]+)\]", changelog, re.M)
    assert first and first.group(1) == kh.__version__, "CHANGELOG.md's newest entry"


def test_readme_installs_the_distribution_by_its_name():
    readme = (ROOT / "README.md").read_text()
    assert "pip install kirchhoff-jax" in readme
    assert not re.search(r"pip install kirchhoff(?![-\w])", readme)
