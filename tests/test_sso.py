"""IAM Identity Center (issue 10): sign-in against the stand-in (tests/sso_server.py),
tokens in the real keyring, role credentials in every command, the prompt hook in a real
shell, logout, import, profiles and doctor. The authorization-code sign-in itself is
test_sso_authcode.py's; here it is the way in, and the device flow is `--use-device-code`.

STS stays on moto; `sso` and `sso-oidc` go to the stand-in through
AWS_ENDPOINT_URL_SSO and AWS_ENDPOINT_URL_SSO_OIDC. The person at the browser is a
BROWSER script that visits the page it is given and follows its redirects: the device
flow's verification URL, which approves the sign-in, or awsenv's one-shot address of the
authorize page, which approves and redirects to awsenv's loopback listener."""
from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
import time
import urllib.request

import pytest
from conftest import BIN
from sso_server import ACCOUNTS, REGION, START_URL, SsoServer
from terminal import now
from helpers import env_after, secrets_on_disk, use
from test_hygiene import federation  # noqa: F401 - the fixture
from test_shells import INTERACTIVE, export


@pytest.fixture
def portal():
    server = SsoServer().start()
    yield server
    server.stop()


def oidc(server: SsoServer, service: str):
    import botocore.session
    from botocore import UNSIGNED
    from botocore.config import Config

    return botocore.session.get_session().create_client(
        service, region_name=REGION, endpoint_url=server.url, config=Config(signature_version=UNSIGNED)
    )


# 1. the stand-in, driven by botocore's own clients --------------------------------------
def test_stand_in_follows_botocore_models_and_checks_what_it_is_sent(portal):
    from botocore.exceptions import ClientError

    client = oidc(portal, "sso-oidc")
    reg = client.register_client(clientName="t", clientType="public", scopes=["sso:account:access"])
    with pytest.raises(ClientError) as bad_secret:
        client.start_device_authorization(clientId=reg["clientId"], clientSecret="wrong", startUrl=START_URL)
    assert bad_secret.value.response["Error"]["Code"] == "InvalidClientException"
    auth = client.start_device_authorization(
        clientId=reg["clientId"], clientSecret=reg["clientSecret"], startUrl=START_URL)
    grant = dict(clientId=reg["clientId"], clientSecret=reg["clientSecret"],
                 grantType="urn:ietf:params:oauth:grant-type:device_code")
    with pytest.raises(ClientError) as pending:
        client.create_token(deviceCode=auth["deviceCode"], **grant)
    assert pending.value.response["Error"]["Code"] == "AuthorizationPendingException"
    with pytest.raises(ClientError) as unknown:
        client.create_token(deviceCode="not-a-device-code", **grant)
    assert unknown.value.response["Error"]["Code"] == "InvalidGrantException"
    urllib.request.urlopen(auth["verificationUriComplete"]).read()
    time.sleep(1)  # the interval
    token = client.create_token(deviceCode=auth["deviceCode"], **grant)
    assert token["refreshToken"] and token["expiresIn"] == portal.token_ttl

    sso = oidc(portal, "sso")
    with pytest.raises(ClientError) as unauthorized:
        sso.get_role_credentials(accessToken="nope", accountId="111111111111", roleName="ReadOnly")
    assert unauthorized.value.response["Error"]["Code"] == "UnauthorizedException"
    with pytest.raises(ClientError) as forbidden:
        sso.get_role_credentials(accessToken=token["accessToken"], accountId="222222222222",
                                 roleName="AdministratorAccess")
    assert forbidden.value.response["Error"]["Code"] == "ForbiddenException"
    creds = sso.get_role_credentials(accessToken=token["accessToken"], accountId="111111111111",
                                     roleName="ReadOnly")["roleCredentials"]
    assert creds["accessKeyId"].startswith("ASIA") and creds["expiration"] > time.time() * 1000
    pages = sso.get_paginator("list_accounts").paginate(accessToken=token["accessToken"])
    assert [a["accountId"] for page in pages for a in page["accountList"]] == list(ACCOUNTS)
    roles = sso.list_account_roles(accessToken=token["accessToken"], accountId="111111111111", maxResults=10)
    assert [r["roleName"] for r in roles["roleList"]] == ACCOUNTS["111111111111"][1]
    sso.logout(accessToken=token["accessToken"])
    with pytest.raises(ClientError):
        sso.list_accounts(accessToken=token["accessToken"])
    with pytest.raises(ClientError) as refresh:
        client.create_token(refreshToken=token["refreshToken"], **{**grant, "grantType": "refresh_token"})
    assert refresh.value.response["Error"]["Code"] == "InvalidGrantException"
    assert portal.violations == []


# 2. config ------------------------------------------------------------------------------
SSO_CONFIG = f"""
[sso-session corp]
sso_start_url = {START_URL}
sso_region = {REGION}
sso_registration_scopes = sso:account:access

[profile sandbox]
sso_session = corp
sso_account_id = 111111111111
sso_role_name = AdministratorAccess
region = eu-central-1

[profile sandbox-ro]
sso_session = corp
sso_account_id = 111111111111
sso_role_name = ReadOnly

[profile legacy]
sso_start_url = {START_URL}
sso_region = {REGION}
sso_account_id = 222222222222
sso_role_name = ReadOnly

[profile noaccess]
sso_session = corp
sso_account_id = 222222222222
sso_role_name = AdministratorAccess

[profile sso-dev]
role_arn = arn:aws:iam::123456789012:role/dev
source_profile = sandbox

[profile sso-deep]
role_arn = arn:aws:iam::123456789012:role/prod
source_profile = sso-dev
"""


