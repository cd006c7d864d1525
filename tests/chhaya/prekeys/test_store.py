"""PrekeyStore policy: rotation and grace periods, handing out, bounds, hygiene."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import pytest

from chhaya import LocalProtocolError, StorageError
from chhaya.crypto import Rng
from chhaya.identity import PrivateIdentity
from chhaya.prekeys import (
    MAX_INITIAL_MESSAGES_PER_SIGNED_PREKEY,
    MAX_ONE_TIME_KEM_PREKEYS,
    MAX_ONE_TIME_PREKEYS,
    MAX_RETAINED_LAST_RESORT_PREKEYS,
    MAX_RETAINED_SIGNED_PREKEYS,
    PREKEY_GRACE_MS,
    SIGNED_PREKEY_ROTATION_MS,
    InMemoryPrekeyStorage,
    InMemoryPrekeyStore,
    PrekeyKind,
    PrekeyStorage,
    PrekeyStore,
)

from ._helpers import NOW, det_rng, identity

StorageFactory = Callable[[], PrekeyStorage]


class StoreMaker(Protocol):
    def __call__(
        self, owner: PrivateIdentity, *, one_time: int = ..., kem_one_time: int = ...
    ) -> PrekeyStore: ...


@pytest.fixture
def rng() -> Rng:
    return det_rng(b"store/test")


@pytest.fixture
def new_storage() -> StorageFactory:
    """The storage the tests taking ``make_store`` run on.

    tests/node/test_prekey_db.py imports those tests and overrides this
    fixture, so the same bodies also run over SQLite.
    """
    return InMemoryPrekeyStorage


@pytest.fixture
def make_store(new_storage: StorageFactory) -> StoreMaker:
    """Like ``_helpers.make_store``, over a storage from ``new_storage``."""

    def make(owner: PrivateIdentity, *, one_time: int = 4, kem_one_time: int = 0) -> PrekeyStore:
        rng = det_rng(b"prekeys/store/store")
        store = PrekeyStore(owner, new_storage())
        store.rotate_signed_prekey(rng, NOW)
        store.rotate_last_resort_kem_prekey(rng, NOW)
        store.generate_one_time_prekeys(one_time, rng, NOW)
        store.generate_kem_prekeys(kem_one_time, rng, NOW)
        return store

    return make


def test_empty_store_has_no_bundle(new_storage: StorageFactory) -> None:
    store = PrekeyStore(identity("bob"), new_storage())
    with pytest.raises(LocalProtocolError):
        store.bundle_for_publication()
    with pytest.raises(LocalProtocolError):
        store.take_bundle(NOW)
    assert store.rotation_due(NOW)


def test_publication_bundle_is_long_lived_part_only(rng: Rng, make_store: StoreMaker) -> None:
    store = make_store(identity("bob"), one_time=2, kem_one_time=2)
    bundle = store.bundle_for_publication()
    bundle.verify()
    assert bundle.identity == identity("bob").public
    assert bundle.one_time_prekey is None
    assert bundle.kem_prekey.last_resort
    assert store.available_one_time_prekeys() == 2
    assert store.available_kem_prekeys() == 2
    assert store.bundle_for_publication() == bundle


def test_take_bundle_hands_each_one_time_prekey_out_once(rng: Rng, make_store: StoreMaker) -> None:
    store = make_store(identity("bob"), one_time=3, kem_one_time=2)
    bundles = [store.take_bundle(NOW) for _ in range(4)]
    for b in bundles:
        b.verify()
    opks = [b.one_time_prekey.prekey_id for b in bundles if b.one_time_prekey is not None]
    assert len(opks) == len(set(opks)) == 3
    assert bundles[3].one_time_prekey is None
    kems = [b.kem_prekey for b in bundles]
    assert [k.last_resort for k in kems] == [False, False, True, True]
    assert kems[0].prekey_id != kems[1].prekey_id
    assert kems[2] == kems[3] == store.bundle_for_publication().kem_prekey
    assert store.available_one_time_prekeys() == 0
    assert store.available_kem_prekeys() == 0
    # Handed out is not consumed: the private halves are still there.
    assert len(store.storage.one_time_prekeys()) == 3


def test_generated_public_keys_match_bundles(rng: Rng, make_store: StoreMaker) -> None:
    store = make_store(identity("bob"), one_time=0)
    opks = store.generate_one_time_prekeys(2, rng, NOW)
    kems = store.generate_kem_prekeys(2, rng, NOW)
    for kem in kems:
        kem.verify(identity("bob").public)
        assert not kem.last_resort
    taken = [store.take_bundle(NOW) for _ in range(2)]
    assert [b.one_time_prekey for b in taken] == opks
    assert [b.kem_prekey for b in taken] == kems


def test_ids_are_unique_per_kind(rng: Rng, make_store: StoreMaker) -> None:
    store = make_store(identity("bob"), one_time=5, kem_one_time=3)
    for _ in range(3):
        store.rotate_signed_prekey(rng, NOW)
        store.rotate_last_resort_kem_prekey(rng, NOW)
    s = store.storage
    for ids in (
        [r.prekey_id for r in s.signed_prekeys()],
        [r.prekey_id for r in s.kem_prekeys()],
        [r.prekey_id for r in s.one_time_prekeys()],
    ):
        assert len(ids) == len(set(ids))
        assert ids == sorted(ids)


def test_id_space_exhaustion_is_a_storage_error() -> None:
    storage = InMemoryPrekeyStorage()
    storage._next_id[PrekeyKind.ONE_TIME] = 2**32 - 1
    assert storage.allocate_prekey_id(PrekeyKind.ONE_TIME) == 2**32 - 1
    with pytest.raises(StorageError):
        storage.allocate_prekey_id(PrekeyKind.ONE_TIME)
    assert storage.allocate_prekey_id(PrekeyKind.SIGNED) == 1


# ---------------------------------------------------------- rotation & grace


def test_rotation_keeps_previous_signed_prekey_for_grace(rng: Rng, make_store: StoreMaker) -> None:
    store = make_store(identity("bob"))
    first = store.bundle_for_publication().signed_prekey
    second = store.rotate_signed_prekey(rng, NOW + 10)
    assert store.bundle_for_publication().signed_prekey == second
    old = store.storage.get_signed_prekey(first.prekey_id)
    assert old is not None
    assert old.retired_ms == NOW + 10
    store.prune(NOW + 10 + PREKEY_GRACE_MS - 1)
    assert store.storage.get_signed_prekey(first.prekey_id) is not None
    store.prune(NOW + 10 + PREKEY_GRACE_MS)
    assert store.storage.get_signed_prekey(first.prekey_id) is None
    # The current one is never pruned, however old.
    store.prune(NOW + 100 * PREKEY_GRACE_MS)
    assert store.bundle_for_publication().signed_prekey == second


def test_last_resort_rotation_and_grace(rng: Rng, make_store: StoreMaker) -> None:
    store = make_store(identity("bob"))
    first = store.bundle_for_publication().kem_prekey
    second = store.rotate_last_resort_kem_prekey(rng, NOW + 10)
    assert second.last_resort
    assert store.bundle_for_publication().kem_prekey == second
    assert store.storage.get_kem_prekey(first.prekey_id) is not None
    store.prune(NOW + 10 + PREKEY_GRACE_MS)
    assert store.storage.get_kem_prekey(first.prekey_id) is None
    assert store.storage.get_kem_prekey(second.prekey_id) is not None


def test_retained_prekeys_are_capped(rng: Rng, make_store: StoreMaker) -> None:
    store = make_store(identity("bob"))
    for i in range(10):
        store.rotate_signed_prekey(rng, NOW + i)
        store.rotate_last_resort_kem_prekey(rng, NOW + i)
    signed = store.storage.signed_prekeys()
    assert len(signed) == MAX_RETAINED_SIGNED_PREKEYS
    assert [r.retired_ms is None for r in signed] == [False] * (len(signed) - 1) + [True]
    last_resort = [r for r in store.storage.kem_prekeys() if r.last_resort]
    assert len(last_resort) == MAX_RETAINED_LAST_RESORT_PREKEYS
    assert store.bundle_for_publication().signed_prekey.prekey_id == signed[-1].prekey_id


def test_stale_handed_out_one_time_prekeys_are_pruned(rng: Rng, make_store: StoreMaker) -> None:
    store = make_store(identity("bob"), one_time=2, kem_one_time=2)
    taken = store.take_bundle(NOW)
    assert taken.one_time_prekey is not None
    store.prune(NOW + PREKEY_GRACE_MS - 1)
    assert len(store.storage.one_time_prekeys()) == 2
    store.prune(NOW + PREKEY_GRACE_MS)
    # The handed-out pair is gone; the never-handed-out ones stay.
    assert store.storage.get_one_time_prekey(taken.one_time_prekey.prekey_id) is None
    assert store.storage.get_kem_prekey(taken.kem_prekey.prekey_id) is None
    assert store.available_one_time_prekeys() == 1
    assert store.available_kem_prekeys() == 1


def test_rotation_due(rng: Rng, make_store: StoreMaker) -> None:
    store = make_store(identity("bob"))
    assert not store.rotation_due(NOW)
    assert not store.rotation_due(NOW + SIGNED_PREKEY_ROTATION_MS - 1)
    assert store.rotation_due(NOW + SIGNED_PREKEY_ROTATION_MS)
    assert store.rotation_due(NOW + 50, max_age_ms=50)
    store.rotate_signed_prekey(rng, NOW + SIGNED_PREKEY_ROTATION_MS)
    # The last-resort KEM prekey is still old.
    assert store.rotation_due(NOW + SIGNED_PREKEY_ROTATION_MS)
    store.rotate_last_resort_kem_prekey(rng, NOW + SIGNED_PREKEY_ROTATION_MS)
    assert not store.rotation_due(NOW + SIGNED_PREKEY_ROTATION_MS)


class _HalfFull(InMemoryPrekeyStorage):
    def initial_message_count(self, signed_prekey_id: int) -> int:
        return MAX_INITIAL_MESSAGES_PER_SIGNED_PREKEY // 2


def test_rotation_due_when_replay_set_half_full(rng: Rng) -> None:
    store = PrekeyStore(identity("bob"), _HalfFull())
    store.rotate_signed_prekey(rng, NOW)
    store.rotate_last_resort_kem_prekey(rng, NOW)
    assert store.rotation_due(NOW)


# --------------------------------------------------------------------- bounds


def test_batch_bounds(rng: Rng, make_store: StoreMaker) -> None:
    store = make_store(identity("bob"), one_time=0)
    for bad in (-1, MAX_ONE_TIME_PREKEYS + 1):
        with pytest.raises(LocalProtocolError):
            store.generate_one_time_prekeys(bad, rng, NOW)
    with pytest.raises(LocalProtocolError):
        store.generate_kem_prekeys(MAX_ONE_TIME_KEM_PREKEYS + 1, rng, NOW)
    assert store.generate_one_time_prekeys(0, rng, NOW) == []


def test_full_store_makes_room_from_handed_out_keys_only(rng: Rng, make_store: StoreMaker) -> None:
    store = make_store(identity("bob"), one_time=0)
    store.generate_one_time_prekeys(MAX_ONE_TIME_PREKEYS, rng, NOW)
    with pytest.raises(LocalProtocolError):
        store.generate_one_time_prekeys(1, rng, NOW)
    handed = [store.take_bundle(NOW + i).one_time_prekey for i in range(3)]
    new = store.generate_one_time_prekeys(2, rng, NOW)
    remaining = {r.prekey_id for r in store.storage.one_time_prekeys()}
    assert len(remaining) == MAX_ONE_TIME_PREKEYS
    # The two oldest handed-out ones made room; the third survives.
    assert [h is not None and h.prekey_id in remaining for h in handed] == [False, False, True]
    assert {n.prekey_id for n in new} <= remaining


def test_full_kem_store_makes_room(rng: Rng, make_store: StoreMaker) -> None:
    store = make_store(identity("bob"), one_time=0, kem_one_time=3)
    first = store.take_bundle(NOW).kem_prekey
    # Fill up to the bound: the next batch must evict the handed-out one.
    store.generate_kem_prekeys(MAX_ONE_TIME_KEM_PREKEYS - 3, rng, NOW)
    store.generate_kem_prekeys(1, rng, NOW)
    assert store.storage.get_kem_prekey(first.prekey_id) is None
    with pytest.raises(LocalProtocolError):
        store.generate_kem_prekeys(1, rng, NOW)


def test_negative_grace_is_refused() -> None:
    with pytest.raises(ValueError, match="grace"):
        InMemoryPrekeyStore(identity("bob"), grace_ms=-1)


def test_records_do_not_show_secrets(rng: Rng, make_store: StoreMaker) -> None:
    store = make_store(identity("bob"), one_time=1, kem_one_time=1)
    s = store.storage
    for record, secret in (
        (s.signed_prekeys()[0], s.signed_prekeys()[0].private_key),
        (s.one_time_prekeys()[0], s.one_time_prekeys()[0].private_key),
        (s.kem_prekeys()[0], s.kem_prekeys()[0].seed),
    ):
        assert secret.hex() not in repr(record)
        assert repr(secret) not in repr(record)
