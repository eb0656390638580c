"""What the command modules share: writing stdout once, choosing the shell, opening
the keyring late, the credentials active in this environment, and tables."""
from __future__ import annotations

import os
import sys
import time

from ... import shells
from ...core.creds import rfc3339
from ...core.settings import env_number


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


# status / whoami ----------------------------------------------------------------
def active() -> dict | None:
    """The awsenv credentials this environment holds (AWSENV_PROFILE, AWSENV_EXPIRES), or None."""
    profile = os.environ.get("AWSENV_PROFILE")
    expires = env_number("AWSENV_EXPIRES")
    if not profile or expires is None:
        return None
    left = expires - int(time.time())
    return {
        "profile": profile,
        "expires": rfc3339(expires),
        "expires_epoch": expires,
        "seconds_left": max(left, 0),
        "expired": left <= 0,
        "access_key_id": os.environ.get("AWS_ACCESS_KEY_ID", ""),
    }
