"""README.md's generated "Measured here" block against benchmarks/results/*.json, and the
renderers of benchmarks/readme_results.py on small, old-format and incomplete inputs (no
benchmark is run: fast)."""

import copy
import json
import re
from pathlib import Path

import pytest
from helpers import load_benchmark


@pytest.fixture(scope="module")
def rr():
    return load_benchmark("readme_results")


# ---- the README itself ------------------------------------------------------------------------
def test_readme_block_matches_results(rr):
    diff = rr.readme_diff()
    assert not diff, (
        "README.md's measured block is stale: run python benchmarks/readme_results.py\n" + diff
    )


# ---- small inputs, one per renderer -----------------------------------------------------------
def _centered(circuit, error):
    return {
        "circuit": circuit,
        "dtype": "float64",
        "variant": "centered",
        "beta": 1.0000000000000004e-4,  # as logspace gives it
        "rel_error": error,
        "all_success": True,
        "min_nudged_steps": 2,
    }


def _slopes(positive, negative, centered):
    return {
        "float64": {
            k: {"slope": v} for k, v in zip(VARIANTS, (positive, negative, centered), strict=True)
        }
    }


VARIANTS = ("positive", "negative", "centered")
GRADIENTS = {
    "dtypes": ["float64"],
    "circuits": {"graph": {"float64": {"implicit_rel_error": 0.0}}, "net": {"float64": {}}},
    "records": [_centered("graph", 4.0786e-9), _centered("net", 3.3e-10)],
    "best": {
        "graph": {"float64": {"centered": {"rel_error": 4.0786e-15, "beta": 1e-7}}},
        "net": {"float64": {"centered": {"rel_error": 5.3864e-16, "beta": 1e-7}}},
    },
    "slopes": {"graph": _slopes(0.99926, 1.0006, 1.9994), "net": _slopes(0.9991, 1.0004, 2.0001)},
}
RULES = {
    "layered_rules": {
        "small": {"info": {"n_parameters": 68, "input_gain": 1.0}, "float64": []},
        "big": {
            "info": {"n_parameters": 157910, "input_gain": 100.0},
            "float64": [
                {"rule": "coupled", "eta": 1.0, "cosine": 0.96609, "rel_error": 3.7085},
                {"rule": "coupled", "eta": 0.001, "cosine": 0.99803, "rel_error": 3.5201},
                {"rule": "contrastive", "eta": None, "cosine": 0.96609, "rel_error": 3.7085},
                {"rule": "eqprop-centered", "beta": 0.001, "cosine": 1.0, "rel_error": 5.578e-8},
            ],
        },
    }
}
THROUGHPUT_NEW = {
    "matmul_gflops": 28.777,
    "dram_bandwidth_gb_s": 11.157,
    "dtype": "float32",
    "n_sweeps": 4,
    "records": [
        {
            "model": "drn-1h",
            "batch_size": 64,
            "examples_per_s": 5582.1,
            "fraction_of_roofline": 0.81081,
            "bound_by": "compute",
        },
        {
            "model": "drn-xs",
            "batch_size": 4,
            "examples_per_s": 1685.42,
            "fraction_of_roofline": 0.04672,
            "bound_by": "memory",
        },
    ],
    "loop": [
        {
            "model": "drn-1h",
            "batch_size": 64,
            "examples_per_s": 4046.8,
            "fraction_of_step_rate": 0.725,
        },
        {
            "model": "drn-xs",
            "batch_size": 64,
            "examples_per_s": 11051.0,
            "fraction_of_step_rate": None,
        },
    ],
    "closed_forms": [{"model": "drn-1h", "batch_size": 64, "speedup": 1.67814}],
    "target": "DRN-1H at batch 64: >= 50% of the roofline",
    "target_met": False,
}
THROUGHPUT_OLD = {
    "matmul_gflops": 170.64,
    "records": [
        {
            "model": "drn-1h",
            "batch_size": 64,
            "examples_per_s": 12860.2,
            "fraction_of_bound": 0.2823,
        }
    ],
    "target_met": False,
}
TRAIN_NEW = {
    "runs": [
        {
            "recipe": "drn-1h-fashion-mnist",
            "recipe_version": 2,
            "model": "drn-1h",
            "dataset": "fashion_mnist",
            "algorithm": "eqprop-centered",
            "final_test_error_percent": 10.3,
            "final_val_error_percent": 9.8,
            "epochs_run": 40,
            "picked_epoch": 37,
            "wall_seconds": 571.4,
            "trained_on": "the training split less 5,000 validation examples",
            "target_test_error_percent": 10.38,
            "target_wall_seconds": 600.0,
            "meets_error_target": True,
            "meets_time_target": True,
        }
    ]
}
TRAIN_OLD = {
    "runs": [
        {
            "model": "drn-1h",
            "dataset": "fashion_mnist",
            "algorithm": "eqprop (centered)",
            "epochs": 100,
            "batch_size": 16,
            "final_test_error_percent": 10.46,
            "target_test_error_percent": 10.38,
            "meets_target": False,
            "wall_seconds": 1710.76,
        }
    ]
}


