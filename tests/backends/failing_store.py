"""The real Secret Service backend, except that storing the long-term key of profile
`ci` fails: what `rotate ci` meets when the keyring refuses the new key after IAM has
made it. Loaded through PYTHON_KEYRING_BACKEND=failing_store.Keyring."""
from keyring.backends import SecretService
from keyring.errors import PasswordSetError


class Keyring(SecretService.Keyring):
    def set_password(self, service, username, password):
        if (service, username) == ("awsenv", "key:ci"):
            raise PasswordSetError("the test keyring refuses to store key:ci")
        return super().set_password(service, username, password)