def test_config_reads_sso_sessions_legacy_profiles_and_chains(tmp_path):
    from awsenv.core.config import AwsConfig

    path = tmp_path / "config"
    path.write_text(SSO_CONFIG + "\n[profile lost]\nsso_session = nowhere\nsso_account_id = 1\nsso_role_name = r\n")
    config = AwsConfig(str(path), str(tmp_path / "credentials"))
    assert list(config.sso_sessions) == ["corp"]
    assert "corp" not in config.names()  # a session is not a profile
    sandbox = config.profile("sandbox")
    assert sandbox.is_sso and not sandbox.is_role
    portal = config.portal(sandbox)
    assert (portal.name, portal.start_url, portal.region, portal.scopes, portal.session) == (
        "corp", START_URL, REGION, ("sso:account:access",), True)
    assert config.portal(config.profile("sandbox-ro")).name == "corp"
    legacy = config.portal(config.profile("legacy"))
    assert (legacy.name, legacy.region, legacy.scopes, legacy.session) == (START_URL, REGION, (), False)
    assert [p.name for p in config.chain("sso-deep")] == ["sso-deep", "sso-dev", "sandbox"]
    assert config.built_on("sandbox") == {"sandbox", "sso-dev", "sso-deep"}
    assert not config.profile("sso-dev").is_sso
    with pytest.raises(Exception) as lost:
        config.portal(config.profile("lost"))
    assert "no [sso-session nowhere]" in str(lost.value) and f"{path}:" in str(lost.value)


def test_sso_session_names_are_read_as_botocore_reads_them(tmp_path):
    from botocore.configloader import build_profile_map, raw_config_parse

    from awsenv.core.config import AwsConfig

    path = tmp_path / "config"
    headers = ['sso-session plain', 'sso-session "my corp"', "sso-session  spaced ", "sso-session 'odd",
               "sso-session a b", "sso-sessionx y", "sso-session"]
    path.write_text("".join(f"[{h}]\nsso_region = {REGION}\n\n" for h in headers))
    expected = build_profile_map(raw_config_parse(str(path)))["sso_sessions"]
    assert list(AwsConfig(str(path), str(tmp_path / "none")).sso_sessions) == list(expected)
    assert "my corp" in expected


# 3. sign-in -------------------------------------------------------------------------------
class Sso:
    """The world with the stand-in portal, an SSO config and a person at the browser."""

    def __init__(self, world, server: SsoServer):
        self.world, self.server = world, server
        self.visits = world.tmp / "browser-visits"
        browser = world.root / "browser"
        # What a person does: open the page (which approves), and note that it happened.
        browser.write_text(
            f"#!{sys.executable}\nimport sys, urllib.request\n"
            f"open({str(self.visits)!r}, 'a').write(sys.argv[1] + '\\n')\n"
            "print('browser chatter on stdout')\n"
            "urllib.request.urlopen(sys.argv[1]).read()\n"
        )
        browser.chmod(0o755)
        world.env.update(server.env(), BROWSER=str(browser))
        config = world.home / ".aws" / "config"
        config.write_text(config.read_text() + SSO_CONFIG)

    def browsed(self) -> list[str]:
        return self.visits.read_text().splitlines() if self.visits.exists() else []

    def keyring_item(self, name: str = "corp") -> dict:
        from awsenv.store.vault import SERVICE

        done = subprocess.run(
            [sys.executable, "-c", f"import keyring; print(keyring.get_password({SERVICE!r}, 'sso:' + {name!r}) or '')"],
            env=self.world.env, capture_output=True, text=True, check=True,
        )
        return json.loads(done.stdout) if done.stdout.strip() else {}


@pytest.fixture
def sso(world, portal):
    return Sso(world, portal)


def one_line(done) -> str:
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("awsenv: "), done.stderr
    assert "Traceback" not in done.stderr
    return lines[0]


def test_the_device_flow_signs_in_with_use_device_code_and_the_tokens_go_to_the_keyring(world, sso):
    done = world.ok("sso", "login", "corp", "--use-device-code")
    assert done.stdout == ""  # the browser's chatter went to stderr, not to stdout
    ops = sso.server.operations()
    assert ops == ["RegisterClient", "StartDeviceAuthorization", "VisitVerificationPage", "CreateToken"]
    assert sso.server.calls[0][1]["scopes"] == ["sso:account:access"]
    user_code = sso.server.calls[2][1]["userCode"]
    assert user_code in done.stderr and "signed in to sso-session corp" in done.stderr
    assert sso.browsed() == [f"{sso.server.url}/device?user_code={user_code}"]
    item = sso.keyring_item()
    assert item["startUrl"] == START_URL and item["region"] == REGION
    assert item["registration"]["clientSecret"] in sso.server.issued
    assert item["token"]["accessToken"] in sso.server.issued and item["token"]["refreshToken"] in sso.server.issued
    assert "grantTypes" not in item["registration"] and "grantTypes" not in sso.server.calls[0][1]

    env = use(world, "sandbox")
    assert env["AWS_ACCESS_KEY_ID"] == sso.server.role_keys[-1]
    assert env["AWSENV_PROFILE"] == "sandbox" and env["AWS_REGION"] == "eu-central-1"
    assert 3500 < int(env["AWSENV_EXPIRES"]) - time.time() <= 3600
    assert sso.server.calls[-1] == ("GetRoleCredentials",
                                    {"account_id": "111111111111", "role_name": "AdministratorAccess"})
    assert not (world.home / ".aws" / "sso").exists()
    assert secrets_on_disk(world, *sso.server.issued) == []


def test_one_sign_in_serves_every_profile_of_the_session(world, sso):
    world.ok("sso", "login", "corp")
    first = use(world, "sandbox")
    second = use(world, "sandbox-ro")
    assert first["AWS_ACCESS_KEY_ID"] != second["AWS_ACCESS_KEY_ID"]
    assert sso.server.operations().count("Authorize") == 1
    assert sso.server.operations()[-2:] == ["GetRoleCredentials", "GetRoleCredentials"]
    sso.server.calls.clear()
    assert use(world, "sandbox")["AWS_ACCESS_KEY_ID"] == first["AWS_ACCESS_KEY_ID"]
    assert use(world, "sandbox", env={"AWSENV_AGENT": "0"})["AWS_ACCESS_KEY_ID"] == first["AWS_ACCESS_KEY_ID"]
    assert sso.server.operations() == [], "cached role credentials are reused, from the agent or the keyring"
    world.ok("sso", "login", "sandbox-ro")  # a profile names its session's sign-in
    assert "RegisterClient" not in sso.server.operations(), "the registration is reused"
    assert sso.server.operations().count("Authorize") == 1


