"""Login sessions (`login_session` profiles): their tokens, in awsenv's store or in the
AWS CLI's cache, turned into credentials and refreshed where they lie.

A sign-in is kept in the AWS CLI's format wherever it lies: the access credentials
(`accessToken`), the rotating `refreshToken`, the `clientId` and the DPoP key
(`dpopKey`) that the refresh token is bound to. awsenv's store (`login:ARN`, after
`awsenv signin` or `awsenv import`) is read first; else the CLI's file, found as
botocore's LoginTokenLoader finds it: `AWS_LOGIN_CACHE_DIRECTORY` or
~/.aws/login/cache, named by the SHA-256 of the session. A refreshed token goes back
where it came from, so the AWS CLI keeps working beside awsenv when the file is its.
"""
from __future__ import annotations

import json
import os
import sys
import time

from ..core.config import Profile
from ..core.creds import Credentials
from ..core.errors import ConfigError, LoginSessionEnded, UsageError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ..core.config import AwsConfig

REQUIRED = ("accessToken", "refreshToken", "dpopKey", "clientId")  # botocore's, in that order


def cache_dir(env: dict | None = None) -> str:
    """`env`: the environment of the shell the agent renews for (None: this process's)."""
    raw = (os.environ if env is None else env).get("AWS_LOGIN_CACHE_DIRECTORY")
    if raw:
        return os.path.expanduser(os.path.expandvars(raw))
    return os.path.expanduser(os.path.join("~", ".aws", "login", "cache"))


def cache_path(session: str, env: dict | None = None) -> str:
    import hashlib

    return os.path.join(cache_dir(env), hashlib.sha256(session.encode("utf-8")).hexdigest() + ".json")


def read_cache(session: str, env: dict | None = None) -> dict | None:
    try:
        with open(cache_path(session, env), encoding="utf-8") as stream:
            data = json.load(stream)
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def write_cache(session: str, token: dict, env: dict | None = None) -> None:
    """As botocore's JSONFileCache writes: a new file (mode 0600) in the same folder,
    moved over the old one, so a reader never sees half a token."""
    import tempfile

    folder = cache_dir(env)
    os.makedirs(folder, mode=0o700, exist_ok=True)
    fd, temp = tempfile.mkstemp(dir=folder, suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as stream:
            json.dump(token, stream)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temp, cache_path(session, env))
    except BaseException:
        try:
            os.unlink(temp)
        except OSError:
            pass
        raise


def session_name(profile: Profile) -> str:
    from .signin import SESSION_ARN

    session = profile.get("login_session") or ""
    if SESSION_ARN.fullmatch(session) is None:
        raise ConfigError(
            f"{profile.where('login_session')}: login_session of profile {profile.name!r} is not the ARN "
            "of an IAM user or role session (arn:aws:iam::ACCOUNT:user/NAME, arn:aws:sts::ACCOUNT:assumed-role/...)"
        )
    return session


def refreshable(token: object) -> bool:
    """What a refresh needs, in the shapes the service and the CLI give them: a refresh
    token, the client it was issued to and a P-256 key."""
    from .signin import CLIENT_ID, REFRESH_TOKEN, load_key

    if not isinstance(token, dict) or not all(key in token for key in REQUIRED):
        return False
    refresh, client = token.get("refreshToken"), token.get("clientId")
    return (isinstance(refresh, str) and REFRESH_TOKEN.fullmatch(refresh) is not None
            and isinstance(client, str) and CLIENT_ID.fullmatch(client) is not None
            and load_key(token.get("dpopKey")) is not None)


def current(token: dict) -> Credentials | None:
    """The token's access credentials, when they are well formed."""
    from .signin import ACCESS_KEY_ID, SECRET, token_credentials

    access = token.get("accessToken")
    if not isinstance(access, dict):
        return None
    fields = ((access.get("accessKeyId"), ACCESS_KEY_ID), (access.get("secretAccessKey"), SECRET),
              (access.get("sessionToken"), SECRET))
    if not all(isinstance(value, str) and pattern.fullmatch(value) for value, pattern in fields):
        return None
    try:
        return token_credentials(token)
    except (KeyError, TypeError, ValueError):
        return None


def again(profile: str) -> str:
    return f"sign in again with `awsenv signin {profile}` (or `aws login --profile {profile}`)"


