"""``python -m node.cli`` runs the same CLI as the ``chhaya`` script."""

from . import main

main()