def test_polling_honours_the_interval_pending_and_slow_down(world, sso):
    sso.server.slow_down_once = True
    # The first poll is told to slow down, the second that the sign-in is pending.
    approver = sso.server.approve_after_polls(2)
    try:
        done = world.ok("sso", "login", "corp", "--no-browser", "--use-device-code")
    finally:
        approver.set()
    assert sso.browsed() == [] and "/device?user_code=" in done.stderr
    polls = sso.server.operations().count("CreateToken")
    assert polls == 3 and sso.server.violations == []


def test_silent_refresh_with_the_refresh_token(world, sso):
    sso.server.token_ttl = 30  # less than awsenv's margin: expired for it at once
    world.ok("sso", "login", "corp")
    old = sso.keyring_item()["token"]
    sso.server.token_ttl = 8 * 3600
    sso.server.calls.clear()
    env = use(world, "sandbox")  # no terminal: it must be silent
    assert env["AWS_ACCESS_KEY_ID"] == sso.server.role_keys[-1]
    assert sso.server.operations() == ["CreateToken", "GetRoleCredentials"]
    assert sso.server.calls[0][1]["grantType"] == "refresh_token"
    new = sso.keyring_item()["token"]
    assert new["accessToken"] != old["accessToken"] and new["refreshToken"] != old["refreshToken"]
    # A token the portal stopped taking before its time is renewed the same way.
    sso.server.expire_access_tokens()
    sso.server.calls.clear()
    use(world, "sandbox-ro")
    assert sso.server.operations() == ["GetRoleCredentials", "CreateToken", "GetRoleCredentials"]
    assert len(sso.browsed()) == 1, "no second sign-in"


def test_legacy_profile_signs_in_without_scopes_or_refresh_token(world, sso):
    world.ok("sso", "login", "legacy")
    assert sso.server.calls[0] == ("RegisterClient", {"scopes": [], "clientName": "awsenv"})
    item = sso.keyring_item(START_URL)
    assert "refreshToken" not in item["token"]
    assert use(world, "legacy")["AWS_ACCESS_KEY_ID"] == sso.server.role_keys[-1]
    sso.server.expire_access_tokens()
    done = world.run("use", "legacy", "--shell", "bash", "--refresh")
    assert done.returncode == 1 and done.stdout == ""
    assert "needs an IAM Identity Center sign-in" in one_line(done)
    assert "awsenv sso login legacy" in done.stderr


# 4. role credentials in every command ----------------------------------------------------------
def test_role_chained_from_an_sso_profile_is_assumed_with_its_credentials(world, sso):
    world.ok("sso", "login", "corp")
    world.moto.calls.clear()
    env = use(world, "sso-deep")
    sso_key = sso.server.role_keys[-1]
    actions = world.moto.actions()
    assert [a for a, _ in actions] == ["AssumeRole", "AssumeRole"]
    assert actions[0][1] == sso_key, "the first link is signed by the SSO role credentials"
    assert actions[1][1] not in (sso_key, "") and env["AWS_ACCESS_KEY_ID"] not in (sso_key, actions[1][1])
    assert world.moto.calls[0].params["RoleArn"].endswith(":role/dev")
    assert env["AWSENV_PROFILE"] == "sso-deep"
    sso.server.calls.clear()
    world.moto.calls.clear()
    assert use(world, "sandbox")["AWS_ACCESS_KEY_ID"] == sso_key  # the source was cached on the way
    assert sso.server.operations() == [] and world.moto.actions() == []


def test_export_exec_credential_process_and_login_take_sso_profiles(world, sso, federation):
    world.ok("sso", "login", "corp")
    doc = json.loads(world.ok("export", "sandbox", "--format", "json").stdout)
    assert doc["Version"] == 1 and doc["AccessKeyId"] == sso.server.role_keys[-1] and doc["Expiration"].endswith("Z")
    assert f"export AWS_ACCESS_KEY_ID='{doc['AccessKeyId']}';" in world.ok("export", "sandbox").stdout
    done = world.ok("exec", "sandbox", "--", "sh", "-c", 'printf %s "$AWS_ACCESS_KEY_ID:$AWSENV_PROFILE"')
    assert done.stdout == f"{doc['AccessKeyId']}:sandbox"
    config = world.home / ".aws" / "config"
    config.write_text(config.read_text() + "\n[profile viasso]\ncredential_process = awsenv export --format json sandbox\n")
    world.moto.calls.clear()
    aws = world.run("exec", "viasso", "--", "aws", "sts", "get-caller-identity", "--region", "us-east-1")
    assert aws.returncode == 0, aws.stderr
    assert world.moto.actions()[-1] == ("GetCallerIdentity", doc["AccessKeyId"])
    world.ok("login", "sandbox", "--print", env={"AWSENV_FEDERATION_URL": federation.url})
    session = json.loads(federation.requests[0]["Session"])
    assert session["sessionId"] == doc["AccessKeyId"], "role credentials sign in to the console as they are"
    assert "GetFederationToken" not in [a for a, _ in world.moto.actions()]


def test_an_sso_profile_changed_in_the_config_is_not_served_from_its_old_credentials(world, sso):
    """Mutations (cosmic-ray): the account or the role left out of the SSO cache key
    (`or ""` made `and ""`): after an edit, `use sandbox` would hand out the old role."""
    world.ok("sso", "login", "corp")
    use(world, "sandbox")
    config = world.home / ".aws" / "config"
    text = config.read_text()
    for before, after, asked in (("sso_role_name = AdministratorAccess", "sso_role_name = ReadOnly",
                                  ("111111111111", "ReadOnly")),
                                 ("sso_account_id = 111111111111", "sso_account_id = 222222222222",
                                  ("222222222222", "ReadOnly"))):
        text = text.replace(before, after, 1)
        config.write_text(text)
        sso.server.calls.clear()
        use(world, "sandbox")
        assert [(op, q.get("account_id"), q.get("role_name")) for op, q in sso.server.calls] == [
            ("GetRoleCredentials", *asked)]


def test_sso_profile_refuses_duration_and_a_key(world, sso):
    world.ok("sso", "login", "corp")
    done = world.run("use", "sandbox", "--duration", "3600", "--shell", "bash")
    assert done.returncode == 2 and done.stdout == "" and "permission set" in one_line(done)


