"""The node: I/O around the sans-IO cores (drivers, key storage, CLI).

Submodules are imported on demand so that ``chhaya --help`` stays quick.
"""

__all__: list[str] = []
