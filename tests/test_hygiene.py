"""Key hygiene (issue 5): rotate, doctor, console login, TOTP, ad hoc roles —
against the moto server and the real Secret Service."""
from __future__ import annotations

import json
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from helpers import one_line_error, secrets_on_disk, use
from world import boto_client

HERE = Path(__file__).resolve().parent


def iam_keys(world, user: str) -> list[str]:
    return [k["AccessKeyId"] for k in boto_client("iam", world.moto.url).list_access_keys(UserName=user)["AccessKeyMetadata"]]


# rotate -----------------------------------------------------------------------------
def test_rotate_end_to_end(world):
    world.add_keys()
    world.ok("use", "dev", "--mfa-code", "111111", "--shell", "bash")
    world.moto.calls.clear()
    done = world.ok("rotate", "jump")  # the cached MFA session signs the IAM calls
    keys = iam_keys(world, "alice")
    assert len(keys) == 1 and keys[0] != world.alice.key_id
    new_key = keys[0]
    assert new_key in done.stderr and world.alice.key_id in done.stderr
    actions = [a for a, _ in world.moto.actions()]
    assert world.moto.actions()[0] == ("GetCallerIdentity", world.alice.key_id)
    assert "GetSessionToken" not in actions
    assert ("GetCallerIdentity", new_key) in world.moto.actions(), "the new key is verified"
    assert {"ListAccessKeys", "CreateAccessKey", "DeleteAccessKey"} <= set(actions)
    iam_calls = [c for c in world.moto.calls if c.action in ("ListAccessKeys", "CreateAccessKey", "DeleteAccessKey")]
    assert all(c.params.get("UserName") == "alice" for c in iam_calls)
    assert all(c.key_id != world.alice.key_id for c in iam_calls), "IAM calls are signed by the MFA session"
    # sessions from the old key are gone: the next use needs a code and is signed by the new key
    world.moto.calls.clear()
    assert world.run("use", "dev", "--shell", "bash").returncode != 0
    world.ok("use", "dev", "--mfa-code", "333333", "--shell", "bash")
    assert world.moto.actions()[0] == ("GetSessionToken", new_key)
    assert secrets_on_disk(world, world.alice.secret) == []


def test_rotate_refused_with_two_keys_changes_nothing(world):
    world.add_keys()
    created = boto_client("iam", world.moto.url).create_access_key(UserName="robot")["AccessKey"]
    second = created["AccessKeyId"]
    world.moto.calls.clear()
    done = world.run("rotate", "ci")
    assert done.returncode == 1 and done.stdout == ""
    assert world.robot.key_id in done.stderr and second in done.stderr
    assert world.robot.secret not in done.stderr and created["SecretAccessKey"] not in done.stderr
    assert sorted(iam_keys(world, "robot")) == sorted([world.robot.key_id, second])
    assert "CreateAccessKey" not in [a for a, _ in world.moto.actions()]
    world.moto.calls.clear()
    use(world, "ci")
    assert world.moto.actions() == [("GetSessionToken", world.robot.key_id)]


def test_rotate_that_cannot_verify_keeps_the_old_key(world):
    world.add_keys()
    # AWS does not know the new key (yet): every GetCallerIdentity it signs is refused
    world.moto.refuse = lambda call: call.action == "GetCallerIdentity" and call.key_id != world.robot.key_id
    done = world.run("rotate", "ci", env={"AWSENV_ROTATE_VERIFY_SECONDS": "1"})
    assert done.returncode == 1 and "old key" in done.stderr and world.robot.key_id in done.stderr
    assert "Traceback" not in done.stderr
    world.moto.refuse = None
    assert iam_keys(world, "robot") == [world.robot.key_id]
    world.moto.calls.clear()
    use(world, "ci")
    assert world.moto.actions() == [("GetSessionToken", world.robot.key_id)]


