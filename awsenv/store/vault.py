"""The key store: long-term keys, TOTP secrets and the session cache.

`AWSENV_BACKEND` picks where they live: `keyring` (the default: the backend the keyring
library selects, or the one PYTHON_KEYRING_BACKEND names), `file` (one encrypted file,
filestore.py) or `pass` (the pass program, passstore.py). Every command, the agent and
the prompt hook open the store here, so the choice holds for all of them. This is the
only module that imports `keyring`. The items, under the service name `awsenv` in the
keyring and the folder `awsenv/` in pass:

- `key:PROFILE`   the long-term access key of a base profile (JSON);
- `totp:PROFILE`  a base32 TOTP secret;
- `sso:NAME`      an IAM Identity Center sign-in (JSON): the client registration and
                  the access and refresh tokens of one sso-session (NAME) or legacy
                  start URL;
- `login:ARN`     an AWS sign-in session (JSON, the AWS CLI's cache format): its
                  refresh token and DPoP key, and the latest access credentials;
- `sessions`      every cached STS session in one JSON document, so that a switch
                  costs one store read, not one per link of a role chain.

Nothing here writes a secret anywhere but the store.
"""
from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable, Iterator

from ..core.creds import Credentials
from ..core.errors import KeyringError, UsageError

SERVICE = "awsenv"
SESSIONS = "sessions"
BACKENDS = ("keyring", "file", "pass")

NO_KEYRING_HINT = """\
  Headless Linux and WSL: keep the keys in an encrypted file instead (the agent holds its passphrase):
    export AWSENV_BACKEND=file
  or in pass (AWSENV_BACKEND=pass), or start a Secret Service in a D-Bus session:
    dbus-run-session -- bash
    echo -n 'a password' | gnome-keyring-daemon --unlock --components=secrets
  WSL: or keep the key on the Windows side: credential_process = awsenv.exe export --format json PROFILE
  macOS and Windows need nothing: their own keyring is used."""


def chosen() -> str:
    """The store AWSENV_BACKEND names; an unknown name is a usage error (exit 2)."""
    name = os.environ.get("AWSENV_BACKEND") or "keyring"
    if name not in BACKENDS:
        raise UsageError(f"AWSENV_BACKEND must be keyring, file or pass, not {name!r}")
    return name


def open_store():
    """The chosen store: an object with get, set, delete, open, describe and handoff."""
    name = chosen()
    if name == "file":
        from .filestore import FileStore

        return FileStore()
    if name == "pass":
        from .passstore import PassStore

        return PassStore()
    return KeyringStore()


def no_keyring(what: str) -> KeyringError:
    err = KeyringError(f"no usable keyring ({what}); awsenv keeps no key in plaintext")
    err.hint = NO_KEYRING_HINT
    return err


def _backend():
    try:
        import keyring
        from keyring.backends import fail
    except Exception as err:  # noqa: BLE001 - a broken install is still one line
        raise KeyringError(f"cannot load the keyring library: {err}") from None
    backend = _remembered(keyring)
    if backend is None:
        backend = keyring.get_keyring()
        if isinstance(backend, fail.Keyring) or getattr(backend, "priority", 1) <= 0:
            found = isinstance(backend, fail.Keyring)
            raise no_keyring("no backend found" if found else f"{backend_name(backend)} is not usable")
        if backend_name(backend) in PLAINTEXT_BACKENDS and not _chosen_explicitly():
            # keyrings.alt's plaintext file wins discovery on a headless machine; it
            # must be a choice, never a silent fallback.
            raise no_keyring(f"only {backend_name(backend)}, which does not encrypt")
        _remember(backend)
    return backend


PLAINTEXT_BACKENDS = ("keyrings.alt.file.PlaintextKeyring", "keyring.backends.null.Keyring")


def _chosen_explicitly() -> bool:
    if os.environ.get("PYTHON_KEYRING_BACKEND"):
        return True
    try:
        from keyring.util import platform_

        return os.path.exists(os.path.join(platform_.config_root(), "keyringrc.cfg"))
    except Exception:  # noqa: BLE001
        return False


