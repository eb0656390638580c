"""AWS sign-in sessions (`aws login`'s `login_session` profiles) against the sign-in
stand-in (tests/signin_server.py): the AWS CLI's cache read, refreshed with a DPoP
proof and written back; a role chained from one; `import --delete-plaintext`;
`awsenv signin` in the browser (a BROWSER script) and in remote mode (a terminal); the
agent's renewals; and botocore's own LoginProvider refreshing against the stand-in.

STS stays on moto; `signin` goes to the stand-in through AWS_ENDPOINT_URL_SIGNIN."""
from __future__ import annotations

import hashlib
import json
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from conftest import AWSENV, BIN
from signin_server import ACCOUNT, CROSS_DEVICE, SAME_DEVICE, SESSION, SigninServer
from helpers import env_after, secrets_on_disk, use


@pytest.fixture
def signin_server():
    server = SigninServer().start()
    yield server
    server.stop()


def cli_login(server: SigninServer, cache: Path, expires_at: float | None = None, client: str = SAME_DEVICE) -> dict:
    """The cache file `aws login` writes (awscli/customizations/login: the token dict,
    the SEC1 key in PEM), named by the SHA-256 of the session."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    output = server.sign_in(key, client)
    when = time.time() + output["expiresIn"] if expires_at is None else expires_at
    token = {
        "accessToken": {**output["accessToken"], "accountId": ACCOUNT,
                        "expiresAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(when))},
        "tokenType": output["tokenType"], "clientId": client, "refreshToken": output["refreshToken"],
        "idToken": output["idToken"],
        "dpopKey": key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                     serialization.NoEncryption()).decode(),
    }
    cache.mkdir(parents=True, exist_ok=True)
    (cache / f"{hashlib.sha256(SESSION.encode()).hexdigest()}.json").write_text(json.dumps(token))
    return token


LOGIN_CONFIG = f"""
[profile signed]
login_session = {SESSION}
region = eu-west-1

