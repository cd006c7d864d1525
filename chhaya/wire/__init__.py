"""Wire codec helpers shared by every wire type."""

from ._codec import Reader, Writer

__all__ = ["Reader", "Writer"]