# keyring's backend discovery scans every installed distribution's entry points, about
# 150 ms. The backend it chose is remembered (its class name, nothing secret) in the
# private runtime directory, which lasts until logout, and loaded directly next time,
# unless PYTHON_KEYRING_BACKEND or a keyringrc.cfg makes the choice.
HINT = "keyring-backend"


def _hint_path() -> str | None:
    from ..host.runtime import runtime_dir

    folder = runtime_dir()
    return os.path.join(folder, HINT) if folder else None


def _remembered(keyring):
    path = _hint_path()
    if path is None or _chosen_explicitly():
        return None
    try:
        with open(path, encoding="ascii") as stream:
            name = stream.read().strip()
        return keyring.core.load_keyring(name) if name else None
    except Exception:  # noqa: BLE001 - a stale or odd hint just means discovery
        return None


def _remember(backend) -> None:
    path = _hint_path()
    if path is None or os.environ.get("PYTHON_KEYRING_BACKEND") or getattr(backend, "backends", None):
        return  # a chainer's choice depends on more than one class name
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as stream:
            stream.write(backend_name(backend))
    except OSError:
        pass


def backend_name(backend) -> str:
    cls = type(backend)
    return f"{cls.__module__}.{cls.__qualname__}"


@contextlib.contextmanager
def _translated(action: str) -> Iterator[None]:
    """keyring, secretstorage and jeepney raise many types; the user gets one line."""
    try:
        yield
    except KeyringError:
        raise
    except Exception as err:  # noqa: BLE001
        from keyring.errors import KeyringLocked, NoKeyringError

        if isinstance(err, NoKeyringError):
            raise no_keyring("none found") from None
        if isinstance(err, KeyringLocked):
            raise KeyringError(f"the keyring is locked; unlock it and try again ({action})") from None
        detail = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise KeyringError(f"keyring failure while {action}: {detail}") from None


class KeyringStore:
    """The keyring library's backend, behind the store interface."""

    name = "keyring"

    def __init__(self) -> None:
        with _translated("opening the keyring"):
            self.backend = _backend()

    def describe(self) -> str:
        return f"keyring {backend_name(self.backend)}"

    def handoff(self) -> None:
        return None  # the keyring unlocks itself

    def open(self, create: bool = False) -> None:
        pass  # opening the backend was the test

    def get(self, item: str) -> str | None:
        with _translated("reading the keyring"):
            return self.backend.get_password(SERVICE, item)

    def set(self, item: str, value: str) -> None:
        with _translated("writing to the keyring"):
            self.backend.set_password(SERVICE, item, value)

    def delete(self, item: str) -> bool:
        from keyring.errors import PasswordDeleteError

        with _translated("deleting from the keyring"):
            try:
                self.backend.delete_password(SERVICE, item)
            except PasswordDeleteError:
                return False
        return True