def test_list_shows_sso_profiles_and_add_refuses_them(world, sso):
    world.ok("sso", "login", "corp")
    use(world, "sandbox")
    rows = {r["profile"]: r for r in json.loads(world.ok("list", "--json").stdout)["profiles"]}
    assert rows["sandbox"]["kind"] == "sso" and rows["sandbox"]["source"] == "sso-session corp"
    assert rows["sandbox"]["session_seconds_left"] > 3000 and rows["sandbox-ro"]["session_seconds_left"] is None
    assert rows["legacy"]["source"] == START_URL and rows["sso-dev"]["kind"] == "role"
    done = world.run("add", "sandbox", "--env", env={"AWS_ACCESS_KEY_ID": "AKIAEXAMPLE123456789", "AWS_SECRET_ACCESS_KEY": "x"})
    assert done.returncode == 2 and "IAM Identity Center" in one_line(done)


# 6. errors: one line, an exit code, nothing on stdout ---------------------------------------
def closed_port() -> str:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


def test_a_start_url_that_does_not_answer(world, sso):
    done = world.run("sso", "login", "corp", env={"AWS_ENDPOINT_URL_SSO_OIDC": closed_port()})
    assert done.returncode == 1 and done.stdout == ""
    line = one_line(done)
    assert "does not answer for the start URL" in line and START_URL in line and REGION in line
    sso.server.start_urls = ()
    done = world.run("sso", "login", "corp")
    assert done.returncode == 1
    assert f"refused the sign-in to {START_URL}" in one_line(done) and "InvalidRequestException" in done.stderr


@pytest.mark.parametrize("flow", [[], ["--use-device-code"]], ids=["auth-code", "device-code"])
def test_the_user_denies_access_in_the_browser(world, sso, flow):
    sso.server.deny = True
    done = world.run("sso", "login", "corp", *flow)
    assert done.returncode == 1 and done.stdout == "" and "Traceback" not in done.stderr
    assert done.stderr.splitlines()[-1] == "awsenv: the sign-in to sso-session corp was denied in the browser"
    assert "token" not in sso.keyring_item()
    done = world.run("use", "sandbox", "--shell", "bash")
    assert done.returncode == 1 and done.stdout == ""


def test_a_device_code_that_expired_before_approval(world, sso):
    sso.server.device_ttl = 2
    done = world.run("sso", "login", "corp", "--no-browser", "--use-device-code")
    assert done.returncode == 1 and done.stdout == ""
    assert "expired before it was approved" in done.stderr.splitlines()[-1]
    assert sso.server.violations == []


def test_no_assignment_for_the_account_or_role(world, sso):
    world.ok("sso", "login", "corp")
    done = world.run("use", "noaccess", "--shell", "bash")
    assert done.returncode == 1 and done.stdout == ""
    line = one_line(done)
    assert "no access to role AdministratorAccess in account 222222222222" in line and "ForbiddenException" in line


def test_no_terminal_and_no_valid_token(world, sso):
    for args in (("use", "sandbox", "--shell", "bash"), ("export", "sso-dev"), ("exec", "sandbox", "--", "true")):
        done = world.run(*args)
        assert done.returncode == 1 and done.stdout == ""
        line = one_line(done)
        assert "needs an IAM Identity Center sign-in (sso-session corp)" in line, line
        assert "no terminal" in line and "awsenv sso login corp" in line
    assert sso.server.operations() == [], "nothing is asked of the portal before a sign-in"


# 4b. the prompt hook in a real shell ------------------------------------------------------------
SIGN_IN_QUESTION = "Sign in to sso-session corp for sandbox"


def start_short_sandbox(world, sso, term, shell, use: str = "awsenv use sandbox"):
    """A shell whose sandbox credentials have 15 minutes left, not yet due (window 600 s)."""
    sso.server.role_ttl = 900
    world.ok("sso", "login", "corp")
    t = term(shell)
    t.run(use)
    assert 0 < t.number("AWSENV_EXPIRES") - now() <= 900
    sso.server.role_ttl = 3600
    return t


def sign_in_again_at_the_hooks_question(t, sso, shell, note: str) -> None:
    """The portal ended the sign-in; the hook, told to renew, asks; the user says yes."""
    sso.server.expire_access_tokens()
    sso.server.revoke_refresh_tokens()
    t.child.send(export(shell, "AWSENV_REFRESH_WINDOW", "1000") + "\r")
    t.expect(SIGN_IN_QUESTION)
    assert re.search(note, t.output), t.output[-400:]
    t.child.send("y\r")
    t.prompt()
    assert t.number("AWSENV_EXPIRES") - now() > 1000
    assert len(sso.browsed()) == 2


@pytest.mark.parametrize("shell", ["bash"])
def test_hook_renews_silently_while_the_token_is_valid(world, sso, term, shell):
    t = start_short_sandbox(world, sso, term, shell)
    sso.server.calls.clear()
    t.run(export(shell, "AWSENV_REFRESH_WINDOW", "1000"))
    assert t.number("AWSENV_EXPIRES") - now() > 1000
    assert SIGN_IN_QUESTION not in t.output
    assert sso.server.operations() == ["GetRoleCredentials"]


@pytest.mark.parametrize("shell", INTERACTIVE)
def test_hook_asks_to_sign_in_again_when_the_token_cannot_be_renewed(world, sso, term, shell):
    t = start_short_sandbox(world, sso, term, shell)
    sign_in_again_at_the_hooks_question(t, sso, shell, r"credentials of sandbox expire in 1[45]m")
    assert t.value("AWSENV_PROFILE") == "sandbox"
    assert sso.server.operations()[-1] == "GetRoleCredentials"
    mark = len(t.output)
    t.run("")
    assert SIGN_IN_QUESTION not in t.output[mark:]


@pytest.mark.parametrize("shell", ["bash", "fish"])
def test_hook_sign_in_skipped_with_an_empty_answer_until_expiry(world, sso, term, shell):
    t = start_short_sandbox(world, sso, term, shell)
    key = t.value("AWS_ACCESS_KEY_ID")
    sso.server.expire_access_tokens()
    sso.server.revoke_refresh_tokens()
    t.child.send(export(shell, "AWSENV_REFRESH_WINDOW", "1000") + "\r")
    t.expect(SIGN_IN_QUESTION)
    t.child.send("\r")
    t.prompt()
    mark = len(t.output)
    for _ in range(3):
        t.run("")
    assert SIGN_IN_QUESTION not in t.output[mark:]
    assert t.value("AWS_ACCESS_KEY_ID") == key and 0 < t.number("AWSENV_EXPIRES") - now() <= 900
    assert len(sso.browsed()) == 1 and sso.server.operations().count("Authorize") == 1