class LoginSessions:
    """Credentials of login_session profiles: current ones as they are, else refreshed."""

    def __init__(self, vault, clock=time.time, endpoints=None) -> None:
        self.vault = vault
        self.clock = clock
        self.endpoints = endpoints  # the agent's renewals: where AWS is for the shell (sts.Endpoints)
        self.env = endpoints.env if endpoints is not None else None

    def load(self, session: str) -> tuple[str, dict] | None:
        """("store" or the CLI file's path, token): the store first."""
        token = self.vault.get_login(session)
        if token is not None:
            return "store", token
        token = read_cache(session, self.env)
        return (cache_path(session, self.env), token) if token is not None else None

    def save(self, where: str, session: str, token: dict) -> None:
        if where == "store":
            self.vault.set_login(session, token)
        else:
            write_cache(session, token, self.env)

    def credentials(self, profile: Profile, need_ttl: float, force: bool = False) -> Credentials:
        """Credentials with more than `need_ttl` seconds left; `force` (--refresh): new ones."""
        session = session_name(profile)
        found = self.load(session)
        if found is None:
            raise LoginSessionEnded(f"profile {profile.name!r} has no sign-in for its login_session; "
                                    f"{again(profile.name)}")
        where, token = found
        creds = current(token)
        if creds is not None and creds.ttl(self.clock()) > need_ttl and not force:
            return creds
        if not refreshable(token):
            raise LoginSessionEnded(
                f"profile {profile.name!r}: the sign-in in {'the store' if where == 'store' else where} lacks a "
                f"usable refresh token, client or DPoP key; {again(profile.name)}")
        return self._refresh(profile, session, where, token)

    def _refresh(self, profile: Profile, session: str, where: str, token: dict) -> Credentials:
        from .signin import SigninRefused, create_token, ended, load_key

        region = token.get("signInRegion") if isinstance(token.get("signInRegion"), str) else None
        try:
            output = create_token(
                load_key(token["dpopKey"]), region or profile.region, self.endpoints,
                clientId=token["clientId"], refreshToken=token["refreshToken"], grantType="refresh_token",
            )
        except SigninRefused as err:
            # Another process may have refreshed a moment ago: a refresh token works once.
            latest = self.load(session)
            creds = current(latest[1]) if latest else None
            if latest and latest[1].get("refreshToken") != token["refreshToken"] and creds is not None \
                    and creds.ttl(self.clock()) > 0:
                return creds
            raise ended(err, profile.name, again(profile.name)) from None
        old = token["accessToken"] if isinstance(token.get("accessToken"), dict) else {}
        account = old.get("accountId") or session.split(":")[4]
        expires = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(int(self.clock()) + output["expiresIn"]))
        access = output["accessToken"]
        token.update(
            accessToken={"accessKeyId": access["accessKeyId"], "secretAccessKey": access["secretAccessKey"],
                         "sessionToken": access["sessionToken"], "accountId": account, "expiresAt": expires},
            refreshToken=output["refreshToken"],
        )
        self.save(where, session, token)
        creds = current(token)
        assert creds is not None  # checked by create_token
        return creds


# awsenv import -----------------------------------------------------------------------------------
def import_logins(config: AwsConfig, names: list[str] | None, delete: bool, vault_factory) -> set[str]:
    """Move the AWS CLI's sign-ins of login_session profiles (the named ones, or all)
    into the store; `delete` removes the cache file. Returns the profiles handled here:
    the named ones that are login_session profiles, or (none named) those moved."""
    candidates = names if names else config.names()
    handled: set[str] = set()
    moved: dict[str, str] = {}
    vault = None
    for name in candidates:
        if not config.has(name) or not config.profile(name).get("login_session"):
            continue
        profile = config.profile(name)
        if names:
            handled.add(name)
        session = session_name(profile)
        if session in moved:
            continue
        token = read_cache(session)
        if token is None or not refreshable(token):
            if names:
                raise UsageError(f"profile {name!r}: no usable AWS CLI sign-in for its login_session in {cache_dir()}")
            continue
        vault = vault or vault_factory()
        vault.set_login(session, token)
        moved[session] = name
        handled.add(name)
        print(f"awsenv: moved the AWS CLI's sign-in of profile {name!r} into {vault.place}", file=sys.stderr)
        path = cache_path(session)
        if delete:
            os.unlink(path)
            print(f"awsenv: deleted {path}", file=sys.stderr)
        else:
            print(f"awsenv: the token and its DPoP key are still in {path}; rerun with --delete-plaintext "
                  "to remove them", file=sys.stderr)
    return handled

