"""The loopback credential endpoint that `use --server` and `exec --server` point SDKs
at, in the ECS container credentials format that every SDK reads
(AWS_CONTAINER_CREDENTIALS_FULL_URI + AWS_CONTAINER_AUTHORIZATION_TOKEN).

It runs inside the agent, binds 127.0.0.1 only, and answers one path to requests that
carry a live token (128+ random bits, compared in constant time) and the exact `Host`
it listens on, so a web page can't reach it through DNS rebinding. Each token serves
the one profile it was issued for. No CORS header, no log line, nothing on disk.

Any local process can connect, so a connection costs little until its request is
whole: one selector thread reads every request head, with READ_TIMEOUT seconds for
all of it; an idle or trickling client holds a file descriptor for that long and no
thread. At most MAX_PENDING connections wait (a new one pushes out the oldest, so a
flood can't lock out the SDK that connects now); a whole request gets a worker
thread, at most MAX_WORKERS at once (more are closed at once); one request per
connection.
"""
from __future__ import annotations

import hmac
import io
import json
import re
import secrets
import selectors
import socket
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler

from ..core.creds import Credentials, rfc3339
from ..host.runtime import process_gone

PATH = "/awsenv/credentials"
TOKEN_BYTES = 32  # 256 bits
READ_TIMEOUT = 5.0  # seconds for a connection to send its whole request head
MAX_PENDING = 256  # connections still sending; the oldest gives way to a new one
MAX_WORKERS = 16  # requests answered at once
MAX_HEAD = 16384  # bytes of request line and headers
HEAD_END = re.compile(rb"\r?\n\r?\n")


class Grant:
    def __init__(self, watch: dict, until: int, owner: int | None) -> None:
        self.watch = watch
        self.until = until  # the token dies with the session it rests on
        self.owner = owner  # exec --server: the token dies with that process

    @property
    def profile(self) -> str:
        return self.watch["profile"]

    def alive(self, now: float) -> bool:
        if now >= self.until:
            return False
        return self.owner is None or not process_gone(self.owner)


class Endpoint:
    def __init__(self, serve: Callable[[dict], Credentials]) -> None:
        self.serve = serve
        self.lock = threading.Lock()
        self.grants: dict[str, Grant] = {}
        self.served = 0
        self.refused = 0
        self.server = _Listener(self)
        self.port = self.server.port
        self.host = f"127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.serve, daemon=True)
        self.thread.start()

    def issue(self, watch: dict, until: int, owner: int | None, token: str | None = None) -> str:
        """A new token, or the same one extended when the caller still holds a live one
        for the same profile (a refresh)."""
        with self.lock:
            if token is not None:
                found = self._find(token)
                if found is not None and self.grants[found].profile == watch.get("profile"):
                    self.grants[found] = Grant(watch, until, owner)
                    return found
            token = secrets.token_urlsafe(TOKEN_BYTES)
            self.grants[token] = Grant(watch, until, owner)
            return token

    def revoke(self, token: str | None, profiles: list[str] | None, every: bool = False) -> int:
        with self.lock:
            if every:
                doomed = list(self.grants)
            elif token is not None:
                found = self._find(token)
                doomed = [found] if found is not None else []
            else:
                doomed = [t for t, g in self.grants.items() if profiles is not None and g.profile in profiles]
            for key in doomed:
                del self.grants[key]
            return len(doomed)

    def live(self) -> bool:
        now = time.time()
        with self.lock:
            for key in [t for t, g in self.grants.items() if not g.alive(now)]:
                del self.grants[key]
            return bool(self.grants)

    def lookup(self, presented: str) -> Grant | None:
        now = time.time()
        with self.lock:
            found = self._find(presented)
            grant = self.grants.get(found) if found is not None else None
        return grant if grant is not None and grant.alive(now) else None

    def _find(self, presented: str) -> str | None:
        """Constant time in the token's contents: every live token is compared in full."""
        match = None
        given = presented.encode()
        for token in self.grants:
            if hmac.compare_digest(token.encode(), given):
                match = token
        return match

    def report(self) -> dict:
        self.live()
        with self.lock:
            profiles: dict[str, int] = {}
            for grant in self.grants.values():
                profiles[grant.profile] = profiles.get(grant.profile, 0) + 1
        return {"address": self.host, "tokens": profiles, "served": self.served, "refused": self.refused}

    def close(self) -> None:
        with self.lock:
            self.grants.clear()
        self.server.stopping.set()
        self.thread.join(timeout=2)


