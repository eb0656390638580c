"""What a new user hits on the first day (issue 8): each test drives the real program
against moto over HTTP and a real gnome-keyring, and failed before its fix."""
from __future__ import annotations

import json
import socket
import time

import pexpect
import pytest

from conftest import AWSENV
from helpers import env_after, one_line_error, use
from world import ACCOUNT, MFA_FAILED

NO_KEYRING = {"PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring"}
NO_DBUS = {"DBUS_SESSION_BUS_ADDRESS": "unix:path=/nonexistent/bus", "AWSENV_AGENT": "0"}


@pytest.fixture
def refusing_endpoint():
    """A port held for the test and never listened on: every connection is refused,
    and no other process can take the port meanwhile."""
    held = socket.socket()
    held.bind(("127.0.0.1", 0))
    yield f"http://127.0.0.1:{held.getsockname()[1]}"
    held.close()


def rows(world, env=None) -> dict[str, dict]:
    return {r["profile"]: r for r in json.loads(world.ok("list", "--json", env=env).stdout)["profiles"]}


def actions(world) -> list[str]:
    return [action for action, _key in world.moto.actions()]


# bug 3: a code that never reached AWS is not spent -------------------------------------
def test_a_code_that_never_reached_aws_can_be_sent_again(world, refusing_endpoint):
    world.add_keys()
    down = world.run("use", "jump", "--mfa-code", "123456", "--shell", "bash",
                     env={"AWS_ENDPOINT_URL": refusing_endpoint})
    assert "unreachable" in one_line_error(down, 1)
    again = world.run("use", "jump", "--mfa-code", "123456", "--shell", "bash")
    assert again.returncode == 0, again.stderr
    sent = [c.params["TokenCode"] for c in world.moto.calls if c.action == "GetSessionToken"]
    assert sent == ["123456"]


def test_a_code_sts_rejected_is_spent(world):
    world.add_keys()
    world.moto.refuse = lambda call: MFA_FAILED if call.params.get("TokenCode") == "222222" else None
    assert "rejected" in one_line_error(world.run("use", "jump", "--mfa-code", "222222", "--shell", "bash"), 1)
    assert "already used" in one_line_error(world.run("use", "jump", "--mfa-code", "222222", "--shell", "bash"), 1)
    assert actions(world) == ["GetSessionToken"]


# bug 4: add checks the keyring first, reads stdin, refuses what is not a key -----------
def test_add_without_a_keyring_asks_nothing(world):
    child = pexpect.spawn(AWSENV, ["add", "jump"], env={**world.env, **NO_KEYRING}, cwd=str(world.root),
                          encoding="utf-8", timeout=30)
    try:
        child.expect(pexpect.EOF)
        said = child.before
    finally:
        child.close()
    assert child.exitstatus == 1
    assert "no usable keyring" in said and "Access key ID" not in said


def test_add_reads_the_id_and_secret_lines_from_stdin(world):
    done = world.run("add", "jump", input=f"{world.alice.key_id}\n{world.alice.secret}\n")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "" and world.alice.secret not in done.stderr
    world.moto.calls.clear()
    use(world, "jump", "--mfa-code", "123456")
    assert world.moto.actions() == [("GetSessionToken", world.alice.key_id)]


@pytest.mark.parametrize("key_id, secret, says", [
    ("AKIA" + "A" * 16, "too-short", "40"),
    ("AKIA" + "A" * 16, "x" * 41, "40"),
    ("hello", "x" * 40, "access key ID"),
    ("AKIA" + "a" * 16, "x" * 40, "access key ID"),
    ("", "", "no key on stdin"),
    ("AKIA" + "A" * 16, "", "needed"),
])
def test_add_refuses_what_is_not_a_key(world, key_id, secret, says):
    line = one_line_error(world.run("add", "jump", input=f"{key_id}\n{secret}\n"), 2)
    assert says in line and (not secret or secret not in line)
    assert rows(world)["jump"]["key_stored"] is False


