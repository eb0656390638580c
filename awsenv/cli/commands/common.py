"""What the command modules share: writing stdout once, choosing the shell, and
opening the keyring late."""
from __future__ import annotations

import sys

from ... import shells


def Vault():  # noqa: N802 - imported late: the cached path never opens the keyring
    from ...store.vault import Vault as _Vault

    return _Vault()


def emit(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()


def target_shell(args):
    return shells.get(args.shell) if getattr(args, "shell", None) else shells.detect()


def columns(rows: list) -> str:
    """A table as `list` and `sso profiles` print it: left-aligned columns two spaces
    apart, the first row the header."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() + "\n" for row in rows)