class _Listener:
    """The listening socket and the connections whose request is not whole yet, read by
    one thread (see the module's docstring). Each pending connection has its deadline
    and what it sent so far; the dict keeps them oldest first."""

    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(128)
        self.sock.setblocking(False)
        self.port: int = self.sock.getsockname()[1]
        self.selector = selectors.DefaultSelector()
        self.selector.register(self.sock, selectors.EVENT_READ)
        self.pending: dict[socket.socket, tuple[float, bytearray]] = {}
        self.workers = threading.BoundedSemaphore(MAX_WORKERS)
        self.stopping = threading.Event()

    def serve(self) -> None:
        try:
            while not self.stopping.is_set():
                oldest = next(iter(self.pending.values()), None)
                wait = min(max(oldest[0] - time.monotonic(), 0.0), 0.5) if oldest else 0.5
                for key, _events in self.selector.select(wait):
                    if key.fileobj is self.sock:
                        self._accept()
                    else:
                        self._read(key.fileobj)  # type: ignore[arg-type]
                now = time.monotonic()
                for conn in [c for c, (deadline, _head) in self.pending.items() if deadline <= now]:
                    self._drop(conn)
        finally:
            for conn in list(self.pending):
                self._drop(conn)
            self.selector.close()
            self.sock.close()

    def _accept(self) -> None:
        while True:
            try:
                conn, _address = self.sock.accept()
            except BlockingIOError:
                return
            except OSError:  # out of file descriptors: make room, or wait for a worker
                if self.pending:
                    self._drop(next(iter(self.pending)))
                else:
                    time.sleep(0.05)
                return
            if len(self.pending) >= MAX_PENDING:
                self._drop(next(iter(self.pending)))
            conn.setblocking(False)
            self.pending[conn] = (time.monotonic() + READ_TIMEOUT, bytearray())
            self.selector.register(conn, selectors.EVENT_READ)

    def _read(self, conn: socket.socket) -> None:
        head = self.pending[conn][1]
        try:
            chunk = conn.recv(4096)
        except BlockingIOError:
            return
        except OSError:
            chunk = b""
        head += chunk
        end = HEAD_END.search(head)
        if not chunk or (end is None and len(head) > MAX_HEAD):
            return self._drop(conn)
        if end is None:
            return
        self.selector.unregister(conn)
        del self.pending[conn]
        if not self.workers.acquire(blocking=False):
            conn.close()
            return
        threading.Thread(target=self._answer, args=(conn, bytes(head[:end.end()])), daemon=True).start()

    def _drop(self, conn: socket.socket) -> None:
        self.selector.unregister(conn)
        del self.pending[conn]
        conn.close()

    def _answer(self, conn: socket.socket, head: bytes) -> None:
        try:
            conn.setblocking(True)
            conn.settimeout(READ_TIMEOUT)
            _Handler((conn, head), ("127.0.0.1", 0), self)  # type: ignore[arg-type]
        except OSError:
            pass
        finally:
            conn.close()
            self.workers.release()


class _Handler(BaseHTTPRequestHandler):
    """One request, whose head the listener has read already."""

    server: _Listener  # type: ignore[assignment]
    protocol_version = "HTTP/1.1"
    server_version = "awsenv"
    sys_version = ""

    def setup(self) -> None:
        self.connection, head = self.request
        self.rfile = io.BytesIO(head)
        self.wfile = self.connection.makefile("wb")

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - nothing is logged
        pass

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        endpoint = self.server.endpoint
        if self.headers.get("Host") != endpoint.host:
            return self._refuse(endpoint, 403, "wrong Host")
        token = self.headers.get("Authorization") or ""
        grant = endpoint.lookup(token) if token else None
        if grant is None:
            return self._refuse(endpoint, 401 if not token else 403, "no valid token")
        if self.path.split("?", 1)[0] != PATH:
            return self._refuse(endpoint, 404, "not found")
        try:
            creds = endpoint.serve(grant.watch)
        except Exception as err:  # noqa: BLE001 - the SDK gets one line, never a secret
            return self._send(503, {"Code": "Unavailable", "Message": f"awsenv: {err}"})
        endpoint.served += 1
        self._send(200, {
            "AccessKeyId": creds.access_key_id,
            "SecretAccessKey": creds.secret_access_key,
            "Token": creds.session_token,
            "Expiration": rfc3339(creds.expiration) if creds.expiration else None,
        })

    def _refuse(self, endpoint: Endpoint, status: int, message: str) -> None:
        endpoint.refused += 1
        self._send(status, {"Code": "Refused", "Message": f"awsenv: {message}"})

    def _send(self, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(data)