def test_rotate_that_cannot_store_the_new_key_keeps_the_old_one(world):
    world.add_keys()  # with the real backend
    env = {"PYTHONPATH": str(HERE / "backends"), "PYTHON_KEYRING_BACKEND": "failing_store.Keyring"}
    done = world.run("rotate", "ci", env=env)
    assert done.returncode == 1 and done.stdout == ""
    assert "Traceback" not in done.stderr
    lines = done.stderr.splitlines()
    # the progress line, then the failure in one line
    assert all(line.startswith("awsenv: ") for line in lines)
    failure = [line for line in lines if "failed" in line]
    assert len(failure) == 1 and "old key" in failure[0] and world.robot.key_id in failure[0]
    assert "refuses to store key:ci" in failure[0]
    created = [c for c in world.moto.calls if c.action == "CreateAccessKey"]
    deleted = [c.params.get("AccessKeyId") for c in world.moto.calls if c.action == "DeleteAccessKey"]
    assert len(created) == 1 and len(deleted) == 1 and deleted[0] != world.robot.key_id
    assert deleted[0] in done.stderr, "the new key is named"
    assert world.robot.secret not in done.stderr
    assert iam_keys(world, "robot") == [world.robot.key_id]
    world.moto.calls.clear()
    use(world, "ci")  # the normal backend: the old key is still stored and works
    assert world.moto.actions() == [("GetSessionToken", world.robot.key_id)]


def test_rotate_retries_until_the_new_key_works(world):
    world.add_keys()
    refused = []

    def not_yet(call):
        # IAM is eventually consistent: the new key's first two calls are refused
        if call.action == "GetCallerIdentity" and call.key_id not in (world.robot.key_id, "testing"):
            refused.append(call.key_id)
            return len(refused) <= 2
        return None

    world.moto.refuse = not_yet
    done = world.run("rotate", "ci", env={"AWSENV_ROTATE_VERIFY_SECONDS": "30"})
    world.moto.refuse = None
    assert done.returncode == 0, done.stderr
    keys = iam_keys(world, "robot")
    assert len(keys) == 1 and keys[0] != world.robot.key_id
    new_key = keys[0]
    assert len(refused) >= 3 and set(refused) == {new_key}
    assert world.moto.actions().count(("GetCallerIdentity", new_key)) >= 3
    world.moto.calls.clear()
    use(world, "ci")
    assert world.moto.actions() == [("GetSessionToken", new_key)]


def test_rotate_refuses_a_role_and_a_missing_key(world):
    assert world.run("rotate", "dev").returncode == 2
    done = world.run("rotate", "jump")
    assert done.returncode == 1 and "awsenv add jump" in done.stderr


# doctor -----------------------------------------------------------------------------
def doctor(world, *args, env=None) -> tuple[int, dict]:
    done = world.run("doctor", "--json", *args, env=env)
    assert "Traceback" not in done.stderr
    return done.returncode, json.loads(done.stdout)


def checks(report: dict) -> set[tuple[str, str]]:
    return {(f["profile"], f["check"]) for f in report["findings"]}


def test_doctor_missing_key_and_no_mfa(world):
    code, report = doctor(world)
    assert code == 1
    assert ("jump", "missing-key") in checks(report) and ("ci", "missing-key") in checks(report)
    world.add_keys()
    code, report = doctor(world)
    assert ("jump", "missing-key") not in checks(report)
    assert ("ci", "no-mfa") in checks(report) and ("jump", "no-mfa") not in checks(report)
    for f in report["findings"]:
        assert set(f) == {"profile", "check", "severity", "message"}
        assert world.alice.secret not in f["message"] and world.robot.secret not in f["message"]


def test_doctor_iam_checks_skipped_without_session_then_run_with_one(world):
    world.add_keys()
    _code, report = doctor(world)
    skipped = {(s["profile"], s["check"]) for s in report["skipped"]}
    assert ("jump", "multiple-keys") in skipped and ("jump", "key-age") in skipped
    assert ("ci", "multiple-keys") not in skipped, "a base profile without MFA is audited with its own key"
    boto_client("iam", world.moto.url).create_access_key(UserName="alice")
    # the checks would find something now (two keys, every key older than 0 days),
    # but without a session or a code they are skipped, not reported as found
    _code, report = doctor(world, env={"AWSENV_KEY_MAX_AGE_DAYS": "0"})
    skipped = {(s["profile"], s["check"]) for s in report["skipped"]}
    assert {("jump", "multiple-keys"), ("jump", "key-age")} <= skipped
    assert not skipped & checks(report)
    assert ("ci", "key-age") in checks(report), "the checks that could run did"
    _code, report = doctor(world, "--mfa-code", "123456")
    assert ("jump", "multiple-keys") in checks(report)
    assert ("ci", "multiple-keys") not in checks(report)
    assert report["skipped"] == []