def test_refresh_warn_says_a_sign_in_is_needed_and_opens_no_browser(world, sso):
    """AWSENV_REFRESH=warn on a terminal: the hook says once that a sign-in is needed,
    and starts no device flow. Mutation (cosmic-ray): the SSO prompt flag
    `request.prompt and not keyless` made `or`."""
    import pexpect
    from conftest import AWSENV

    sso.server.role_ttl = 900
    world.ok("sso", "login", "corp")
    env = {**use(world, "sandbox"), "AWSENV_REFRESH": "warn", "AWSENV_REFRESH_WINDOW": "1000"}
    sso.server.expire_access_tokens()
    sso.server.revoke_refresh_tokens()
    sso.server.calls.clear()
    child = pexpect.spawn(AWSENV, ["refresh", "--shell", "bash"], env=env, cwd=str(world.root),
                          encoding="utf-8", timeout=30)
    child.expect(pexpect.EOF)
    child.close()
    output = child.before
    assert child.exitstatus == 0, output
    assert SIGN_IN_QUESTION not in output and "cannot refresh sandbox" in output, output
    assert "awsenv sso login corp" in output, output
    assert re.search(r"export AWSENV_NEXT_CHECK='\d+';", output), "warned once, not on every prompt"
    assert {"Authorize", "StartDeviceAuthorization"}.isdisjoint(sso.server.operations()) and len(sso.browsed()) == 1


# 4c. the agent renews them; the endpoint serves them --------------------------------------------
def test_the_agent_renews_sso_credentials_from_the_stored_token_ahead_of_need(world, sso):
    from test_broker import wait_until, watched
    from test_structure import HEAVY, heavy, imported, wait_for_agent

    # Credentials of 15 minutes: inside the agent's lead (window 600 + 60 + 300) at once.
    sso.server.role_ttl = 900
    world.ok("sso", "login", "corp")
    first = use(world, "sandbox")
    wait_for_agent(world)
    # The portal stopped taking the access token (the keyring still thinks it good): the
    # agent must renew it with the refresh token, and store what it got.
    old = sso.keyring_item()["token"]
    sso.server.expire_access_tokens()
    sso.server.role_ttl = 3600
    sso.server.calls.clear()
    second = use(world, "sandbox")  # served by the agent, which now watches sandbox
    assert second["AWS_ACCESS_KEY_ID"] == first["AWS_ACCESS_KEY_ID"]
    wait_until(lambda: watched(world, "sandbox").get("renewals"), what="the agent's renewal")
    assert sso.server.operations() == ["GetRoleCredentials", "CreateToken", "GetRoleCredentials"]
    assert sso.server.calls[1][1]["grantType"] == "refresh_token"
    assert watched(world, "sandbox")["state"] == "fresh"
    new = sso.keyring_item()["token"]
    assert new["refreshToken"] != old["refreshToken"] and new["accessToken"] in sso.server.issued
    assert len(sso.browsed()) == 1, "no new sign-in"

    # The prompt hook finds the credentials due: its refresh is a cache hit.
    sso.server.calls.clear()
    due = {"AWSENV_PROFILE": "sandbox", "AWSENV_EXPIRES": first["AWSENV_EXPIRES"],
           "AWS_ACCESS_KEY_ID": first["AWS_ACCESS_KEY_ID"], "PYTHONPROFILEIMPORTTIME": "1"}
    done = world.ok("refresh", "--shell", "bash", env=due)
    assert sso.server.operations() == [] and world.moto.actions() == []
    assert heavy(imported(done.stderr), HEAVY) == [], "no SDK and no keyring at the prompt"
    renewed = env_after(world, done.stdout)
    assert renewed["AWS_ACCESS_KEY_ID"] == sso.server.role_keys[-1] != first["AWS_ACCESS_KEY_ID"]
    assert int(renewed["AWSENV_EXPIRES"]) - time.time() > 3000
    assert secrets_on_disk(world, *sso.server.issued) == []


def test_the_hooks_refresh_asks_the_agent_for_sso_credentials_it_does_not_watch_yet(world, sso):
    """sandbox is due and the agent never watched it (the switch came before it
    started): the hook's refresh asks the agent, which renews with the stored token,
    instead of importing botocore at the prompt. Mutation (cosmic-ray): the agent asked
    only when the credentials were still cached (`found is None` made `is not None`)."""
    from test_broker import age
    from test_structure import HEAVY, heavy, imported, wait_for_agent

    world.ok("sso", "login", "corp")
    first = use(world, "sandbox")  # no agent yet: this run starts it
    wait_for_agent(world)
    age(world, "sandbox", 200, kind="sso")
    sso.server.calls.clear()
    due = {"AWSENV_PROFILE": "sandbox", "AWSENV_EXPIRES": str(int(time.time()) + 200),
           "AWS_ACCESS_KEY_ID": first["AWS_ACCESS_KEY_ID"], "PYTHONPROFILEIMPORTTIME": "1"}
    done = world.ok("refresh", "--shell", "bash", env=due)
    assert heavy(imported(done.stderr), HEAVY) == [], "no SDK and no keyring at the prompt"
    assert sso.server.operations() == ["GetRoleCredentials"]
    renewed = env_after(world, done.stdout)
    assert renewed["AWS_ACCESS_KEY_ID"] == sso.server.role_keys[-1] != first["AWS_ACCESS_KEY_ID"]


def test_the_agent_waits_for_the_user_when_only_a_sign_in_would_do(world, sso):
    from test_broker import age, wait_until, watched
    from test_structure import wait_for_agent

    world.ok("sso", "login", "corp")
    use(world, "sandbox")
    wait_for_agent(world)
    use(world, "sandbox")  # through the agent: it watches sandbox
    wait_until(lambda: watched(world, "sandbox").get("state") == "fresh", what="watching")
    sso.server.expire_access_tokens()
    sso.server.revoke_refresh_tokens()
    sso.server.calls.clear()
    age(world, "sandbox", 500, kind="sso")
    wait_until(lambda: watched(world, "sandbox").get("state") == "needs the user", what="giving up")
    # It tried the token, then the refresh token; it never starts a sign-in itself.
    assert sso.server.operations() == ["GetRoleCredentials", "CreateToken"]
    time.sleep(1)
    assert len(sso.server.operations()) == 2, "no retries while only the user can act"
    assert len(sso.browsed()) == 1
    # A new sign-in by the user is what the agent waited for.
    world.ok("sso", "login", "corp")
    assert use(world, "sandbox")["AWS_ACCESS_KEY_ID"] == sso.server.role_keys[-1]