[profile signed-dev]
role_arn = arn:aws:iam::{ACCOUNT}:role/dev
source_profile = signed
"""


class Login:
    def __init__(self, world, server: SigninServer):
        self.world, self.server = world, server
        self.cache = world.home / ".aws" / "login" / "cache"
        world.env.update(server.env())
        config = world.home / ".aws" / "config"
        config.write_text(config.read_text() + LOGIN_CONFIG)

    @property
    def file(self) -> Path:
        return self.cache / f"{hashlib.sha256(SESSION.encode()).hexdigest()}.json"

    def cli_login(self, **kw) -> dict:
        return cli_login(self.server, self.cache, **kw)

    def store_item(self) -> dict:
        from awsenv.store.vault import SERVICE

        import subprocess

        done = subprocess.run(
            [sys.executable, "-c", f"import keyring; print(keyring.get_password({SERVICE!r}, 'login:' + {SESSION!r}) or '')"],
            env=self.world.env, capture_output=True, text=True, check=True,
        )
        return json.loads(done.stdout) if done.stdout.strip() else {}


@pytest.fixture
def login(world, signin_server):
    return Login(world, signin_server)


def one_line(done) -> str:
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("awsenv: "), done.stderr
    return lines[0]


def aws(world, env: dict, *args: str):
    import subprocess

    return subprocess.run([str(BIN / "aws"), *args], env={**world.env, **env}, capture_output=True, text=True,
                          timeout=60)


def botocore_credentials(world, profile: str):
    """What botocore's own credential chain (its LoginProvider) makes of the profile."""
    import subprocess

    script = ("import botocore.session, json; c = botocore.session.Session(profile=%r).get_credentials()"
              ".get_frozen_credentials(); print(json.dumps([c.access_key, c.secret_key, c.token]))") % profile
    done = subprocess.run([sys.executable, "-c", script], env={**world.env, "AWS_ENDPOINT_URL": ""},
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


# 1. the stand-in, checked against botocore and against forged proofs ----------------------------
def test_stand_in_checks_dpop_proofs_and_botocore_refreshes_against_it(world, login):
    from awsenv.aws.signin import dpop_proof, load_key, new_key

    token = login.cli_login(expires_at=time.time() - 60)  # expired: botocore must refresh
    creds = botocore_credentials(world, "signed")
    assert creds[0] == login.server.keys[-1] and login.server.operations() == ["CreateOAuth2Token"]
    assert login.server.violations == [], "awscrt's proofs pass the stand-in's checks"
    written = json.loads(login.file.read_text())
    assert written["refreshToken"] != token["refreshToken"] and written["dpopKey"] == token["dpopKey"]
    assert written["accessToken"]["accessKeyId"] == creds[0]

    def post(proof: str, refresh: str) -> tuple[int, dict]:
        body = json.dumps({"clientId": SAME_DEVICE, "grantType": "refresh_token", "refreshToken": refresh}).encode()
        request = urllib.request.Request(f"{login.server.url}/v1/token", body, {"DPoP": proof}, method="POST")
        try:
            with urllib.request.urlopen(request) as answer:
                return answer.status, json.load(answer)
        except urllib.error.HTTPError as err:
            return err.code, json.load(err)

    url, key = f"{login.server.url}/v1/token", load_key(written["dpopKey"])
    assert post(dpop_proof(new_key(), url), written["refreshToken"])[0] == 400, "a key the token is not bound to"
    assert post(dpop_proof(key, url + "x"), written["refreshToken"])[0] == 400, "a proof over another URL"
    assert post(dpop_proof(key, url, method="GET"), written["refreshToken"])[0] == 400
    proof = dpop_proof(key, url)
    status, answer = post(proof, written["refreshToken"])
    assert status == 200 and answer["expiresIn"] == 900
    assert post(proof, answer["refreshToken"])[0] == 400, "a jti seen before"
    assert post(dpop_proof(key, url), written["refreshToken"]) == (
        400, {"error": "TOKEN_EXPIRED", "message": "the session has expired or was revoked"}), "rotated: one use"
    assert len(login.server.violations) == 4


# 2. the AWS CLI's sign-in, as it lies in ~/.aws/login/cache ------------------------------------
def test_a_login_profile_works_with_use_and_the_aws_cli_accepts_what_it_sets(world, login):
    token = login.cli_login()
    env = use(world, "signed")
    assert env["AWS_ACCESS_KEY_ID"] == token["accessToken"]["accessKeyId"]
    assert env["AWS_SESSION_TOKEN"] == token["accessToken"]["sessionToken"]
    assert env["AWSENV_PROFILE"] == "signed" and env["AWS_REGION"] == "eu-west-1"
    assert 800 < int(env["AWSENV_EXPIRES"]) - time.time() <= 900
    assert login.server.operations() == [], "current credentials need no refresh"
    done = aws(world, env, "sts", "get-caller-identity")
    assert done.returncode == 0, done.stderr
    assert ("GetCallerIdentity", env["AWS_ACCESS_KEY_ID"]) in world.moto.actions()
    listed = {row["profile"]: row for row in json.loads(world.ok("list", "--json").stdout)["profiles"]}
    assert listed["signed"]["kind"] == "login" and listed["signed"]["session_seconds_left"] > 800
    exported = json.loads(world.ok("export", "signed", "--format", "json").stdout)
    assert exported["AccessKeyId"] == env["AWS_ACCESS_KEY_ID"] and exported["Version"] == 1
    ran = world.ok("exec", "signed", "--", "sh", "-c", "printf %s \"$AWS_ACCESS_KEY_ID\"")
    assert ran.stdout == env["AWS_ACCESS_KEY_ID"]


def test_a_role_chained_from_a_login_profile(world, login):
    token = login.cli_login()
    env = use(world, "signed-dev")
    assumed = [c for c in world.moto.calls if c.action == "AssumeRole"]
    assert len(assumed) == 1 and assumed[0].key_id == token["accessToken"]["accessKeyId"]
    assert env["AWS_ACCESS_KEY_ID"] != token["accessToken"]["accessKeyId"] and env["AWSENV_PROFILE"] == "signed-dev"
    assert aws(world, env, "sts", "get-caller-identity").returncode == 0


def test_an_expired_access_token_is_refreshed_silently_and_written_back_for_botocore(world, login):
    old = login.cli_login(expires_at=time.time() - 60)
    env = use(world, "signed")  # no terminal: it must be silent
    assert login.server.operations() == ["CreateOAuth2Token"] and login.server.violations == []
    assert env["AWS_ACCESS_KEY_ID"] == login.server.keys[-1]
    written = json.loads(login.file.read_text())
    assert written["refreshToken"] != old["refreshToken"] and written["refreshToken"] in login.server.issued
    assert written["accessToken"]["accessKeyId"] == env["AWS_ACCESS_KEY_ID"]
    assert {k: written[k] for k in ("clientId", "dpopKey", "idToken", "tokenType")} == \
        {k: old[k] for k in ("clientId", "dpopKey", "idToken", "tokenType")}
    assert written["accessToken"]["accountId"] == ACCOUNT
    assert written["accessToken"]["expiresAt"].endswith("Z")
    assert oct(login.file.stat().st_mode & 0o777) == "0o600"
    # botocore (the AWS CLI) takes the refreshed cache as it is: no refresh of its own.
    assert botocore_credentials(world, "signed")[0] == env["AWS_ACCESS_KEY_ID"]
    assert login.server.operations() == ["CreateOAuth2Token"]


def test_a_revoked_refresh_token_is_one_line_saying_to_sign_in_again(world, login):
    login.cli_login(expires_at=time.time() - 60)
    login.server.revoke()
    done = world.run("use", "signed", "--shell", "bash")
    assert done.returncode == 1 and done.stdout == ""
    line = one_line(done)
    assert "sign-in session has ended (TOKEN_EXPIRED)" in line and "awsenv signin signed" in line
    assert "refreshtoken-" not in done.stderr and "signinsecret-" not in done.stderr
    login.server.insufficient = True
    done = world.run("use", "signed-dev", "--shell", "bash")
    assert done.returncode == 1 and "SignInLocalDevelopmentAccess" in one_line(done)


def test_import_delete_plaintext_leaves_no_token_and_no_key_on_disk(world, login):
    token = login.cli_login()
    kept = world.ok("import", "signed")
    assert "still in" in kept.stderr and login.file.exists()
    done = world.ok("import", "signed", "--delete-plaintext")
    assert "moved the AWS CLI's sign-in of profile 'signed' into the keyring" in done.stderr
    assert not login.file.exists()
    item = login.store_item()
    assert item["refreshToken"] == token["refreshToken"] and item["dpopKey"] == token["dpopKey"]
    key_body = "".join(token["dpopKey"].splitlines()[1:-1])
    secrets = [*login.server.issued, key_body]
    assert secrets_on_disk(world, *secrets) == []
    # From the store: refreshed there, still nothing on disk.
    env = use(world, "signed", "--refresh")
    assert login.server.operations() == ["CreateOAuth2Token"] and env["AWS_ACCESS_KEY_ID"] == login.server.keys[-1]
    assert login.store_item()["refreshToken"] in login.server.issued[-3:]
    assert not login.cache.exists() or list(login.cache.iterdir()) == []
    assert secrets_on_disk(world, *login.server.issued, key_body) == []


# 3. awsenv signin -----------------------------------------------------------------------------------
def browser(world, forge_first: bool = True) -> Path:
    """The person at the browser: a script that opens the authorize page, which signs in
    and redirects to awsenv's loopback. First, a forged visit to the loopback with a
    wrong state, which must be refused (and not end the sign-in)."""
    script = world.root / "browser"
    script.write_text(
        f"#!{sys.executable}\nimport sys, urllib.parse, urllib.request, urllib.error\n"
        "url = sys.argv[1]\n"
        "query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query))\n"
        f"if {forge_first!r}:\n"
        "    try:\n"
        "        urllib.request.urlopen(query['redirect_uri'] + '?code=forged&state=not-yours')\n"
        "    except urllib.error.HTTPError as err:\n"
        f"        open({str(world.root / 'forged')!r}, 'w').write(str(err.code))\n"
        "print('browser chatter on stdout')\n"
        "urllib.request.urlopen(url).read()\n"
    )
    script.chmod(0o755)
    return script


def test_our_own_signin_end_to_end_tokens_and_key_only_in_the_store(world, signin_server):
    world.env.update(signin_server.env(), BROWSER=str(browser(world)))
    done = world.ok("signin", "mine", "--region", "eu-west-1")
    assert done.stdout == ""
    assert (world.root / "forged").read_text() == "400", "a redirect with another state is refused"
    authorize = signin_server.calls[0][1]
    assert authorize["client_id"] == SAME_DEVICE and authorize["code_challenge_method"] == "SHA-256"
    assert authorize["redirect_uri"].startswith("http://127.0.0.1:") and authorize["scope"] == "openid"
    assert signin_server.operations() == ["Authorize", "CreateOAuth2Token"] and signin_server.violations == []
    assert f"signed in as {SESSION}" in done.stderr
    config = (world.home / ".aws" / "config").read_text()
    assert f"[profile mine]\nlogin_session = {SESSION}\nregion = eu-west-1\n" in config
    env = use(world, "mine")
    assert env["AWS_ACCESS_KEY_ID"] == signin_server.keys[-1]
    assert aws(world, env, "sts", "get-caller-identity").returncode == 0
    assert not (world.home / ".aws" / "login").exists()
    assert secrets_on_disk(world, *signin_server.issued) == []
    # The stored key is the one the refresh token is bound to.
    signin_server.calls.clear()
    env = use(world, "mine", "--refresh")
    assert signin_server.operations() == ["CreateOAuth2Token"] and signin_server.violations == []
    assert env["AWS_ACCESS_KEY_ID"] == signin_server.keys[-1]


def test_signin_remote_mode_takes_the_pasted_code(world, signin_server):
    import re

    import pexpect

    child = pexpect.spawn(AWSENV, ["signin", "remote", "--remote"], env={**world.env, **signin_server.env()},
                          cwd=str(world.root), timeout=30, encoding="utf-8")
    try:
        child.expect(r"(http://127\.0\.0\.1:\d+/v1/authorize\?\S+)")
        url = child.match.group(1)
        child.expect("Enter the authorization code")
        page = urllib.request.urlopen(url).read().decode()  # the person, on another device
        code = re.search(r"authorization code: (\S+)", page).group(1)
        child.sendline("not-a-code")
        child.expect("not the code")
        child.sendline(code)
        child.expect(pexpect.EOF)
    finally:
        child.close()
    assert child.exitstatus == 0, child.before
    assert signin_server.calls[0][1]["client_id"] == CROSS_DEVICE
    assert signin_server.calls[0][1]["redirect_uri"] == f"{signin_server.url}/v1/sessions/confirmation"
    assert code not in child.before  # not echoed
    assert use(world, "remote")["AWS_ACCESS_KEY_ID"] == signin_server.keys[-1]


# 4. the agent --------------------------------------------------------------------------------------------
def test_the_agent_renews_a_login_session_ahead_of_its_end(world, login):
    from test_broker import wait_until, watched
    from test_structure import HEAVY, heavy, imported, wait_for_agent

    login.cli_login()
    world.ok("import", "signed", "--delete-plaintext")
    # Credentials of 10 minutes: inside the agent's lead at once (it renews 15-minute ones
    # just before the prompt hook's window opens).
    login.server.expires_in = 600
    first = use(world, "signed", "--refresh")
    login.server.expires_in = 900
    wait_for_agent(world, timeout=30)  # a loaded machine starts it slowly
    login.server.calls.clear()
    assert use(world, "signed")["AWS_ACCESS_KEY_ID"] == first["AWS_ACCESS_KEY_ID"]  # the agent now watches it
    wait_until(lambda: watched(world, "signed").get("renewals"), what="the agent's renewal")
    assert login.server.operations() == ["CreateOAuth2Token"] and login.server.violations == []
    assert watched(world, "signed")["state"] == "fresh"
    assert login.store_item()["refreshToken"] in login.server.issued[-3:]

    # The prompt hook finds the shell's credentials due: its refresh is a cache hit.
    login.server.calls.clear()
    due = {"AWSENV_PROFILE": "signed", "AWSENV_EXPIRES": first["AWSENV_EXPIRES"],
           "AWS_ACCESS_KEY_ID": first["AWS_ACCESS_KEY_ID"], "PYTHONPROFILEIMPORTTIME": "1"}
    done = world.ok("refresh", "--shell", "bash", env=due)
    assert login.server.operations() == []
    assert heavy(imported(done.stderr), HEAVY) == [], "no SDK and no keyring at the prompt"
    renewed = env_after(world, done.stdout)
    assert renewed["AWS_ACCESS_KEY_ID"] == login.server.keys[-1] != first["AWS_ACCESS_KEY_ID"]
    assert int(renewed["AWSENV_EXPIRES"]) - time.time() > 850
    status = world.ok("agent", "status").stdout
    assert "signed: AWS sign-in credentials" in status
    assert secrets_on_disk(world, *login.server.issued) == []


def test_cached_login_switch_imports_no_sdk_nor_cryptography(world, login):
    from test_structure import HEAVY, heavy, imported, profiled, wait_for_agent

    login.cli_login()
    use(world, "signed")
    wait_for_agent(world, timeout=30)  # a loaded machine starts it slowly
    done = profiled(world, "use", "signed", "--shell", "bash")
    assert done.returncode == 0
    assert heavy(imported(done.stderr), HEAVY + ("cryptography", "awscrt")) == []
