"""The IAM Identity Center sign-in by authorization code with PKCE (awsenv/aws/ssoauth.py),
the default of `awsenv sso login` for an sso-session: the stand-in's grant checked with
botocore's own client, the sign-in end to end through the BROWSER script, the refusals
(another state, a denial, no redirect in time), and the loopback listener in process."""
from __future__ import annotations

import base64
import hashlib
import re
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest
from conftest import AWSENV
from sso_server import REGION, START_URL
from helpers import secrets_on_disk, use
from test_sso import oidc, portal, sso  # noqa: F401 - the fixtures

GRANTS = ["authorization_code", "refresh_token"]
CALLBACK = re.compile(r"http://127\.0\.0\.1:(\d+)/oauth/callback")


def no_redirects():
    class Stop(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args):
            return None

    return urllib.request.build_opener(Stop)


def authorize(server, client_id: str, redirect: str, challenge: str, state: str = "s1") -> tuple[int, str]:
    """Visit the authorize page as the browser would, without following its redirect:
    (status, Location or body)."""
    query = urllib.parse.urlencode({
        "response_type": "code", "client_id": client_id, "redirect_uri": redirect, "state": state,
        "code_challenge_method": "S256", "scopes": "sso:account:access", "code_challenge": challenge})
    try:
        answer = no_redirects().open(f"{server.url}/authorize?{query}", timeout=5)
        return answer.status, answer.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.headers.get("Location") or err.read().decode()


def s256(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")


# 1. the stand-in, driven by botocore's own client ----------------------------------------------
def test_stand_in_takes_the_authorization_code_grant_with_pkce_from_botocore(portal):  # noqa: F811
    from botocore.exceptions import ClientError

    client = oidc(portal, "sso-oidc")
    with pytest.raises(ClientError) as not_loopback:
        client.register_client(clientName="t", clientType="public", grantTypes=GRANTS,
                               redirectUris=["https://example.com/cb"], issuerUrl=START_URL)
    assert not_loopback.value.response["Error"]["Code"] == "InvalidRedirectUriException"
    reg = client.register_client(clientName="t", clientType="public", grantTypes=GRANTS, scopes=["sso:account:access"],
                                 redirectUris=["http://127.0.0.1/oauth/callback"], issuerUrl=START_URL)
    secret = dict(clientId=reg["clientId"], clientSecret=reg["clientSecret"])
    verifier = "v" * 43 + "-._~0123456789"
    redirect = "http://127.0.0.1:4242/oauth/callback"  # registered without a port: any port will do

    assert authorize(portal, reg["clientId"], "http://127.0.0.1:4242/elsewhere", s256(verifier))[0] == 400
    assert authorize(portal, reg["clientId"], "http://localhost:4242/oauth/callback", s256(verifier))[0] == 400

    def code(state: str = "s1") -> str:
        status, location = authorize(portal, reg["clientId"], redirect, s256(verifier), state)
        assert status == 302 and location.startswith(redirect + "?"), (status, location)
        query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(location).query))
        assert query["state"] == state
        return query["code"]

    grant = dict(grantType="authorization_code", redirectUri=redirect, **secret)
    for wrong in (dict(codeVerifier="w" * 43), dict(codeVerifier=verifier, redirectUri=redirect + "x"),
                  dict(codeVerifier="short")):
        with pytest.raises(ClientError) as refused:
            client.create_token(code=code(), **{**grant, **wrong})
        assert refused.value.response["Error"]["Code"] == "InvalidGrantException", wrong
    first = code("another state")
    token = client.create_token(code=first, codeVerifier=verifier, **grant)
    assert token["accessToken"] in portal.issued and token["refreshToken"] in portal.issued
    with pytest.raises(ClientError) as reused:
        client.create_token(code=first, codeVerifier=verifier, **grant)
    assert reused.value.response["Error"]["Code"] == "InvalidGrantException"
    renewed = client.create_token(grantType="refresh_token", refreshToken=token["refreshToken"], **secret)
    assert renewed["accessToken"] != token["accessToken"]
    with pytest.raises(ClientError) as device:
        client.create_token(grantType="urn:ietf:params:oauth:grant-type:device_code", deviceCode="d", **secret)
    assert device.value.response["Error"]["Code"] == "UnauthorizedClientException"
    portal.deny = True
    status, location = authorize(portal, reg["clientId"], redirect, s256(verifier))
    assert status == 302 and "error=access_denied" in location and "code=" not in location
    assert oidc(portal, "sso").get_role_credentials(
        accessToken=renewed["accessToken"], accountId="111111111111", roleName="ReadOnly")["roleCredentials"]