def test_use_server_serves_sso_credentials_and_the_agent_renews_them(world, sso):
    from test_broker import age, wait_until
    from test_endpoint import STATIC, caller, served

    world.ok("sso", "login", "corp")
    env = served(world, "sandbox")
    for name in STATIC:
        assert name not in env
    assert 3500 < int(env["AWSENV_EXPIRES"]) - time.time() <= 3600

    def signer() -> str:
        world.moto.calls.clear()
        done = caller(world, env, sys.executable, "-c", "import boto3; boto3.client('sts').get_caller_identity()")
        assert done.returncode == 0, done.stderr
        (call,) = [c for c in world.moto.calls if c.action == "GetCallerIdentity"]
        return call.key_id

    assert signer() == sso.server.role_keys[-1]
    first = sso.server.role_keys[-1]
    # The credentials near their end: the agent renews them from the stored token, and the
    # endpoint hands out the new ones.
    age(world, "sandbox", 100, kind="sso")
    wait_until(lambda: len(sso.server.role_keys) > 1 and sso.server.role_keys[-1] != first, what="the renewal")
    assert signer() == sso.server.role_keys[-1] != first
    # A role chained from the SSO profile: the prompt's time is the SSO credentials' end,
    # from which the agent renews the role.
    chained = served(world, "sso-dev")
    assert caller(world, chained, str(BIN / "aws"), "sts", "get-caller-identity").returncode == 0
    assert 3000 < int(chained["AWSENV_EXPIRES"]) - time.time() <= 3600


@pytest.mark.parametrize("shell", ["bash", "fish"])
def test_server_mode_hook_asks_to_sign_in_when_the_token_cannot_be_renewed(world, sso, term, shell):
    world.env["AWSENV_BROKER_LEAD"] = "0"  # the agent leaves these 15 minutes alone
    t = start_short_sandbox(world, sso, term, shell, "awsenv use sandbox --server")
    assert t.number("AWSENV_SERVED") > 0
    sign_in_again_at_the_hooks_question(t, sso, shell, r"sandbox's endpoint renews from ends in 1[45]m")
    t.run("aws sts get-caller-identity --output text --query Account")
    assert sso.server.role_keys[-1] in {c.key_id for c in world.moto.calls if c.action == "GetCallerIdentity"}


# 5. logout, import, profiles, doctor -------------------------------------------------------------
def test_logout_ends_the_portal_session_and_drops_what_came_from_it(world, sso):
    world.add_keys()
    world.ok("use", "dev", "--mfa-code", "123456", "--shell", "bash")
    world.ok("sso", "login", "corp")
    use(world, "sso-dev")  # caches sandbox and the role built on it
    token = sso.keyring_item()["token"]["accessToken"]
    done = world.ok("sso", "logout", "corp")
    assert "signed out of sso-session corp; dropped 2 cached session(s)" in done.stderr
    assert sso.server.operations()[-1] == "Logout" and token not in sso.server.tokens
    item = sso.keyring_item()
    assert "token" not in item and item["registration"]["clientId"], "the registration outlives a sign-out"
    rows = {r["profile"]: r for r in json.loads(world.ok("list", "--json").stdout)["profiles"]}
    assert rows["sandbox"]["session_expires"] is None and rows["sso-dev"]["session_expires"] is None
    assert rows["dev"]["session_expires"] is not None, "credentials from elsewhere stay"
    done = world.run("use", "sandbox", "--shell", "bash")
    assert done.returncode == 1 and "needs an IAM Identity Center sign-in" in one_line(done)
    world.ok("sso", "login", "corp")
    assert sso.server.operations().count("RegisterClient") == 1


def cli_login(server: SsoServer, world, session: str = "corp", expires_in: int | None = None) -> dict:
    """What `aws sso login` leaves in ~/.aws/sso/cache: a token file named by the SHA-1
    of the session name, and the client registration beside it."""
    client = oidc(server, "sso-oidc")
    reg = client.register_client(clientName="botocore-client-corp", clientType="public",
                                 scopes=["sso:account:access"])
    auth = client.start_device_authorization(clientId=reg["clientId"], clientSecret=reg["clientSecret"],
                                             startUrl=START_URL)
    server.approve_pending()
    token = client.create_token(clientId=reg["clientId"], clientSecret=reg["clientSecret"],
                                grantType="urn:ietf:params:oauth:grant-type:device_code",
                                deviceCode=auth["deviceCode"])
    stamp = lambda epoch: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))  # noqa: E731
    cache = world.home / ".aws" / "sso" / "cache"
    cache.mkdir(parents=True, exist_ok=True)
    data = {
        "startUrl": START_URL, "region": REGION, "accessToken": token["accessToken"],
        "expiresAt": stamp(time.time() + (expires_in if expires_in is not None else token["expiresIn"])),
        "clientId": reg["clientId"], "clientSecret": reg["clientSecret"],
        "registrationExpiresAt": stamp(reg["clientSecretExpiresAt"]), "refreshToken": token["refreshToken"],
    }
    (cache / f"{hashlib.sha1(session.encode()).hexdigest()}.json").write_text(json.dumps(data))
    (cache / "0123456789abcdef0123456789abcdef01234567.json").write_text(json.dumps({
        "clientId": reg["clientId"], "clientSecret": reg["clientSecret"],
        "expiresAt": stamp(reg["clientSecretExpiresAt"]), "scopes": ["sso:account:access"]}))
    server.calls.clear()
    return data


