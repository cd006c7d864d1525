"""Membership and non-membership proofs: completeness, soundness checks and
tampering (every bit flip is rejected)."""

from __future__ import annotations

import random
from collections.abc import Iterator

import pytest

from chhaya import DecodeError, LocalProtocolError, VerificationError
from vkd.tree import (
    EMPTY_HASH,
    InMemoryNodeStore,
    MembershipProof,
    NodeStore,
    NonMembershipProof,
    SparseMerkleTree,
    inner_hash,
    verify_membership,
    verify_non_membership,
)

from ._helpers import clustered_keys, h32, random_leaves, ref_leaf, with_bit_flipped


def build(store: NodeStore, seed: int = 1) -> tuple[SparseMerkleTree, dict[bytes, bytes]]:
    rng = random.Random(seed)
    tree = SparseMerkleTree(store)
    leaves = random_leaves(rng, 150)
    leaves.update({k: rng.randbytes(32) for k in clustered_keys(rng, 50)})
    tree.insert_batch(leaves)
    return tree, leaves


def absent_keys(leaves: dict[bytes, bytes], seed: int = 2) -> Iterator[bytes]:
    """Random absent keys, and absent keys one bit away from present ones."""
    rng = random.Random(seed)
    for _ in range(100):
        yield rng.randbytes(32)
    for index in list(leaves)[:60]:
        for position in (255, 254, 128, 3):
            near = with_bit_flipped(index, position)
            if near not in leaves:
                yield near


def test_membership_for_every_leaf(store: NodeStore) -> None:
    tree, leaves = build(store)
    for index, value in leaves.items():
        proof = tree.prove_membership(index)
        assert (proof.index, proof.value_hash) == (index, value)
        verify_membership(tree.root, proof)
        with pytest.raises(LocalProtocolError):
            tree.prove_non_membership(index)


def test_non_membership_for_absent_keys(store: NodeStore) -> None:
    tree, leaves = build(store)
    ends = set()
    for index in absent_keys(leaves):
        proof = tree.prove_non_membership(index)
        ends.add(proof.leaf is None)
        verify_non_membership(tree.root, proof)
        with pytest.raises(LocalProtocolError):
            tree.prove_membership(index)
    assert ends == {True, False}  # both kinds of path end occur


def test_proofs_against_the_empty_and_one_leaf_trees() -> None:
    tree = SparseMerkleTree(InMemoryNodeStore())
    proof = tree.prove_non_membership(h32("x"))
    assert proof == NonMembershipProof(h32("x"), None, ())
    verify_non_membership(EMPTY_HASH, proof)
    root = tree.insert_batch({h32("a"): h32("va")})
    member = tree.prove_membership(h32("a"))
    assert member == MembershipProof(h32("a"), h32("va"), ())
    verify_membership(root, member)
    other = tree.prove_non_membership(h32("x"))
    assert other == NonMembershipProof(h32("x"), (h32("a"), h32("va")), ())
    verify_non_membership(root, other)


def test_membership_with_a_wrong_value_or_root_fails() -> None:
    tree, leaves = build(InMemoryNodeStore())
    index = next(iter(leaves))
    proof = tree.prove_membership(index)
    bad = MembershipProof(index, h32("other"), proof.siblings)
    with pytest.raises(VerificationError) as info:
        verify_membership(tree.root, bad)
    assert info.value.check == "tree-membership"
    with pytest.raises(VerificationError):
        verify_membership(h32("another root"), proof)


def test_non_membership_cannot_claim_a_present_index() -> None:
    tree, leaves = build(InMemoryNodeStore())
    index, value = next(iter(leaves.items()))
    proof = tree.prove_membership(index)
    # The index's own leaf as the "other" leaf.
    own = NonMembershipProof(index, (index, value), proof.siblings)
    with pytest.raises(VerificationError, match="own leaf") as info:
        verify_non_membership(tree.root, own)
    assert info.value.check == "tree-non-membership"
    # A leaf that is not on the index's path: a prefix mismatch.
    far = bytes([index[0] ^ 0x80]) + index[1:]
    stray = NonMembershipProof(far, (index, value), proof.siblings)
    with pytest.raises(VerificationError, match="not on the index's path"):
        verify_non_membership(tree.root, stray)