class Vault:
    def __init__(self) -> None:
        self._store = None

    @property
    def store(self):
        if self._store is None:
            self._store = open_store()
        return self._store

    def open(self, create: bool = False) -> None:
        """Fail now, with the way out, rather than after someone typed a secret: the
        keyring is there, the file store unlocks (`create`: or is made), pass is set up."""
        self.store.open(create)

    def describe(self) -> str:
        """Which store, and where: what `doctor` and `agent status` name."""
        return self.store.describe()

    @property
    def place(self) -> str:
        """The store in a sentence: "stored the key ... in {place}"."""
        return {"file": "the file store", "pass": "pass"}.get(self.store.name, "the keyring")

    def handoff(self) -> dict | None:
        """What an agent started now needs to hold the store unlocked (the file store's
        key), or None."""
        return self._store.handoff() if self._store is not None else None

    def _get(self, item: str) -> str | None:
        return self.store.get(item)

    def _set(self, item: str, value: str) -> None:
        self.store.set(item, value)

    def _delete(self, item: str) -> bool:
        return self.store.delete(item)

    # long-term keys -----------------------------------------------------------
    def get_key(self, profile: str) -> Credentials | None:
        raw = self._get(f"key:{profile}")
        if raw is None:
            return None
        try:
            data = json.loads(raw)
            return Credentials(str(data["AccessKeyId"]), str(data["SecretAccessKey"]))
        except (ValueError, KeyError, TypeError):
            raise KeyringError(
                f"the keyring item key:{profile} is not an awsenv key; store it again with `awsenv add {profile}`"
            ) from None

    def set_key(self, profile: str, key: Credentials) -> None:
        self._set(
            f"key:{profile}",
            json.dumps({"AccessKeyId": key.access_key_id, "SecretAccessKey": key.secret_access_key}),
        )

    def delete_key(self, profile: str) -> bool:
        return self._delete(f"key:{profile}")

    # TOTP secrets -------------------------------------------------------------
    def get_totp(self, profile: str) -> str | None:
        return self._get(f"totp:{profile}")

    def set_totp(self, profile: str, secret: str) -> None:
        self._set(f"totp:{profile}", secret)

    def delete_totp(self, profile: str) -> bool:
        return self._delete(f"totp:{profile}")

    # IAM Identity Center sign-ins ---------------------------------------------------
    def get_sso(self, name: str) -> dict:
        raw = self._get(f"sso:{name}")
        try:
            data = json.loads(raw) if raw else {}
        except ValueError:
            data = {}
        # A damaged item only costs a new sign-in.
        return data if isinstance(data, dict) else {}

    def set_sso(self, name: str, data: dict) -> None:
        self._set(f"sso:{name}", json.dumps(data, separators=(",", ":"), sort_keys=True))

    def delete_sso(self, name: str) -> bool:
        return self._delete(f"sso:{name}")

    # AWS sign-in sessions (login_session) ------------------------------------------
    def get_login(self, session: str) -> dict | None:
        raw = self._get(f"login:{session}")
        try:
            data = json.loads(raw) if raw else None
        except ValueError:
            data = None
        return data if isinstance(data, dict) else None

    def set_login(self, session: str, data: dict) -> None:
        self._set(f"login:{session}", json.dumps(data, separators=(",", ":"), sort_keys=True))

    def delete_login(self, session: str) -> bool:
        return self._delete(f"login:{session}")

    # session cache ------------------------------------------------------------
    def load_sessions(self) -> dict:
        raw = self._get(SESSIONS)
        if not raw:
            return {}
        try:
            data = json.loads(raw)
        except ValueError:
            return {}
        if not isinstance(data, dict):
            return {}
        # A damaged entry is dropped, not trusted: it only costs a new session.
        return {k: v for k, v in data.items() if isinstance(v, dict)}

    def update_sessions(self, change: Callable[[dict], None], publish: Callable[[dict], object] | None = None,
                        held: Callable[[], dict | None] | None = None) -> dict:
        """Read, change and write the session document under a lock, so two shells
        refreshing at once don't drop each other's sessions. `publish` hands the result
        on (to the agent) while the lock is held, so copies never go back in time.
        `held` gives the document the agent holds, or None: under this lock it is the
        one in the store (every write publishes to it before letting go), so taking it
        spares a read of the store, which is a Keychain or passphrase prompt for some."""
        with _lock():
            data = held() if held is not None else None
            if data is None:
                data = self.load_sessions()
            else:
                data = {k: v for k, v in data.items() if isinstance(v, dict)}
            change(data)
            self._set(SESSIONS, json.dumps(data, separators=(",", ":"), sort_keys=True))
            if publish is not None:
                publish(data)
        return data


def _state_dir() -> str:
    from ..host.runtime import runtime_dir

    private = runtime_dir()
    if private is not None:
        return private
    path = os.path.join(os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "awsenv")
    os.makedirs(path, mode=0o700, exist_ok=True)
    return path


def _lock():
    from ..host.locking import locked

    return locked(os.path.join(_state_dir(), "sessions.lock"))
