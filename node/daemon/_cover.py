"""Cover traffic: dummy sealed envelopes at Poisson-timed intervals.

How it works
------------
With ``--cover-traffic RATE`` (envelopes per minute) the node waits an
exponentially distributed time with mean ``60 / RATE`` seconds (so sends
form a Poisson process, whose timing says nothing about the user's own
activity), then sends one cover envelope. A cover envelope is a sealed
envelope (:func:`chhaya.sealed.seal_cover`) to a real contact's agreement
key, in one of the same size buckets as real envelopes, sent on a live
channel to that contact, or, when the node has no live channel, deposited
in a contact's mailboxes; on the wire, to a relay and to a mailbox peer it
looks like a real message. The receiver decrypts it, sees the cover marker
and drops it silently (no receipt, nothing stored).

Sizes follow this node's own traffic: each cover envelope takes the bucket
of a recent real envelope picked at random (1 KiB until there is one), so
the size distribution of cover matches the real one.

Cost: at the default of :data:`DEFAULT_RATE_PER_MIN` envelopes per minute
and 1 KiB envelopes, about 2.1 KiB per minute per node on the wire (each
envelope also carries the channel's record header and tag, Yamux and Noise
framing: ~60 bytes), i.e. ~3 MiB per day.
"""

from __future__ import annotations

import logging
import math
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from typing import Final

from chhaya import ChhayaError
from chhaya.crypto import Rng
from chhaya.sealed import PADDING_BUCKETS, seal_cover

__all__ = ["DEFAULT_RATE_PER_MIN", "MAX_RATE_PER_MIN", "CoverTraffic", "poisson_delay_s"]

log = logging.getLogger("chhaya.cover")

#: What `--cover-traffic` documents as its default rate (envelopes per minute).
DEFAULT_RATE_PER_MIN: Final = 2.0
#: Upper bound on the rate, so a typo cannot flood peers.
MAX_RATE_PER_MIN: Final = 600.0
_RECENT_SIZES: Final = 64


def poisson_delay_s(rate_per_min: float, rng: Rng) -> float:
    """An exponentially distributed wait with mean ``60 / rate_per_min`` seconds."""
    u = (int.from_bytes(rng(8), "big") + 1) / 2**64  # uniform in (0, 1]
    return -math.log(u) * 60.0 / rate_per_min


#: ``targets()`` lists (agreement key, send) pairs for the live channels to contacts.
Target = tuple[bytes, Callable[[bytes], Awaitable[None]]]


class CoverTraffic:
    def __init__(
        self,
        rate_per_min: float,
        targets: Callable[[], Sequence[Target]],
        rng: Rng,
    ) -> None:
        if not 0 < rate_per_min <= MAX_RATE_PER_MIN:
            raise ValueError(f"cover rate must be in (0, {MAX_RATE_PER_MIN:g}] per minute")
        self._rate = rate_per_min
        self._targets = targets
        self._rng = rng
        self._sizes: deque[int] = deque(maxlen=_RECENT_SIZES)
        #: Cover envelopes sent.
        self.sent = 0
        #: Turns with no live channel to send on.
        self.skipped = 0

    def observe_real(self, envelope_size: int) -> None:
        """Record the size of a real envelope this node sent."""
        if envelope_size in PADDING_BUCKETS:
            self._sizes.append(envelope_size)

    def _pick(self, n: int) -> int:
        return int.from_bytes(self._rng(4), "big") % n

    def next_size(self) -> int:
        if not self._sizes:
            return PADDING_BUCKETS[0]
        return self._sizes[self._pick(len(self._sizes))]

    async def send_one(self) -> bool:
        """Send one cover envelope on a random live channel; False if there is none."""
        targets = self._targets()
        if not targets:
            self.skipped += 1
            return False
        agreement_key, send = targets[self._pick(len(targets))]
        envelope = seal_cover(agreement_key, self.next_size(), self._rng)
        try:
            await send(envelope)
        except ChhayaError as exc:
            log.info("cover envelope not sent: %s", exc)
            return False
        self.sent += 1
        return True
