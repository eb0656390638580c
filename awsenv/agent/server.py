"""The session agent's process, in the spirit of ssh-agent: its socket, its lifetime,
its peers, and the requests it answers.

It keeps the session document in memory and answers over a Unix socket with mode
0600 in a 0700 directory. The agent checks the peer's uid and writes nothing to disk.

It serves the one store (AWSENV_BACKEND) of the run that started it, and refuses a
caller that names another (whose push then stops it: the last store used wins). For the
file store it holds the derived key
(never the passphrase), as ssh-agent holds keys: the run that started it hands the key
over on its stdin, a later run that unlocked the file hands it over with `unlock`, and
runs ask for it with `key` before asking for the passphrase. Until it could load the
document (a locked store) it refuses `get`, so no caller takes "no sessions" for true.

It is also the broker (broker.py renews the role sessions that shells use, from cached
MFA or parent sessions) and serves the loopback credential endpoint (endpoint.py) that
`use --server` and `exec --server` point SDKs at. It never holds a long-term key or a
TOTP secret and never prompts.

It exits after `AWSENV_AGENT_IDLE` seconds without a request (default 3600) unless
endpoint tokens are live, when its socket is removed or replaced, on SIGTERM, SIGHUP or
SIGINT, or when told to stop; it removes its socket on the way out. Those three signals
are blocked, not caught: they stay pending, where a server-mode shell's prompt hook
sees them in /proc/PID/status, until the agent has closed its endpoint and removed its
socket. It looks for them before each request (so the refresh that repairs the
endpoint never talks to an agent on its way out) and at least once a second.
`AWSENV_AGENT=0` turns it off.

The protocol is in awsenv/store/agentclient.py, the client every command calls.
"""
from __future__ import annotations

import _socket
import json
import os
import sys

from ..core.cachekeys import key_has_mfa, key_parts
from ..core.errors import AwsenvError
from ..core.settings import AGENT_IDLE, float_setting
from ..store import filestore
from ..store.agentclient import CONNECT_TIMEOUT, MAX_MESSAGE, read_all, socket_path, store_name
from ..store.vault import Vault
from .broker import Broker


