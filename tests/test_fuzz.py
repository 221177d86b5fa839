"""Property tests: our safetensors, GGUF, JSON and pickle readers never raise on arbitrary bytes or on
mutations of valid files written by the real libraries; they return facts or their own FactError."""

from __future__ import annotations

import importlib.util
import os
import random
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from modelcheck.model import FactError, PickleScan

_FUZZ = Path(__file__).resolve().parent.parent / "bench" / "fuzz.py"
_spec = importlib.util.spec_from_file_location("bench_fuzz", _FUZZ)
fuzz = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fuzz)

READERS = fuzz.readers()
SUFFIX = {"safetensors": ".safetensors", "gguf": ".gguf", "json": ".json", "pickle": ".pkl"}
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def pools(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[bytes]]:
    return fuzz.seeds(str(tmp_path_factory.mktemp("seeds")))


def _check(fmt: str, data: bytes, path: Path, suffix: str | None = None) -> None:
    target = path.with_suffix(suffix or SUFFIX[fmt])
    target.write_bytes(data)
    result = READERS[fmt](str(target), target.name, len(data))  # must not raise
    if fmt == "pickle":
        scans, errors = result
        assert all(isinstance(s, PickleScan) for s in scans)
        assert all(isinstance(e, FactError) and e.kind == "pickle" and "\n" not in e.message for e in errors)
    else:
        _value, err = result
        assert err is None or (isinstance(err, FactError) and "\n" not in err.message)


@pytest.mark.parametrize("fmt", sorted(SUFFIX))
@SETTINGS
@given(data=st.binary(max_size=2048))
def test_arbitrary_bytes(fmt: str, data: bytes, tmp_path: Path) -> None:
    _check(fmt, data, tmp_path / "input")


@pytest.mark.parametrize("fmt", sorted(SUFFIX))
@SETTINGS
@given(seed=st.integers(0, 2**32 - 1), which=st.integers(0, 1000),
       suffix=st.sampled_from([None, ".pt", ".npy", ".joblib", ".bin"]))
def test_mutated_valid_files(fmt: str, seed: int, which: int, suffix: str | None, pools, tmp_path: Path) -> None:
    pool = pools[fmt]
    if not pool:
        pytest.skip(f"no {fmt} seed (library missing)")
    rng = random.Random(seed)
    data = fuzz.mutate(rng, pool[which % len(pool)], pool)
    _check(fmt, data, tmp_path / "input", suffix if fmt == "pickle" else None)


def test_seeds_are_valid(pools, tmp_path: Path) -> None:
    for fmt, pool in pools.items():
        for i, data in enumerate(pool[:3]):
            p = tmp_path / f"s{i}{SUFFIX[fmt]}"
            p.write_bytes(data)
            result = READERS[fmt](str(p), p.name, len(data))
            if fmt == "pickle":
                assert result[1] == (), (fmt, i, result)
            else:
                assert result[1] is None and result[0] is not None, (fmt, i, result)


def test_pickle_scan_of_large_random_input_is_bounded(tmp_path: Path) -> None:
    from modelcheck.facts.pickle import MAX_OPCODES

    p = tmp_path / "big.pkl"
    p.write_bytes(b"\x80\x02" + os.urandom(8 << 20))
    scans, errors = READERS["pickle"](str(p), p.name, p.stat().st_size)
    # bounded work, not a clock: random bytes stop the walk at the opcode cap at the latest
    assert all(s.opcodes_seen <= MAX_OPCODES for s in scans)
    assert all(isinstance(e, FactError) for e in errors)
