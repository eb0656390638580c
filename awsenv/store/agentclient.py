"""The client of the session agent: what every command calls to read and write the
session cache it holds, to start it, ask it and stop it.

A cached switch must cost tens of milliseconds, and `import keyring` plus a Secret
Service round trip costs far more. So the first run that reads the `sessions` item from
the key store starts the agent (awsenv/agent/server.py), which keeps that document in
memory and answers over a Unix socket with mode 0600 in a 0700 directory
(`$XDG_RUNTIME_DIR/awsenv/agent.sock`). The key store stays the durable store: every
write goes to the store first and is then pushed there, under the sessions lock; so a
write starts from the agent's document rather than reading the store (Vault.update_sessions).

Protocol: one JSON request per connection, one JSON reply, {"ok": false} on refusal.
  {"op": "get", "store": name, "watch": {...}?}  -> {"ok": true, "doc": {...}}   (watch: renew this role)
  {"op": "put", "store": name, "doc": {...}}     -> {"ok": true}
  {"op": "unlock", "store": path, "key": b64}    -> {"ok": true}   (hold the file store's key)
  {"op": "key", "store": path}                   -> {"ok": true, "key": b64}
  {"op": "renew", "watch": {...}} -> {"ok": true, "doc": {...}}   (renew now, warm client)
  {"op": "issue", "watch": {...}, "token"?: str, "owner"?: pid, "until": epoch}
                                  -> {"ok": true, "port": int, "token": str, "pid": int}
  {"op": "revoke", "token"?: str, "profiles"?: [...]}  -> {"ok": true, "revoked": n}
  {"op": "status"}                -> {"ok": true, "status": {...}}  (never a secret)
  {"op": "stop"}                  -> {"ok": true}
"""
from __future__ import annotations

# The client side uses the C module directly: `socket.py` and `pathlib` cost the
# cached switch milliseconds it doesn't have.
import _socket
import json
import os
import sys

from ..host.runtime import data_dir, process_gone, runtime_dir

CONNECT_TIMEOUT = 0.5


MAX_MESSAGE = 1 << 20


def enabled() -> bool:
    # No AF_UNIX (Windows CPython): no agent; every run reads the keyring.
    return hasattr(_socket, "AF_UNIX") and os.environ.get("AWSENV_AGENT", "1") not in ("0", "off", "no", "false")


def store_name() -> str:
    """The store (AWSENV_BACKEND) a document comes from: an agent serves one. A file
    store is named with its folder: writes start from the agent's copy, so an agent must
    never hand one file store's sessions to a run that uses another."""
    name = os.environ.get("AWSENV_BACKEND") or "keyring"
    return f"file:{data_dir()}" if name == "file" else name


def socket_path() -> str | None:
    folder = runtime_dir()
    return os.path.join(folder, "agent.sock") if folder else None


# client -----------------------------------------------------------------------------
def _request(message: dict, path: str | None = None, timeout: float = CONNECT_TIMEOUT) -> dict | None:
    if path is None:
        path = socket_path()
    if path is None or not hasattr(_socket, "AF_UNIX"):
        return None
    try:
        sock = _socket.socket(getattr(_socket, "AF_UNIX"), _socket.SOCK_STREAM)
        try:
            sock.settimeout(timeout)
            # This sends sessions to whatever listens at `path` without asking who it is,
            # which is safe because runtime_dir() only hands out a leaf directory that we
            # own with mode 0700, so no other user can have bound a socket in it.
            sock.connect(str(path))
            sock.sendall(json.dumps(message).encode() + b"\n")
            sock.shutdown(_socket.SHUT_WR)
            reply = read_all(sock)
        finally:
            sock.close()
    except OSError:
        return None
    try:
        answer = json.loads(reply)
    except ValueError:
        return None
    return answer if isinstance(answer, dict) and answer.get("ok") else None


def read_all(sock) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > MAX_MESSAGE:
            raise OSError("message too large")
        chunks.append(chunk)


def fetch(watch: dict | None = None) -> dict | None:
    """The session document, or None when no agent answers (or AWSENV_AGENT=0).
    `watch` names a role the caller uses, for the agent to keep renewed."""
    if not enabled():
        return None
    message: dict = {"op": "get", "store": store_name()}
    if watch:
        message["watch"] = watch
    answer = _request(message)
    doc = answer.get("doc") if answer else None
    return doc if isinstance(doc, dict) else None


def push(doc: dict) -> bool:
    """Hand the agent the new document. This runs even with AWSENV_AGENT=0, so a running
    agent never keeps serving sessions that were dropped or replaced."""
    if _request({"op": "put", "store": store_name(), "doc": doc}) is not None:
        return True
    stop()  # an agent that can't take the update must not serve the old document
    return False


def stop(path=None) -> bool:
    """Tell the agent to exit, and return once it has (like `ssh-agent -k`), so that
    nothing of it is left when the caller goes on."""
    import time

    answer = _request({"op": "stop"}, path)
    if answer is None:
        return False
    pid = answer.get("pid")
    deadline = time.monotonic() + STOP_WAIT
    while isinstance(pid, int) and not process_gone(pid) and time.monotonic() < deadline:
        time.sleep(0.02)
    return True


STOP_WAIT = 3.0


def ask(message: dict, timeout: float | None = None) -> dict | None:
    """One request to the running agent; None when none answers (or it refused)."""
    if not enabled():
        return None
    return _request(message, timeout=CONNECT_TIMEOUT if timeout is None else timeout)


def wait_for(seconds: float = 5.0) -> bool:
    """Whether an agent answers within `seconds`, e.g. one spawn() just started."""
    import time

    deadline = time.monotonic() + seconds
    while True:
        if ask({"op": "status"}) is not None:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)


# Whether this process has started an agent already: a second one, racing the first for
# the socket while it starts, could win it without the first one's handoff (and so serve
# a file store it cannot open). A caller that finds no agent yet waits for that one.
_spawned = False


def spawn(handoff: dict | None = None) -> None:
    """Start an agent in the background, once per process; it loads the document from
    the store itself. `handoff` (the file store's key) reaches it on its stdin, never
    argv or environment."""
    global _spawned
    if _spawned or not enabled() or socket_path() is None:
        return
    import subprocess

    # The caller's AWS_* variables may hold a long-term key (`AWS_SECRET_ACCESS_KEY`
    # exported by hand), and AWSENV_FILE_PASSPHRASE the file store's passphrase: they
    # don't go into a process that lives for an hour. Nor does the caller's working
    # directory stay pinned.
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_") and k != "AWSENV_FILE_PASSPHRASE"}
    try:
        child = subprocess.Popen(
            [sys.executable, "-m", "awsenv.agent", *(["--handoff"] if handoff else [])],
            stdin=subprocess.PIPE if handoff else subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=hasattr(os, "setsid"), close_fds=True, env=env, cwd="/",  # setsid: POSIX only
        )
    except OSError:
        return
    _spawned = True
    if child.stdin is not None:
        try:
            child.stdin.write(json.dumps(handoff).encode())  # far below a pipe's buffer
            child.stdin.close()
        except OSError:
            pass
