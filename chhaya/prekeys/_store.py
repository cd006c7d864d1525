"""The responder's private prekeys, behind a small storage interface.

What is kept
------------
- **Signed X25519 prekeys.** One is current; rotating retires it, and a
  retired one still answers initial messages for a grace period (they may
  have been sent while the old bundle was published) before it is deleted.
- **Signed ML-KEM-1024 prekeys.** One-time ones are handed out once and
  deleted when used. The last-resort one is reused when no one-time KEM
  prekey is left, and rotates like the signed prekey.
- **One-time X25519 prekeys.** Handed out once, deleted when used.
- **A replay set** of ``H(ephemeral key || KEM ciphertext)`` for initial
  messages that used no one-time prekey at all: nothing was consumed, so
  without it such a message could be replayed for as long as its prekeys
  live. Entries are tied to the signed prekey the message used and die with
  it. The set for one signed prekey is bounded; when it is full, further
  such messages are refused (failing closed, like the channel's Syn replay
  cache) and :meth:`PrekeyStore.rotation_due` says to rotate.

One-time prekeys that were handed out but never used are deleted after the
grace period, and first when room is needed for a new batch.

:class:`PrekeyStorage` is the persistence interface: plain records in,
records out, plus one atomic commit for a successful first contact. The
node backs it with SQLite; :class:`InMemoryPrekeyStorage` is for tests.
:class:`PrekeyStore` holds the policy (ids, signing, rotation, bundles).
"""

from __future__ import annotations

import enum
from collections import Counter
from dataclasses import dataclass, field, replace
from typing import Protocol

from ..crypto import MLKEM1024_SEED_SIZE, CryptoSuite, Rng
from ..identity import PrivateIdentity
from ..safety import LocalProtocolError, StorageError
from ._messages import OneTimePrekey, PrekeyBundle, SignedKemPrekey, SignedPrekey

__all__ = [
    "MAX_INITIAL_MESSAGES_PER_SIGNED_PREKEY",
    "MAX_ONE_TIME_KEM_PREKEYS",
    "MAX_ONE_TIME_PREKEYS",
    "MAX_RETAINED_LAST_RESORT_PREKEYS",
    "MAX_RETAINED_SIGNED_PREKEYS",
    "PREKEY_GRACE_MS",
    "SIGNED_PREKEY_ROTATION_MS",
    "InMemoryPrekeyStorage",
    "InMemoryPrekeyStore",
    "KemPrekeyRecord",
    "OneTimePrekeyRecord",
    "PrekeyKind",
    "PrekeyStorage",
    "PrekeyStore",
    "SignedPrekeyRecord",
]

_DAY_MS = 24 * 60 * 60 * 1000

#: How long a retired signed or last-resort prekey, or a handed-out but
#: unused one-time prekey, is kept.
PREKEY_GRACE_MS = 30 * _DAY_MS
#: Default age after which :meth:`PrekeyStore.rotation_due` asks for rotation.
SIGNED_PREKEY_ROTATION_MS = 7 * _DAY_MS
MAX_ONE_TIME_PREKEYS = 1000
MAX_ONE_TIME_KEM_PREKEYS = 200
#: Current plus retired ones in their grace period.
MAX_RETAINED_SIGNED_PREKEYS = 4
MAX_RETAINED_LAST_RESORT_PREKEYS = 4
#: Replay-set entries per signed prekey; when full, no-one-time-prekey
#: initial messages to that signed prekey are refused.
MAX_INITIAL_MESSAGES_PER_SIGNED_PREKEY = 50_000

_U32_MAX = 2**32 - 1


class PrekeyKind(enum.Enum):
    """Each kind has its own id space."""

    SIGNED = "signed"
    KEM = "kem"
    ONE_TIME = "one-time"


@dataclass(frozen=True, slots=True)
class SignedPrekeyRecord:
    prekey_id: int
    private_key: bytes = field(repr=False)
    signature: bytes
    created_ms: int
    #: When a newer signed prekey replaced it; None while it is current.
    retired_ms: int | None = None


@dataclass(frozen=True, slots=True)
class KemPrekeyRecord:
    prekey_id: int
    #: The ML-KEM-1024 seed d || z.
    seed: bytes = field(repr=False)
    last_resort: bool
    signature: bytes
    created_ms: int
    #: Last-resort only: when a newer one replaced it.
    retired_ms: int | None = None
    #: One-time only: when it went into a bundle.
    handed_out_ms: int | None = None


