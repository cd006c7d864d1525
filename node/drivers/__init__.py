"""trio drivers that run the sans-IO protocol machines over real streams."""

from ._channel import SecureChannel, accept_channel, dial_channel

__all__ = ["SecureChannel", "accept_channel", "dial_channel"]