def test_doctor_uses_a_cached_mfa_session(world):
    world.add_keys()
    boto_client("iam", world.moto.url).create_access_key(UserName="alice")
    session = use(world, "jump", "--mfa-code", "123456")["AWS_ACCESS_KEY_ID"]
    world.moto.calls.clear()
    _code, report = doctor(world)  # no code: the cached session signs the IAM calls
    assert report["skipped"] == []
    assert ("jump", "multiple-keys") in checks(report)
    actions = [a for a, _ in world.moto.actions()]
    assert "GetSessionToken" not in actions
    listed = [c for c in world.moto.calls if c.action == "ListAccessKeys"]
    assert sorted(c.params.get("UserName") for c in listed) == ["alice", "robot"]
    alice = next(c for c in listed if c.params.get("UserName") == "alice")
    assert alice.key_id == session != world.alice.key_id, "jump's IAM calls are signed by its MFA session"


def test_doctor_key_age(world):
    world.add_keys()
    _code, report = doctor(world)
    assert ("ci", "key-age") not in checks(report)
    _code, report = doctor(world, env={"AWSENV_KEY_MAX_AGE_DAYS": "0"})
    assert ("ci", "key-age") in checks(report)


def test_doctor_plaintext_key(world):
    world.add_keys()
    creds = world.home / ".aws" / "credentials"
    creds.write_text(f"[legacy]\naws_access_key_id = {world.robot.key_id}\naws_secret_access_key = {world.robot.secret}\n")
    _code, report = doctor(world)
    assert ("legacy", "plaintext-key") in checks(report)
    assert world.robot.secret not in json.dumps(report)
    world.ok("import", "legacy", "--delete-plaintext")
    _code, report = doctor(world)
    assert ("legacy", "plaintext-key") not in checks(report)


def test_doctor_chained_duration(world):
    _code, report = doctor(world)
    assert ("long", "chained-duration") not in checks(report), "long is assumed directly with the key"
    config = world.home / ".aws" / "config"
    config.write_text(config.read_text() + (
        "\n[profile deep]\nrole_arn = arn:aws:iam::123456789012:role/prod\nsource_profile = dev\n"
        "duration_seconds = 7200\n"))
    _code, report = doctor(world)
    assert ("deep", "chained-duration") in checks(report)


def test_doctor_keyring_backend(world):
    world.add_keys()
    _code, report = doctor(world)
    assert not any(f["check"] == "keyring-backend" for f in report["findings"])
    env = {"PYTHONPATH": str(HERE / "backends"), "PYTHON_KEYRING_BACKEND": "memory_backend.Keyring"}
    _code, report = doctor(world, env=env)
    found = [f for f in report["findings"] if f["check"] == "keyring-backend"]
    assert found and "memory_backend.Keyring" in found[0]["message"]


def test_doctor_clean_exits_zero(world):
    world.write_config(f"[profile jump]\nmfa_serial = {world.alice.mfa_serial}\n")
    world.add_keys_for("jump")
    code, report = doctor(world, "--mfa-code", "123456")
    assert report["findings"] == [] and code == 0
    assert "no findings" in world.ok("doctor").stdout