def test_the_authorize_page_is_found_where_botocore_sends_sso_oidc(monkeypatch):
    from awsenv.aws import sts

    monkeypatch.setenv("AWS_ENDPOINT_URL_SSO_OIDC", "http://127.0.0.1:1/some/path")
    assert sts.oidc_base_url(REGION) == "http://127.0.0.1:1"
    monkeypatch.delenv("AWS_ENDPOINT_URL_SSO_OIDC")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    assert sts.oidc_base_url(REGION) == f"https://oidc.{REGION}.amazonaws.com"


# 2. the sign-in, end to end ------------------------------------------------------------------------
SCOPED = f"""
[sso-session wide]
sso_start_url = {START_URL}
sso_region = {REGION}
sso_registration_scopes = sso:account:access, codewhisperer:completions

[sso-session bare]
sso_start_url = {START_URL}
sso_region = {REGION}

[profile bare-ro]
sso_session = bare
sso_account_id = 111111111111
sso_role_name = ReadOnly
"""


def test_sign_in_is_the_authorization_code_with_pkce_and_then_every_command_works(world, sso):  # noqa: F811
    done = world.ok("sso", "login", "corp")
    assert done.stdout == ""
    assert sso.server.operations() == ["RegisterClient", "Authorize", "CreateToken"]
    registered, asked = sso.server.calls[0][1], sso.server.calls[1][1]
    assert registered == {"scopes": ["sso:account:access"], "clientName": "awsenv", "grantTypes": GRANTS,
                          "redirectUris": ["http://127.0.0.1/oauth/callback"], "issuerUrl": START_URL}
    assert CALLBACK.fullmatch(asked["redirectUri"]) and asked["scopes"] == "sso:account:access"
    assert "signed in to sso-session corp" in done.stderr and "--use-device-code" in done.stderr
    # The browser was given a one-shot loopback address: no state on a command line.
    [browsed] = sso.browsed()
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+/[A-Za-z0-9_-]{40,}", browsed), browsed
    item = sso.keyring_item()
    assert item["registration"]["grantTypes"] == GRANTS and item["registration"]["clientSecret"] in sso.server.issued
    assert item["token"]["accessToken"] in sso.server.issued and item["token"]["refreshToken"] in sso.server.issued

    env = use(world, "sandbox")
    assert env["AWS_ACCESS_KEY_ID"] == sso.server.role_keys[-1] and env["AWSENV_PROFILE"] == "sandbox"
    world.moto.calls.clear()
    aws = subprocess.run(["aws", "sts", "get-caller-identity", "--region", "us-east-1"], capture_output=True,
                         text=True, env=env, timeout=60)
    assert aws.returncode == 0, aws.stderr
    assert world.moto.actions() == [("GetCallerIdentity", env["AWS_ACCESS_KEY_ID"])]
    world.moto.calls.clear()
    assert use(world, "sso-dev")["AWSENV_PROFILE"] == "sso-dev"
    assert world.moto.actions() == [("AssumeRole", env["AWS_ACCESS_KEY_ID"])]

    sso.server.calls.clear()
    world.ok("sso", "login", "corp")
    assert sso.server.operations() == ["Authorize", "CreateToken"], "the registration is reused"
    assert not (world.home / ".aws" / "sso").exists()
    assert secrets_on_disk(world, *sso.server.issued) == []