def _device_runs(axis, value, errors, cosine=None, energy=None):
    return [
        {
            "model": "drn-xs",
            "axis": axis,
            "value": value,
            "algorithm": algorithm,
            "test_error_percent": error,
            "update_cosine": cosine,
            "energy_per_step_joules": energy,
        }
        for algorithm, error in zip(("eqprop", "coupled", "backprop"), errors, strict=True)
    ]


DEVICES = {
    "algorithms": ["eqprop", "coupled", "backprop"],
    "settings": {
        "drn-xs": {"dataset": "mnist_subset", "train": 4000, "val": 1000, "test": 1000, "epochs": 3}
    },
    "runs": _device_runs("ideal", None, (11.3, 10.1, 11.0), 0.9962, 108.63)
    + _device_runs("read_noise", 0.001, (24.3, 16.5, 10.5), 0.76894, 119.5)
    + _device_runs("preset", "taox-hfox", (20.7, 21.2, 22.3), 0.2525, 194.4),
    "seconds": 3208.26,
}
SPICE_NEW = {
    "kirchhoff_s_per_point": 1.383e-2,
    "ngspice_s_per_point": 0.74143,
    "speedup": 53.602,
    "speedup_resolved": False,
    "speedup_with_startup": 627.2,
    "startup_s": {"ngspice_process_parse_setup": 3.0904, "kirchhoff_compile": 1.2316},
    "kirchhoff_compile_s": 1.2316,
    "max_abs_dv_volts": 1.5979e-7,
    "network": {"inputs": 1568, "hidden": 100, "outputs": 10, "nodes": 1679, "diodes": 200},
}
SPICE_GENERAL = {
    **SPICE_NEW,
    "general_s_per_point": 2.71e-3,
    "speedup_general": 273.6,
    "speedup_general_resolved": True,
    "general_target_speedup": 100.0,
    "max_abs_dv_volts_general": 1.6e-7,
    "startup_s": {**SPICE_NEW["startup_s"], "general_compile": 11.2},
}
SPICE_OLD = {
    "kirchhoff_s_per_point": 1.3097e-4,
    "ngspice_s_per_point": 0.36769,
    "speedup": 2807.4,
    "speedup_with_startup": 80561.35,
    "ngspice_startup_s": 7.523,
    "max_abs_dv_volts": 1.5976e-7,
    "ngspice_options": {"reltol": 1e-9, "itl1": 1000},
}
SEED = {
    "datasets": {
        "mnist": {
            "dataset": "mnist_subset",
            "train_examples": 3500,
            "val_examples": 500,
            "test_examples": 1000,
            "epochs": 30,
            "summary": {
                "seed (EqProp)": {
                    "final_val_error_percent": 9.2,
                    "final_test_error_percent": 6.4,
                    "wall_seconds": 57.34,
                }
            },
            "claim": {"gap_points": 0.9000000000000004, "allowed_gap_points": 1.5, "holds": True},
        }
    },
    "spice": {
        "examples": 4,
        "nodes": 1781,
        "max_abs_difference_volts": 4.3049e-10,
        "target_volts": 1e-6,
        "holds": True,
    },
}

