"""The tree against its recursive definition: roots, batches, epochs, stores."""

from __future__ import annotations

import hashlib
import random
from collections.abc import Mapping
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chhaya import LocalProtocolError, StorageError
from vkd.tree import (
    EMPTY_HASH,
    EMPTY_REF,
    MAX_EPOCH,
    DuplicateIndexError,
    InMemoryNodeStore,
    MembershipProof,
    NodeStore,
    NonMembershipProof,
    SparseMerkleTree,
    inner_hash,
    leaf_hash,
)

from ._helpers import (
    REF_EMPTY,
    STORE_KINDS,
    clustered_keys,
    h32,
    make_store,
    random_leaves,
    ref_inner,
    ref_leaf,
    ref_root,
    with_bit_flipped,
)

keys32 = st.binary(min_size=32, max_size=32)


def test_hashes_match_the_spec() -> None:
    index, value = h32("i"), h32("v")
    assert EMPTY_HASH == REF_EMPTY
    assert leaf_hash(index, value) == ref_leaf(index, value)
    assert inner_hash(index, value) == ref_inner(index, value)
    assert len({EMPTY_HASH, leaf_hash(index, value), inner_hash(index, value)}) == 3
    # Pinned, so that a change to the definition is noticed.
    assert EMPTY_HASH.hex() == hashlib.sha256(b"\x02chhaya/smt/v1/empty").hexdigest()


def test_empty_tree(store: NodeStore) -> None:
    tree = SparseMerkleTree(store)
    assert tree.epoch is None
    assert tree.root == EMPTY_HASH
    assert tree.get(h32("x")) is None
    assert tree.insert_batch({}) == EMPTY_HASH
    assert store.latest_epoch() == 0
    assert tree.root_at(0) == EMPTY_HASH


def test_single_leaf_is_the_root(store: NodeStore) -> None:
    tree = SparseMerkleTree(store)
    root = tree.insert_batch({h32("a"): h32("va")})
    assert root == ref_leaf(h32("a"), h32("va"))
    assert tree.get(h32("a")) == h32("va")


@pytest.mark.parametrize("seed", range(6))
def test_random_sets_match_the_reference(store: NodeStore, seed: int) -> None:
    rng = random.Random(seed)
    tree = SparseMerkleTree(store)
    everything: dict[bytes, bytes] = {}
    for size in (1, 2, 7, 40, 0, 100):
        batch = random_leaves(rng, size)
        if seed % 2:
            batch.update({k: rng.randbytes(32) for k in clustered_keys(rng, size)})
        everything.update(batch)
        assert tree.insert_batch(batch) == ref_root(everything)
    for index, value in everything.items():
        assert tree.get(index) == value


def test_keys_differing_only_in_the_last_bit(store: NodeStore) -> None:
    a = bytes(31) + b"\x00"
    b = bytes(31) + b"\x01"
    c = b"\x80" + bytes(31)
    tree = SparseMerkleTree(store)
    root = tree.insert_batch({a: h32("a"), b: h32("b"), c: h32("c")})
    assert root == ref_root({a: h32("a"), b: h32("b"), c: h32("c")})
    proof = tree.prove_membership(b)
    assert proof.depth == 256
    assert proof.siblings[0] == ref_leaf(c, h32("c"))
    assert proof.siblings[1:-1] == (EMPTY_HASH,) * 254
    assert proof.siblings[-1] == ref_leaf(a, h32("a"))
    assert len(proof.encode()) == 32 + 32 + 2 + 32 + 2 * 32


@settings(max_examples=25, deadline=None)
@given(
    st.lists(st.dictionaries(keys32, keys32, max_size=12), max_size=5),
    st.sampled_from(STORE_KINDS),
)
def test_batches_equal_one_by_one_and_the_reference(
    batches: list[dict[bytes, bytes]], kind: str
) -> None:
    merged: dict[bytes, bytes] = {}
    for batch in batches:
        for k, v in batch.items():
            merged.setdefault(k, v)
    with make_store(kind) as batched_store, make_store(kind) as single_store:
        batched = SparseMerkleTree(batched_store)
        single = SparseMerkleTree(single_store)
        seen: set[bytes] = set()
        for batch in batches:
            fresh = {k: v for k, v in batch.items() if k not in seen}
            seen.update(fresh)
            batched.insert_batch(fresh)
            for k, v in fresh.items():
                single.insert_batch({k: v})
            assert batched.root == single.root
        assert batched.root == ref_root(merged)


def test_duplicates_are_refused_and_nothing_is_committed(store: NodeStore) -> None:
    tree = SparseMerkleTree(store)
    first = tree.insert_batch({h32("a"): h32("1"), h32("b"): h32("2")})
    with pytest.raises(DuplicateIndexError) as info:
        tree.insert_batch({h32("c"): h32("3"), h32("a"): h32("1")})
    assert info.value.index == h32("a")
    assert isinstance(info.value, LocalProtocolError)
    with pytest.raises(DuplicateIndexError):
        tree.insert_batch({h32("a"): h32("other value")})
    with pytest.raises(ValueError, match="twice"):
        tree.insert_batch([(h32("c"), h32("3")), (h32("c"), h32("4"))])
    assert tree.epoch == 0
    assert tree.root == first
    assert tree.get(h32("c")) is None


