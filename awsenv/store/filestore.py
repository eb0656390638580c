"""The file key store: every awsenv item sealed in one file, for machines with no keyring.

`AWSENV_BACKEND=file`. The file is `$XDG_DATA_HOME/awsenv/store` (by default
`~/.local/share/awsenv/store`), mode 0600 in a 0700 directory, and has two lines:

    {"format": "awsenv-store", "version": 1, "kdf": "scrypt", "n": 32768, "r": 8, "p": 1,
     "salt": B64, "cipher": "AES-256-GCM", "nonce": B64, "check": B64}
    B64 of the sealed JSON document {item: value, ...}

- The key is scrypt(passphrase, salt, n, r, p), 32 bytes. The salt is drawn once, when
  the file is made (so a key the agent holds stays good across writes), and the cost is
  read back from the header (so it can be raised later without a new format).
- The whole document is sealed at every write, under a new random 96-bit nonce, with the
  header line as associated data: no item name (a profile name) shows, and a changed
  header fails to open just as a changed item does. Sealing item by item would only
  spare re-sealing a few kilobytes per write.
- `check` is an HMAC-SHA256 under the key of a fixed label. It tells a wrong passphrase
  from a damaged file; a guess costs an attacker one scrypt either way. (A damaged salt
  or cost gives another key, and so reads as a wrong passphrase.)
- A write goes to a temporary file in the same directory (0600), is fsync'd and then
  replaces the store, all under `store.lock`: a reader sees the old file or the new one,
  and two shells writing at once lose nothing.
- The `sessions` item (the cache of STS sessions, written at every new session) is
  sealed the same way under the same key, in `sessions` beside the store:

      {"format": "awsenv-sessions", "version": 1, "cipher": "AES-256-GCM", "nonce": B64, "check": B64}
      B64 of the sealed item

  so that writing it takes nothing but the key: the agent, which holds the key and the
  document, renews roles without reading the store, and a day of use reads it once
  (the long-term key, for the MFA session). A sessions file sealed under another key
  (the store was made anew) is dropped: it only costs new sessions.

The passphrase comes from `AWSENV_FILE_PASSPHRASE` or the terminal (asked twice when
the file is made). Only the derived key leaves this module: to the session agent, which
holds it for its lifetime, as ssh-agent holds keys, so that a day of use asks once. The
passphrase is never written, logged, nor put in a message.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets

from ..core.errors import Cancelled, KeyringError
from ..host.runtime import data_dir

FORMAT, VERSION = "awsenv-store", 1
SESSIONS, SESSIONS_FORMAT = "sessions", "awsenv-sessions"
COST = {"n": 1 << 15, "r": 8, "p": 1}  # 32 MiB and about 0.1 s; the agent spares repeats
BOUNDS = {"n": (1 << 10, 1 << 20), "r": (1, 32), "p": (1, 16)}  # a hostile header can't ask for gigabytes
KEY_BYTES, NONCE_BYTES, SALT_BYTES = 32, 12, 16
CHECK_LABEL = b"awsenv-store key check"
PASSPHRASE_VARIABLE = "AWSENV_FILE_PASSPHRASE"

# Keys held by this process, by store path: the agent's, handed over by clients.
_held: dict[str, bytes] = {}
# The agent itself must not ask the agent (itself) for a key.
ask_agent = True


def default_path() -> str:
    return os.path.join(data_dir(), "store")


def hold(path: str, key: bytes) -> None:
    _held[path] = key


def held(path: str) -> bytes | None:
    return _held.get(path)


class FileStore:
    """Items in the sealed file: get, set and delete, as the keyring's backends offer."""

    name = "file"

    def __init__(self, path: str | None = None) -> None:
        self.path = path or default_path()
        self.sessions_path = os.path.join(os.path.dirname(self.path), SESSIONS)
        self._key: bytes | None = None
        self._kdf: dict = {}  # the salt and cost _key was derived with
        self.derived = False  # from a passphrase in this process: worth handing to the agent

    def describe(self) -> str:
        if not os.path.exists(self.path):
            return f"file {self.path} (not made yet)"
        return f"file {self.path} ({'unlocked' if self._key is not None or self.path in _held else 'locked'})"

    def handoff(self) -> dict | None:
        """What a newly started agent needs to hold the store unlocked."""
        if not self.derived or self._key is None:
            return None
        return {"store": self.path, "key": _b64(self._key)}

    # the interface -------------------------------------------------------------------
    def open(self, create: bool = False) -> None:
        """Unlock now (`create`: or make the file), before anyone types a secret to store."""
        if create and not os.path.exists(self.path):
            with self._locked():
                self._write(self._read())
        else:
            self._read()

    def get(self, item: str) -> str | None:
        if item == SESSIONS:
            return self._read_sessions()
        return self._read().get(item)

    def set(self, item: str, value: str) -> None:
        if item == SESSIONS:
            self._write_sessions(value)
            return
        with self._locked():
            doc = self._read()
            doc[item] = value
            self._write(doc)

    def delete(self, item: str) -> bool:
        if item == SESSIONS:
            with self._locked():
                try:
                    os.unlink(self.sessions_path)
                except FileNotFoundError:
                    return False
            return True
        if not os.path.exists(self.path):
            return False
        with self._locked():
            doc = self._read()
            if item not in doc:
                return False
            del doc[item]
            self._write(doc)
        return True

    # reading ---------------------------------------------------------------------------
    def _read(self) -> dict[str, str]:
        """The document; {} when there is no file yet (nothing to unlock)."""
        try:
            with open(self.path, "rb") as stream:
                raw = stream.read()
        except FileNotFoundError:
            return {}
        except OSError as err:
            raise KeyringError(f"cannot read the file store {self.path}: {err.strerror}") from None
        header_line, sealed = self._split(raw)
        header = self._header(header_line)
        key = self._unlock(header)
        return self._open(header_line, header, key, sealed)

    def _split(self, raw: bytes, path: str | None = None) -> tuple[bytes, bytes]:
        lines = raw.split(b"\n")
        if len(lines) != 3 or lines[2] != b"" or not lines[1]:
            raise self._damaged("not two lines" if raw else "empty", path)
        try:
            return lines[0], base64.b64decode(lines[1], validate=True)
        except ValueError:
            raise self._damaged("the sealed part is not base64", path) from None

    def _header(self, line: bytes) -> dict:
        try:
            header = json.loads(line)
        except ValueError:
            raise self._damaged("the header is not JSON") from None
        if not isinstance(header, dict) or header.get("format") != FORMAT:
            raise self._damaged("not an awsenv store")
        if header.get("version") != VERSION or header.get("kdf") != "scrypt" or header.get("cipher") != "AES-256-GCM":
            raise KeyringError(f"the file store {self.path} has a format this version of awsenv does not read "
                               f"({_brief(header)}); upgrade awsenv")
        for name, (low, high) in BOUNDS.items():
            value = header.get(name)
            if not isinstance(value, int) or not low <= value <= high or (name == "n" and value & (value - 1)):
                raise self._damaged(f"the scrypt parameter {name} is out of bounds")
        try:
            parts = {name: base64.b64decode(header[name], validate=True) for name in ("salt", "nonce", "check")}
        except (KeyError, TypeError, ValueError):
            raise self._damaged("the header lacks its salt, nonce or check") from None
        if len(parts["salt"]) < SALT_BYTES or len(parts["nonce"]) != NONCE_BYTES or len(parts["check"]) != 32:
            raise self._damaged("the header's salt, nonce or check has the wrong length")
        return {**header, **parts}

    def _open(self, line: bytes, header: dict, key: bytes, sealed: bytes) -> dict[str, str]:
        from cryptography.exceptions import InvalidTag
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        try:
            plain = AESGCM(key).decrypt(header["nonce"], sealed, line)
        except InvalidTag:
            raise self._damaged("its contents do not match their seal") from None
        try:
            doc = json.loads(plain)
        except ValueError:
            doc = None
        if not isinstance(doc, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in doc.items()):
            raise self._damaged("the sealed document is not a set of items")
        return doc

    def _damaged(self, why: str, path: str | None = None) -> KeyringError:
        if path is not None:  # the sessions file: a cache
            return KeyringError(f"the file store's sessions {path} are damaged ({why}); "
                                "remove that file (awsenv clear cannot read it) and sign in again")
        return KeyringError(f"the file store {self.path} is damaged ({why}); restore it from a backup, "
                            "or move it away and store the keys again")

    # the sessions file -------------------------------------------------------------------
    def _read_sessions(self) -> str | None:
        try:
            with open(self.sessions_path, "rb") as stream:
                raw = stream.read()
        except FileNotFoundError:
            return None
        except OSError as err:
            raise KeyringError(f"cannot read the file store {self.sessions_path}: {err.strerror}") from None
        line, sealed = self._split(raw, self.sessions_path)
        try:
            header = json.loads(line)
            nonce, check = (base64.b64decode(header[name], validate=True) for name in ("nonce", "check"))
        except (ValueError, KeyError, TypeError):
            raise self._damaged("the header is not an awsenv sessions header", self.sessions_path) from None
        if header.get("format") != SESSIONS_FORMAT or header.get("version") != VERSION \
                or header.get("cipher") != "AES-256-GCM" or len(nonce) != NONCE_BYTES:
            raise self._damaged("not an awsenv sessions file of this version", self.sessions_path)
        key = self._sessions_key(check)
        if key is None:
            return None  # sealed under another store's key
        from cryptography.exceptions import InvalidTag
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        try:
            return AESGCM(key).decrypt(nonce, sealed, line).decode()
        except (InvalidTag, UnicodeDecodeError):
            raise self._damaged("its contents do not match their seal", self.sessions_path) from None

    def _sessions_key(self, check: bytes | None) -> bytes | None:
        """The store's key, to open sessions sealed with `check` (None: to seal them):
        this process's, the agent's, else the store is opened for it (and made, to seal
        the first sessions). None when `check` is another key's."""
        header = {"check": check}
        for lookup in (held, lambda _path: self._key, self._from_agent):
            key = lookup(self.path)
            if key is not None and (check is None or _fits(key, header)):
                if self._key is None:
                    self._key = key
                return key
        if check is not None and not os.path.exists(self.path):
            return None
        self.open(create=True)
        assert self._key is not None
        return self._key if check is None or _fits(self._key, header) else None

    def _write_sessions(self, value: str) -> None:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        key = self._sessions_key(None)
        assert key is not None
        nonce = secrets.token_bytes(NONCE_BYTES)
        header = {"format": SESSIONS_FORMAT, "version": VERSION, "cipher": "AES-256-GCM",
                  "nonce": _b64(nonce), "check": _b64(_check(key))}
        line = json.dumps(header, separators=(",", ":")).encode()
        sealed = AESGCM(key).encrypt(nonce, value.encode(), line)
        with self._locked():
            _replace(self.sessions_path, line + b"\n" + base64.b64encode(sealed) + b"\n")

    # the key ---------------------------------------------------------------------------
    def _unlock(self, header: dict) -> bytes:
        """The key that opens this file: this process's, the agent's, or derived from
        the passphrase (then handed to the agent)."""
        kdf = {name: header[name] for name in ("salt", "n", "r", "p")}
        if self._key is not None and self._kdf == kdf and _fits(self._key, header):
            return self._key
        for lookup in (held, self._from_agent):
            key = lookup(self.path)
            if key is not None and _fits(key, header):
                return self._keep(key, kdf)
        passphrase, where = self._passphrase(confirm=False)
        key = derive(passphrase, kdf)
        if not _fits(key, header):
            raise KeyringError(f"wrong passphrase for the file store {self.path}{where}")
        self.derived = True
        self._to_agent(key)
        return self._keep(key, kdf)

    def _keep(self, key: bytes, kdf: dict) -> bytes:
        self._key, self._kdf = key, kdf
        return key

    @staticmethod
    def _from_agent(path: str) -> bytes | None:
        if not ask_agent:
            return None
        from . import agentclient as agent

        answer = agent.ask({"op": "key", "store": path})
        try:
            key = base64.b64decode(answer["key"], validate=True) if answer else None
        except (KeyError, TypeError, ValueError):
            return None
        return key if key is not None and len(key) == KEY_BYTES else None

    def _to_agent(self, key: bytes) -> None:
        if ask_agent:
            from . import agentclient as agent

            agent.ask({"op": "unlock", "store": self.path, "key": _b64(key)})

    def _passphrase(self, confirm: bool) -> tuple[str, str]:
        """The passphrase, and where it came from for a message (never the value)."""
        given = os.environ.get(PASSPHRASE_VARIABLE)
        if given is not None:
            given = _normal(given)
            if not given:
                raise KeyringError(f"{PASSPHRASE_VARIABLE} is empty; the file store needs a passphrase")
            return given, f" (from {PASSPHRASE_VARIABLE})"
        from ..host.terminal import Terminal

        terminal = Terminal()
        if not terminal.available:
            raise KeyringError(
                f"the file store {self.path} needs its passphrase and there is no terminal to ask on; "
                f"set {PASSPHRASE_VARIABLE}, or run awsenv once on a terminal so that the agent holds it"
            )
        if not confirm:
            answer = _normal(terminal.ask(f"Passphrase for the awsenv file store {self.path}: ", echo=False))
            if not answer:
                raise Cancelled("no passphrase given")
            return answer, ""
        terminal.say(f"awsenv: making the file store {self.path}; choose a passphrase to seal it")
        answer = _normal(terminal.ask("New passphrase: ", echo=False))
        if not answer:
            raise Cancelled("no passphrase given")
        if _normal(terminal.ask("The same passphrase again: ", echo=False)) != answer:
            raise KeyringError("the two passphrases differ; nothing was stored")
        return answer, ""

    # writing ---------------------------------------------------------------------------
    def _locked(self):
        from ..host.locking import locked

        os.makedirs(os.path.dirname(self.path), mode=0o700, exist_ok=True)
        return locked(os.path.join(os.path.dirname(self.path), "store.lock"))

    def _write(self, doc: dict[str, str]) -> None:
        """Seal and replace the file; the caller holds the lock and has read the file
        (so this process holds its key), unless there is no file yet."""
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        if self._key is None or not os.path.exists(self.path):
            self._create_key()
        assert self._key is not None
        kdf = self._kdf
        header = {
            "format": FORMAT, "version": VERSION, "kdf": "scrypt", "n": kdf["n"], "r": kdf["r"], "p": kdf["p"],
            "salt": _b64(kdf["salt"]),
            "cipher": "AES-256-GCM", "nonce": _b64(secrets.token_bytes(NONCE_BYTES)),
            "check": _b64(_check(self._key)),
        }
        line = json.dumps(header, separators=(",", ":")).encode()
        plain = json.dumps(doc, separators=(",", ":"), sort_keys=True).encode()
        sealed = AESGCM(self._key).encrypt(base64.b64decode(header["nonce"]), plain, line)
        _replace(self.path, line + b"\n" + base64.b64encode(sealed) + b"\n")

    def _create_key(self) -> None:
        os.chmod(os.path.dirname(self.path), 0o700)  # the directory may be older than the store
        passphrase, _source = self._passphrase(confirm=True)
        kdf = {"salt": secrets.token_bytes(SALT_BYTES), **COST}
        key = derive(passphrase, kdf)
        self.derived = True
        self._keep(key, kdf)
        self._to_agent(key)


