"""The keyring: long-term keys, TOTP secrets and the session cache.

The only module that imports `keyring`. Every item lives under the service name
`awsenv`:

- `key:PROFILE`   the long-term access key of a base profile (JSON);
- `totp:PROFILE`  a base32 TOTP secret;
- `sessions`      every cached STS session in one JSON document, so that a switch
                  costs one keyring read, not one per link of a role chain.

Nothing here writes a secret anywhere but the keyring.
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Callable, Iterator

from .creds import Credentials
from .errors import KeyringError

SERVICE = "awsenv"
SESSIONS = "sessions"

NO_KEYRING = (
    "no usable keyring backend ({backend}); awsenv will not keep keys in plaintext. "
    "Ways out: start a Secret Service (gnome-keyring-daemon, KeePassXC) on a D-Bus session, "
    "use KWallet, or set PYTHON_KEYRING_BACKEND to an encrypting backend"
)


def _backend():
    try:
        import keyring
        from keyring.backends import fail
    except Exception as err:  # noqa: BLE001 - a broken install is still one line
        raise KeyringError(f"cannot load the keyring library: {err}") from None
    backend = keyring.get_keyring()
    if isinstance(backend, fail.Keyring) or getattr(backend, "priority", 1) <= 0:
        raise KeyringError(NO_KEYRING.format(backend=_name(backend)))
    return backend


def _name(backend) -> str:
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
            raise KeyringError(NO_KEYRING.format(backend="none found")) from None
        if isinstance(err, KeyringLocked):
            raise KeyringError(f"the keyring is locked; unlock it and try again ({action})") from None
        detail = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise KeyringError(f"keyring failure while {action}: {detail}") from None


class Vault:
    def __init__(self) -> None:
        self._backend = None

    @property
    def backend(self):
        if self._backend is None:
            with _translated("opening the keyring"):
                self._backend = _backend()
        return self._backend

    def backend_name(self) -> str:
        return _name(self.backend)

    def _get(self, item: str) -> str | None:
        with _translated("reading the keyring"):
            return self.backend.get_password(SERVICE, item)

    def _set(self, item: str, value: str) -> None:
        with _translated("writing to the keyring"):
            self.backend.set_password(SERVICE, item, value)

    def _delete(self, item: str) -> bool:
        from keyring.errors import PasswordDeleteError

        with _translated("deleting from the keyring"):
            try:
                self.backend.delete_password(SERVICE, item)
            except PasswordDeleteError:
                return False
        return True

    # long-term keys -----------------------------------------------------------
    def get_key(self, profile: str) -> Credentials | None:
        raw = self._get(f"key:{profile}")
        if raw is None:
            return None
        data = json.loads(raw)
        return Credentials(data["AccessKeyId"], data["SecretAccessKey"])

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

    # session cache ------------------------------------------------------------
    def load_sessions(self) -> dict:
        raw = self._get(SESSIONS)
        if not raw:
            return {}
        try:
            data = json.loads(raw)
        except ValueError:
            return {}
        return data if isinstance(data, dict) else {}

    def update_sessions(self, change: Callable[[dict], None]) -> dict:
        """Read, change and write the session document under a lock, so two shells
        refreshing at once don't drop each other's sessions."""
        from . import agent

        with _lock():
            data = self.load_sessions()
            change(data)
            self._set(SESSIONS, json.dumps(data, separators=(",", ":"), sort_keys=True))
            agent.push(data)
        return data


def _state_dir() -> str:
    from . import agent

    private = agent.runtime_dir()
    if private is not None:
        return private
    path = os.path.join(os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "awsenv")
    os.makedirs(path, mode=0o700, exist_ok=True)
    return path


@contextlib.contextmanager
def _lock() -> Iterator[None]:
    # The lock file is empty; it only serialises writers.
    fd = os.open(os.path.join(_state_dir(), "sessions.lock"), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)
