"""The long-running node: user node, directory and witness roles, control API.

This package's top level stays light (no py-libp2p, which takes about a
second to import), so that CLI clients of the control socket start fast.
The roles live in ``node.daemon._main`` and import py-libp2p.
"""

from ._config import (
    CONFIG_FILE,
    CONTROL_SOCKET,
    ConfigError,
    NodeConfig,
    load_config,
    save_config,
    socket_path,
)
from ._control import MAX_LINE, ControlServer, call, stream
from ._metrics import NodeMetrics
from ._wire import Intro, Presence, Welcome

__all__ = [
    "CONFIG_FILE",
    "CONTROL_SOCKET",
    "MAX_LINE",
    "ConfigError",
    "ControlServer",
    "Intro",
    "NodeConfig",
    "NodeMetrics",
    "Presence",
    "Welcome",
    "call",
    "load_config",
    "save_config",
    "socket_path",
    "stream",
]