# login ------------------------------------------------------------------------------
class Federation:
    """A stand-in for the AWS federation endpoint on 127.0.0.1. It records every query
    it was sent, and its sign-in token names the session it was made for, so a test can
    tell which credentials went where."""

    def __init__(self):
        self.requests: list[dict] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(self.path).query))
                outer.requests.append(query)
                session = json.loads(query.get("Session") or "{}")
                body = json.dumps({"SigninToken": token_for(session.get("sessionId", ""))}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/federation"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


def token_for(session_id: str) -> str:
    return f"token-for-{session_id}"


def identity_of(world, session: dict) -> str:
    """The ARN AWS (the emulator) sees for the session the stand-in was sent."""
    import boto3

    sts = boto3.client("sts", endpoint_url=world.moto.url, region_name="us-east-1",
                       aws_access_key_id=session["sessionId"], aws_secret_access_key=session["sessionKey"],
                       aws_session_token=session["sessionToken"])
    return sts.get_caller_identity()["Arn"]


@pytest.fixture
def federation():
    server = Federation()
    yield server
    server.stop()


def test_login_url_for_a_role(world, federation):
    world.add_keys()
    done = world.ok("login", "dev", "--print", "--mfa-code", "123456", "--duration", "1800",
                    env={"AWSENV_FEDERATION_URL": federation.url})
    url = done.stdout.strip()
    assert "\n" not in url
    parts = urllib.parse.urlsplit(url)
    query = dict(urllib.parse.parse_qsl(parts.query))
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == federation.url
    assert query["Action"] == "login" and query["Issuer"] == "awsenv"
    assert query["Destination"] == "https://console.aws.amazon.com/?region=eu-central-1"
    (sent,) = federation.requests
    assert sent["Action"] == "getSigninToken" and sent["SessionDuration"] == "1800"
    session = json.loads(sent["Session"])
    assert set(session) == {"sessionId", "sessionKey", "sessionToken"}
    assert query["SigninToken"] == token_for(session["sessionId"]), "the token for the session sent"
    assert [a for a, _ in world.moto.actions()] == ["GetSessionToken", "AssumeRole"]
    # What was sent is the role's session, the one `use dev` now reuses, and not the
    # MFA session of jump that signed the AssumeRole.
    role = json.loads(world.ok("export", "dev", "--format", "json").stdout)
    jump = json.loads(world.ok("export", "jump", "--format", "json").stdout)
    assert [a for a, _ in world.moto.actions()] == ["GetSessionToken", "AssumeRole"], "both came from the cache"
    assert session == {"sessionId": role["AccessKeyId"], "sessionKey": role["SecretAccessKey"],
                       "sessionToken": role["SessionToken"]}
    assert session["sessionId"] != jump["AccessKeyId"] and world.moto.calls[1].key_id == jump["AccessKeyId"]
    assert ":assumed-role/dev/" in identity_of(world, session)


def test_login_base_profile_goes_through_federation_token(world, federation):
    world.add_keys()
    url = world.ok("login", "ci", "--print", env={"AWSENV_FEDERATION_URL": federation.url}).stdout.strip()
    assert world.moto.actions() == [("GetFederationToken", world.robot.key_id)]
    (sent,) = federation.requests
    session = json.loads(sent["Session"])
    assert session["sessionId"] != world.robot.key_id and session["sessionToken"]
    assert "SessionDuration" not in sent
    assert dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query))["SigninToken"] == token_for(session["sessionId"])


BROWSER = """#!{python}
# A browser that notes what it was started with, lets a stranger (another local user
# who read its command line in `ps`) try the URL first, then opens it as the owner.
import encodings.idna, email.parser, http.client, json, os, sys, urllib.error, urllib.request

def status(url):
    try:
        return urllib.request.urlopen(url, timeout=10).status
    except urllib.error.HTTPError as err:
        return err.code
    except OSError as err:
        return type(err).__name__

record = {{"argv": sys.argv, "env": dict(os.environ), "stranger": None}}
if os.getuid() == 0:
    "127.0.0.1".encode("idna")  # what the child, which can no longer read the library, needs
    reader, writer = os.pipe()
    if os.fork() == 0:
        os.setgid(65534)
        os.setuid(65534)
        os.write(writer, json.dumps(status(sys.argv[1])).encode())
        os._exit(0)
    os.close(writer)
    os.wait()
    record["stranger"] = json.loads(os.read(reader, 100))
record["owner"] = status(sys.argv[1])  # follows the redirect to the federation endpoint
record["again"] = status(sys.argv[1])
open({record!r}, "w").write(json.dumps(record))
"""


