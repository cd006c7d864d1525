"""Fuzz the ``/chhaya/vkd/1.0.0`` request and response decoders: only
DecodeError escapes, and whatever decodes re-encodes to exactly the input.

Run: ``python fuzz/fuzz_p2p_vkd_messages.py [corpus_dir] [-max_total_time=60]``
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports(include=["node"]):
    from chhaya import DecodeError
    from node.p2p import VkdKind, VkdRequest, VkdResponse


def seeds() -> list[bytes]:
    return [
        VkdRequest(VkdKind.LOOKUP, "alice").encode(),
        VkdRequest(VkdKind.HISTORY, "bob.smith").encode(),
        VkdResponse(0, b"CVL1" + bytes(40)).encode(VkdKind.LOOKUP),
        VkdResponse(1).encode(VkdKind.HISTORY),
        b"",
    ]


def TestOneInput(data: bytes) -> None:
    try:
        request = VkdRequest.decode_untrusted(data)
    except DecodeError:
        pass
    else:
        assert request.encode() == data
    for kind in (VkdKind.LOOKUP, VkdKind.HISTORY):
        try:
            response = VkdResponse.decode_untrusted(data, kind)
        except DecodeError:
            continue
        assert response.encode(kind) == data


def main() -> None:
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