# renderer name, input, text the bullet must quote, text it must not
CASES = [
    (
        "render_gradients",
        GRADIENTS,
        [
            "`gradient_check.json`",
            "centered relative error 4.08e-9 / 3.30e-10 at β = 1e-4",
            "best 4.08e-15 / 5.39e-16 at β = 1e-7",
            "positive 0.999 / 0.999, negative 1.00 / 1.00, centered 2.00 / 2.00",
            "every nudged phase converged (at least 2 steps)",
        ],
        ["implicit gradient is off"],  # float64's own error is zero: nothing to say
    ),
    (
        "render_other_rules",
        RULES,
        [
            "big at initialisation",
            "input gain 100",
            "coupled η = 1e-3: cosine 0.998, relative error 3.52",
            "coupled η = 1: cosine 0.966, relative error 3.71",
            "contrastive: cosine 0.966",
            "centered EqProp β = 1e-3: relative error 5.58e-8",
        ],
        ["small"],
    ),
    (
        "render_throughput",
        THROUGHPUT_NEW,
        [
            "`throughput.json`",
            "dense matmul 28.8 GFLOP/s",
            "DRAM bandwidth 11.2 GB/s",
            "DRN-1H 5,582 examples/s at batch 64 (81.1 % of the roofline, compute-bound)",
            "DRN-XS 1,685 examples/s at batch 4 (4.67 % of the roofline, memory-bound)",
            "whole training loop 4,047 examples/s at batch 64 (72.5 % of the step's)",
            "whole training loop 11,051 examples/s at batch 64",
            "DRN-1H 1.68× at batch 64",
            "target not met: DRN-1H at batch 64: ≥ 50% of the roofline",
        ],
        [">="],
    ),
    (
        "render_throughput",
        THROUGHPUT_OLD,
        ["171 GFLOP/s", "12,860 examples/s at batch 64 (28.2 % of the FLOP bound)"],
        ["roofline", "DRAM", "target"],
    ),
    (
        "render_train_accuracy",
        TRAIN_NEW,
        [
            "`drn-1h-fashion-mnist` v2 (DRN-1H, Fashion-MNIST, eqprop-centered)",
            "10.30 % test error",
            "9.80 % validation error",
            "validation picks epoch 37 of 40",
            "9:31 min",
            "trained on the training split less 5,000 validation examples",
            "target ≤ 10.38 % test error (met) within 10:00 min (met)",
        ],
        [],
    ),
    (
        "render_train_accuracy",
        TRAIN_OLD,
        [
            "10.46 % test error",
            "100 epochs",
            "batch 16",
            "28:31 min",
            "10.38 % test error (not met)",
        ],
        ["validation"],
    ),
    (
        "render_nonidealities",
        DEVICES,
        [
            "EqProp / coupled / autodiff",
            "4,000 / 1,000 / 1,000",
            "ideal 11.3 / 10.1 / 11.0 (cos 0.996)",
            "read noise 0.1 % 24.3 / 16.5 / 10.5 (cos 0.769)",
            "TaOx/HfOx 20.7 / 21.2 / 22.3",
            "109 J ideal, up to 194 J (TaOx/HfOx)",
            "53:28 min",
        ],
        [],
    ),
    (
        "render_spice_speed",
        SPICE_NEW,
        [
            "13.8 ms per operating point",
            "0.741 s inside one batched run: 53.6× (from an upper bound",
            "627×",
            "process, parse and set-up 3.09 s",
            "kirchhoff's compile 1.23 s",
            "160 nV",
            "1,568–100–10 network",
        ],
        [],
    ),
    (
        "render_spice_speed",
        SPICE_GENERAL,
        [
            "the general-circuit path (SparseNewton) 2.71 ms per point: 274× (target 100×: met)",
            "within 160 nV of ngspice",
            "SparseNewton's compile 11.2 s",
        ],
        ["not met"],
    ),
    (
        "render_spice_speed",
        {**SPICE_GENERAL, "speedup_general": 80.0, "speedup_general_resolved": False},
        ["80.0× (from an upper bound) (target 100×: not met)"],
        [],
    ),
    (
        "render_spice_speed",
        SPICE_OLD,
        [
            "0.131 ms",
            "0.368 s inside one batched run: 2,810×",
            "80,600×",
            "ngspice's 7.52 s",
            "`reltol=1e-9 itl1=1000`",
        ],
        ["upper bound"],
    ),
    (
        "render_seed_paper",
        SEED,
        [
            "MNIST subset (3,500 / 500 / 1,000, 30 epochs)",
            "seed (EqProp) 6.40 % (validation 9.20 %, 57.3 s)",
            "gap to the software network 0.900 points (at most 1.5: holds)",
            "1,781 nodes, 4 test digits",
            "within 0.430 nV (target 1.00 µV: holds)",
        ],
        [],
    ),
]