def _peer_is_us(conn) -> bool:
    """Whether the peer runs as our uid. Linux: SO_PEERCRED's struct ucred (pid, uid,
    gid; OpenBSD's sockpeercred puts the uid first). macOS and FreeBSD: LOCAL_PEERCRED
    at level 0 (SOL_LOCAL), a struct xucred that starts with its version (0) and the
    uid, what getpeereid(3) reads. Where Python exposes neither (NetBSD, others), the
    private directory's owner and 0700 mode are the only guard (README, Security)."""
    import socket
    import struct

    try:
        if sys.platform == "win32":
            return True  # no AF_UNIX agent there: see enabled()
        if hasattr(socket, "SO_PEERCRED"):
            fields = struct.unpack("3i", conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i")))
            uid = fields[0] if sys.platform.startswith("openbsd") else fields[1]
        elif hasattr(socket, "LOCAL_PEERCRED"):
            version, uid = struct.unpack_from("=2I", conn.getsockopt(0, socket.LOCAL_PEERCRED, 128))
            if version != 0:
                return False
        else:
            return True
    except (OSError, struct.error):
        return False
    return uid == os.getuid()


class Agent:
    """The in-memory document and the parts that share it. One lock guards the document;
    the broker and the endpoint run in their own threads."""

    def __init__(self, idle: float) -> None:
        import threading
        import time

        self.lock = threading.Lock()
        self.doc: dict = {}
        self.store = store_name()
        self.loaded = False  # the document was read from the store, or pushed
        self._vault: Vault | None = None  # for describe_store
        self.idle = idle
        self.started = time.time()
        self.last = time.monotonic()
        self.done = threading.Event()
        self.path = ""  # the socket, once bound
        self.identity = 0  # its inode: a socket at that path that isn't ours stays
        self.blocked: set = set()  # the blocked signals that tell it to go
        self.broker = Broker(self)
        self._endpoint = None

    # the document, for the broker and the endpoint
    def snapshot(self) -> dict:
        with self.lock:
            return dict(self.doc)

    def held(self) -> dict | None:
        """The document, once loaded: what a renewal writes over, without reading the store."""
        with self.lock:
            return dict(self.doc) if self.loaded else None

    def replace(self, doc: dict) -> None:
        with self.lock:
            self.doc = doc
            self.loaded = True
        self.broker.changed()

    def load(self) -> None:
        """Read the document from the store, unless a push came first."""
        with self.lock:
            if self.loaded:
                return
            doc = _load()
            if doc is not None:
                self.doc, self.loaded = doc, True

    @property
    def endpoint(self):
        if self._endpoint is None:
            from .endpoint import Endpoint  # its threads start only with server mode

            self._endpoint = Endpoint(self.broker.serve)
        return self._endpoint

    def tokens_live(self) -> bool:
        return self._endpoint is not None and self._endpoint.live()

    # requests
    def handle(self, message: dict) -> dict:
        op = message.get("op")
        watch = message.get("watch") if isinstance(message.get("watch"), dict) else None
        if op in ("get", "put") and message.get("store", "keyring") != self.store:
            # Another store's caller reads its own store; its push (refused) stops us,
            # and its next run starts an agent for that store.
            return {"ok": False}
        if op == "get":
            if not self.loaded:
                return {"ok": False}
            if watch:
                self.broker.watch(watch)
            return {"ok": True, "doc": self.snapshot()}
        if op == "put" and isinstance(message.get("doc"), dict):
            self.replace(message["doc"])
            return {"ok": True}
        if op == "unlock":
            return self.unlock(message)
        if op == "key":
            return self.key(message)
        if op == "renew" and watch:
            need = message.get("need")
            need = need if isinstance(need, (int, float)) else 300
            return {"ok": self.broker.renew_now(watch, need), "doc": self.snapshot()}
        if op == "issue" and watch:
            return self._issue(message, watch)
        if op == "revoke":
            profiles = message.get("profiles")
            if self._endpoint is None:
                return {"ok": True, "revoked": 0}
            count = self._endpoint.revoke(
                message.get("token") if isinstance(message.get("token"), str) else None,
                [p for p in profiles if isinstance(p, str)] if isinstance(profiles, list) else None,
                every=message.get("all") is True,
            )
            return {"ok": True, "revoked": count}
        if op == "status":
            return {"ok": True, "status": self.status()}
        return {"ok": False}

    def unlock(self, message: dict) -> dict:
        """A run unlocked the file store: hold its key for our lifetime (and read the
        document, if the store was locked until now)."""
        import base64

        path, key = message.get("store"), message.get("key")
        if not self.store.startswith("file:") or not isinstance(path, str) or not isinstance(key, str):
            return {"ok": False}
        try:
            filestore.hold(path, base64.b64decode(key, validate=True))
        except ValueError:
            return {"ok": False}
        self.load()
        return {"ok": True}

    def key(self, message: dict) -> dict:
        import base64

        path = message.get("store")
        key = filestore.held(path) if self.store.startswith("file:") and isinstance(path, str) else None
        return {"ok": True, "key": base64.b64encode(key).decode()} if key else {"ok": False}

    def describe_store(self) -> str:
        if self._vault is None:
            self._vault = Vault()  # opened once: `wait_for` asks for the status many times
        try:
            return self._vault.describe()
        except AwsenvError as err:
            return f"{self.store} ({err})"

    def _issue(self, message: dict, watch: dict) -> dict:
        until = message.get("until")
        owner = message.get("owner")
        if not isinstance(until, (int, float)) or not isinstance(watch.get("profile"), str):
            return {"ok": False}
        self.broker.watch(watch, served_until=until)
        token = self.endpoint.issue(
            watch, int(until), owner if isinstance(owner, int) else None,
            message.get("token") if isinstance(message.get("token"), str) else None,
        )
        return {"ok": True, "port": self.endpoint.port, "token": token, "pid": os.getpid()}

    def status(self) -> dict:
        sessions = []
        for key, entry in sorted(self.snapshot().items()):
            kind, profile = key_parts(key) or ("", "")
            if isinstance(entry, dict) and kind in ("session", "role", "sso", "login"):
                item = {"profile": profile, "kind": kind, "expires": entry.get("Expiration")}
                if kind == "session":
                    item["mfa"] = key_has_mfa(key)
                sessions.append(item)
        return {
            "pid": os.getpid(),
            "started": int(self.started),
            "idle_exit": self.idle,
            "store": self.describe_store(),
            "loaded": self.loaded,
            "sessions": sessions,
            "watched": self.broker.report(),
            "endpoint": self._endpoint.report() if self._endpoint is not None else None,
            "botocore_loaded": "botocore" in sys.modules,
        }

    def stop(self) -> None:
        if self._endpoint is not None:
            self._endpoint.close()
        self.broker.close()
        self.done.set()

    def told_to_go(self) -> bool:
        import signal

        if sys.platform == "win32" or not self.blocked:  # no AF_UNIX agent there: see enabled()
            return False
        return bool(self.blocked & signal.sigpending())

    def leave(self) -> None:
        """A signal told us to go: the socket and the endpoint first, so that the
        next caller starts a new agent instead of waiting on this one."""
        _unlink_ours(self.path, self.identity)
        self.stop()


def _bind(path: str):
    """Bind and listen at once. A socket file that refuses connections is left by a
    killed agent: it is replaced at once, so a stale socket costs nothing."""
    import socket

    if sys.platform == "win32":  # no AF_UNIX there: see enabled()
        return None

    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old_umask = os.umask(0o177)
    try:
        try:
            listener.bind(path)
        except OSError:
            if _answers(path):
                listener.close()
                return None  # another agent is there
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass
            listener.bind(path)
        listener.listen(16)
        return listener
    finally:
        os.umask(old_umask)


def serve(idle: float, handoff: dict | None = None) -> None:
    import signal
    import threading
    import time

    path = socket_path()
    if path is None or sys.platform == "win32":  # no AF_UNIX there: see enabled()
        return
    # Bind (and listen) before loading: a push that arrives while we read the keyring
    # waits in the backlog and wins; a push that came before we bound was already
    # written to the keyring, so the load sees it.
    listener = _bind(path)
    if listener is None:
        return
    identity = os.stat(path).st_ino
    blocked = {getattr(signal, name) for name in ("SIGTERM", "SIGHUP", "SIGINT") if hasattr(signal, name)}
    if hasattr(signal, "pthread_sigmask") and hasattr(signal, "sigpending"):
        # Before any thread starts: each one inherits the mask, so none takes them.
        signal.pthread_sigmask(signal.SIG_BLOCK, blocked)
    else:
        def terminate(_signum, _frame):
            raise SystemExit(0)

        for number in blocked:
            signal.signal(number, terminate)
        blocked = set()
    listener.settimeout(1.0)
    state = Agent(idle)
    state.path, state.identity, state.blocked = path, identity, blocked
    try:
        if state.store.startswith("file:"):
            filestore.ask_agent = False  # we are the agent
            if handoff:
                state.unlock(handoff)
        state.load()
        state.last = time.monotonic()  # idle time counts from when it can answer
        state.broker.start()
        while not state.done.is_set():
            if state.told_to_go():
                return
            if time.monotonic() - state.last >= idle and not state.tokens_live():
                return
            try:
                if os.stat(path).st_ino != identity:
                    return
            except FileNotFoundError:
                return
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            threading.Thread(target=_answer, args=(state, conn), daemon=True).start()
    finally:
        _unlink_ours(path, identity)
        state.stop()
        listener.close()


def _unlink_ours(path: str, identity: int) -> None:
    try:
        if os.stat(path).st_ino == identity:
            os.unlink(path)
    except OSError:
        pass


def _answer(state: Agent, conn) -> None:
    import time

    with conn:
        if state.told_to_go():
            state.leave()
            return  # no answer: the caller goes on as with no agent, and starts one
        conn.settimeout(2.0)
        try:
            if not _peer_is_us(conn):
                return
            message = json.loads(read_all(conn))
        except (OSError, ValueError):
            return
        if not isinstance(message, dict):
            return
        state.last = time.monotonic()
        if message.get("op") == "stop":
            _send(conn, {"ok": True, "pid": os.getpid()})
            state.stop()
            # A connection to our own socket makes the main loop's accept return and see
            # `done` now rather than at its next timeout: `agent stop` waits for the exit.
            _answers(state.path)
            return
        try:
            reply = state.handle(message)
        except Exception:  # noqa: BLE001 - one bad request must not take the agent down
            reply = {"ok": False}
        _send(conn, reply)


def _answers(path: str) -> bool:
    """Whether an agent listens there. A refused connection means a dead agent's file;
    a few quick tries cover one that bound this instant and is about to listen."""
    import time

    if sys.platform == "win32":  # no AF_UNIX there: see enabled()
        return False

    for _ in range(3):
        try:
            probe = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
            try:
                probe.settimeout(CONNECT_TIMEOUT)
                probe.connect(path)
                return True
            finally:
                probe.close()
        except (ConnectionRefusedError, FileNotFoundError):
            time.sleep(0.02)
        except OSError:
            return True  # a live but busy agent: leave it be
    return False


def _send(conn, reply: dict) -> None:
    try:
        conn.sendall(json.dumps(reply).encode())
    except OSError:
        pass


def _load() -> dict | None:
    """The document in the store; None when the store can't be read (locked, gone)."""
    try:
        return Vault().load_sessions()
    except AwsenvError:
        return None


def _handoff() -> dict | None:
    """What the run that started us handed over on stdin (spawn), if it says so."""
    if sys.argv[1:] != ["--handoff"] or sys.stdin is None:
        return None
    try:
        data = json.loads(sys.stdin.buffer.read(MAX_MESSAGE) or b"null")
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def main() -> None:
    serve(float_setting("AWSENV_AGENT_IDLE", AGENT_IDLE), _handoff())

