"""The loopback credential endpoint that `use --server` and `exec --server` point SDKs
at, in the ECS container credentials format that every SDK reads
(AWS_CONTAINER_CREDENTIALS_FULL_URI + AWS_CONTAINER_AUTHORIZATION_TOKEN).

It runs inside the agent, binds 127.0.0.1 only, and answers one path to requests that
carry a live token (128+ random bits, compared in constant time) and the exact `Host`
it listens on, so a web page can't reach it through DNS rebinding. Each token serves
the one profile it was issued for. No CORS header, no log line, nothing on disk.
"""
from __future__ import annotations

import hmac
import json
import secrets
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from .creds import Credentials, rfc3339
from .runtime import process_gone

PATH = "/awsenv/credentials"
TOKEN_BYTES = 32  # 256 bits


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
        self.server = _Server(("127.0.0.1", 0), _Handler)
        self.server.endpoint = self
        self.port = self.server.server_address[1]
        self.host = f"127.0.0.1:{self.port}"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.5}, daemon=True).start()

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
        self.server.shutdown()
        self.server.server_close()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    endpoint: Endpoint


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"
    server_version = "awsenv"
    sys_version = ""

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
        self.end_headers()
        self.wfile.write(data)