@pytest.mark.parametrize("name, data, quoted, absent", CASES, ids=[c[0] for c in CASES])
def test_renderer_quotes_the_numbers(rr, name, data, quoted, absent):
    text = getattr(rr, name)(data)
    assert text.startswith("- **")
    for snippet in quoted:
        assert snippet in text, f"{snippet!r} not in {text!r}"
    for snippet in absent:
        assert snippet not in text


def _paths(data, prefix=()):
    """The path of every key and list item under ``data``."""
    children = data.items() if isinstance(data, dict) else enumerate(data)
    for key, value in children:
        yield (*prefix, key)
        if isinstance(value, dict | list):
            yield from _paths(value, (*prefix, key))


def _edited(data, path, value):
    """A copy of ``data`` with ``path`` deleted (value ``...``) or set to ``value``."""
    out = copy.deepcopy(data)
    parent = out
    for key in path[:-1]:
        parent = parent[key]
    if value is ...:
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    return out


@pytest.mark.parametrize("name, data", [c[:2] for c in CASES], ids=[c[0] for c in CASES])
def test_renderer_survives_missing_and_odd_keys(rr, name, data):
    render = getattr(rr, name)
    assert render({}) is None
    for path in _paths(data):
        for value in (..., None, "?", [], {}, True, -1.0, float("nan")):
            text = render(_edited(data, path, value))
            assert text is None or isinstance(text, str), (path, value)


def test_bullet_names_date_and_quick_runs(rr):
    text = rr.render_spice_speed({**SPICE_OLD, "date": "2026-12-01", "quick": True})
    assert text.startswith("- **SPICE** (`spice_speed.json`, 2026-12-01, a quick run")


# ---- formatting, wrapping and the block -------------------------------------------------------
def test_number_formats(rr):
    assert [rr.sig(x) for x in (0.99926, 1.9994, 28.777, 2807.4, 4.0786e-15, 9.996, 0)] == [
        "0.999",
        "2.00",
        "28.8",
        "2,810",
        "4.08e-15",
        "10.0",
        "0",
    ]
    assert [rr.short(x) for x in (1e-4, 0.3, 1.0, 2.1544e-6, 1568)] == [
        "1e-4",
        "0.3",
        "1",
        "2.15e-6",
        "1,568",
    ]
    assert rr.count(12860.4) == "12,860" and rr.percent(10.4) == "10.40 %"
    assert rr.duration(18.43) == "18.4 s" and rr.duration(1710.76) == "28:31 min"
    assert rr.per_point(0.3677) == "0.368 s" and rr.per_point(1.3097e-4) == "0.131 ms"


def test_wrap_keeps_words_and_never_starts_a_block(rr):
    text = "- **T** (`f.json`): " + " ".join(
        f"value {i} > 50 - 3 + 4 * 2 # {i}. x | y 10.46 %" for i in range(40)
    )
    wrapped = rr.wrap(text, width=40)
    lines = wrapped.splitlines()
    assert " ".join(wrapped.split()) == " ".join(text.split())
    assert all(line.startswith("  ") and len(line) <= 40 for line in lines[1:] if " " in line[2:])
    assert not any(re.match(r"  ([-+*>#|]|\d+[.)])", line) for line in lines[1:])
    assert not any(line.lstrip().startswith("%") for line in lines)


