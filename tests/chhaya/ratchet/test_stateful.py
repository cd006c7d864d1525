"""A stateful hypothesis test of two ratchet sessions over a lossy, reordering network.

The model is a set of in-flight messages, each with its receiver and its
exact plaintext. Hypothesis sends, delivers in any order, drops, replays,
corrupts, and saves and restores both sessions. Checked throughout:

- every delivered message decrypts exactly once, to its exact plaintext;
- a replayed or corrupted message is rejected and changes nothing;
- the responder can send exactly when it has received something;
- at the end, every message still in flight decrypts, in a random order.

To stay within the caps the model is simple: each side sends on at most
``MAX_RECEIVER_CHAINS`` distinct ratchet keys, and a run has at most
``stateful_step_count`` steps, so no chain skips more than
``MAX_SKIP_PER_CHAIN`` keys and nothing is ever evicted. Under those bounds
the sessions must never desynchronise.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import ClassVar

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from chhaya.crypto import FAST, Rng
from chhaya.ratchet import (
    MAX_RECEIVER_CHAINS,
    MAX_SKIPPED_TOTAL,
    DuplicateMessageError,
    RatchetSession,
)
from chhaya.safety import ChhayaError, CryptoError, RemoteProtocolError

from ._helpers import AD, SHARED_SECRET, det_rng, flip_bit, parse_state

ALICE = "alice"
BOB = "bob"

STATEFUL_SETTINGS = settings(max_examples=500, stateful_step_count=30, deadline=None)

#: A run sends at most this many messages, far below every skip cap.
MAX_SENDS = 50

PLAINTEXTS = st.binary(max_size=48)
BURSTS = st.lists(PLAINTEXTS, min_size=1, max_size=4)


@dataclass(frozen=True)
class Flight:
    """One message on the wire: who reads it, and what it must decrypt to."""

    receiver: str
    data: bytes
    plaintext: bytes


class RatchetMachine(RuleBasedStateMachine):
    HEADER_ENCRYPTION: ClassVar[bool] = False

    def __init__(self) -> None:
        super().__init__()
        self.sessions: dict[str, RatchetSession] = {}
        self.rngs: dict[str, Rng] = {}
        self.in_flight: list[Flight] = []
        self.delivered: list[Flight] = []
        self.sending_keys: dict[str, set[bytes]] = {ALICE: set(), BOB: set()}
        self.bob_has_received = False
        self.sent = 0
        self.shuffle = random.Random(0)

    # ------------------------------------------------------------ set-up

    @initialize(seed=st.binary(min_size=8, max_size=8))
    def setup(self, seed: bytes) -> None:
        self.rngs = {ALICE: det_rng(seed + b"/alice"), BOB: det_rng(seed + b"/bob")}
        bob_key = FAST.dh.generate(self.rngs[BOB])
        he = self.HEADER_ENCRYPTION
        self.sessions = {
            ALICE: RatchetSession.initiator(
                SHARED_SECRET, AD, bob_key.public_key, self.rngs[ALICE], header_encryption=he
            ),
            BOB: RatchetSession.responder(SHARED_SECRET, AD, bob_key, header_encryption=he),
        }
        self.shuffle = random.Random(seed)

    # ------------------------------------------------------------ helpers

    def _may_send(self, sender: str) -> bool:
        if self.sent + 4 > MAX_SENDS:
            return False
        keys = self.sending_keys[sender]
        key = self.sessions[sender].ratchet_public_key
        return key in keys or len(keys) < MAX_RECEIVER_CHAINS

    def _send(self, sender: str, body: bytes) -> None:
        session = self.sessions[sender]
        assert session.can_send
        self.sending_keys[sender].add(session.ratchet_public_key)
        # A counter makes every plaintext unique, so a wrong match shows.
        plaintext = self.sent.to_bytes(4, "big") + body
        self.sent += 1
        data = session.encrypt(plaintext, self.rngs[sender])
        receiver = BOB if sender == ALICE else ALICE
        self.in_flight.append(Flight(receiver, data, plaintext))

    def _deliver(self, flight: Flight) -> None:
        session = self.sessions[flight.receiver]
        assert session.decrypt(flight.data, self.rngs[flight.receiver]) == flight.plaintext
        self.delivered.append(flight)
        if flight.receiver == BOB:
            self.bob_has_received = True

    def _rejected(
        self, flight: Flight, data: bytes, expected: tuple[type[ChhayaError], ...]
    ) -> None:
        session = self.sessions[flight.receiver]
        before = session.encode()
        try:
            session.decrypt(data, self.rngs[flight.receiver])
        except expected:
            pass
        else:
            raise AssertionError("a replayed or corrupted message was accepted")
        assert session.encode() == before

    # -------------------------------------------------------------- rules

    @precondition(lambda self: self._may_send(ALICE))
    @rule(bodies=BURSTS)
    def alice_sends(self, bodies: list[bytes]) -> None:
        for body in bodies:
            self._send(ALICE, body)

    @precondition(lambda self: self.bob_has_received and self._may_send(BOB))
    @rule(bodies=BURSTS)
    def bob_sends(self, bodies: list[bytes]) -> None:
        for body in bodies:
            self._send(BOB, body)

    @precondition(lambda self: bool(self.in_flight))
    @rule(data=st.data())
    def deliver(self, data: st.DataObject) -> None:
        """Deliver one to four in-flight messages, each chosen by index."""
        count = data.draw(st.integers(1, min(4, len(self.in_flight))), label="count")
        for _ in range(count):
            index = data.draw(st.integers(0, len(self.in_flight) - 1), label="in-flight index")
            self._deliver(self.in_flight.pop(index))

    @precondition(lambda self: bool(self.in_flight))
    @rule(data=st.data())
    def drop(self, data: st.DataObject) -> None:
        index = data.draw(st.integers(0, len(self.in_flight) - 1), label="in-flight index")
        self.in_flight.pop(index)

    @precondition(lambda self: bool(self.delivered))
    @rule(data=st.data())
    def duplicate(self, data: st.DataObject) -> None:
        flight = data.draw(st.sampled_from(self.delivered), label="delivered message")
        self._rejected(flight, flight.data, (DuplicateMessageError, CryptoError))

    @precondition(lambda self: bool(self.in_flight or self.delivered))
    @rule(data=st.data())
    def corrupt(self, data: st.DataObject) -> None:
        flight = data.draw(st.sampled_from(self.in_flight + self.delivered), label="message")
        offset = data.draw(st.integers(0, len(flight.data) - 1), label="offset")
        bit = data.draw(st.integers(0, 7), label="bit")
        self._rejected(
            flight, flip_bit(flight.data, offset, bit), (RemoteProtocolError, CryptoError)
        )

    @rule()
    def save_and_restore(self) -> None:
        for name, session in self.sessions.items():
            encoded = session.encode()
            restored = RatchetSession.decode_untrusted(encoded)
            assert restored.encode() == encoded
            self.sessions[name] = restored

    # --------------------------------------------------------- invariants

    @invariant()
    def responder_sends_only_after_receiving(self) -> None:
        assert self.sessions[ALICE].can_send
        assert self.sessions[BOB].can_send == self.bob_has_received

    @invariant()
    def stores_stay_within_caps(self) -> None:
        for session in self.sessions.values():
            assert session.skipped_count <= MAX_SKIPPED_TOTAL
            state = parse_state(session.encode())
            assert len(state.skipped_chains) <= MAX_RECEIVER_CHAINS
            assert state.header_encryption is self.HEADER_ENCRYPTION

    # ------------------------------------------------------------ the end

    def teardown(self) -> None:
        """Everything still in flight arrives, in a random order, and decrypts."""
        if not self.sessions:
            return
        remaining = list(self.in_flight)
        self.in_flight.clear()
        self.shuffle.shuffle(remaining)
        for flight in remaining:
            self._deliver(flight)
        # The conversation carries on after the storm.
        if self._may_send(ALICE):
            self._send(ALICE, b"after")
            self._deliver(self.in_flight.pop())


class PlainHeaderMachine(RatchetMachine):
    HEADER_ENCRYPTION = False


class EncryptedHeaderMachine(RatchetMachine):
    HEADER_ENCRYPTION = True


TestPlainHeaderRatchet = PlainHeaderMachine.TestCase
TestPlainHeaderRatchet.settings = STATEFUL_SETTINGS
TestEncryptedHeaderRatchet = EncryptedHeaderMachine.TestCase
TestEncryptedHeaderRatchet.settings = STATEFUL_SETTINGS
