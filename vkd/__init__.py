"""Key directory: VRF-private lookups in a sparse Merkle tree, epoch heads,
lookup/history/audit proofs and ``verify_vkd_proof``. Sans-IO.

Nothing is implemented here yet; it is built by a later issue.
"""

__all__: list[str] = []
