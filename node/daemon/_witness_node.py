"""`chhaya witness serve`: one witness of the quorum as a libp2p node.

How it works
------------
The node serves ``/chhaya/witness/1.0.0`` for one :class:`quorum.Witness`.
The witness follows one directory (its signing and VRF keys, from the
directory's public file): for each request it checks the directory's
signature, that the epoch is the next one after the head it signed last,
and the audit proof from that head (append-only); it records the head
durably before it releases its signature, and never signs two heads for one
epoch. Evidence of equivocation or of a broken append-only rule is kept and
logged. With ``--directory-peer`` only that libp2p peer may ask.

A witness also joins the certified-head gossip (``/chhaya/vkd/heads/1``),
checking every head against the witness set like any client and forwarding
the ones that verify, so heads spread through the witnesses too.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import trio
from libp2p.crypto.ed25519 import create_new_key_pair
from libp2p.peer.id import ID

from chhaya import KeyFileError
from quorum import CertificateVerifier, HeadTracker, Witness, WitnessSet
from quorum.bls import BlsBackend
from vkd import audit_checker
from vkd.tree import EMPTY_HASH

from ..clock import wall_ms
from ..p2p import HeadGossip, WitnessService, allow_any_directory, listen_addrs, running_host
from ..witness_store import FileWitnessStore

if TYPE_CHECKING:
    from libp2p.abc import IHost
    from trio_typing import TaskStatus

__all__ = ["WitnessNode", "witness_id_for"]

log = logging.getLogger("chhaya.witness")


def witness_id_for(witness_set: WitnessSet, backend: BlsBackend, secret_key: int) -> str:
    """The id under which ``secret_key``'s public key is a member of the set."""
    public = backend.sk_to_pk(secret_key)
    for member in witness_set.members:
        if member.public_key == public:
            return member.witness_id
    raise KeyFileError("witness key", "this key is not a member of the witness set")


class WitnessNode:
    def __init__(
        self,
        secret_key: int,
        witness_set: WitnessSet,
        backend: BlsBackend,
        directory_key: bytes,
        directory_vrf_key: bytes,
        state_path: Path,
        node_seed: bytes,
        listen: Sequence[str],
        *,
        directory_peer: ID | None = None,
        clock: Callable[[], int] = wall_ms,
    ) -> None:
        self.witness_id = witness_id_for(witness_set, backend, secret_key)
        self.witness = Witness(
            secret_key=secret_key,
            backend=backend,
            set_id=witness_set.set_id,
            directory_key=directory_key,
            directory_vrf_key=directory_vrf_key,
            store=FileWitnessStore(state_path),
            audit=audit_checker,
            genesis_root=EMPTY_HASH,
        )
        self.tracker = HeadTracker(
            CertificateVerifier(witness_set, backend), directory_key, directory_vrf_key
        )
        self.key_pair = create_new_key_pair(node_seed)
        self.peer_id = ID.from_pubkey(self.key_pair.public_key)
        self._listen = list(listen)
        self._directory_peer = directory_peer
        self._clock = clock
        self._host: IHost | None = None
        self._stopping = trio.Event()
        self.service: WitnessService | None = None

    @property
    def host(self) -> IHost:
        assert self._host is not None
        return self._host

    def addresses(self) -> list[str]:
        return listen_addrs(self.host)

    def stop(self) -> None:
        self._stopping.set()

    def _allowed(self, peer_id: ID) -> bool:
        return self._directory_peer is None or peer_id == self._directory_peer

    async def run(self, *, task_status: TaskStatus[WitnessNode] = trio.TASK_STATUS_IGNORED) -> None:
        async with running_host(self.key_pair, self._listen) as host:
            self._host = host
            allowed = self._allowed if self._directory_peer is not None else allow_any_directory
            service = WitnessService(
                host, self.witness, self.witness_id, self._clock, peer_allowed=allowed
            )
            self.service = service
            async with HeadGossip(host, self.tracker):
                with service:
                    task_status.started(self)
                    await self._stopping.wait()