@pytest.mark.parametrize(
    "bad",
    [
        [(b"short", h32("v"))],
        [(h32("i"), b"\x00" * 31)],
        [(h32("i") + b"\x00", h32("v"))],
    ],
)
def test_malformed_batches_are_refused(store: NodeStore, bad: list[tuple[bytes, bytes]]) -> None:
    tree = SparseMerkleTree(store)
    with pytest.raises(ValueError, match="32 bytes"):
        tree.insert_batch(bad)
    assert tree.epoch is None


def test_past_epochs_stay_readable(store: NodeStore) -> None:
    rng = random.Random(7)
    tree = SparseMerkleTree(store)
    history: list[dict[bytes, bytes]] = []
    current: dict[bytes, bytes] = {}
    for size in (5, 30, 1, 60):
        batch = random_leaves(rng, size)
        current = {**current, **batch}
        history.append(current)
        tree.insert_batch(batch)
    for epoch, leaves in enumerate(history):
        assert tree.root_at(epoch) == ref_root(leaves)
        for index, value in leaves.items():
            proof = tree.prove(index, epoch)
            assert isinstance(proof, MembershipProof)
            assert proof.value_hash == value
        for index in history[-1].keys() - leaves.keys():
            assert tree.get(index, epoch) is None
            assert isinstance(tree.prove(index, epoch), NonMembershipProof)
    with pytest.raises(LocalProtocolError, match="no epoch"):
        tree.root_at(4)
    with pytest.raises(LocalProtocolError, match="no epoch"):
        tree.get(h32("x"), -1)


def test_stores_give_identical_roots_and_proofs(tmp_path: Path) -> None:
    rng = random.Random(11)
    batches = [random_leaves(rng, n) for n in (1, 3, 50, 200)]
    batches.append({k: rng.randbytes(32) for k in clustered_keys(rng, 60)})
    probes = [k for b in batches for k in b] + [rng.randbytes(32) for _ in range(50)]
    results: dict[str, list[object]] = {}
    for kind in STORE_KINDS:
        with make_store(kind, str(tmp_path / "tree.db")) as store:
            tree = SparseMerkleTree(store)
            out: list[object] = []
            for batch in batches:
                out.append(tree.prove_append_only(tree.root, batch).encode())
                out.append(tree.insert_batch(batch))
            for epoch in range(len(batches)):
                out.extend(tree.prove(k, epoch).encode() for k in probes)
            results[kind] = out
    assert results["memory"] == results["sqlite"]


def test_missing_node_is_a_storage_error() -> None:
    store = InMemoryNodeStore()
    tree = SparseMerkleTree(store)
    tree.insert_batch({h32("a"): h32("1"), h32("b"): h32("2")})
    broken = InMemoryNodeStore()
    root_ref = store.get_root(0)
    assert root_ref is not None
    broken.write_batch({}, root_ref, 0)
    with pytest.raises(StorageError, match="missing"):
        SparseMerkleTree(broken).get(h32("a"))


def test_store_refuses_epoch_gaps(store: NodeStore) -> None:
    with pytest.raises(StorageError):
        store.write_batch({}, EMPTY_REF, 1)
    store.write_batch({}, EMPTY_REF, 0)
    with pytest.raises(StorageError):
        store.write_batch({}, EMPTY_REF, 0)
    with pytest.raises(StorageError):
        store.write_batch({}, EMPTY_REF, 2)
    assert store.latest_epoch() == 0
    assert store.get_root(1) is None
    assert store.get_root(-1) is None


class _FullStore:
    """A store whose epochs are used up."""

    def get_node(self, ref: bytes) -> bytes | None:
        return None

    def write_batch(self, nodes: Mapping[bytes, bytes], root: bytes, epoch: int) -> None:
        raise AssertionError("must not be called")

    def get_root(self, epoch: int) -> bytes | None:
        return EMPTY_REF if epoch == MAX_EPOCH else None

    def latest_epoch(self) -> int | None:
        return MAX_EPOCH


def test_epoch_numbers_run_out_cleanly() -> None:
    tree = SparseMerkleTree(_FullStore())
    assert tree.root == EMPTY_HASH
    with pytest.raises(LocalProtocolError, match="epoch numbers"):
        tree.insert_batch({h32("a"): h32("va")})


def test_each_batch_writes_its_nodes_under_its_epoch() -> None:
    store = InMemoryNodeStore()
    tree = SparseMerkleTree(store)
    rng = random.Random(3)
    first = random_leaves(rng, 50)
    tree.insert_batch(first)
    second = random_leaves(rng, 20)
    second.update({with_bit_flipped(k, 255): rng.randbytes(32) for k in list(first)[:10]})
    tree.insert_batch(second)
    root_ref = store.get_root(1)
    assert root_ref is not None
    assert root_ref[:4] == (1).to_bytes(4, "big")
    records = store._nodes
    epochs = {ref[:4] for ref in records}
    assert epochs == {(0).to_bytes(4, "big"), (1).to_bytes(4, "big")}
    # Pushed-down leaves are referenced where they are, never copied.
    leaf_records = [r for r in records.values() if r[0] == 0]
    assert len(leaf_records) == len(set(leaf_records)) == len(first) + len(second)
