"""Execute the research notebooks, top to bottom, in a fresh kernel each.

    python notebooks/execute.py                 # every notebook at full size, outputs saved in place
    python notebooks/execute.py 03_the_seed_paper.ipynb
    python notebooks/execute.py --small         # the CI size; nothing is saved
    python notebooks/execute.py --small --out DIR   # the CI size, executed copies written to DIR

Each notebook's parameter cell (tagged ``parameters``) reads ``KIRCHHOFF_NOTEBOOK_SIZE``
(``small`` or ``full``); this script sets it. A full-size run records its size, wall time and
date in the notebook's metadata (``metadata.kirchhoff``), which the tests check on the
committed notebooks. A failing cell stops that notebook (its error is in the saved copy with
``--out``) and the run goes on to the next; the exit status is 1 if any failed."""

from __future__ import annotations

import argparse
import datetime
import os
import pathlib
import sys
import time

HERE = pathlib.Path(__file__).resolve().parent
SIZE_VARIABLE = "KIRCHHOFF_NOTEBOOK_SIZE"
# The CI size is compile-bound (each notebook compiles dozens of programs and runs each a few
# times), so its kernels ask XLA's CPU backend for cheap compiles: the same programs, less
# optimised. The full size keeps XLA's defaults.
CHEAP_COMPILES = "--xla_backend_optimization_level=0 --xla_llvm_disable_expensive_passes=true"


def notebooks() -> list[pathlib.Path]:
    return sorted(HERE.glob("[0-9][0-9]_*.ipynb"))


def execute(path: pathlib.Path, size: str, timeout: int = 3600):
    """Run ``path`` at ``size`` ("small" or "full") in a fresh kernel; return the executed
    notebook (nbformat) and its wall time. A failing cell raises nbclient's
    CellExecutionError, with the notebook as far as it ran in its ``notebook`` attribute."""
    import nbclient
    import nbformat

    if size not in ("small", "full"):
        raise ValueError(f"size must be 'small' or 'full', got {size!r}")
    nb = nbformat.read(path, as_version=4)
    env = {SIZE_VARIABLE: size}
    flags = os.environ.get("XLA_FLAGS", "")
    if size == "small" and CHEAP_COMPILES not in flags:  # (the test suite's are already so)
        env["XLA_FLAGS"] = (flags + " " + CHEAP_COMPILES).strip()
    previous = {k: os.environ.get(k) for k in env}
    os.environ.update(env)  # the kernel inherits this process's environment
    try:
        client = nbclient.NotebookClient(
            nb,
            timeout=timeout,
            kernel_name="python3",
            resources={"metadata": {"path": str(path.parent)}},
        )
        t0 = time.perf_counter()
        try:
            client.execute()
        except nbclient.exceptions.CellExecutionError as err:
            err.notebook = nb  # executed up to the failing cell, its error included
            raise
        seconds = time.perf_counter() - t0
    finally:
        for k, v in previous.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    nb.metadata["kirchhoff"] = {
        "size": size,
        "seconds": round(seconds, 1),
        "executed": datetime.date.today().isoformat(),
    }
    return nb, seconds


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("names", nargs="*", help="notebook file names (default: all)")
    ap.add_argument("--small", action="store_true", help="the CI size; nothing is saved in place")
    ap.add_argument("--out", type=pathlib.Path, help="write the executed copies here instead")
    args = ap.parse_args(argv)
    import nbclient
    import nbformat

    paths = notebooks()
    if args.names:
        wanted = {pathlib.Path(n).name for n in args.names}
        unknown = wanted - {p.name for p in paths}
        if unknown:
            print(f"error: no such notebook: {', '.join(sorted(unknown))}", file=sys.stderr)
            return 2
        paths = [p for p in paths if p.name in wanted]
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
    failed = []
    for path in paths:
        size = "small" if args.small else "full"
        print(f"{path.name}: running at {size} size ...", flush=True)
        try:
            nb, seconds = execute(path, size)
        except nbclient.exceptions.CellExecutionError as err:
            failed.append(path.name)
            print(f"{path.name}: FAILED\n{err}", flush=True)
            nb = getattr(err, "notebook", None)
            if args.out and nb is not None:
                nbformat.write(nb, args.out / path.name)
            continue
        if args.out:
            nbformat.write(nb, args.out / path.name)
        elif not args.small:
            nbformat.write(nb, path)
        print(f"{path.name}: {seconds:.0f} s", flush=True)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