def test_registration_scopes_are_the_sessions_or_the_clis_default(world, sso):  # noqa: F811
    config = world.home / ".aws" / "config"
    config.write_text(config.read_text() + SCOPED)
    world.ok("sso", "login", "wide")
    assert sso.server.calls[0][1]["scopes"] == ["sso:account:access", "codewhisperer:completions"]
    assert sso.server.calls[1][1]["scopes"] == "sso:account:access codewhisperer:completions"
    sso.server.calls.clear()
    world.ok("sso", "login", "bare")  # no scopes configured: sso:account:access, as the AWS CLI
    assert sso.server.calls[0][1]["scopes"] == ["sso:account:access"]
    assert "refreshToken" in sso.keyring_item("bare")["token"]
    assert use(world, "bare-ro")["AWS_ACCESS_KEY_ID"] == sso.server.role_keys[-1]


def test_the_device_flow_and_the_authorization_code_do_not_share_a_registration(world, sso):  # noqa: F811
    world.ok("sso", "login", "corp", "--use-device-code")
    assert sso.server.operations() == ["RegisterClient", "StartDeviceAuthorization", "VisitVerificationPage",
                                       "CreateToken"]
    assert use(world, "sandbox")["AWS_ACCESS_KEY_ID"] == sso.server.role_keys[-1]
    sso.server.calls.clear()
    world.ok("sso", "login", "corp")
    assert sso.server.operations() == ["RegisterClient", "Authorize", "CreateToken"]
    assert sso.server.calls[0][1]["grantTypes"] == GRANTS
    sso.server.calls.clear()
    world.ok("sso", "login", "corp", "--use-device-code")
    assert sso.server.operations()[:2] == ["RegisterClient", "StartDeviceAuthorization"]
    assert "grantTypes" not in sso.keyring_item()["registration"]


def test_no_browser_shows_the_authorize_url_and_waits_for_its_redirect(world, sso):  # noqa: F811
    with subprocess.Popen([AWSENV, "sso", "login", "corp", "--no-browser"], env=world.env, cwd=world.root,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True) as child:
        try:
            url = None
            for line in child.stderr:
                found = re.search(r"open this URL in a browser on this machine: (\S+)", line)
                if found:
                    url = found.group(1)
                    break
            assert url and url.startswith(f"{sso.server.url}/authorize?"), url
            page = urllib.request.urlopen(url, timeout=10).read().decode()  # follows the redirect home
            assert "You can close this tab" in page
            out, err = child.communicate(timeout=30)
        finally:
            child.kill()
    assert child.returncode == 0, err
    assert out == "" and "signed in to sso-session corp" in err
    assert sso.browsed() == [] and sso.server.operations() == ["RegisterClient", "Authorize", "CreateToken"]


# 3. refusals: one line, exit 1, nothing stored ------------------------------------------------------
def last_line(done) -> str:
    assert done.returncode == 1 and done.stdout == "" and "Traceback" not in done.stderr
    line = done.stderr.splitlines()[-1]
    assert line.startswith("awsenv: ") and "open this URL" not in done.stderr, done.stderr
    return line


def test_a_redirect_with_another_state_is_refused_and_its_code_never_traded(world, sso):  # noqa: F811
    sso.server.redirect_state = "forged-by-someone-else"
    line = last_line(world.run("sso", "login", "corp"))
    assert line == ("awsenv: refused a redirect to the sign-in to sso-session corp: its state is not the one "
                    "awsenv sent; run `awsenv sso login corp` again")
    assert "CreateToken" not in sso.server.operations() and "token" not in sso.keyring_item()
    assert world.run("use", "sandbox", "--shell", "bash").returncode == 1


