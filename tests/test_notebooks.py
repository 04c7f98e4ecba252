"""The research notebooks: each runs top to bottom at the CI size and draws its figures, and the
committed copies carry the outputs of a full-size run.

Conventions (notebooks/execute.py): a parameter cell tagged ``parameters`` reads
``KIRCHHOFF_NOTEBOOK_SIZE`` and prints ``size: small`` or ``size: full``; every cell tagged
``figure`` displays at least one image."""

import pathlib

import pytest

ROOT = pathlib.Path(__file__).parent.parent
EXPECTED = [
    "01_circuits_are_energy_based_models.ipynb",
    "02_eqprop_gradients.ipynb",
    "03_the_seed_paper.ipynb",
    "04_training_a_deep_resistive_network.ipynb",
    "05_hardware_realism.ipynb",
]
NOTEBOOKS = [ROOT / "notebooks" / name for name in EXPECTED]


def _tagged(nb, tag):
    return [c for c in nb.cells if tag in c.get("metadata", {}).get("tags", [])]


def _images(cell) -> int:
    return sum(
        1
        for o in cell.get("outputs", [])
        if o.get("output_type") in ("display_data", "execute_result")
        and ({"image/png", "image/svg+xml"} & set(o.get("data", {})))
    )


def _text(cell) -> str:
    out = []
    for o in cell.get("outputs", []):
        if o.get("output_type") == "stream":
            out.append(o.get("text", ""))
        elif "text/plain" in o.get("data", {}):
            out.append(o["data"]["text/plain"])
    return "".join(out)


def _check_structure(nb, name):
    """What every notebook must have, executed or not: an opening that says what it shows,
    its reference and its full-size time; one parameter cell; figure cells."""
    first = nb.cells[0]
    assert first.cell_type == "markdown", f"{name}: must open with a markdown cell"
    opening = "".join(first.source).lower()
    for needed in ("reference", "full size", "2 cores"):
        assert needed in opening, f"{name}: the opening should state its {needed!r}"
    assert len(_tagged(nb, "parameters")) == 1, f"{name}: needs exactly one parameter cell"
    assert len(_tagged(nb, "figure")) >= 2, f"{name}: needs at least two figure cells"


def _check_executed(nb, name, size):
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(c.get("execution_count") for c in code), f"{name}: a code cell did not run"
    errors = [o for c in code for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors, f"{name}: {errors[0].get('ename')}: {errors[0].get('evalue')}"
    (params,) = _tagged(nb, "parameters")
    assert f"size: {size}" in _text(params), f"{name}: the parameter cell did not pick {size}"
    for k, cell in enumerate(_tagged(nb, "figure")):
        assert _images(cell) >= 1, f"{name}: figure cell {k} displayed no image"


def test_every_notebook_is_listed():
    found = sorted(p.name for p in (ROOT / "notebooks").glob("*.ipynb"))
    assert found == sorted(EXPECTED)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=EXPECTED)
def test_committed_notebook_carries_full_size_outputs(path):
    """Read on a code host without running anything: the committed file is a full-size run."""
    nbformat = pytest.importorskip("nbformat")
    nb = nbformat.read(path, as_version=4)
    _check_structure(nb, path.name)
    meta = nb.metadata.get("kirchhoff", {})
    assert meta.get("size") == "full", f"{path.name}: not saved from a full-size run"
    _check_executed(nb, path.name, "full")


@pytest.mark.background("notebooks")
@pytest.mark.parametrize("path", NOTEBOOKS, ids=EXPECTED)
def test_notebook_runs_at_ci_size(path, background_job):
    """Top to bottom in a fresh kernel at the small size; a failing cell fails the test. The
    notebooks run in one background process (``notebooks/execute.py --small --out``, started
    by conftest after collection) beside the rest of the suite."""
    nbformat = pytest.importorskip("nbformat")
    returncode, output = background_job.wait(timeout=900)
    executed = background_job.out_dir / path.name
    assert executed.exists(), f"{path.name} was not executed:\n{output[-6000:]}"
    _check_executed(nbformat.read(executed, as_version=4), path.name, "small")