def test_login_hands_the_browser_no_sign_in_token(world, federation):
    """The SigninToken is a bearer credential for 15 minutes: it must not be on the
    browser's command line (any local user's `ps` shows it), in its environment, or in
    a file. The browser gets a one-shot loopback URL that redirects to the real one."""
    import os
    import sys

    world.add_keys()
    record = world.tmp / "browser-record.json"
    browser = world.tmp / "record-browser"
    browser.write_text(BROWSER.format(python=sys.executable, record=str(record)))
    browser.chmod(0o755)
    done = world.ok("login", "ci", env={"AWSENV_FEDERATION_URL": federation.url, "BROWSER": str(browser)})
    assert done.stdout == "" and "Traceback" not in done.stderr
    seen = json.loads(record.read_text())
    session = json.loads(federation.requests[0]["Session"])
    token = token_for(session["sessionId"])
    assert not any(token in arg or "SigninToken" in arg for arg in seen["argv"]), seen["argv"]
    assert not any(token in value for value in seen["env"].values())
    (url,) = seen["argv"][1:]
    parts = urllib.parse.urlsplit(url)
    assert parts.scheme == "http" and parts.hostname == "127.0.0.1" and not parts.query
    assert len(parts.path) > 40, "an unguessable path"
    # The page leads to the real sign-in URL, once.
    assert seen["owner"] == 200
    assert federation.requests[1] == {"Action": "login", "Issuer": "awsenv", "SigninToken": token,
                                      "Destination": "https://console.aws.amazon.com/"}
    assert seen["again"] != 200 and len(federation.requests) == 2
    if os.getuid() == 0:
        assert seen["stranger"] == 403, "another user who read the URL in ps gets nothing"
    assert secrets_on_disk(world, token, session["sessionKey"]) == []
    assert token not in done.stderr and world.robot.secret not in done.stderr


def test_login_partitions():
    from awsenv.aws import console as login

    assert login.endpoints("cn-north-1")[0] == "https://signin.amazonaws.cn/federation"
    assert login.endpoints("us-gov-west-1")[1].startswith("https://console.amazonaws-us-gov.com/")
    assert login.endpoints(None) == ("https://signin.aws.amazon.com/federation", "https://console.aws.amazon.com/")


def test_the_loopback_hand_over_answers_its_path_once_and_gives_up_in_time():
    """In process, no AWS: a wrong path gets nothing; a browser that never comes or
    never starts is reported, not waited for forever."""
    import urllib.error
    import urllib.request

    from awsenv.host import handoff

    def status(url: str):
        try:
            return urllib.request.urlopen(url, timeout=5).status
        except urllib.error.HTTPError as err:
            return err.code

    seen: list = []

    def wrong_path_only(url: str) -> bool:
        seen.append(status(url + "x"))
        seen.append(status(url.rsplit("/", 1)[0] + "/"))
        return True

    started = time.monotonic()
    assert handoff.hand_over("https://example.com/?SigninToken=t", wrong_path_only, wait=0.5) == handoff.NOT_FETCHED
    assert seen == [404, 404] and time.monotonic() - started < 3
    assert handoff.hand_over("https://example.com/", lambda url: False) == handoff.NO_BROWSER

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args):
            return None

    def browser(url: str) -> bool:
        try:
            urllib.request.build_opener(NoRedirect).open(url, timeout=5)
        except urllib.error.HTTPError as err:
            seen.append((err.code, err.headers["Location"], err.headers["Cache-Control"]))
        seen.append(status(url))
        return True

    seen.clear()
    assert handoff.hand_over("https://example.com/?SigninToken=t", browser) == handoff.FETCHED
    assert seen[0] == (302, "https://example.com/?SigninToken=t", "no-store")
    assert seen[1] == 410, "once only"