@dataclass(frozen=True, slots=True)
class OneTimePrekeyRecord:
    prekey_id: int
    private_key: bytes = field(repr=False)
    created_ms: int
    handed_out_ms: int | None = None


class PrekeyStorage(Protocol):
    """Persistence for one identity's prekeys. Listings are oldest first.

    Everything but :meth:`commit_initial_message` is plain record storage;
    that one must be atomic, because it is what makes a one-time prekey
    usable exactly once even when two copies of a message race.
    """

    def allocate_prekey_id(self, kind: PrekeyKind) -> int:
        """A fresh u32 id for ``kind``, never handed out before."""
        ...

    def put_signed_prekey(self, record: SignedPrekeyRecord) -> None: ...
    def get_signed_prekey(self, prekey_id: int) -> SignedPrekeyRecord | None: ...
    def signed_prekeys(self) -> list[SignedPrekeyRecord]: ...
    def delete_signed_prekey(self, prekey_id: int) -> None:
        """Delete it and the replay-set entries tied to it."""
        ...

    def put_kem_prekey(self, record: KemPrekeyRecord) -> None: ...
    def get_kem_prekey(self, prekey_id: int) -> KemPrekeyRecord | None: ...
    def kem_prekeys(self) -> list[KemPrekeyRecord]: ...
    def delete_kem_prekey(self, prekey_id: int) -> None: ...

    def put_one_time_prekey(self, record: OneTimePrekeyRecord) -> None: ...
    def get_one_time_prekey(self, prekey_id: int) -> OneTimePrekeyRecord | None: ...
    def one_time_prekeys(self) -> list[OneTimePrekeyRecord]: ...
    def delete_one_time_prekey(self, prekey_id: int) -> None: ...

    def has_initial_message(self, digest: bytes) -> bool: ...
    def initial_message_count(self, signed_prekey_id: int) -> int: ...

    def commit_initial_message(
        self,
        *,
        signed_prekey_id: int,
        one_time_prekey_id: int | None,
        one_time_kem_prekey_id: int | None,
        replay_digest: bytes | None,
    ) -> bool:
        """Atomically: if the signed prekey and the named one-time prekeys all
        still exist and ``replay_digest`` is not yet in the replay set, delete
        the one-time prekeys, add the digest (tied to the signed prekey) and
        return True. Otherwise change nothing and return False."""
        ...