def test_import_moves_the_cli_token_into_the_keyring(world, sso):
    data = cli_login(sso.server, world)
    cache = world.home / ".aws" / "sso" / "cache"
    kept = world.ok("import", "corp")
    assert "still in" in kept.stderr and len(list(cache.iterdir())) == 2
    done = world.ok("import", "--delete-plaintext")
    assert "moved the AWS CLI's sign-in to sso-session corp into the keyring" in done.stderr
    assert list(cache.iterdir()) == []
    item = sso.keyring_item()
    assert item["token"]["accessToken"] == data["accessToken"] and item["registration"]["clientId"] == data["clientId"]
    env = use(world, "sandbox")
    assert env["AWS_ACCESS_KEY_ID"] == sso.server.role_keys[-1]
    assert sso.server.operations() == ["GetRoleCredentials"] and sso.browsed() == []
    sso.server.expire_access_tokens()  # the imported refresh token and registration work too
    use(world, "sandbox-ro")
    assert sso.server.operations()[1:] == ["GetRoleCredentials", "CreateToken", "GetRoleCredentials"]


def test_import_leaves_an_expired_cli_token_alone(world, sso):
    cli_login(sso.server, world, expires_in=-60)
    sso.server.revoke_refresh_tokens()
    token = world.home / ".aws" / "sso" / "cache" / f"{hashlib.sha1(b'corp').hexdigest()}.json"
    data = json.loads(token.read_text())
    data.pop("refreshToken")
    token.write_text(json.dumps(data))
    done = world.run("import", "corp")
    assert done.returncode == 2 and "nor a usable AWS CLI token" in one_line(done)
    assert sso.keyring_item() == {}


def test_sso_profiles_lists_assignments_and_write_appends_only_what_is_missing(world, sso):
    config = world.home / ".aws" / "config"
    config.write_bytes(config.read_bytes() + b"# a last line without its newline")
    before = config.read_bytes()
    world.ok("sso", "login", "corp")
    listing = world.ok("sso", "profiles", "corp").stdout.splitlines()
    assert listing[0].split() == ["PROFILE", "ACCOUNT", "ACCOUNT", "NAME", "ROLE", "STATE"]
    rows = {line.split()[0]: line.split()[-1] for line in listing[1:]}
    assert rows == {"sandbox": "configured", "sandbox-ro": "configured", "prod-account.ReadOnly": "missing"}
    assert config.read_bytes() == before
    done = world.ok("sso", "profiles", "corp", "--write")
    assert "added 1 profile(s)" in done.stderr
    after = config.read_bytes()
    assert after.startswith(before), "every existing byte is kept"
    assert after[len(before):].decode() == (
        "\n\n[profile prod-account.ReadOnly]\nsso_session = corp\nsso_account_id = 222222222222\n"
        f"sso_role_name = ReadOnly\nregion = {REGION}\n")
    assert use(world, "prod-account.ReadOnly")["AWS_ACCESS_KEY_ID"] == sso.server.role_keys[-1]
    world.ok("sso", "profiles", "corp", "--write")
    assert config.read_bytes() == after, "nothing is missing any more"
    pages = [d for op, d in sso.server.calls if op == "ListAccounts"]
    assert len(pages) >= 2, "every page of accounts is read"


def test_sso_profiles_write_keeps_what_the_portal_sent_as_data(world, sso):
    """The portal's account IDs, account names and role names reach ~/.aws/config: each
    must match its AWS pattern (12 ASCII digits; IAM's role name, 1 to 64 of
    [A-Za-z0-9_+=,.@-]; an account name of up to 128 characters, none of them a control
    character), or its assignment is skipped with one line that names it. botocore then
    reads back exactly the profiles intended, and no other key."""
    from botocore.configloader import build_profile_map, raw_config_parse

    inject = "\ncredential_process = touch PWNED\n"
    sso.server.accounts = {
        "111111111111": ("Sandbox", ["AdministratorAccess", f"Admin{inject}", "Ops\r", "Dev ops", "a" * 65,
                                     "x]\n[profile evil]", "Ready+=,.@-_1"]),
        "222222222222": (f"prod{inject}", ["ReadOnly"]),
        "333333333333": ("\x1b]0;title\x07", ["ReadOnly"]),
        f"44444444444{inject}": ("ok", ["ReadOnly"]),
        "١٢٣٤٥٦٧٨٩٠١٢": ("arabic digits", ["ReadOnly"]),
        "555555555555": ("Ünïcödé 名前", ["Auditor"]),
    }
    world.ok("sso", "login", "corp")
    config = world.home / ".aws" / "config"
    before = build_profile_map(raw_config_parse(str(config)))["profiles"]
    done = world.ok("sso", "profiles", "corp", "--write")
    skipped = [line for line in done.stderr.splitlines() if "skipped" in line]
    assert len(skipped) == 9, done.stderr
    assert all(line.startswith("awsenv: skipped ") for line in skipped)
    for named in ("Admin\\ncredential_process", "'Ops\\r'", "'Dev ops'", "a" * 65, "x]\\n[profile evil]",
                  "prod\\ncredential_process", "\\x1b]0;title\\x07", "44444444444\\n", "١٢٣٤٥٦٧٨٩٠١٢"):
        assert sum(named in line for line in skipped) == 1, named
    assert "\x1b" not in done.stderr + done.stdout and "\r" not in done.stderr + done.stdout
    assert "added 2 profile(s)" in done.stderr
    after = build_profile_map(raw_config_parse(str(config)))["profiles"]
    added = {name: values for name, values in after.items() if name not in before}
    assert sorted((v["sso_account_id"], v["sso_role_name"]) for v in added.values()) == [
        ("111111111111", "Ready+=,.@-_1"), ("555555555555", "Auditor")]
    for values in added.values():
        assert set(values) == {"sso_session", "sso_account_id", "sso_role_name", "region"}
        assert values["sso_session"] == "corp" and values["region"] == REGION
    assert {name: after[name] for name in before} == before
    assert not (world.root / "PWNED").exists()


@pytest.mark.parametrize("name", ["../../../etc/passwd", "/abs", "..", "a/b\\c", "x\ny", "nul\x00", "évil 名"])
def test_a_session_name_never_steers_the_cache_file_awsenv_reads_and_deletes(tmp_path, monkeypatch, name):
    """The one file awsenv names from a name it did not make: the AWS CLI's token in
    ~/.aws/sso/cache, which `import --delete-plaintext` deletes. As botocore names it,
    by the SHA-1 of the session name, so no name reaches outside that folder."""
    import os

    from awsenv.core.config import Portal
    from awsenv.store.clicache import cli_cache_dir, cli_token_path

    monkeypatch.setenv("HOME", str(tmp_path))
    path = cli_token_path(Portal(name, START_URL, REGION, ("sso:account:access",), True))
    assert os.path.dirname(path) == cli_cache_dir() == str(tmp_path / ".aws" / "sso" / "cache")
    assert os.path.basename(path) == hashlib.sha1(name.encode()).hexdigest() + ".json"


