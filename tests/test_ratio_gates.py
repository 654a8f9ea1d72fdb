"""The ratio gates of the bench envs (benchmarks/ratio_gates.json) name real benchmarks and ratios.

A gate whose name matched no benchmark would never apply, so a renamed benchmark must fail here,
in the default run, rather than leave its speed ungated.
"""

from __future__ import annotations

import json
import os
import re

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH = os.path.join(ROOT, "benchmarks")


def test_every_gate_names_a_benchmark_that_records_its_ratio():
    with open(os.path.join(BENCH, "ratio_gates.json")) as fh:
        gates = json.load(fh)["gates"]
    assert gates
    for name, ratios in gates.items():
        module, _, test = name.partition("::")
        with open(os.path.join(BENCH, module)) as fh:
            source = fh.read()
        function = re.sub(r"\[.*\]$", "", test)
        assert re.search(rf"^def {re.escape(function)}\(benchmark", source, re.M), name
        for key, floor in ratios.items():
            assert f'"{key}"' in source, (name, key)
            assert isinstance(floor, (int, float)) and floor > 1.0, (name, key)
