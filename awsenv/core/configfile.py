"""Writing the AWS CLI's files: a new profile in ~/.aws/config, and the plaintext keys
taken out of ~/.aws/credentials. Every other byte of a file is kept as it was.
"""
from __future__ import annotations

import os
import re

from .errors import ConfigError, UsageError
from .ini import LINE_WITH_END, read_text, scan_lines

# What no name or value awsenv writes to a config file may hold: a line break of any
# kind a reader might split on (configparser ends a line at \r too) or another control
# character. Patterns as text, compiled on first use: the cached switch never writes.
UNWRITABLE = r"[\x00-\x1f\x7f-\x9f\u2028\u2029]"


CONFIG_KEY = r"[A-Za-z0-9_]+"


def section_header(name: str) -> str:
    """A header that the AWS CLI and awsenv both read as profile `name`: as typed where
    shlex leaves it alone, else shlex-quoted."""
    if name == "default":
        return "[default]"
    if re.search(UNWRITABLE, name):
        raise UsageError(f"a profile name can't hold a line break or a control character: {name!r}")
    import shlex

    try:
        words = shlex.split(f"profile {name}")
    except ValueError:
        words = []
    return f"[profile {name}]" if words == ["profile", name] else f"[profile {shlex.quote(name)}]"


def append_profile(path: str, name: str, values: dict[str, str]) -> None:
    """Add a `[profile NAME]` section at the end of the config file. Every value must
    read back as written: one line, no control character, no space at either end (which
    configparser strips). Callers check what they took from outside; this is the last
    guard, so that no value can end its line and start a key of its own."""
    header = section_header(name)
    for key, value in values.items():
        if not re.fullmatch(CONFIG_KEY, key) or re.search(UNWRITABLE, value) or value != value.strip():
            raise UsageError(f"refusing to write {key!r} = {value!r} to {path}: not a one-line setting")
    os.makedirs(os.path.dirname(path) or ".", mode=0o700, exist_ok=True)
    existing = read_text(path) or ""
    lines = [header] + [f"{k} = {v}" for k, v in values.items()]
    sep = "" if not existing or existing.endswith("\n\n") else ("\n" if existing.endswith("\n") else "\n\n")
    with open(path, "a", encoding="utf-8") as out:
        out.write(sep + "\n".join(lines) + "\n")


SECRET_KEYS = ("aws_access_key_id", "aws_secret_access_key", "aws_session_token", "aws_security_token")


def remove_plaintext(path: str, profiles: list[str], defined: set[str] | frozenset[str] = frozenset()) -> None:
    """Drop the key lines of `profiles` from the credentials file. Every other line is
    kept byte for byte, section headers included, so a profile that only the
    credentials file names still exists; a section left with nothing but blank lines
    goes too when ~/.aws/config defines its profile (`defined`). The file is replaced
    atomically through a 0600 temporary file beside it; no backup copy is left."""
    path = os.path.realpath(path)  # a dotfiles symlink: rewrite the file that holds the key
    with open(path, "rb") as stream:
        text = stream.read().decode("utf-8")
    wanted = set(profiles)
    lines = LINE_WITH_END.findall(text)
    kept: list[tuple[str | None, str, str]] = []  # (section, kind, line)
    section: str | None = None
    dropping = False
    # The lines are read as parse_ini reads them, so a key written `name: value` and the
    # indented lines that continue a secret go with it.
    for (number, kind, word, value), line in zip(scan_lines(lines), lines):
        if kind == "bad":
            raise ConfigError(f"{path}:{number}: {word}")
        if kind == "section":
            section, dropping = word, False
        elif kind == "key":
            dropping = section in wanted and word in SECRET_KEYS
        if dropping and (kind == "key" or (kind == "more" and value)):
            continue  # a blank line inside the value stays: it separates the sections
        kept.append((section, kind, line))
    # Left empty: its header and blank lines only (a key or a comment keeps it).
    emptied = {name for name in wanted & set(defined)
               if all(kind == "section" or not line.strip() for where, kind, line in kept if where == name)}
    text_kept = "".join(line for where, _kind, line in kept if where not in emptied)
    mode = os.stat(path).st_mode & 0o777
    folder, name = os.path.split(path)
    tmp = os.path.join(folder, f".{name}.awsenv-{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(text_kept.encode("utf-8"))
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, mode & 0o600 or 0o600)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
