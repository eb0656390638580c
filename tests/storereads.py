"""Counting key-store reads from outside awsenv, and the scripted day that issue 22
measures: one MFA session, 30 switches among three roles, five renewals at the prompt,
with the agent up. tests/test_stores.py asserts the figure; bench/bench.py prints it.

Nothing in awsenv is asked for its own count: the operating system reports the reads.

- The file store: inotify on its folder. A file opened without write access and closed
  (IN_CLOSE_NOWRITE) is a read; writes go to a temporary file that is then renamed, so
  they never count. `os.path.exists` and the lock file do not count either. inotify
  merges an event into an identical one just before it in its queue, so the opens are
  watched too: one process's reads (open, close, open, close) can't merge. Two processes
  opening the same file at the same instant could count once.
- The keyring: dbus-monitor on the Secret Service's private bus, counting the calls
  that take a secret out of it (Item.GetSecret, Service.GetSecrets). A search that
  finds nothing, or a write, takes no secret out, and asks the user for nothing.
"""
from __future__ import annotations

import ctypes
import os
import struct
import subprocess
import sys
import time
from pathlib import Path

ROLES = ("dev", "prod", "ops")  # three roles, each reached from jump's MFA session
SWITCHES = 30
RENEWALS = 5
# ops: a third role on jump's MFA session (the emulator's `deploy` role serves it).
EXTRA_CONFIG = "\n[profile ops]\nrole_arn = arn:aws:iam::123456789012:role/deploy\nsource_profile = jump\n" \
               "mfa_serial = {serial}\n"

IN_CLOSE_NOWRITE, IN_OPEN = 0x10, 0x20
IN_NONBLOCK = os.O_NONBLOCK
IN_CLOEXEC = os.O_CLOEXEC
EVENT = struct.Struct("iIII")


class FileReads:
    """The reads of the files in `folder` (by name), as inotify reports them."""

    def __init__(self, folder: Path) -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        self.fd = libc.inotify_init1(IN_NONBLOCK | IN_CLOEXEC)
        if self.fd < 0:
            raise OSError(ctypes.get_errno(), "inotify_init1")
        if libc.inotify_add_watch(self.fd, os.fsencode(folder), IN_CLOSE_NOWRITE | IN_OPEN) < 0:
            os.close(self.fd)
            raise OSError(ctypes.get_errno(), f"inotify_add_watch {folder}")
        self.by_name: dict[str, int] = {}

    def _drain(self) -> None:
        while True:
            try:
                data = os.read(self.fd, 65536)
            except BlockingIOError:
                return
            at = 0
            while at < len(data):
                _wd, mask, _cookie, size = EVENT.unpack_from(data, at)
                name = data[at + EVENT.size: at + EVENT.size + size].rstrip(b"\0").decode()
                at += EVENT.size + size
                if mask & IN_CLOSE_NOWRITE and name:
                    self.by_name[name] = self.by_name.get(name, 0) + 1

    def count(self) -> int:
        """Reads of the store's files so far (not of its lock file)."""
        self._drain()
        return sum(n for name, n in self.by_name.items() if not name.endswith(".lock"))

    def close(self) -> None:
        os.close(self.fd)


class SecretReads:
    """The secrets taken out of the Secret Service at `address`, seen by dbus-monitor."""

    RULES = ("type='method_call',interface='org.freedesktop.Secret.Item',member='GetSecret'",
             "type='method_call',interface='org.freedesktop.Secret.Service',member='GetSecrets'")

    def __init__(self, address: str, log: Path) -> None:
        self.log = log
        self.stream = open(log, "wb")
        self.proc = subprocess.Popen(["dbus-monitor", "--address", address, *self.RULES], stdout=self.stream,
                                     stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + 10
        while not log.read_bytes():  # its first lines: it has become a monitor
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.close()
                raise RuntimeError("dbus-monitor did not start")
            time.sleep(0.02)

    def count(self) -> int:
        time.sleep(0.2)  # what the bus has passed on reaches the log
        return sum(1 for line in self.log.read_text().splitlines()
                   if line.startswith("method call") and ("member=GetSecret" in line))

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(5)
        self.stream.close()


# the day ----------------------------------------------------------------------------------
AGE = """
import json, sys, time
from awsenv.store import agentclient as agent
profile, left = sys.argv[1], int(sys.argv[2])
prefix = json.dumps(["role", profile])[:-1] + ","
doc = agent.fetch()
assert doc is not None, "no agent holds the sessions"
for key, entry in doc.items():
    if key.startswith(prefix):
        entry["Expiration"] = int(time.time()) + left
assert agent.push(doc)
"""


def age_in_agent(env: dict, profile: str, left: int) -> None:
    """Time passing for a role session, in the agent only: the store is not touched, so
    the reads counted are awsenv's, not the simulation's."""
    subprocess.run([sys.executable, "-c", AGE, profile, str(left)], env=env, check=True, timeout=30)


def scripted_day(awsenv, env: dict, code: str) -> list[str]:
    """The day, with `awsenv(*args, env=...)` returning (rc, stdout, stderr). Returns what
    went wrong (nothing, on a good day)."""
    problems = []

    def use(profile: str, *more: str) -> None:
        rc, out, err = awsenv("use", profile, "--shell", "bash", *more, env={})
        if rc != 0 or "AWS_SESSION_TOKEN" not in out:
            problems.append(f"use {profile} {' '.join(more)}: rc {rc}: {err.strip()[:300]}")

    use("dev", "--mfa-code", code)  # the one MFA session
    for i in range(1, SWITCHES + 1):
        use(ROLES[i % len(ROLES)])
    for _ in range(RENEWALS):
        age_in_agent(env, "dev", 400)  # inside the hook's window (600 s) and the agent's lead
        due = {"AWSENV_PROFILE": "dev", "AWSENV_EXPIRES": str(int(time.time()) + 300)}
        rc, out, err = awsenv("refresh", "--shell", "bash", env=due)
        if rc != 0 or "AWS_SESSION_TOKEN=" not in out:
            problems.append(f"refresh: rc {rc}: {err.strip()[:300]}")
    return problems