class InMemoryPrekeyStorage:
    """:class:`PrekeyStorage` in dictionaries. Lost when the process ends."""

    __slots__ = ("_kem", "_next_id", "_one_time", "_replay", "_replay_count", "_signed")

    def __init__(self) -> None:
        self._next_id: dict[PrekeyKind, int] = dict.fromkeys(PrekeyKind, 1)
        self._signed: dict[int, SignedPrekeyRecord] = {}
        self._kem: dict[int, KemPrekeyRecord] = {}
        self._one_time: dict[int, OneTimePrekeyRecord] = {}
        self._replay: dict[bytes, int] = {}
        self._replay_count: Counter[int] = Counter()

    def allocate_prekey_id(self, kind: PrekeyKind) -> int:
        prekey_id = self._next_id[kind]
        if prekey_id > _U32_MAX:
            raise StorageError(f"{kind.value} prekey ids exhausted")
        self._next_id[kind] = prekey_id + 1
        return prekey_id

    def put_signed_prekey(self, record: SignedPrekeyRecord) -> None:
        self._signed[record.prekey_id] = record

    def get_signed_prekey(self, prekey_id: int) -> SignedPrekeyRecord | None:
        return self._signed.get(prekey_id)

    def signed_prekeys(self) -> list[SignedPrekeyRecord]:
        return sorted(self._signed.values(), key=lambda r: r.prekey_id)

    def delete_signed_prekey(self, prekey_id: int) -> None:
        self._signed.pop(prekey_id, None)
        if self._replay_count.pop(prekey_id, 0):
            self._replay = {d: s for d, s in self._replay.items() if s != prekey_id}

    def put_kem_prekey(self, record: KemPrekeyRecord) -> None:
        self._kem[record.prekey_id] = record

    def get_kem_prekey(self, prekey_id: int) -> KemPrekeyRecord | None:
        return self._kem.get(prekey_id)

    def kem_prekeys(self) -> list[KemPrekeyRecord]:
        return sorted(self._kem.values(), key=lambda r: r.prekey_id)

    def delete_kem_prekey(self, prekey_id: int) -> None:
        self._kem.pop(prekey_id, None)

    def put_one_time_prekey(self, record: OneTimePrekeyRecord) -> None:
        self._one_time[record.prekey_id] = record

    def get_one_time_prekey(self, prekey_id: int) -> OneTimePrekeyRecord | None:
        return self._one_time.get(prekey_id)

    def one_time_prekeys(self) -> list[OneTimePrekeyRecord]:
        return sorted(self._one_time.values(), key=lambda r: r.prekey_id)

    def delete_one_time_prekey(self, prekey_id: int) -> None:
        self._one_time.pop(prekey_id, None)

    def has_initial_message(self, digest: bytes) -> bool:
        return digest in self._replay

    def initial_message_count(self, signed_prekey_id: int) -> int:
        return self._replay_count[signed_prekey_id]

    def commit_initial_message(
        self,
        *,
        signed_prekey_id: int,
        one_time_prekey_id: int | None,
        one_time_kem_prekey_id: int | None,
        replay_digest: bytes | None,
    ) -> bool:
        if signed_prekey_id not in self._signed:
            return False
        if one_time_prekey_id is not None and one_time_prekey_id not in self._one_time:
            return False
        if one_time_kem_prekey_id is not None:
            kem = self._kem.get(one_time_kem_prekey_id)
            if kem is None or kem.last_resort:
                return False
        if replay_digest is not None and replay_digest in self._replay:
            return False
        if one_time_prekey_id is not None:
            del self._one_time[one_time_prekey_id]
        if one_time_kem_prekey_id is not None:
            del self._kem[one_time_kem_prekey_id]
        if replay_digest is not None:
            self._replay[replay_digest] = signed_prekey_id
            self._replay_count[signed_prekey_id] += 1
        return True


