"""Append-only proofs: honest batches verify; a directory that changes,
drops or adds a leaf outside the batch cannot make one that does."""

from __future__ import annotations

import contextlib
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chhaya import DecodeError, LocalProtocolError, VerificationError
from vkd.tree import (
    EMPTY_HASH,
    NODE_EMPTY,
    NODE_HASH,
    NODE_INNER,
    NODE_LEAF,
    AppendOnlyProof,
    DuplicateIndexError,
    InMemoryNodeStore,
    NodeStore,
    SparseMerkleTree,
    verify_append_only,
)

from ._helpers import clustered_keys, h32, random_leaves, ref_root, with_bit_flipped

keys32 = st.binary(min_size=32, max_size=32)


def tree_of(leaves: dict[bytes, bytes]) -> SparseMerkleTree:
    tree = SparseMerkleTree(InMemoryNodeStore())
    tree.insert_batch(leaves)
    return tree


def old_tree_and_batch(seed: int = 3) -> tuple[dict[bytes, bytes], dict[bytes, bytes]]:
    rng = random.Random(seed)
    old = random_leaves(rng, 80)
    old.update({k: rng.randbytes(32) for k in clustered_keys(rng, 20)})
    batch = random_leaves(rng, 12)
    # Neighbours of existing leaves, so that old leaves get pushed down.
    for index in list(old)[:6]:
        batch[with_bit_flipped(index, 255)] = rng.randbytes(32)
    return old, {k: v for k, v in batch.items() if k not in old}


def test_honest_batches_verify(store: NodeStore) -> None:
    rng = random.Random(5)
    tree = SparseMerkleTree(store)
    for size in (0, 1, 1, 5, 0, 40, 200):
        batch = random_leaves(rng, size)
        if size > 4:
            near = [with_bit_flipped(k, rng.choice((255, 200, 9))) for k in batch]
            batch.update({k: rng.randbytes(32) for k in near[:3]})
        old_root = tree.root
        proof = tree.prove_append_only(old_root, batch)
        new_root = tree.insert_batch(batch)
        decoded = AppendOnlyProof.decode_untrusted(proof.encode())
        assert decoded == proof
        verify_append_only(old_root, new_root, batch, decoded)
        verify_append_only(old_root, new_root, list(batch.items()), decoded)


def test_proofs_for_past_epochs(store: NodeStore) -> None:
    rng = random.Random(8)
    tree = SparseMerkleTree(store)
    batches = [random_leaves(rng, n) for n in (3, 20, 7)]
    for batch in batches:
        tree.insert_batch(batch)
    for epoch in range(1, len(batches)):
        proof = tree.prove_append_only(tree.root_at(epoch - 1), batches[epoch])
        verify_append_only(tree.root_at(epoch - 1), tree.root_at(epoch), batches[epoch], proof)


@settings(max_examples=40, deadline=None)
@given(
    st.dictionaries(keys32, keys32, max_size=20),
    st.dictionaries(keys32, keys32, max_size=10),
)
def test_hypothesis_honest(old: dict[bytes, bytes], batch: dict[bytes, bytes]) -> None:
    batch = {k: v for k, v in batch.items() if k not in old}
    tree = tree_of(old)
    proof = tree.prove_append_only(tree.root, batch)
    verify_append_only(ref_root(old), ref_root({**old, **batch}), batch, proof)


def test_size_grows_with_the_batch_not_the_tree() -> None:
    rng = random.Random(9)
    sizes = {}
    for n in (500, 5000):
        tree = tree_of(random_leaves(rng, n))
        batch = random_leaves(rng, 10)
        sizes[n] = len(tree.prove_append_only(tree.root, batch).encode())
    # Ten times the tree costs about log2(10) more levels per new index.
    assert sizes[5000] < sizes[500] + 10 * 5 * 40
    assert sizes[5000] < 10 * 40 * 20


