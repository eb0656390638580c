"""The profile picker: `awsenv use` with no profile, on a terminal.

One row per profile (name, kind, time left of its cached credentials, region), the
most recently used first (store/recent.py), filtered fuzzily as the user types. It
draws on the terminal (/dev/tty) and reads the keys there, so stdout stays the
statements' for the wrapper's eval. prompt_toolkit is imported here only: the cached
switch never comes this way.
"""
from __future__ import annotations

import os
import sys
import time

from ..core.config import AwsConfig
from ..core.creds import format_ttl
from ..core.errors import AwsenvError, Cancelled, UsageError

NO_TERMINAL = "name a PROFILE: with no profile, `use` opens a picker, which needs a terminal"
SHOWN = 12  # rows at once; the list scrolls with the selection


# Profile.kind's words, as the picker shows them; a base profile is told apart by its MFA.
LABELS = {"sso": "SSO", "base": "key"}


def kind(profile) -> str:
    """What the picker calls a profile: key, MFA, role, SSO, login, or what
    `Profile.kind` calls one awsenv leaves to the SDKs (web-identity, credential-source)."""
    named = profile.kind
    if named == "base" and profile.mfa_serial:
        return "MFA"
    return LABELS.get(named, named)


def time_left(sessions: dict, now: float) -> dict[str, float]:
    """The latest expiry of each profile's own cached credentials (a base profile's
    session, a role's or an SSO role's credentials), for those still valid."""
    from ..core.cachekeys import key_parts

    left: dict[str, float] = {}
    for key, entry in sessions.items():
        parts = key_parts(key)
        expires = entry.get("Expiration") if isinstance(entry, dict) else None
        if parts is None or parts[0] not in ("session", "role", "sso") or not isinstance(expires, (int, float)):
            continue
        if expires > now:
            left[parts[1]] = max(left.get(parts[1], 0), expires - now)
    return left


def rows(config: AwsConfig, sessions: dict, recent: list[str], now: float) -> list[tuple[str, str, str, str]]:
    """(profile, kind, time left, region) per profile: the recently used in their
    order, then the others by name."""
    left = time_left(sessions, now)
    names = config.names()
    order = [name for name in recent if name in names] + sorted(name for name in names if name not in recent)
    table = []
    for name in order:
        profile = config.profile(name)
        try:
            region = profile.region or ""
        except AwsenvError:
            region = "?"
        table.append((name, kind(profile), format_ttl(left[name]) if name in left else "-", region))
    return table


def matches(query: str, name: str) -> bool:
    """Fuzzy, as fzf's default: the query's characters appear in order, any case."""
    position = 0
    lowered = name.lower()
    for char in query.lower():
        position = lowered.find(char, position)
        if position < 0:
            return False
        position += 1
    return True


def filtered(table: list, query: str) -> list:
    """The rows that match; those holding the query as it is typed come first, each
    group in the table's (most recently used) order."""
    found = [row for row in table if matches(query, row[0])]
    return sorted(found, key=lambda row: query.lower() not in row[0].lower())


def _sessions() -> dict:
    """The session cache, from the agent if it runs, else the key store. Without
    either, the rows show no time left rather than failing the picker."""
    from ..store import agentclient

    doc = agentclient.fetch()
    if doc is not None:
        return doc
    try:
        from ..store.vault import Vault

        return Vault().load_sessions()
    except AwsenvError:
        return {}


def _terminal():
    """/dev/tty for reading and drawing, when stdin is a terminal too: a command whose
    input is a file or a pipe has no one at the keyboard to pick."""
    if sys.platform == "win32" or not sys.stdin.isatty():
        return None
    try:
        fd = os.open("/dev/tty", os.O_RDWR | getattr(os, "O_NOCTTY", 0))
    except OSError:
        return None
    # A terminal can't seek, so not one "r+" file: one for the keys, one for drawing.
    return (open(fd, "r", encoding="utf-8", errors="replace", closefd=False),
            open(fd, "w", encoding="utf-8", errors="replace", closefd=True))


def pick() -> str:
    """The profile the user picks; Cancelled (exit 130) on Esc or Ctrl-C."""
    tty = _terminal()
    if tty is None:
        raise UsageError(NO_TERMINAL)
    keys, screen = tty
    with keys, screen:
        config = AwsConfig()
        if not config.names():
            raise UsageError("no profiles in the AWS config: add one with `awsenv add PROFILE`")
        from ..store import recent

        table = rows(config, _sessions(), recent.read(), time.time())
        chosen = _run(table, keys, screen)
    if chosen is None:
        raise Cancelled("no profile picked")
    return chosen


def _run(table: list, keys_in, screen) -> str | None:
    from prompt_toolkit.application import Application
    from prompt_toolkit.buffer import Buffer
    from prompt_toolkit.input import create_input
    from prompt_toolkit.key_binding import KeyBindings
    from prompt_toolkit.layout import HSplit, Layout, Window
    from prompt_toolkit.layout.controls import BufferControl, FormattedTextControl
    from prompt_toolkit.layout.processors import BeforeInput
    from prompt_toolkit.output.vt100 import Vt100_Output

    query = Buffer(multiline=False)
    # Where the cursor is, among the rows the query leaves shown.
    selected = [0]
    shown: list = [table]
    widths = [max(len(row[i]) for row in table) for i in range(4)]

    def refilter(_buffer) -> None:
        shown[0] = filtered(table, query.text)
        selected[0] = 0

    query.on_text_changed += refilter

    def listing():
        rows, at = shown[0], selected[0]
        if not rows:
            return [("class:none", "  no profile matches\n")]
        top = max(0, at - SHOWN + 1)
        lines = []
        for index, row in enumerate(rows[top:top + SHOWN], start=top):
            text = "  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip()
            style = "reverse" if index == at else ""
            lines.append((style, f"{'>' if index == at else ' '} {text}\n"))
        return lines

    keys = KeyBindings()

    @keys.add("up")
    @keys.add("c-p")
    def _up(_event) -> None:
        selected[0] = max(0, selected[0] - 1)

    @keys.add("down")
    @keys.add("c-n")
    def _down(_event) -> None:
        selected[0] = min(max(len(shown[0]) - 1, 0), selected[0] + 1)

    @keys.add("enter")
    def _enter(event) -> None:
        if shown[0]:
            event.app.exit(result=shown[0][selected[0]][0])

    @keys.add("escape", eager=True)
    @keys.add("c-c")
    @keys.add("c-d")
    def _cancel(event) -> None:
        event.app.exit(result=None)

    layout = Layout(HSplit([
        Window(BufferControl(query, input_processors=[BeforeInput("profile> ")]), height=1),
        Window(FormattedTextControl(listing), height=min(SHOWN, len(table)) or 1),
    ]))
    term = os.environ.get("TERM") or "xterm"
    application: Application[str | None] = Application(
        layout=layout, key_bindings=keys, full_screen=False, erase_when_done=True,
        input=create_input(stdin=keys_in), output=Vt100_Output(screen, lambda: _size(screen), term=term),
    )
    return application.run()


def _size(tty):
    from prompt_toolkit.data_structures import Size

    try:
        columns, lines = os.get_terminal_size(tty.fileno())
    except OSError:
        columns, lines = 80, 24
    return Size(rows=lines, columns=columns)
