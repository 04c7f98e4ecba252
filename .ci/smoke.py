"""Smoke check of the installed wheel (run by .ci/run from outside the source tree, with the
Python of a fresh virtual environment that has only the wheel installed).

A file missing from the package fails here: the import, the command line's training run on
the offline data, a SPICE export and its re-import all use the installed copy.
"""

import importlib.metadata
import json
import os
import pathlib
import subprocess
import sys
import tempfile

import kirchhoff as kh

here = pathlib.Path(kh.__file__).resolve()
assert "site-packages" in here.parts, f"kirchhoff imported from {here}, not the installed wheel"
assert importlib.metadata.version("kirchhoff-jax") == kh.__version__, "two version strings"

work = pathlib.Path(tempfile.mkdtemp(prefix="kirchhoff-smoke-"))
os.chdir(work)

# the command line, two epochs on the offline MNIST subset (the console script and -m)
run = subprocess.run(
    ["kirchhoff", "train", "--epochs", "2", "--out", "runs/smoke"],
    capture_output=True,
    text=True,
    timeout=900,
)
assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
result = json.loads((work / "runs/smoke/result.json").read_text())
error = result["test_error_percent"]
assert 0.0 <= error < 50.0, f"two epochs of DRN-XS should learn something: {error} % test error"
again = subprocess.run(
    [sys.executable, "-m", "kirchhoff", "evaluate", "runs/smoke"], capture_output=True, text=True
)
assert again.returncode == 0, again.stderr[-3000:]

# one SPICE export of the trained network, read back
_, net, *_ = kh.load_checkpoint("runs/smoke")
circuit = net.to_circuit()
netlist = kh.to_netlist(circuit)
assert ".op" in netlist and netlist.rstrip().endswith(".end")
back = kh.from_netlist(netlist)
assert back.n_nodes == circuit.n_nodes, (back.n_nodes, circuit.n_nodes)
print(
    f"smoke: kirchhoff-jax {kh.__version__} from {here.parent}; 2 epochs: {error:.2f} % test "
    f"error; netlist of {circuit.n_nodes} nodes, {len(netlist.splitlines())} lines, read back"
)
