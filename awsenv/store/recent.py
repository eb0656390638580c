"""The profiles `use` switched to, most recent first: the picker's order.

A small file of profile names, one a line, under `$XDG_STATE_HOME/awsenv/recent`
(`~/.local/state/awsenv/recent`; `%LOCALAPPDATA%\\awsenv\\recent` on Windows). It holds
no secret, only names that the config files hold too, and losing it costs only the
order. It is written on the cached switch, so it uses `os` alone and never fails a
command: a file that can't be read or written is an empty history.
"""
from __future__ import annotations

import os

KEEP = 50  # names kept; the picker shows every profile, the file only orders them


def path() -> str | None:
    base = os.environ.get("XDG_STATE_HOME")
    if not base and os.name == "nt":
        base = os.environ.get("LOCALAPPDATA")
    if not base:
        home = os.path.expanduser("~")
        if home == "~":
            return None
        base = os.path.join(home, ".local", "state")
    return os.path.join(base, "awsenv", "recent")


def read() -> list[str]:
    """The names, most recent first; [] when there is no history."""
    where = path()
    if where is None:
        return []
    try:
        with open(where, encoding="utf-8", errors="replace") as stream:
            names = stream.read(1 << 16).splitlines()
    except OSError:
        return []
    seen: list[str] = []
    for name in names:
        if name and name not in seen:
            seen.append(name)
    return seen


def record(profile: str) -> None:
    """Put `profile` first. A name with a line break can't be stored as a line: it is
    left out of the history, not mangled into another name."""
    where = path()
    if where is None or "\n" in profile or "\r" in profile or not profile:
        return
    names = read()
    if names[:1] == [profile]:
        return  # the same switch again: no write
    names = [profile] + [name for name in names if name != profile]
    temporary = f"{where}.{os.getpid()}"
    try:
        os.makedirs(os.path.dirname(where), mode=0o700, exist_ok=True)
        with open(temporary, "w", encoding="utf-8") as stream:
            stream.write("".join(name + "\n" for name in names[:KEEP]))
        os.replace(temporary, where)  # two shells switching at once: one order wins, whole
    except OSError:
        try:
            os.unlink(temporary)
        except OSError:
            pass
