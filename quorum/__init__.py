"""Witness quorum: BLS12-381 co-signed epoch certificates and equivocation
evidence. Sans-IO.

Nothing is implemented here yet; it is built by a later issue.
"""

__all__: list[str] = []