def test_block_reads_full_results_only(rr, tmp_path):
    (tmp_path / "throughput_quick.json").write_text(json.dumps(THROUGHPUT_NEW))
    assert "Throughput" not in rr.render_block(tmp_path)
    (tmp_path / "spice_speed.json").write_text(json.dumps(SPICE_OLD))
    block = rr.render_block(tmp_path)
    assert block.startswith("- **SPICE**") and "Throughput" not in block


def test_update_and_check_round_trip(rr, tmp_path):
    results = tmp_path / "results"
    results.mkdir()
    (results / "spice_speed.json").write_text(json.dumps(SPICE_OLD))
    readme = tmp_path / "README.md"
    readme.write_text(f"# T\n\n### Measured\n\n{rr.BEGIN}\nold numbers\n{rr.END}\n\nprose\n")
    assert rr.readme_diff(readme, results).startswith("--- README.md")
    assert rr.update_readme(readme, results)
    assert rr.readme_diff(readme, results) == ""
    text = readme.read_text()
    assert "old numbers" not in text and "2,810×" in text and text.endswith(f"{rr.END}\n\nprose\n")
    assert not rr.update_readme(readme, results)
    (results / "spice_speed.json").write_text(json.dumps({**SPICE_OLD, "speedup": 3000.0}))
    diff = rr.readme_diff(readme, results)
    assert "3,000×" in diff and "2,810×" in diff


def test_command_line_check_and_update(rr, tmp_path, monkeypatch, capsys):
    (tmp_path / "spice_speed.json").write_text(json.dumps(SPICE_OLD))
    readme = tmp_path / "README.md"
    readme.write_text(f"{rr.BEGIN}\n{rr.END}\n")
    monkeypatch.setattr(rr, "README", readme)
    monkeypatch.setattr(rr, "RESULTS", tmp_path)
    assert rr.main(["--check"]) == 1
    assert "+- **SPICE**" in capsys.readouterr().out
    assert rr.main([]) == 0 and rr.main(["--check"]) == 0


def test_missing_markers_are_an_error(rr):
    with pytest.raises(ValueError, match="measured:begin"):
        rr.replace_block("# no markers\n", "- x")


# ---- the new formats, on the latest quick runs (git-ignored: present only where run) ---------
def _quick(rr, name):
    path = Path(rr.RESULTS) / name
    if not path.is_file():
        pytest.skip(f"no {name} (run its benchmark with --quick)")
    return json.loads(path.read_text())


def test_throughput_quick_run(rr):
    data = _quick(rr, "throughput_quick.json")
    text = rr.render_throughput(data)
    assert f"DRAM bandwidth {rr.sig(data['dram_bandwidth_gb_s'])} GB/s" in text
    for r in data["records"]:
        assert f"{rr.count(r['examples_per_s'])} " in text
        assert f"{rr.fraction(r['fraction_of_roofline'])}" in text and r["bound_by"] in text
    for r in data["loop"]:
        assert f"loop {rr.count(r['examples_per_s'])} examples/s" in text
    for r in data["closed_forms"]:
        assert f"{rr.sig(r['speedup'])}×" in text
    assert ("target met" if data["target_met"] else "target not met") in text


def test_train_accuracy_quick_run(rr):
    data = _quick(rr, "train_accuracy_quick.json")
    text = rr.render_train_accuracy(data)
    for run in data["runs"]:
        assert f"`{run['recipe']}` v{run['recipe_version']}" in text
        assert f"{rr.percent(run['final_test_error_percent'])} test error" in text
        assert f"{rr.percent(run['final_val_error_percent'])} validation error" in text
        assert f"epoch {run['picked_epoch']} of {run['epochs_run']}" in text
        assert rr.duration(run["wall_seconds"]) in text and run["trained_on"] in text


def test_spice_speed_quick_run(rr):
    data = _quick(rr, "spice_speed_quick.json")
    text = rr.render_spice_speed(data)
    assert f"kirchhoff's compile {rr.sig(data['startup_s']['kirchhoff_compile'])} s" in text
    assert f"{rr.sig(data['speedup'])}×" in text