class PrekeyStore:
    """One identity's prekeys: generation, signing, rotation and bundles.

    Sans-IO: randomness and time come from the caller. Ids come from the
    storage, so they are never reused while the storage lives.
    """

    __slots__ = ("_grace_ms", "_identity", "_storage", "_suite")

    def __init__(
        self,
        identity: PrivateIdentity,
        storage: PrekeyStorage,
        *,
        suite: CryptoSuite | None = None,
        grace_ms: int = PREKEY_GRACE_MS,
    ) -> None:
        if grace_ms < 0:
            raise ValueError("grace period must not be negative")
        self._identity = identity
        self._storage = storage
        self._suite = suite if suite is not None else identity.suite
        self._grace_ms = grace_ms

    @property
    def identity(self) -> PrivateIdentity:
        return self._identity

    @property
    def storage(self) -> PrekeyStorage:
        return self._storage

    @property
    def suite(self) -> CryptoSuite:
        return self._suite

    # ------------------------------------------------------------ making keys

    def _public_signed(self, record: SignedPrekeyRecord) -> SignedPrekey:
        public = self._suite.dh.from_private(record.private_key).public_key
        return SignedPrekey(record.prekey_id, public, record.signature)

    def _public_kem(self, record: KemPrekeyRecord) -> SignedKemPrekey:
        public = self._suite.kem.from_seed(record.seed).public_key
        return SignedKemPrekey(record.prekey_id, public, record.last_resort, record.signature)

    def _new_kem_record(self, rng: Rng, now: int, *, last_resort: bool) -> KemPrekeyRecord:
        prekey_id = self._storage.allocate_prekey_id(PrekeyKind.KEM)
        seed = rng(MLKEM1024_SEED_SIZE)
        public = self._suite.kem.from_seed(seed).public_key
        unsigned = SignedKemPrekey(prekey_id, public, last_resort, b"")
        signature = self._identity.sign(unsigned.signed_bytes())
        return KemPrekeyRecord(prekey_id, seed, last_resort, signature, now)

    def rotate_signed_prekey(self, rng: Rng, now: int) -> SignedPrekey:
        """Make a new current signed prekey; the old one enters its grace period."""
        prekey_id = self._storage.allocate_prekey_id(PrekeyKind.SIGNED)
        pair = self._suite.dh.generate(rng)
        unsigned = SignedPrekey(prekey_id, pair.public_key, b"")
        signature = self._identity.sign(unsigned.signed_bytes())
        for old in self._storage.signed_prekeys():
            if old.retired_ms is None:
                self._storage.put_signed_prekey(replace(old, retired_ms=now))
        record = SignedPrekeyRecord(prekey_id, pair.private_bytes, signature, now)
        self._storage.put_signed_prekey(record)
        self.prune(now)
        return self._public_signed(record)

    def rotate_last_resort_kem_prekey(self, rng: Rng, now: int) -> SignedKemPrekey:
        """Make a new last-resort ML-KEM prekey; the old one enters its grace period."""
        record = self._new_kem_record(rng, now, last_resort=True)
        for old in self._storage.kem_prekeys():
            if old.last_resort and old.retired_ms is None:
                self._storage.put_kem_prekey(replace(old, retired_ms=now))
        self._storage.put_kem_prekey(record)
        self.prune(now)
        return self._public_kem(record)

    def generate_one_time_prekeys(self, count: int, rng: Rng, now: int) -> list[OneTimePrekey]:
        """Add ``count`` one-time X25519 prekeys; return their public halves.

        Handed-out, unused ones are dropped, oldest first, to make room; if
        that is not enough, LocalProtocolError.
        """
        existing = self._storage.one_time_prekeys()
        self._make_room(
            count,
            MAX_ONE_TIME_PREKEYS,
            [(r.prekey_id, r.handed_out_ms) for r in existing],
            self._storage.delete_one_time_prekey,
        )
        out: list[OneTimePrekey] = []
        for _ in range(count):
            prekey_id = self._storage.allocate_prekey_id(PrekeyKind.ONE_TIME)
            pair = self._suite.dh.generate(rng)
            self._storage.put_one_time_prekey(
                OneTimePrekeyRecord(prekey_id, pair.private_bytes, now)
            )
            out.append(OneTimePrekey(prekey_id, pair.public_key))
        return out

    def generate_kem_prekeys(self, count: int, rng: Rng, now: int) -> list[SignedKemPrekey]:
        """Add ``count`` signed one-time ML-KEM prekeys; return their public halves."""
        existing = [r for r in self._storage.kem_prekeys() if not r.last_resort]
        self._make_room(
            count,
            MAX_ONE_TIME_KEM_PREKEYS,
            [(r.prekey_id, r.handed_out_ms) for r in existing],
            self._storage.delete_kem_prekey,
        )
        out: list[SignedKemPrekey] = []
        for _ in range(count):
            record = self._new_kem_record(rng, now, last_resort=False)
            self._storage.put_kem_prekey(record)
            out.append(self._public_kem(record))
        return out

    @staticmethod
    def _make_room(
        count: int,
        limit: int,
        existing: list[tuple[int, int | None]],
        delete: _Delete,
    ) -> None:
        if not 0 <= count <= limit:
            raise LocalProtocolError(f"batch size must be between 0 and {limit}")
        excess = len(existing) + count - limit
        if excess <= 0:
            return
        handed_out = sorted((t, i) for i, t in existing if t is not None)
        if len(handed_out) < excess:
            raise LocalProtocolError("too many unused one-time prekeys; hand some out first")
        for _, prekey_id in handed_out[:excess]:
            delete(prekey_id)

    # ---------------------------------------------------------------- upkeep

    def prune(self, now: int) -> None:
        """Delete what outlived its grace period, and retired keys beyond the caps."""
        cutoff = now - self._grace_ms
        signed_retired = sorted(
            (r.retired_ms, r.prekey_id)
            for r in self._storage.signed_prekeys()
            if r.retired_ms is not None
        )
        for i, (retired, prekey_id) in enumerate(signed_retired):
            too_many = len(signed_retired) - i >= MAX_RETAINED_SIGNED_PREKEYS
            if retired <= cutoff or too_many:
                self._storage.delete_signed_prekey(prekey_id)
        kem_retired: list[tuple[int, int]] = []
        for kem in self._storage.kem_prekeys():
            if kem.retired_ms is not None:
                kem_retired.append((kem.retired_ms, kem.prekey_id))
            elif kem.handed_out_ms is not None and kem.handed_out_ms <= cutoff:
                self._storage.delete_kem_prekey(kem.prekey_id)
        kem_retired.sort()
        for i, (retired, prekey_id) in enumerate(kem_retired):
            too_many = len(kem_retired) - i >= MAX_RETAINED_LAST_RESORT_PREKEYS
            if retired <= cutoff or too_many:
                self._storage.delete_kem_prekey(prekey_id)
        for opk in self._storage.one_time_prekeys():
            if opk.handed_out_ms is not None and opk.handed_out_ms <= cutoff:
                self._storage.delete_one_time_prekey(opk.prekey_id)

    def rotation_due(self, now: int, max_age_ms: int = SIGNED_PREKEY_ROTATION_MS) -> bool:
        """True if the current signed or last-resort prekey is missing, older
        than ``max_age_ms``, or (signed) its replay set is half full."""
        signed = self._current_signed()
        kem = self._current_last_resort()
        if signed is None or kem is None:
            return True
        if now - signed.created_ms >= max_age_ms or now - kem.created_ms >= max_age_ms:
            return True
        used = self._storage.initial_message_count(signed.prekey_id)
        return used * 2 >= MAX_INITIAL_MESSAGES_PER_SIGNED_PREKEY

    # --------------------------------------------------------------- bundles

    def _current_signed(self) -> SignedPrekeyRecord | None:
        current = [r for r in self._storage.signed_prekeys() if r.retired_ms is None]
        return current[-1] if current else None

    def _current_last_resort(self) -> KemPrekeyRecord | None:
        current = [r for r in self._storage.kem_prekeys() if r.last_resort and r.retired_ms is None]
        return current[-1] if current else None

    def _base(self) -> tuple[SignedPrekey, SignedKemPrekey]:
        signed = self._current_signed()
        kem = self._current_last_resort()
        if signed is None or kem is None:
            raise LocalProtocolError("no current signed or last-resort prekey: rotate them first")
        return self._public_signed(signed), self._public_kem(kem)

    def bundle_for_publication(self) -> PrekeyBundle:
        """The long-lived bundle for the key directory: the current signed
        prekey and last-resort ML-KEM prekey, no one-time prekey."""
        signed, kem = self._base()
        return PrekeyBundle(self._identity.public, signed, kem, None)

    def take_bundle(self, now: int) -> PrekeyBundle:
        """A bundle for one initiator, with the oldest one-time X25519 prekey
        and one-time ML-KEM prekey not yet handed out, where any are left.

        Each one-time prekey goes into at most one bundle.
        """
        signed, kem = self._base()
        one_time: OneTimePrekey | None = None
        for opk in self._storage.one_time_prekeys():
            if opk.handed_out_ms is None:
                self._storage.put_one_time_prekey(replace(opk, handed_out_ms=now))
                public = self._suite.dh.from_private(opk.private_key).public_key
                one_time = OneTimePrekey(opk.prekey_id, public)
                break
        for record in self._storage.kem_prekeys():
            if not record.last_resort and record.handed_out_ms is None:
                self._storage.put_kem_prekey(replace(record, handed_out_ms=now))
                kem = self._public_kem(record)
                break
        return PrekeyBundle(self._identity.public, signed, kem, one_time)

    def available_one_time_prekeys(self) -> int:
        """One-time X25519 prekeys not yet handed out."""
        return sum(r.handed_out_ms is None for r in self._storage.one_time_prekeys())

    def available_kem_prekeys(self) -> int:
        """One-time ML-KEM prekeys not yet handed out."""
        return sum(
            not r.last_resort and r.handed_out_ms is None for r in self._storage.kem_prekeys()
        )


class _Delete(Protocol):
    def __call__(self, prekey_id: int, /) -> None: ...


class InMemoryPrekeyStore(PrekeyStore):
    """A :class:`PrekeyStore` over a fresh :class:`InMemoryPrekeyStorage`."""

    __slots__ = ()

    def __init__(
        self,
        identity: PrivateIdentity,
        *,
        suite: CryptoSuite | None = None,
        grace_ms: int = PREKEY_GRACE_MS,
    ) -> None:
        super().__init__(identity, InMemoryPrekeyStorage(), suite=suite, grace_ms=grace_ms)
