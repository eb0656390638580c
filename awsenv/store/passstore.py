"""The pass key store: awsenv's items as entries of the standard Unix password manager.

`AWSENV_BACKEND=pass`. Every item is one entry under `awsenv/` in the password store
(`$PASSWORD_STORE_DIR`, by default `~/.password-store`), e.g. `awsenv/key:dev` or
`awsenv/sessions`. `pass` encrypts each with GnuPG to the keys in the store's `.gpg-id`,
and gpg-agent asks for the GnuPG passphrase (pinentry) when it needs one: awsenv never
sees it. A store kept in git gets one commit per change, as `pass` does.

Item names stay readable: letters, digits and `_.:@+=,-` stand as they are; any other
character (a `/`, a space, a quote, a leading dot) is written as %XX of its UTF-8
bytes, so that no profile name makes a sub-folder or reaches outside `awsenv/`.
Values reach `pass insert --multiline` on stdin, never the command line.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess

from ..core.errors import KeyringError

FOLDER = "awsenv"
PLAIN = re.compile(r"[A-Za-z0-9_.:@+=,-]")


def entry_name(item: str) -> str:
    """`key:dev` → `awsenv/key:dev`; `key:a/b` → `awsenv/key:a%2Fb`."""
    out = []
    for index, char in enumerate(item):
        if PLAIN.fullmatch(char) and not (index == 0 and char == "."):
            out.append(char)
        else:
            out.extend(f"%{byte:02X}" for byte in char.encode())
    return f"{FOLDER}/{''.join(out)}"


def store_dir() -> str:
    return os.environ.get("PASSWORD_STORE_DIR") or os.path.join(os.path.expanduser("~"), ".password-store")


class PassStore:
    """Entries through the `pass` program: get, set and delete, as the keyring's backends offer."""

    name = "pass"

    def __init__(self) -> None:
        self.dir = store_dir()
        self.program = shutil.which("pass")
        if self.program is None:
            raise KeyringError("AWSENV_BACKEND=pass needs the `pass` program, which is not on PATH; "
                               "install it (apt install pass, brew install pass) or choose another store")

    def describe(self) -> str:
        return f"pass {self.dir}"

    def handoff(self) -> None:
        return None  # gpg-agent holds what unlocks this store

    def open(self, create: bool = False) -> None:
        """Fail now, with the way out, rather than after someone typed a secret."""
        if not any(os.path.isfile(os.path.join(self.dir, *part, ".gpg-id")) for part in ((), (FOLDER,))):
            raise KeyringError(f"the password store {self.dir} is not initialised; "
                               "run `pass init GPG-KEY-ID` first (gpg --list-secret-keys shows your keys)")

    def _file(self, item: str) -> str:
        return os.path.join(self.dir, *entry_name(item).split("/")) + ".gpg"

    def get(self, item: str) -> str | None:
        if not os.path.isfile(self._file(item)):
            self.open()  # "not initialised" says more than "no key stored"
            return None  # no process for what is not there: `list` asks for every profile
        value = self._run("reading", item, "show", entry_name(item))
        return value[:-1] if value.endswith("\n") else value

    def set(self, item: str, value: str) -> None:
        self.open()
        self._run("writing", item, "insert", "--multiline", "--force", entry_name(item), stdin=value + "\n")

    def delete(self, item: str) -> bool:
        if not os.path.isfile(self._file(item)):
            return False
        self._run("deleting", item, "rm", "--force", entry_name(item))
        return True

    def _run(self, action: str, item: str, *argv: str, stdin: str | None = None) -> str:
        assert self.program is not None
        try:
            # Without input, stdin stays the terminal: pinentry may need to ask there.
            done = subprocess.run([self.program, *argv], input=stdin, capture_output=True, text=True)
        except OSError as err:
            raise KeyringError(f"cannot run pass: {err.strerror}") from None
        if done.returncode != 0:
            said = next((line.strip() for line in done.stderr.splitlines() if line.strip()), f"exit {done.returncode}")
            if "pass init" in said:
                self.open()
            raise KeyringError(f"pass failed while {action} {entry_name(item)}: {said}")
        return done.stdout
