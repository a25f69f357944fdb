"""The benchmarks stay honest: their baselines produce what the measured paths produce (checked here, untimed;
the benchmarks themselves never run in CI)."""

from __future__ import annotations

import sys

from adapter.settings import Settings
from tests.conftest import ROOT

sys.path.insert(0, str(ROOT / "bench"))

import map_throughput  # bench/ is not a package: on sys.path above


def test_the_mapping_baseline_writes_the_full_paths_bytes() -> None:
    """bench/map_throughput.py compares the full path with a plain-dict builder of the same output: when the
    mapping changes, the builder must follow, or the ratio measures different work."""
    settings = Settings()
    data = map_throughput.make_input(14)
    reference = map_throughput.reference_parts(data, settings)
    count, full = map_throughput.full_path(data, settings)
    base_count, base = map_throughput.baseline(data, settings, reference)
    assert count == base_count > 0
    assert full == base