def expect_refused(
    old_root: bytes,
    new_root: bytes,
    batch: dict[bytes, bytes] | list[tuple[bytes, bytes]],
    proof: AppendOnlyProof,
    match: str | None = None,
) -> None:
    with pytest.raises(VerificationError, match=match) as info:
        verify_append_only(old_root, new_root, batch, proof)
    assert info.value.check == "append-only"


def dishonest_proofs(
    old: dict[bytes, bytes], batch: dict[bytes, bytes], tampered_old: dict[bytes, bytes]
) -> list[AppendOnlyProof]:
    """Every proof a cheating directory could build from the trees it has."""
    proofs = [tree_of(old).prove_append_only(ref_root(old), batch)]
    tampered = tree_of(tampered_old)
    with contextlib.suppress(DuplicateIndexError):
        proofs.append(tampered.prove_append_only(tampered.root, batch))
    return proofs


def test_changing_an_existing_leaf_is_caught() -> None:
    old, batch = old_tree_and_batch()
    for victim in list(old)[:10]:
        changed = {**old, victim: h32("new value")}
        new_root = ref_root({**changed, **batch})
        for proof in dishonest_proofs(old, batch, changed):
            expect_refused(ref_root(old), new_root, batch, proof)
        # Re-inserting the victim in the batch with its new value.
        rebatch = {**batch, victim: h32("new value")}
        with pytest.raises(DuplicateIndexError):
            tree_of(old).prove_append_only(ref_root(old), rebatch)
        without_victim = {k: v for k, v in old.items() if k != victim}
        sneaky = tree_of(without_victim).prove_append_only(ref_root(without_victim), rebatch)
        expect_refused(ref_root(old), new_root, rebatch, sneaky)


def test_dropping_a_leaf_is_caught() -> None:
    old, batch = old_tree_and_batch()
    for victim in list(old)[:10]:
        dropped = {k: v for k, v in old.items() if k != victim}
        new_root = ref_root({**dropped, **batch})
        for proof in dishonest_proofs(old, batch, dropped):
            expect_refused(ref_root(old), new_root, batch, proof)


def test_an_extra_leaf_is_caught() -> None:
    old, batch = old_tree_and_batch()
    rng = random.Random(4)
    extras = [rng.randbytes(32) for _ in range(5)] + [with_bit_flipped(next(iter(batch)), 255)]
    for extra in extras:
        if extra in batch or extra in old:
            continue
        bigger = {**batch, extra: h32("extra")}
        new_root = ref_root({**old, **bigger})
        honest = tree_of(old).prove_append_only(ref_root(old), batch)
        covering = tree_of(old).prove_append_only(ref_root(old), bigger)
        verify_append_only(ref_root(old), new_root, bigger, covering)  # the true statement
        expect_refused(ref_root(old), new_root, batch, honest)
        expect_refused(ref_root(old), new_root, batch, covering)


def test_wrong_values_roots_and_batches_are_caught() -> None:
    old, batch = old_tree_and_batch()
    tree = tree_of(old)
    old_root = tree.root
    proof = tree.prove_append_only(old_root, batch)
    new_root = tree.insert_batch(batch)
    verify_append_only(old_root, new_root, batch, proof)
    first = next(iter(batch))
    expect_refused(old_root, new_root, {**batch, first: h32("other")}, proof)
    expect_refused(new_root, new_root, batch, proof)
    expect_refused(old_root, old_root, batch, proof)
    expect_refused(old_root, new_root, dict(list(batch.items())[1:]), proof)
    expect_refused(old_root, new_root, [*batch.items(), (first, batch[first])], proof)
    expect_refused(old_root, new_root, {b"short": h32("v")}, proof)
    expect_refused(b"short", new_root, batch, proof)
    # An existing index in the batch: the proof cannot hide it.
    existing = next(iter(old))
    expect_refused(old_root, new_root, {**batch, existing: old[existing]}, proof)
    with pytest.raises(DuplicateIndexError):
        tree.prove_append_only(old_root, {**batch, existing: old[existing]})