def test_paths_ending_beside_an_empty_sibling_are_refused() -> None:
    a, b = h32("a"), h32("b")
    # Non-canonical: a leaf pushed one level down beside an empty subtree.
    bit = a[0] >> 7
    root = ref_leaf(a, b)
    pushed = inner_hash(EMPTY_HASH, root) if bit else inner_hash(root, EMPTY_HASH)
    with pytest.raises(VerificationError, match="empty subtree"):
        verify_membership(pushed, MembershipProof(a, b, (EMPTY_HASH,)))
    with pytest.raises(VerificationError, match="empty subtree"):
        verify_non_membership(
            inner_hash(EMPTY_HASH, EMPTY_HASH), NonMembershipProof(a, None, (EMPTY_HASH,))
        )


@pytest.mark.parametrize(
    "proof",
    [
        MembershipProof(b"short", h32("v"), ()),
        MembershipProof(h32("i"), h32("v"), (b"short",)),
        MembershipProof(h32("i"), h32("v"), (h32("s"),) * 257),
    ],
)
def test_malformed_membership_proofs_fail_verification(proof: MembershipProof) -> None:
    with pytest.raises(VerificationError):
        verify_membership(h32("root"), proof)
    with pytest.raises(ValueError, match=r"32 bytes|deeper"):
        proof.encode()


def test_malformed_non_membership_proofs_fail_verification() -> None:
    for proof in (
        NonMembershipProof(b"short", None, ()),
        NonMembershipProof(h32("i"), (b"short", h32("v")), ()),
        NonMembershipProof(h32("i"), None, (b"\x00" * 33,)),
    ):
        with pytest.raises(VerificationError):
            verify_non_membership(h32("root"), proof)
        with pytest.raises(ValueError, match=r"32 bytes"):
            proof.encode()
    with pytest.raises(VerificationError):
        verify_non_membership(b"short root", NonMembershipProof(h32("i"), None, ()))


def _flips(data: bytes) -> Iterator[bytes]:
    for position in range(len(data) * 8):
        yield with_bit_flipped(data, position)


def test_every_bit_flip_of_a_membership_proof_is_rejected() -> None:
    tree, leaves = build(InMemoryNodeStore())
    deepest = max(leaves, key=lambda k: tree.prove_membership(k).depth)
    for index in (deepest, next(iter(leaves))):
        encoded = tree.prove_membership(index).encode()
        for flipped in _flips(encoded):
            try:
                proof = MembershipProof.decode_untrusted(flipped)
            except DecodeError:
                continue
            with pytest.raises(VerificationError):
                verify_membership(tree.root, proof)


def test_every_bit_flip_of_a_non_membership_proof_is_rejected() -> None:
    """A flip of the index may give a true statement about another absent
    index (that is sound: callers check the index); nothing else verifies."""
    tree, leaves = build(InMemoryNodeStore())
    proofs = [tree.prove_non_membership(k) for k in absent_keys(leaves)]
    chosen = [
        max((p for p in proofs if p.leaf is None), key=lambda p: p.depth),
        max((p for p in proofs if p.leaf is not None), key=lambda p: p.depth),
    ]
    for original in chosen:
        for flipped in _flips(original.encode()):
            try:
                proof = NonMembershipProof.decode_untrusted(flipped)
            except DecodeError:
                continue
            try:
                verify_non_membership(tree.root, proof)
            except VerificationError:
                continue
            assert proof.index != original.index
            assert proof.leaf == original.leaf
            assert proof.siblings == original.siblings
            assert tree.get(proof.index) is None
