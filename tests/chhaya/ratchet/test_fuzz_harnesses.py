"""The ratchet fuzz harnesses (``fuzz/fuzz_ratchet_*.py``), run without fuzzing.

Each is imported (which must not start fuzzing), fed its seeds, mutations of
them and random bytes. For the decrypt harness the seeds must really reach
the ratchet: the genuine in-flight messages decrypt, and the already
delivered ones are duplicates.
"""

from __future__ import annotations

import importlib
import pkgutil
import random
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType

import pytest

import chhaya
import chhaya.ratchet
from chhaya.ratchet import DuplicateMessageError
from chhaya.safety import ChhayaError

# Every chhaya module is imported before any harness (whose imports, _seeds
# included, run under atheris.instrument_imports, which only instruments
# first imports), so the modules the rest of the suite uses stay untouched.
for _info in pkgutil.walk_packages(chhaya.__path__, "chhaya."):
    importlib.import_module(_info.name)

FUZZ_DIR = Path(__file__).resolve().parents[3] / "fuzz"
RATCHET_HARNESSES = [
    "fuzz_ratchet_decrypt",
    "fuzz_ratchet_header",
    "fuzz_ratchet_message",
    "fuzz_ratchet_session",
]
FIRST_SEED_DECODER: dict[str, Callable[[bytes], object]] = {
    "fuzz_ratchet_decrypt": chhaya.ratchet.RatchetMessage.decode_untrusted,
    "fuzz_ratchet_header": chhaya.ratchet.Header.decode_untrusted,
    "fuzz_ratchet_message": chhaya.ratchet.RatchetMessage.decode_untrusted,
    "fuzz_ratchet_session": chhaya.ratchet.RatchetSession.decode_untrusted,
}
INPUTS = 200


@pytest.fixture(scope="module", autouse=True)
def _fuzz_on_path() -> Iterator[None]:
    sys.path.insert(0, str(FUZZ_DIR))
    try:
        yield
    finally:
        sys.path.remove(str(FUZZ_DIR))


def load(name: str) -> ModuleType:
    return importlib.import_module(name)


def seeds_of(module: ModuleType) -> list[bytes]:
    seeds: list[bytes] = module.seeds()
    return seeds


def entry_point(module: ModuleType) -> Callable[[bytes], None]:
    fn: Callable[[bytes], None] = module.TestOneInput
    return fn


def test_every_ratchet_harness_is_listed() -> None:
    found = sorted(p.stem for p in FUZZ_DIR.glob("fuzz_ratchet_*.py"))
    assert found == RATCHET_HARNESSES


@pytest.mark.parametrize("name", RATCHET_HARNESSES)
def test_import_only(name: str) -> None:
    module = load(name)
    assert callable(module.TestOneInput)
    assert callable(module.main)
    assert not any(type(f).__name__ == "AtherisMetaPathFinder" for f in sys.meta_path)


@pytest.mark.parametrize("name", RATCHET_HARNESSES)
def test_seeds_mutations_and_random_bytes(name: str) -> None:
    module = load(name)
    seeds = seeds_of(module)
    assert seeds
    assert len(set(seeds)) == len(seeds)
    FIRST_SEED_DECODER[name](seeds[0])  # the first seed is valid
    run = entry_point(module)
    for seed in seeds:
        run(seed)
    rng = random.Random(f"ratchet-harness/{name}")
    longest = max(len(s) for s in seeds)
    for _ in range(INPUTS):
        run(rng.randbytes(rng.randrange(longest + 64)))
    for _ in range(INPUTS):
        data = bytearray(rng.choice(seeds))
        if data and rng.random() < 0.7:
            data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
        else:
            data += rng.randbytes(rng.randrange(1, 40))
        run(bytes(data))


def test_decrypt_harness_seeds_reach_the_ratchet() -> None:
    module = load("fuzz_ratchet_decrypt")
    outcomes: list[bytes | ChhayaError] = [module.run(seed) for seed in seeds_of(module)]
    decrypted = [o for o in outcomes if isinstance(o, bytes)]
    duplicates = [o for o in outcomes if isinstance(o, DuplicateMessageError)]
    # Four genuine in-flight messages and four delivered ones, per header mode.
    assert sorted(decrypted) == sorted([b"a1", b"a3", b"a6", b"a7"] * 2)
    assert len(duplicates) == 8
