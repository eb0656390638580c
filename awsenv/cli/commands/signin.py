"""signin: AWS's browser sign-in for people (what `aws login` does), with the refresh
token and the DPoP key going straight into awsenv's store, never to a file.

`login` stays the console (as in aws-vault); this is the other direction: the
console's sign-in handed to the shell.
"""
from __future__ import annotations

import os
import time
import uuid

from ...core.config import AwsConfig
from ...core.configfile import append_profile
from ...core.errors import AwsError, Cancelled, UsageError
from .common import Vault

DEFAULT_REGION = "us-east-1"  # the AWS CLI's, when neither the profile nor the environment names one
OTHER_CREDENTIALS = ("role_arn", "source_profile", "sso_session", "sso_start_url", "sso_account_id",
                     "credential_process", "web_identity_token_file", "credential_source")


def cmd_signin(args) -> None:
    from ...host.terminal import Terminal
    from ...session.resolver import login_key

    config = AwsConfig()
    name = args.profile
    profile = config.profile(name) if config.has(name) else None
    if profile is not None:
        other = next((key for key in OTHER_CREDENTIALS if profile.get(key)), None)
        if other or config.plaintext_key(name):
            raise UsageError(f"profile {name!r} already gets its credentials another way "
                             f"({other or 'a key in the credentials file'}); sign in to a new profile name")
    region = args.region or (profile.region if profile else None) or os.environ.get("AWS_REGION") \
        or os.environ.get("AWS_DEFAULT_REGION") or DEFAULT_REGION
    vault = Vault()
    vault.open()
    terminal = Terminal()
    session, token = _remote(region, terminal) if args.remote else _same_device(region, terminal, args.no_browser)
    known = profile.get("login_session") if profile else None
    if known and known != session:
        raise UsageError(f"profile {name!r} names login_session {known}, but the browser signed in as {session}; "
                         "sign in as that identity, or use another profile name")
    vault.set_login(session, token)
    if profile is None:
        append_profile(config.config_file, name, {"login_session": session, "region": region})
        terminal.say(f"awsenv: wrote [profile {name}] to {config.config_file}")
    from ...store import agentclient as agent

    # Credentials cached from an earlier sign-in go: the new ones are at hand.
    cached = login_key(AwsConfig().profile(name))
    vault.update_sessions(lambda data: data.pop(cached, None), agent.push)
    terminal.say(f"awsenv: signed in as {session}; profile {name!r} is ready (`awsenv use {name}`)")


def _token(output: dict, key, client_id: str, region: str) -> tuple[str, dict]:
    """The new sign-in in the AWS CLI's cache format (plus the region signed in to)."""
    from ...aws.signin import key_pem, session_of

    session = session_of(output.get("idToken"))
    expires = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(int(time.time()) + output["expiresIn"]))
    access = output["accessToken"]
    return session, {
        "accessToken": {"accessKeyId": access["accessKeyId"], "secretAccessKey": access["secretAccessKey"],
                        "sessionToken": access["sessionToken"], "accountId": session.split(":")[4],
                        "expiresAt": expires},
        "tokenType": "aws_sigv4", "clientId": client_id, "refreshToken": output["refreshToken"],
        "idToken": output["idToken"], "dpopKey": key_pem(key), "signInRegion": region,
    }


def _exchange(region: str, key, client_id: str, code: str, verifier: str, redirect_uri: str) -> tuple[str, dict]:
    from ...aws.signin import SigninRefused, create_token

    try:
        output = create_token(key, region, None, clientId=client_id, grantType="authorization_code", code=code,
                              codeVerifier=verifier, redirectUri=redirect_uri)
    except SigninRefused as err:
        if err.error == "INSUFFICIENT_PERMISSIONS":
            raise AwsError("the signed-in identity may not sign in to the CLI (INSUFFICIENT_PERMISSIONS: it needs "
                           "the SignInLocalDevelopmentAccess policy)") from None
        raise AwsError(f"the sign-in service refused the sign-in ({err.error or err.code}); run `awsenv signin` "
                       "again") from None
    return _token(output, key, client_id, region)


def _timeout() -> float:
    from ...core.settings import env_seconds

    return env_seconds("AWSENV_SIGNIN_TIMEOUT", 600)


def _same_device(region: str, terminal, no_browser: bool) -> tuple[str, dict]:
    from ...aws.signin import SAME_DEVICE, Callback, authorize_url, base_url, new_key, pkce
    from ...host.browser import open_browser

    state, (verifier, challenge), key = str(uuid.uuid4()), pkce(), new_key()
    base = base_url(region)
    callback = Callback(state)
    try:
        url = authorize_url(base, SAME_DEVICE, state, challenge, callback.redirect_uri)
        terminal.say(f"awsenv: sign in to AWS in the browser: {url}")
        if no_browser or not open_browser(url):
            terminal.say("awsenv: open the URL above in a browser on this machine (or use `awsenv signin --remote`)")
    except BaseException:
        callback.close()
        raise
    result = callback.wait(_timeout())
    if result is None:
        raise AwsError("the browser did not come back within the time allowed (AWSENV_SIGNIN_TIMEOUT); "
                       "run `awsenv signin` again")
    code, error = result
    if code is None:
        raise AwsError(f"the sign-in was not completed in the browser ({error})")
    return _exchange(region, key, SAME_DEVICE, code, verifier, callback.redirect_uri)


def _remote(region: str, terminal) -> tuple[str, dict]:
    import secrets

    from ...aws.signin import (
        CODE,
        CONFIRMATION_PATH,
        CROSS_DEVICE,
        authorize_url,
        base_url,
        new_key,
        parse_pasted,
        pkce,
    )

    if not terminal.available:
        raise UsageError("`awsenv signin --remote` asks for the code on a terminal, and there is none")
    state, (verifier, challenge), key = str(uuid.uuid4()), pkce(), new_key()
    redirect_uri = base_url(region) + CONFIRMATION_PATH
    url = authorize_url(base_url(region), CROSS_DEVICE, state, challenge, redirect_uri)
    terminal.say(f"awsenv: on any device, open this URL and sign in:\n{url}")
    for _attempt in range(3):
        answer = terminal.ask("Enter the authorization code displayed in your browser: ", echo=False)
        if not answer:
            raise Cancelled("sign-in cancelled")
        try:
            code, got = parse_pasted(answer)
            if CODE.fullmatch(code) is None:
                raise ValueError(code)
        except ValueError:
            terminal.say("awsenv: that is not the code the page shows; paste it whole")
            continue
        if not secrets.compare_digest(got.encode(), state.encode()):
            raise AwsError("that code belongs to another sign-in (its state differs); run `awsenv signin` again")
        return _exchange(region, key, CROSS_DEVICE, code, verifier, redirect_uri)
    raise UsageError("three answers were not a sign-in code")