def test_a_denied_authorization_is_one_line_with_exit_1_and_stores_nothing(world, sso):  # noqa: F811
    sso.server.deny = True
    line = last_line(world.run("sso", "login", "corp"))
    assert line == "awsenv: the sign-in to sso-session corp was denied in the browser"
    assert "CreateToken" not in sso.server.operations() and "token" not in sso.keyring_item()


def test_a_code_the_portal_no_longer_takes_is_one_line(world, sso):  # noqa: F811
    sso.server.code_ttl = -1
    line = last_line(world.run("sso", "login", "corp"))
    assert "did not take the authorization code for sso-session corp (InvalidGrantException)" in line, line
    assert "token" not in sso.keyring_item()


def test_a_session_the_portal_refuses_as_issuer_is_one_line(world, sso):  # noqa: F811
    sso.server.start_urls = ()
    line = last_line(world.run("sso", "login", "corp"))
    assert f"refused the sign-in to {START_URL}" in line and "InvalidRequestException" in line
    assert sso.browsed() == []


# 4. the loopback listener, in process ---------------------------------------------------------------
def get(url: str) -> int:
    try:
        return urllib.request.urlopen(url, timeout=5).status
    except urllib.error.HTTPError as err:
        return err.code


def test_pkce_pair_is_s256_of_an_unreserved_verifier():
    from awsenv.aws import ssoauth

    verifier, challenge = ssoauth.pkce_pair()
    assert re.fullmatch(r"[A-Za-z0-9._~-]{64}", verifier) and challenge == s256(verifier)
    assert ssoauth.pkce_pair()[0] != verifier


def test_the_listener_binds_loopback_takes_one_redirect_with_its_state_and_times_out():
    from awsenv.aws import ssoauth
    from awsenv.core.config import Portal
    from awsenv.core.errors import SsoError

    corp = Portal("corp", START_URL, REGION, (), session=True)
    listener = ssoauth.Callback("the-state")
    try:
        assert listener.socket.getsockname()[0] == "127.0.0.1"
        port = int(CALLBACK.fullmatch(listener.redirect_uri).group(1))
        started = time.monotonic()
        with pytest.raises(SsoError) as late:
            ssoauth.wait_for_code(listener, corp, "awsenv sso login corp", 0.3)
        assert time.monotonic() - started < 3 and "within 0.3 s" in str(late.value)
        assert "--use-device-code" in str(late.value) and "\n" not in str(late.value)
        assert get(f"http://127.0.0.1:{port}/favicon.ico") == 404
        assert get(listener.redirect_uri) == 400, "no code, no error: not a redirect, wait on"
        assert get(listener.redirect_uri + "?code=c&state=the-state") == 200
        assert get(listener.redirect_uri + "?code=c2&state=the-state") == 400, "once only"
        assert listener.wait(0) == "c"
    finally:
        listener.close()
    for query, outcome in (("code=c&state=other", ssoauth.WrongState), ("code=c", ssoauth.WrongState),
                           ("error=access_denied&state=other", ssoauth.WrongState),
                           ("error=%1B%5B31m%0Aforged&state=s", ssoauth.Denied),
                           ("code=%0A&state=s", ssoauth.Denied)):
        listener = ssoauth.Callback("s")
        try:
            assert get(listener.redirect_uri + "?" + query) == 200
            with pytest.raises(outcome) as caught:
                listener.wait(1)
            if outcome is ssoauth.Denied:
                assert str(caught.value) == "invalid", "what the redirect said is not echoed"
        finally:
            listener.close()
    listener = ssoauth.Callback("s")
    try:
        get(listener.redirect_uri + "?error=access_denied&state=s")
        with pytest.raises(SsoError) as denied:
            ssoauth.wait_for_code(listener, corp, "awsenv sso login corp", 1)
        assert str(denied.value) == "the sign-in to sso-session corp was denied in the browser"
    finally:
        listener.close()

