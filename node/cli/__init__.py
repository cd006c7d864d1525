"""The ``chhaya`` command line.

Every error reaches the user as one line on stderr and a non-zero exit:
1 for a failure the user can act on, 2 for bad usage, 130 for Ctrl-C.
"""

from __future__ import annotations

import sys

import click

from chhaya import ChhayaError

from ._app import cli

__all__ = ["cli", "main"]


def _leaf(exc: BaseException) -> BaseException:
    """The first real error inside (possibly nested) exception groups."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc


def main(argv: list[str] | None = None) -> None:
    try:
        try:
            cli.main(args=argv, prog_name="chhaya", standalone_mode=False)
        except BaseExceptionGroup as group:
            raise _leaf(group) from None
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.Abort:
        click.echo("chhaya: aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except ChhayaError as exc:
        click.echo(f"chhaya: error: {exc}", err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        click.echo("chhaya: interrupted", err=True)
        sys.exit(130)
    except Exception as exc:  # a bug: still one line, never a traceback
        click.echo(f"chhaya: internal error: {type(exc).__name__}: {exc}", err=True)
        sys.exit(2)
    sys.exit(0)