def test_doctor_reports_plaintext_tokens_unrenewable_sessions_and_missing_sessions(world, sso):
    cli_login(sso.server, world)
    config = world.home / ".aws" / "config"
    config.write_text(config.read_text() + f"""
[sso-session short]
sso_start_url = {START_URL}
sso_region = {REGION}
sso_registration_scopes = codewhisperer:completions

[sso-session bare]
sso_start_url = {START_URL}
sso_region = {REGION}

[profile orphan]
sso_session = gone
sso_account_id = 111111111111
sso_role_name = ReadOnly
""")
    done = world.run("doctor", "--json")
    assert done.returncode == 1
    found = {(f["check"], f["profile"]) for f in json.loads(done.stdout)["findings"]}
    cache = world.home / ".aws" / "sso" / "cache"
    plaintext = [f for f in json.loads(done.stdout)["findings"] if f["check"] == "sso-plaintext"]
    assert sorted(f["message"].split()[0] for f in plaintext) == sorted(str(p) for p in cache.iterdir())
    assert ("sso-no-refresh", "sso-session short") in found and ("sso-no-refresh", "legacy") in found
    assert ("sso-no-refresh", "sso-session corp") not in found
    assert ("sso-no-refresh", "sso-session bare") not in found, "no scopes: sso:account:access, as the AWS CLI"
    assert ("sso-session", "orphan") in found
    assert not {p for c, p in found if c in ("missing-key", "no-mfa") and p in ("sandbox", "legacy")}
    world.ok("import", "--delete-plaintext")
    after = {f["check"] for f in json.loads(world.run("doctor", "--json").stdout)["findings"]}
    assert "sso-plaintext" not in after


# 7. speed and secrecy ------------------------------------------------------------------------------
def test_cached_sso_switch_imports_no_sdk_nor_keyring_and_calls_nothing(world, sso):
    from test_structure import HEAVY, heavy, imported, profiled, wait_for_agent

    world.ok("sso", "login", "corp")
    world.ok("use", "sandbox", "--shell", "bash")
    wait_for_agent(world)
    sso.server.calls.clear()
    done = profiled(world, "use", "sandbox", "--shell", "bash")
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"AWS_ACCESS_KEY_ID='{sso.server.role_keys[-1]}'" in done.stdout
    names = imported(done.stderr)
    assert heavy(names, HEAVY) == [] and heavy(names, ("argparse", "dataclasses", "pathlib", "shutil")) == []
    assert "awsenv.aws.sso" not in names and "hashlib" not in names, "the sign-in code stays out of a cached switch"
    assert sso.server.operations() == [] and world.moto.actions() == []


def test_a_day_of_use_leaves_no_token_refresh_token_or_client_secret_on_disk(world, sso, term):
    cli_login(sso.server, world)  # the AWS CLI's plaintext, moved into the keyring first
    world.ok("import", "--delete-plaintext")
    # Morning: tokens that end soon, so the day runs through every renewal.
    sso.server.token_ttl = 30
    sso.server.role_ttl = 900
    use(world, "sandbox")
    use(world, "sso-deep")
    world.ok("export", "sandbox-ro", "--format", "json")
    t = term("bash")
    t.run("awsenv use sandbox")
    t.run("export AWSENV_REFRESH_WINDOW=1000")  # the hook renews in place
    assert t.value("AWSENV_PROFILE") == "sandbox"
    t.run("awsenv use sso-dev --server")  # the agent renews from the token in the keyring
    assert "assumed-role/dev/" in t.run("aws sts get-caller-identity --query Arn --output text")
    # Afternoon: the portal ended the sign-in; a new one through the browser.
    sso.server.expire_access_tokens()
    sso.server.revoke_refresh_tokens()
    sso.server.token_ttl = 8 * 3600
    world.ok("sso", "login", "corp")
    world.ok("sso", "login", "legacy")
    world.ok("use", "legacy", "--refresh", "--shell", "bash")
    world.ok("sso", "profiles", "corp")
    world.ok("exec", "sso-dev", "--", "true")
    world.ok("sso", "logout")
    issued = set(sso.server.issued)
    assert any(s.startswith("refreshtoken-") for s in issued) and any(s.startswith("clientsecret-") for s in issued)
    assert "CreateToken" in sso.server.operations() and "Logout" in sso.server.operations()
    assert secrets_on_disk(world, *issued) == []


def test_a_refresh_lost_to_another_shell_takes_that_shells_token(monkeypatch):
    """Two shells renewing at once: the refresh token works once, so the loser must take
    the token the winner stored rather than ask for a new sign-in (in-process fakes)."""
    from awsenv.aws import sts
    from awsenv.aws.sso import SignIn
    from awsenv.core.config import Portal

    portal = Portal("corp", START_URL, REGION, ("sso:account:access",), session=True)
    now = time.time()
    base = {"startUrl": START_URL, "region": REGION,
            "registration": {"clientId": "c", "clientSecret": "s", "expiresAt": now + 86400, "scopes": []}}
    stale = {**base, "token": {"accessToken": "old", "refreshToken": "r1", "expiresAt": now - 1}}
    winner = {**base, "token": {"accessToken": "theirs", "refreshToken": "r2", "expiresAt": now + 3600}}

    class Vault:
        reads = [stale, winner]

        def get_sso(self, name):
            return json.loads(json.dumps(self.reads.pop(0) if len(self.reads) > 1 else self.reads[0]))

        def set_sso(self, name, data):
            raise AssertionError("the loser must not overwrite the winner's token")

    def refused(*args, **kwargs):
        raise sts.SsoRefused("CreateToken", "InvalidGrantException", "used")

    monkeypatch.setattr(sts, "create_token", refused)
    assert SignIn(Vault()).token(portal, "sandbox", prompt=False) == "theirs"