# bug 5: doctor and list without a keyring --------------------------------------------
def test_doctor_without_a_keyring_reports_it_and_runs_the_other_checks(world):
    (world.home / ".aws" / "credentials").write_text(
        f"[ci]\naws_access_key_id = {world.robot.key_id}\naws_secret_access_key = {world.robot.secret}\n")
    done = world.run("doctor", "--json", env=NO_KEYRING)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    report = json.loads(done.stdout)
    found = {(f["profile"], f["check"]): f for f in report["findings"]}
    assert "no usable keyring" in found[("-", "keyring-backend")]["message"]
    assert ("ci", "plaintext-key") in found and ("ci", "no-mfa") in found
    assert "ListAccessKeys" in actions(world), "the IAM checks ran with the plaintext key"


@pytest.mark.parametrize("broken", [NO_KEYRING, NO_DBUS], ids=["fail-backend", "no-dbus"])
def test_list_without_a_keyring_lists_the_config_and_says_why_once(world, broken):
    done = world.run("list", env=broken)
    assert done.returncode == 0, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "keyring" in lines[0] and "not shown" in lines[0]
    table = {line.split()[0]: line.split() for line in done.stdout.splitlines()[1:]}
    assert {"default", "jump", "dev", "ci", "deploy"} <= set(table)
    assert table["jump"][4] == "?"
    assert rows(world, env=broken)["jump"]["key_stored"] == "unknown"


# bug 6: list and doctor agree after import ---------------------------------------------
def test_after_import_list_and_doctor_both_see_the_plaintext_copy(world):
    credentials = world.home / ".aws" / "credentials"
    credentials.write_text(
        f"[jump]\naws_access_key_id = {world.alice.key_id}\naws_secret_access_key = {world.alice.secret}\n")
    done = world.ok("import")
    assert "plaintext copy is still in" in done.stderr and "--delete-plaintext" in done.stderr
    jump = rows(world)["jump"]
    assert jump["key_stored"] is True and jump["plaintext"] is True
    table = {line.split()[0]: line.split() for line in world.ok("list").stdout.splitlines()[1:]}
    assert table["jump"][4] == "stored+PLAINTEXT"
    report = json.loads(world.run("doctor", "--json").stdout)
    assert ("jump", "plaintext-key") in {(f["profile"], f["check"]) for f in report["findings"]}

    world.ok("import", "jump", "--delete-plaintext")
    jump = rows(world)["jump"]
    assert jump["key_stored"] is True and jump["plaintext"] is False
    report = json.loads(world.run("doctor", "--json").stdout)
    assert ("jump", "plaintext-key") not in {(f["profile"], f["check"]) for f in report["findings"]}


# bug 7: a short --duration keeps the long MFA session -----------------------------------
def test_a_short_duration_keeps_the_cached_12h_session(world):
    world.add_keys()
    long = use(world, "jump", "--mfa-code", "123456")
    short = use(world, "jump", "--duration", "900", "--mfa-code", "654321")
    assert abs(int(short["AWSENV_EXPIRES"]) - (time.time() + 900)) < 120
    assert rows(world)["jump"]["session_seconds_left"] > 11 * 3600
    world.moto.calls.clear()
    again = use(world, "jump")  # no code, no call: the 12 h session, not the 15-minute one
    assert again["AWSENV_EXPIRES"] == long["AWSENV_EXPIRES"] and world.moto.actions() == []


def test_a_longer_duration_replaces_the_cached_session(world):
    """The other half of bug 7: a --duration longer than the cached session's is kept
    for the next switch. Mutation (cosmic-ray): `(creds.expiration or 0)` made `and`,
    so an explicit session never replaced a cached one."""
    world.add_keys()
    use(world, "jump", "--mfa-code", "123456")  # 12 h
    longer = use(world, "jump", "--duration", "36h", "--mfa-code", "654321")
    assert int(longer["AWSENV_EXPIRES"]) - time.time() > 35 * 3600
    world.moto.calls.clear()
    again = use(world, "jump")
    assert again["AWSENV_EXPIRES"] == longer["AWSENV_EXPIRES"] and world.moto.actions() == []


# help and a mistyped command -----------------------------------------------------------
@pytest.mark.parametrize("argv, shows", [((), "usage: awsenv [-h]"), (("help",), "usage: awsenv [-h]"),
                                         (("help", "use"), "usage: awsenv use [-h]")])
