"""A keyring backend that keeps secrets in memory only: what doctor must flag as a
backend it does not know to encrypt. Loaded through PYTHON_KEYRING_BACKEND."""
from keyring.backend import KeyringBackend


class Keyring(KeyringBackend):
    priority = 1
    _store: dict = {}

    def get_password(self, service, username):
        return self._store.get((service, username))

    def set_password(self, service, username, password):
        self._store[(service, username)] = password

    def delete_password(self, service, username):
        self._store.pop((service, username), None)