def derive(passphrase: str, kdf: dict) -> bytes:
    n, r, p = kdf["n"], kdf["r"], kdf["p"]
    return hashlib.scrypt(passphrase.encode(), salt=kdf["salt"], n=n, r=r, p=p, maxmem=256 * r * n + (1 << 20),
                          dklen=KEY_BYTES)


def _check(key: bytes) -> bytes:
    return hmac.new(key, CHECK_LABEL, hashlib.sha256).digest()


def _fits(key: bytes, header: dict) -> bool:
    return hmac.compare_digest(_check(key), header["check"])


def _normal(passphrase: str) -> str:
    """The same passphrase typed on macOS and Linux gives the same key; surrounding
    spaces are not part of it (the terminal drops them too)."""
    import unicodedata

    return unicodedata.normalize("NFC", passphrase.strip())


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _brief(header: dict) -> str:
    return ", ".join(f"{k}={header.get(k)!r}" for k in ("version", "kdf", "cipher"))


def _replace(path: str, data: bytes) -> None:
    """Write `data` to `path` atomically: a 0600 temporary file beside it, fsync'd, then
    renamed over it; the directory is fsync'd too where the OS allows."""
    import tempfile

    folder = os.path.dirname(path)
    fd, temporary = tempfile.mkstemp(prefix=".store-", suffix=".tmp", dir=folder)  # mode 0600
    try:
        with os.fdopen(fd, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        try:
            os.unlink(temporary)
        except OSError:
            pass
        raise
    try:
        dir_fd = os.open(folder, os.O_RDONLY)
    except OSError:  # Windows cannot open a directory
        return
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)
