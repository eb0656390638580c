"""Handing a browser a URL that carries a secret, without putting the secret on a
command line: a one-shot redirect on 127.0.0.1.

`webbrowser.open(url)` puts the URL in the argv of the launcher and often of the
browser itself, where any local user reads it with `ps` for as long as that process
lives. So the browser gets `http://127.0.0.1:PORT/<256 random bits>` instead. The
first request for that path from a process of our uid is answered with a redirect to
the real URL, and the listener closes. The random path keeps out web pages and port
scanners; the uid check keeps out the local user who read the path in `ps` (Linux:
/proc/net/tcp names the owner of every TCP socket). Where there is no /proc (macOS,
the BSDs) the one-shot path is the only guard: a stranger who wins that race gets the
URL, and the owner's browser an error page rather than the console.

A file in the private runtime directory would do without a listener, but a confined
browser (the snap and flatpak builds) can't read it; every browser can reach loopback.
"""
from __future__ import annotations

import hmac
import os
import secrets
import socket
import struct
import sys
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

WAIT = 120.0  # seconds for the browser to start and fetch the page
PATH_BYTES = 32

FETCHED = "fetched"
NO_BROWSER = "no browser"
NOT_FETCHED = "not fetched"


def hand_over(url: str, open_browser: Callable[[str], bool], wait: float = WAIT) -> str:
    """Have the browser open `url` through a one-shot loopback redirect. FETCHED once
    it followed it; NO_BROWSER when none started; NOT_FETCHED when none came in time."""
    server = _OneShot(url)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True).start()
    try:
        if not open_browser(server.address):
            return NO_BROWSER
        return FETCHED if server.done.wait(wait) else NOT_FETCHED
    finally:
        server.shutdown()
        server.server_close()


class _OneShot(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, target: str) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.target = target
        self.secret_path = "/" + secrets.token_urlsafe(PATH_BYTES)
        self.address = f"http://127.0.0.1:{self.server_address[1]}{self.secret_path}"
        self.lock = threading.Lock()
        self.done = threading.Event()  # set once the redirect went out

    def claim(self) -> str | None:
        """The target, to the first caller only."""
        with self.lock:
            target, self.target = self.target, ""
        return target or None


class QuietHandler(BaseHTTPRequestHandler):
    """A loopback page for a browser: it logs nothing, drops a connection that sends
    nothing, and closes each one after its answer."""

    timeout = 5  # a connection that sends nothing (a browser's preconnect) ends

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - nothing is logged
        pass

    def _close_headers(self, length: int = 0) -> None:
        self.send_header("Content-Length", str(length))
        self.send_header("Connection", "close")
        self.end_headers()


class _Handler(QuietHandler):
    server: _OneShot

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        server = self.server
        if not hmac.compare_digest(self.path.encode("latin-1"), server.secret_path.encode("latin-1")):
            return self._close(404)
        if not same_user(self.client_address, server.server_address):
            return self._close(403)
        target = server.claim()
        if target is None:
            return self._close(410)
        self.send_response(302)
        self.send_header("Location", target)
        self.send_header("Cache-Control", "no-store")
        self.send_header("Referrer-Policy", "no-referrer")
        self._close_headers()
        server.done.set()

    def _close(self, status: int) -> None:
        self.send_response(status)
        self._close_headers()


def same_user(client: tuple, server: tuple) -> bool:
    """Whether the socket that connected from `client` to `server` is our uid's. Its
    row in /proc/net/tcp has the client's address as local and ours as remote."""
    table = "/proc/net/tcp"
    getuid = getattr(os, "getuid", None)  # feature detection, as runtime.py: Windows has no uids
    if sys.platform == "win32" or getuid is None:
        return True  # no uids, no /proc: the one-shot path is the guard
    if not os.path.exists(table):
        return True  # no /proc: the one-shot path is the guard (see the docstring)
    wanted = ((client[0], client[1]), (server[0], server[1]))
    try:
        with open(table, encoding="ascii") as stream:
            rows = stream.read().splitlines()[1:]
        for row in rows:
            fields = row.split()
            if (_address(fields[1]), _address(fields[2])) == wanted:
                return int(fields[7]) == getuid()
    except (OSError, ValueError, IndexError, struct.error):
        pass
    return False


def _address(text: str) -> tuple[str, int]:
    """`0100007F:A1B2` -> ('127.0.0.1', 41394). The address is the kernel's 32-bit word
    in host byte order."""
    host, port = text.split(":")
    return socket.inet_ntoa(struct.pack("=I", int(host, 16))), int(port, 16)