# TOTP -------------------------------------------------------------------------------
def test_totp_codes_are_generated_and_never_sent_twice(world):
    import pyotp

    world.add_keys()
    secret = pyotp.random_base32()
    done = world.ok("mfa", "set", "jump", input=secret + "\n")
    assert "same machine" in done.stderr
    bad = world.run("mfa", "set", "jump", input="not base32!\n")
    assert bad.returncode == 2 and "base32" in bad.stderr
    arrived = []  # when each GetSessionToken reached the server

    def clock(call):
        if call.action == "GetSessionToken":
            arrived.append(time.time())

    world.moto.refuse = clock
    started_first = time.time()
    world.ok("use", "jump", "--shell", "bash", "--refresh")
    started_second = time.time()
    again = world.ok("use", "jump", "--shell", "bash", "--refresh")
    world.moto.refuse = None
    sent = [c for c in world.moto.calls if c.action == "GetSessionToken"]
    assert len(sent) == 2
    first, second = sent[0].params["TokenCode"], sent[1].params["TokenCode"]
    assert first != second
    # The first code was made in [started_first, arrived[0]], the second run's first try
    # in [started_second, arrived[1]]. Same window for sure: it must wait; different
    # windows for sure: it must not. Across a boundary either may be right.
    window = lambda t: int(t // 30)
    if "waiting" in again.stderr:
        assert window(arrived[0]) == window(started_second), "waited though the window had changed"
    else:
        assert window(started_first) != window(arrived[1]), "same window, and no wait for the next code"
    totp = pyotp.TOTP(secret)
    now = time.time()
    assert totp.verify(first, for_time=now, valid_window=3) and totp.verify(second, for_time=now, valid_window=1)
    assert secrets_on_disk(world, secret) == []
    world.ok("mfa", "remove", "jump")
    assert world.run("use", "jump", "--shell", "bash", "--refresh").returncode != 0


def test_mfa_set_on_a_terminal_does_not_echo(world):
    import pexpect
    import pyotp
    from conftest import AWSENV

    world.add_keys()
    secret = pyotp.random_base32()
    child = pexpect.spawn(AWSENV, ["mfa", "set", "jump"], env=world.env, cwd=str(world.root),
                          encoding="utf-8", timeout=30)
    try:
        child.expect_exact("TOTP secret (base32) for jump: ")
        assert child.waitnoecho(10), "echo stays on for the secret"
        child.sendline(secret)
        child.expect(pexpect.EOF)
        output = child.before
    finally:
        child.close()
    assert child.exitstatus == 0, output
    assert secret not in output and "stored the TOTP secret" in output
    world.moto.calls.clear()
    world.ok("use", "jump", "--refresh", "--shell", "bash")  # no code given, none asked
    sent = [c for c in world.moto.calls if c.action == "GetSessionToken"]
    assert len(sent) == 1 and pyotp.TOTP(secret).verify(sent[0].params["TokenCode"], valid_window=1)
    assert secrets_on_disk(world, secret) == []


def test_mfa_set_takes_no_secret_from_a_flag(world):
    done = world.run("mfa", "set", "jump", "--secret", "JBSWY3DPEHPK3PXP")
    assert done.returncode == 2 and done.stdout == ""
    assert world.run("mfa", "remove", "jump").returncode != 0, "nothing was stored"


# ad hoc roles -----------------------------------------------------------------------
def test_adhoc_role_in_bash_and_its_refresh(world):
    world.add_keys()
    script = """
set -euo pipefail
eval "$(awsenv use --role-arn arn:aws:iam::123456789012:role/prod --from jump --mfa-code 123456 --shell bash)"
printf '%s\\n' "$AWSENV_PROFILE" "$AWSENV_ROLE_ARN" "$AWS_REGION"
aws sts get-caller-identity --query Arn --output text
export AWSENV_REFRESH_WINDOW=4000
eval "$(awsenv refresh --shell bash)"
printf '%s\\n' "$AWSENV_PROFILE" "$AWSENV_ROLE_ARN"
eval "$(awsenv use dev --shell bash)"
printf '%s\\n' "${AWSENV_ROLE_ARN-gone}"
"""
    done = world.shell("bash", script)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "prod@123456789012"
    assert lines[1] == "arn:aws:iam::123456789012:role/prod"
    assert lines[2] == "eu-west-1"
    assert "assumed-role/prod/" in lines[3]
    assert lines[4:6] == ["prod@123456789012", "arn:aws:iam::123456789012:role/prod"]
    assert lines[6] == "gone"
    assume = [c for c in world.moto.calls if c.action == "AssumeRole"]
    assert [c.params["RoleArn"] for c in assume[:2]] == ["arn:aws:iam::123456789012:role/prod"] * 2
    assert len([c for c in world.moto.calls if c.action == "GetSessionToken"]) == 1


def test_adhoc_role_session_name(world):
    world.add_keys()
    arn = "arn:aws:iam::123456789012:role/prod"
    env = use(world, "--role-arn", arn, "--from", "jump", "--session-name", "me", "--mfa-code", "123456")
    assume = [c for c in world.moto.calls if c.action == "AssumeRole"]
    assert [c.params["RoleSessionName"] for c in assume] == ["me"]
    assert env["AWSENV_ROLE_SESSION_NAME"] == "me" and env["AWSENV_ROLE_ARN"] == arn
    import boto3

    sts = boto3.client("sts", endpoint_url=world.moto.url, region_name="us-east-1",
                       aws_access_key_id=env["AWS_ACCESS_KEY_ID"], aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
                       aws_session_token=env["AWS_SESSION_TOKEN"])
    assert sts.get_caller_identity()["Arn"].endswith(":assumed-role/prod/me")
    env = use(world, "--role-arn", arn, "--from", "jump", "--session-name", "other")
    assume = [c for c in world.moto.calls if c.action == "AssumeRole"]
    assert [c.params["RoleSessionName"] for c in assume] == ["me", "other"], "the session name is in the cache key"
    assert env["AWSENV_ROLE_SESSION_NAME"] == "other"
    use(world, "--role-arn", arn, "--from", "jump", "--session-name", "me")
    assert len([c for c in world.moto.calls if c.action == "AssumeRole"]) == 2, "the session for `me` is cached"
    assert len([c for c in world.moto.calls if c.action == "GetSessionToken"]) == 1


def test_adhoc_role_errors(world):
    done = world.run("use", "--role-arn", "not-an-arn", "--from", "jump", "--shell", "bash")
    assert done.returncode == 2 and "role ARN" in done.stderr and done.stdout == ""
    done = world.run("use", "dev", "--role-arn", "arn:aws:iam::123456789012:role/prod", "--shell", "bash")
    assert done.returncode == 2 and "not both" in done.stderr and done.stdout == ""
    assert world.moto.actions() == []


@pytest.mark.parametrize("region, console", [
    ("eu-west-1", "https://console.aws.amazon.com/"),
    ("cn-north-1", "https://console.amazonaws.cn/"),
    ("us-gov-west-1", "https://console.amazonaws-us-gov.com/"),
])
def test_login_opens_a_service_or_a_page_of_the_partitions_console(world, federation, region, console):
    """--service s3 opens that service's console page and --destination a page the user
    names, in every partition; a page off the partition's console is refused before any
    AWS call."""
    world.add_keys()
    env = {"AWSENV_FEDERATION_URL": federation.url}

    def destination(*flags: str) -> str:
        url = world.ok("login", "ci", "--print", "--region", region, *flags, env=env).stdout.strip()
        return dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query))["Destination"]

    assert destination("--service", "s3") == f"{console}s3/home?region={region}"
    assert destination() == f"{console}?region={region}"
    host = urllib.parse.urlsplit(console).hostname
    page = f"https://{region}.{host}/cloudwatch/home?region={region}#dashboards"
    assert destination("--destination", page) == page
    world.moto.calls.clear()
    for bad in ("https://evil.example/", f"http://{host}/", f"https://{host}.evil.example/",
                "https://bucket.s3.amazonaws.cn/"):
        line = one_line_error(world.run("login", "ci", "--print", "--region", region, "--destination", bad, env=env), 2)
        assert "--destination" in line
    line = one_line_error(world.run("login", "ci", "--print", "--service", "s3/../x", env=env), 2)
    assert "--service" in line
    done = world.run("login", "ci", "--print", "--service", "s3", "--destination", page, env=env)
    assert done.returncode == 2 and done.stdout == ""
    assert world.moto.calls == [], "a refused destination must come before any AWS call"