def test_awsenv_alone_and_help_print_the_help(home, argv, shows):
    done = home.ok(*argv)
    assert done.stdout.startswith(shows) and done.stderr == ""
    assert ("--mfa-code" if argv[1:] else "doctor") in done.stdout


@pytest.mark.parametrize("argv", [("usr", "dev"), ("help", "usr")])
def test_a_mistyped_command_suggests_the_close_one(home, argv):
    line = one_line_error(home.run(*argv), 2)
    assert "'usr'" in line and "did you mean use?" in line


@pytest.mark.parametrize("word", ["bogus", "frobnicate"])
def test_a_word_that_is_no_command_gets_no_far_fetched_guess(home, word):
    """Half the letters in common is not a typo: `bogus` is not `use`, nor `frobnicate`
    `rotate` (a new user's trial)."""
    line = one_line_error(home.run(word), 2)
    assert f"unknown command {word!r}" in line and "did you mean" not in line, line
    assert "`awsenv help` lists the commands" in line


# exec with no command -------------------------------------------------------------------
def test_exec_without_a_command_starts_the_shell_with_the_credentials(world):
    world.add_keys()
    done = world.run("exec", "ci", env={"SHELL": "/bin/bash"},
                     input='echo "in:$AWSENV_PROFILE:${#AWS_SESSION_TOKEN}"; exit 7\n')
    assert done.returncode == 7, done.stderr
    profile, length = done.stdout.strip().split(":")[1:]
    assert profile == "ci" and int(length) > 0
    assert actions(world) == ["GetSessionToken"]


def test_exec_takes_its_flags_after_the_profile_and_before_the_double_dash(world):
    """`awsenv exec PROFILE --flag ... -- CMD` (SPEC, aws-vault): flags between the
    profile and `--` are awsenv's, everything after `--` is the command's."""
    world.add_keys()
    done = world.run("exec", "ci", "--region", "ap-south-1", "--duration", "1h", "--",
                     "sh", "-c", 'echo "$AWS_REGION:$1"', "sh", "--region")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ap-south-1:--region"
    assert world.moto.calls[-1].params["DurationSeconds"] == "3600"


# durations with units -------------------------------------------------------------------
@pytest.mark.parametrize("given, seconds", [("1h", 3600), ("90m", 5400), ("3600", 3600), ("1h30m", 5400),
                                            ("15m30s", 930), ("1d", 86400)])
def test_duration_takes_units(world, given, seconds):
    world.add_keys()
    use(world, "ci", "--duration", given)
    assert world.moto.calls[-1].params["DurationSeconds"] == str(seconds)


def test_session_ttl_takes_units_and_a_bad_one_is_one_line(world):
    world.add_keys()
    use(world, "ci", env={"AWSENV_SESSION_TTL": "2h"})
    assert world.moto.calls[-1].params["DurationSeconds"] == "7200"
    line = one_line_error(world.run("use", "ci", "--refresh", "--shell", "bash", env={"AWSENV_SESSION_TTL": "2x"}), 2)
    assert "AWSENV_SESSION_TTL" in line
    line = one_line_error(world.run("use", "ci", "--duration", "1x", "--shell", "bash"), 2)
    assert "1x" in line


# whoami with nothing active, use without a config ---------------------------------------
def test_whoami_with_nothing_active_says_to_use_a_profile(world):
    (world.home / ".aws" / "credentials").write_text(
        f"[default]\naws_access_key_id = {world.robot.key_id}\naws_secret_access_key = {world.robot.secret}\n")
    line = one_line_error(world.run("whoami"), 2)
    assert "awsenv use PROFILE" in line
    assert world.moto.actions() == [], "no credential search through ~/.aws"
    world.add_keys()
    env = env_after(world, world.ok("use", "ci", "--shell", "bash").stdout)
    done = world.ok("whoami", env={k: v for k, v in env.items() if k.startswith("AWS")})
    assert done.stdout.startswith("Arn: arn:aws:")
    assert world.moto.actions()[-1] == ("GetCallerIdentity", env["AWS_ACCESS_KEY_ID"])


