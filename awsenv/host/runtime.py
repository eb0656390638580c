"""awsenv's private runtime directory: the agent's socket, the session lock and the
keyring-backend hint live there. Its own module so that the vault and the agent both
reach it without importing each other."""
from __future__ import annotations

import os
import stat
import sys


def data_dir() -> str:
    """$XDG_DATA_HOME/awsenv: where the file store keeps its files."""
    data = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return os.path.join(data, "awsenv")


def runtime_dir() -> str | None:
    """A private directory for the socket and the lock, or None when none can be trusted."""
    # Feature detection, not os.name: Windows has no uids (and no os.getuid) to check.
    getuid = getattr(os, "getuid", None)
    if getuid is None:
        return _windows_dir()
    base = os.environ.get("XDG_RUNTIME_DIR")
    path = os.path.join(base, "awsenv") if base else f"/tmp/awsenv-{getuid()}"
    try:
        try:
            os.mkdir(path, 0o700)
        except FileExistsError:
            pass
        info = os.lstat(path)
    except OSError:
        return None
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != getuid() or info.st_mode & 0o077:
        return None
    return path


def _windows_dir() -> str | None:
    """%LOCALAPPDATA%\\awsenv: the profile's ACL keeps other users out, and Windows has
    no mode bits or owner uid to check. A junction or link there is not trusted."""
    base = os.environ.get("LOCALAPPDATA")
    if not base:
        return None
    path = os.path.join(base, "awsenv")
    try:
        os.makedirs(path, exist_ok=True)
        info = os.lstat(path)
    except OSError:
        return None
    return path if stat.S_ISDIR(info.st_mode) else None


def process_gone(pid: int) -> bool:
    """Whether the process is gone. A zombie counts as gone: where no one reaps it (a
    container's PID 1 may not), `kill -0` would still find it. POSIX only, as the agent
    is: on Windows, os.kill(pid, 0) would end the process."""
    if sys.platform == "win32":
        return False
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as stream:
            return stream.read().rpartition(")")[2].split()[:1] == ["Z"]
    except FileNotFoundError:
        if os.path.isdir("/proc/self"):  # a /proc without that pid: it is gone
            return True
    except OSError:
        pass
    # No /proc (macOS, the BSDs): only kill -0, to which a zombie still answers.
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:
        return False
    return False