def test_a_proof_reaching_the_existing_leaf_refuses_its_reinsertion() -> None:
    a = h32("a")
    tree = tree_of({a: h32("va")})
    proof = AppendOnlyProof(bytes([NODE_LEAF]), ((a, h32("va")),), ())
    for value in (h32("va"), h32("changed")):
        expect_refused(tree.root, ref_root({a: value}), {a: value}, proof, "re-inserts")


def test_every_bit_flip_is_rejected() -> None:
    rng = random.Random(6)
    old = random_leaves(rng, 40)
    batch = random_leaves(rng, 3)
    batch[with_bit_flipped(next(iter(old)), 250)] = rng.randbytes(32)
    tree = tree_of(old)
    old_root = tree.root
    proof = tree.prove_append_only(old_root, batch)
    new_root = tree.insert_batch(batch)
    encoded = proof.encode()
    assert {NODE_EMPTY, NODE_LEAF, NODE_INNER, NODE_HASH} <= set(proof.nodes)
    for position in range(len(encoded) * 8):
        try:
            flipped = AppendOnlyProof.decode_untrusted(with_bit_flipped(encoded, position))
        except DecodeError:
            continue
        expect_refused(old_root, new_root, batch, flipped)


@pytest.mark.parametrize(
    ("proof", "why"),
    [
        (AppendOnlyProof(b"", (), ()), "bad node count"),
        (AppendOnlyProof(b"\x04", (), ()), "bad node kind"),
        (AppendOnlyProof(b"\x02\x00", (), ()), "tree ends early"),
        (AppendOnlyProof(b"\x00\x00", (), ()), "after the end"),
        (AppendOnlyProof(b"\x01", (), ()), "leaf count"),
        (AppendOnlyProof(b"\x03", (), ()), "hash count"),
        (AppendOnlyProof(b"\x03", (), (b"short",)), "malformed hash"),
        (AppendOnlyProof(b"\x01", ((b"short", h32("v")),), ()), "malformed leaf"),
        (AppendOnlyProof(b"\x02" * 257 + b"\x00" * 258, (), ()), "deepest level"),
    ],
)
def test_malformed_proofs_are_refused(proof: AppendOnlyProof, why: str) -> None:
    with pytest.raises(VerificationError, match=why):
        verify_append_only(EMPTY_HASH, EMPTY_HASH, {}, proof)


def test_opened_subtrees_must_hold_new_indices() -> None:
    a, b = h32("a"), h32("b")
    tree = tree_of({a: h32("va"), b: h32("vb")})
    root = tree.root
    # An empty batch proved by opening the root instead of giving its hash.
    opened = tree.prove_append_only(root, {h32("c"): h32("vc")})
    assert opened.nodes[0] == NODE_INNER
    expect_refused(root, root, {}, opened, "no new index enters")
    # A new index inside a subtree the proof leaves closed.
    closed = AppendOnlyProof(bytes([NODE_HASH]), (), (root,))
    verify_append_only(root, root, {}, closed)
    expect_refused(root, root, {h32("c"): h32("vc")}, closed, "does not open")


def test_a_leaf_off_its_path_is_refused() -> None:
    # One leaf at the root, but the proof names a leaf that sits elsewhere:
    # the old root matches only if the leaf is where its index says.
    a = bytes(32)
    c = b"\x80" + bytes(31)
    tree = tree_of({a: h32("va")})
    proof = AppendOnlyProof(bytes([NODE_INNER, NODE_EMPTY, NODE_LEAF]), ((a, h32("va")),), ())
    new_root = ref_root({a: h32("va"), c: h32("vc")})
    expect_refused(tree.root, new_root, {c: h32("vc")}, proof, "off its path")


def test_prover_needs_a_root_of_this_tree() -> None:
    tree = tree_of({h32("a"): h32("va")})
    with pytest.raises(LocalProtocolError, match="not the root of any epoch"):
        tree.prove_append_only(h32("unknown root"), {h32("b"): h32("vb")})
    proof = tree.prove_append_only(EMPTY_HASH, {h32("b"): h32("vb")})
    verify_append_only(EMPTY_HASH, ref_root({h32("b"): h32("vb")}), {h32("b"): h32("vb")}, proof)
