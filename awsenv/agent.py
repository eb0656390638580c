"""A short-lived, in-memory copy of the session cache, in the spirit of ssh-agent.

A cached switch must cost tens of milliseconds, and `import keyring` plus a Secret
Service round trip costs far more. So the first run that reads the `sessions` item from
the keyring starts this agent, which keeps that document in memory and answers over a
Unix socket with mode 0600 in a 0700 directory (`$XDG_RUNTIME_DIR/awsenv/agent.sock`).
The keyring stays the durable store: every write goes to the keyring first and is then
pushed here. The agent checks the peer's uid, writes nothing to disk, and exits after
`AWSENV_AGENT_IDLE` seconds without a request (default 3600), when its socket is
removed, or when told to stop. `AWSENV_AGENT=0` turns it off.

Protocol: one JSON request per connection, one JSON reply.
  {"op": "get"}               -> {"ok": true, "doc": {...}}
  {"op": "put", "doc": {...}} -> {"ok": true}
  {"op": "stop"}              -> {"ok": true}
"""
from __future__ import annotations

import json
import os
import sys

# The client side uses the C module directly: `socket.py` and `pathlib` cost the
# cached switch milliseconds it doesn't have.
import _socket

from .runtime import runtime_dir

CONNECT_TIMEOUT = 0.5
MAX_MESSAGE = 1 << 20


def enabled() -> bool:
    # No AF_UNIX (Windows CPython): no agent; every run reads the keyring.
    return hasattr(_socket, "AF_UNIX") and os.environ.get("AWSENV_AGENT", "1") not in ("0", "off", "no", "false")


def socket_path() -> str | None:
    folder = runtime_dir()
    return os.path.join(folder, "agent.sock") if folder else None


# client -----------------------------------------------------------------------------
def _request(message: dict, path: str | None = None) -> dict | None:
    if path is None:
        path = socket_path()
    if path is None or not hasattr(_socket, "AF_UNIX"):
        return None
    try:
        sock = _socket.socket(getattr(_socket, "AF_UNIX"), _socket.SOCK_STREAM)
        try:
            sock.settimeout(CONNECT_TIMEOUT)
            sock.connect(str(path))
            sock.sendall(json.dumps(message).encode() + b"\n")
            sock.shutdown(_socket.SHUT_WR)
            reply = _read_all(sock)
        finally:
            sock.close()
    except OSError:
        return None
    try:
        answer = json.loads(reply)
    except ValueError:
        return None
    return answer if isinstance(answer, dict) and answer.get("ok") else None


def _read_all(sock) -> bytes:
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


def fetch() -> dict | None:
    """The session document, or None when no agent answers (or AWSENV_AGENT=0)."""
    if not enabled():
        return None
    answer = _request({"op": "get"})
    doc = answer.get("doc") if answer else None
    return doc if isinstance(doc, dict) else None


def push(doc: dict) -> bool:
    """Hand the agent the new document. This runs even with AWSENV_AGENT=0, so a running
    agent never keeps serving sessions that were dropped or replaced."""
    if _request({"op": "put", "doc": doc}) is not None:
        return True
    stop()  # an agent that can't take the update must not serve the old document
    return False


def stop(path=None) -> bool:
    return _request({"op": "stop"}, path) is not None


def spawn() -> None:
    """Start an agent in the background; it loads the document from the keyring itself."""
    if not enabled() or socket_path() is None:
        return
    import subprocess

    # The caller's AWS_* variables may hold a long-term key (`AWS_SECRET_ACCESS_KEY`
    # exported by hand): they don't go into a process that lives for an hour. Nor does
    # the caller's working directory stay pinned.
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    try:
        subprocess.Popen(
            [sys.executable, "-m", "awsenv.agent"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=hasattr(os, "setsid"), close_fds=True, env=env, cwd="/",  # setsid: POSIX only
        )
    except OSError:
        pass


# server -----------------------------------------------------------------------------
def _peer_is_us(conn) -> bool:
    import socket
    import struct

    if sys.platform == "win32" or not hasattr(socket, "SO_PEERCRED"):
        return True  # the 0700 directory is the guard where the OS has no SO_PEERCRED
    creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    _pid, uid, _gid = struct.unpack("3i", creds)
    return uid == os.getuid()


def serve(idle: float) -> None:
    import socket
    import time

    path = socket_path()
    if path is None or sys.platform == "win32":  # no AF_UNIX there: see enabled()
        return
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old_umask = os.umask(0o177)
    try:
        # Bind (and listen at once) before loading: a push that arrives while we read
        # the keyring waits in the backlog and wins; a push that came before we bound
        # was already written to the keyring, so the load sees it.
        try:
            listener.bind(path)
        except OSError:
            if _answers(path):
                return  # another agent is there
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass
            listener.bind(path)
        listener.listen(16)
        identity = os.stat(path).st_ino
    finally:
        os.umask(old_umask)
    listener.settimeout(1.0)
    doc = _load()
    last = time.monotonic()
    try:
        while time.monotonic() - last < idle:
            try:
                if os.stat(path).st_ino != identity:
                    return
            except FileNotFoundError:
                return
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            with conn:
                conn.settimeout(2.0)
                try:
                    if not _peer_is_us(conn):
                        continue
                    message = json.loads(_read_all(conn))
                except (OSError, ValueError):
                    continue
                last = time.monotonic()
                op = message.get("op") if isinstance(message, dict) else None
                if op == "get":
                    reply = {"ok": True, "doc": doc}
                elif op == "put" and isinstance(message.get("doc"), dict):
                    doc = message["doc"]
                    reply = {"ok": True}
                elif op == "stop":
                    _send(conn, {"ok": True})
                    return
                else:
                    reply = {"ok": False}
                _send(conn, reply)
    finally:
        listener.close()
        try:
            if os.stat(path).st_ino == identity:
                os.unlink(path)
        except OSError:
            pass


def _answers(path: str) -> bool:
    """Whether an agent listens there; a few tries, as one may be starting right now."""
    import time

    for _ in range(5):
        if _request({"op": "get"}, path) is not None:
            return True
        time.sleep(0.1)
    return False


def _send(conn, reply: dict) -> None:
    try:
        conn.sendall(json.dumps(reply).encode())
    except OSError:
        pass


def _load() -> dict:
    from .errors import AwsenvError
    from .vault import Vault

    try:
        return Vault().load_sessions()
    except AwsenvError:
        return {}


def main() -> None:
    try:
        idle = float(os.environ.get("AWSENV_AGENT_IDLE", "3600"))
    except ValueError:
        idle = 3600.0
    serve(idle)


if __name__ == "__main__":
    main()