def test_use_without_a_config_file_says_how_to_start(world):
    (world.home / ".aws" / "config").unlink()
    line = one_line_error(world.run("use", "dev", "--shell", "bash"), 2)
    assert "does not exist" in line and "awsenv add" in line


# the keyring error ----------------------------------------------------------------------
def test_the_keyring_error_says_what_is_wrong_then_the_ways_out(world):
    done = world.run("add", "jump", "--env", env={
        **NO_KEYRING, "AWS_ACCESS_KEY_ID": world.alice.key_id, "AWS_SECRET_ACCESS_KEY": world.alice.secret})
    assert done.returncode == 1 and done.stdout == ""
    lines = done.stderr.splitlines()
    assert lines[0].startswith("awsenv: no usable keyring") and 3 <= len(lines) <= 8
    text = done.stderr
    assert "AWSENV_BACKEND=file" in text and "AWSENV_BACKEND=pass" in text
    assert "dbus-run-session -- bash" in text
    assert "gnome-keyring-daemon --unlock --components=secrets" in text
    assert "WSL" in text and "macOS" in text and "Windows" in text
    assert world.alice.secret not in text


# an offline doctor says it once ------------------------------------------------------------
def test_an_offline_doctor_says_once_that_aws_is_unreachable(world, refusing_endpoint):
    world.add_keys()
    down = {"AWS_ENDPOINT_URL": refusing_endpoint}
    report = json.loads(world.run("doctor", "--json", "--mfa-code", "123456", env=down).stdout)
    assert [s for s in report["skipped"] if "unreachable" in s["reason"]] == [
        s for s in report["skipped"] if s["check"] == "iam"]
    assert len([s for s in report["skipped"] if "unreachable" in s["reason"]]) == 1
    text = world.run("doctor", "--mfa-code", "123456", env=down).stdout
    assert text.count("unreachable") == 1


# profiles awsenv does not serve ----------------------------------------------------------
UNSERVED = f"""
[profile on-ec2]
role_arn = arn:aws:iam::{ACCOUNT}:role/dev
credential_source = Ec2InstanceMetadata

[profile from-env]
role_arn = arn:aws:iam::{ACCOUNT}:role/dev
credential_source = Environment

[profile in-ecs]
role_arn = arn:aws:iam::{ACCOUNT}:role/dev
credential_source = EcsContainer

[profile from-ec2]
role_arn = arn:aws:iam::{ACCOUNT}:role/prod
source_profile = on-ec2

[profile web]
role_arn = arn:aws:iam::{ACCOUNT}:role/dev
web_identity_token_file = /var/run/token
"""


@pytest.fixture
def unserved(world):
    config = world.home / ".aws" / "config"
    config.write_text(config.read_text() + UNSERVED)
    world.add_keys()
    return world


@pytest.mark.parametrize("profile, says", [
    ("on-ec2", "EC2 instance metadata"), ("from-ec2", "reached from it"), ("from-env", "from the environment"),
    ("in-ecs", "ECS container"), ("web", "web identity token"),
])
def test_a_profile_awsenv_does_not_serve_says_what_it_is(unserved, profile, says):
    for argv in (("use", profile, "--shell", "bash"), ("export", profile), ("exec", profile, "--", "true")):
        line = one_line_error(unserved.run(*argv), 2)
        assert says in line and "awsenv add" not in line
    assert unserved.moto.actions() == []


def test_list_and_doctor_name_the_kind_of_an_unserved_profile(unserved):
    listed = rows(unserved)
    kinds = {name: listed[name]["kind"] for name in ("from-ec2", "on-ec2", "web")}
    assert kinds == {"from-ec2": "role", "on-ec2": "credential-source", "web": "web-identity"}
    assert listed["web"]["key_stored"] is None
    table = {line.split()[0]: line.split() for line in unserved.ok("list").stdout.splitlines()[1:]}
    assert table["web"][1] == "web-identity" and table["web"][4] == "-"
    report = json.loads(unserved.run("doctor", "--json").stdout)
    assert not [f for f in report["findings"] if f["profile"] in kinds]
    assert {s["profile"] for s in report["skipped"] if s["check"] == "all"} >= {"on-ec2", "web"}
