"""One exception type per kind of failure; the CLI turns each into one line and an exit code."""
from __future__ import annotations


class AwsenvError(Exception):
    """A failure the user can act on. The message is one line and holds no secret."""

    exit_code = 1
    hint = ""  # lines printed under the message when it needs concrete steps (no keyring)


class UsageError(AwsenvError):
    """Bad flag, unknown profile, bad MFA code format, unknown shell."""

    exit_code = 2


class ConfigError(UsageError):
    """A malformed or inconsistent ~/.aws/config (file and line named)."""


class Unsupported(UsageError):
    """A profile awsenv does not serve (SSO, web identity, credential_source)."""


class KeyringError(AwsenvError):
    """No usable keyring, a locked keyring, a denied prompt, no D-Bus."""


class AwsError(AwsenvError):
    """STS or IAM refused or could not be reached."""


class Refused(AwsError):
    """AWS answered, and refused: the request (and any MFA code in it) reached it."""


class Unreachable(AwsError):
    """AWS could not be reached or did not answer: nothing it carried was spent."""


class MfaError(AwsenvError):
    """An MFA code was needed and could not be had, or was refused."""


class SsoError(AwsenvError):
    """An IAM Identity Center sign-in was needed and could not be had, or was refused."""


class Cancelled(AwsenvError):
    """The user pressed Ctrl-C or gave an empty answer where one was required."""

    exit_code = 130


class NeedsUser(AwsenvError):
    """Only the user can go on: a new MFA session or the long-term key is needed, which
    the agent never holds."""


class SignInNeeded(SsoError, NeedsUser):
    """An IAM Identity Center token is gone and can't be renewed: only a new sign-in by
    the user goes on. The agent waits for it, as it waits for a new MFA session."""


class LoginSessionEnded(AwsError, NeedsUser):
    """An AWS sign-in session (`aws login`, `awsenv signin`) is expired or revoked: only
    a new sign-in by the user goes on, and the agent waits for it."""
