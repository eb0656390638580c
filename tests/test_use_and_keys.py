"""The main flows against a moto server over HTTP and a real Secret Service: keys in,
MFA sessions and roles out through use, export and exec, and the errors on the way."""
from __future__ import annotations

import json
import os
import re
import subprocess
import time
from pathlib import Path

import pytest

from conftest import AWSENV
from helpers import add_on_a_terminal, env_after, one_line_error, secrets_on_disk, use

TWELVE_HOURS = 12 * 3600


# 1 ---------------------------------------------------------------------------------
def test_add_env_stores_key_and_no_file_holds_it(world):
    world.add_keys()
    listing = json.loads(world.ok("list", "--json").stdout)["profiles"]
    stored = {row["profile"]: row["key_stored"] for row in listing}
    assert stored["jump"] is True and stored["ci"] is True and stored["default"] is False
    assert secrets_on_disk(world, world.alice.secret, world.robot.secret) == []


def test_add_refuses_a_role_and_a_temporary_key(world):
    done = world.run("add", "dev", "--env", env={"AWS_ACCESS_KEY_ID": "AKIAEXAMPLE123456789", "AWS_SECRET_ACCESS_KEY": "x"})
    assert done.returncode == 2 and "is a role" in done.stderr
    done = world.run("add", "jump", "--env", env={"AWS_ACCESS_KEY_ID": "ASIAEXAMPLE123456789", "AWS_SECRET_ACCESS_KEY": "x"})
    assert done.returncode == 2 and "temporary" in done.stderr


# 2 ---------------------------------------------------------------------------------
def test_use_base_profile_with_mfa_gives_a_12h_session_the_cli_accepts(world):
    world.add_keys()
    before = time.time()
    env = use(world, "jump", "--mfa-code", "123456")
    assert world.moto.actions() == [("GetSessionToken", world.alice.key_id)]
    assert world.moto.calls[0].params["SerialNumber"] == world.alice.mfa_serial
    assert world.moto.calls[0].params["TokenCode"] == "123456"
    assert env["AWS_ACCESS_KEY_ID"] != world.alice.key_id
    assert world.alice.secret not in env.values()
    assert env["AWS_SESSION_TOKEN"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", env["AWS_CREDENTIAL_EXPIRATION"])
    assert env["AWS_SESSION_EXPIRATION"] == env["AWS_CREDENTIAL_EXPIRATION"]
    expires = int(env["AWSENV_EXPIRES"])
    assert abs(expires - (before + TWELVE_HOURS)) < 120
    assert time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(expires)) == env["AWS_CREDENTIAL_EXPIRATION"]
    assert env["AWSENV_PROFILE"] == "jump" and env["AWS_REGION"] == "eu-west-1"
    cli = subprocess.run(["aws", "sts", "get-caller-identity", "--output", "json"], env=env, capture_output=True, text=True)
    assert cli.returncode == 0, cli.stderr
    assert json.loads(cli.stdout)["Account"] == "123456789012"
    assert world.moto.calls[-1].key_id == env["AWS_ACCESS_KEY_ID"]


# 3 ---------------------------------------------------------------------------------
def test_role_from_mfa_session_then_second_role_silently_then_cache(world):
    world.add_keys()
    env = use(world, "dev", "--mfa-code", "123456")
    calls = world.moto.actions()
    assert [a for a, _ in calls] == ["GetSessionToken", "AssumeRole"]
    assert calls[0][1] == world.alice.key_id
    session_key_id = calls[1][1]
    assert session_key_id != world.alice.key_id
    assert world.moto.calls[1].params["RoleArn"].endswith(":role/dev")
    assert "SerialNumber" not in world.moto.calls[1].params
    assert int(world.moto.calls[1].params["DurationSeconds"]) == 3600
    assert abs(int(env["AWSENV_EXPIRES"]) - (time.time() + 3600)) < 120
    cli = subprocess.run(["aws", "sts", "get-caller-identity", "--query", "Arn", "--output", "text"],
                         env=env, capture_output=True, text=True)
    assert "assumed-role/dev/" in cli.stdout, cli.stderr

    world.moto.calls.clear()
    env = use(world, "prod")  # no code, no terminal
    assert world.moto.actions() == [("AssumeRole", session_key_id)]
    assert env["AWSENV_PROFILE"] == "prod"

    world.moto.calls.clear()
    again = use(world, "dev")
    assert world.moto.actions() == []
    assert again["AWSENV_PROFILE"] == "dev"


# 4 ---------------------------------------------------------------------------------
def test_long_role_is_assumed_from_the_key_with_the_code(world):
    world.add_keys()
    env = use(world, "long", "--mfa-code", "123456")
    assert world.moto.actions() == [("AssumeRole", world.alice.key_id)]
    params = world.moto.calls[0].params
    assert params["SerialNumber"] == world.alice.mfa_serial and params["TokenCode"] == "123456"
    assert params["DurationSeconds"] == "7200"
    assert abs(int(env["AWSENV_EXPIRES"]) - (time.time() + 7200)) < 120


# 5 ---------------------------------------------------------------------------------
def test_role_without_mfa_needs_no_terminal(world):
    world.add_keys()
    env = use(world, "deploy")
    assert world.moto.actions() == [("AssumeRole", world.robot.key_id)]
    assert env["AWSENV_PROFILE"] == "deploy"


def test_base_without_mfa_exports_a_session_not_the_key(world):
    world.add_keys()
    env = use(world, "ci")
    assert world.moto.actions() == [("GetSessionToken", world.robot.key_id)]
    assert "SerialNumber" not in world.moto.calls[0].params
    assert env["AWS_ACCESS_KEY_ID"] != world.robot.key_id and env["AWS_SESSION_TOKEN"]


# 6 ---------------------------------------------------------------------------------
def test_cached_role_works_with_the_network_down(world, refused_endpoint):
    world.add_keys()
    first = use(world, "dev", "--mfa-code", "123456")
    down = {"AWS_ENDPOINT_URL": refused_endpoint}
    again = use(world, "dev", env=down)
    assert again["AWS_ACCESS_KEY_ID"] == first["AWS_ACCESS_KEY_ID"]


# 7 ---------------------------------------------------------------------------------
def test_mfa_needed_without_terminal_or_code(world):
    world.add_keys()
    done = world.run("use", "dev", "--shell", "bash")
    assert done.returncode != 0
    assert done.stdout == ""
    assert "MFA" in done.stderr and "--mfa-code" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert world.moto.actions() == []


def test_a_code_is_not_sent_twice(world):
    world.add_keys()
    world.ok("use", "jump", "--mfa-code", "123456", "--shell", "bash", "--refresh")
    done = world.run("use", "jump", "--mfa-code", "123456", "--shell", "bash", "--refresh")
    assert done.returncode == 1 and done.stdout == ""
    assert "already used" in done.stderr
    assert [a for a, _ in world.moto.actions()] == ["GetSessionToken"]


# 9, 10 ------------------------------------------------------------------------------
def test_credential_process_and_export_env(world):
    world.add_keys()
    cli = subprocess.run(["aws", "sts", "get-caller-identity", "--profile", "viaproc", "--output", "json"],
                         env=world.env, capture_output=True, text=True)
    assert cli.returncode == 0, cli.stderr
    assert json.loads(cli.stdout)["Account"] == "123456789012"
    assert ("GetSessionToken", world.robot.key_id) in world.moto.actions()

    doc = json.loads(world.ok("export", "ci", "--format", "json").stdout)
    assert doc["Version"] == 1 and doc["SessionToken"] and doc["Expiration"].endswith("Z")
    exported = world.ok("export", "ci", "--format", "env").stdout
    assert all(line.startswith("export ") for line in exported.splitlines())
    env = env_after(world, exported)
    assert env["AWS_ACCESS_KEY_ID"] == doc["AccessKeyId"]


def test_exec_runs_the_command_with_credentials_and_returns_its_code(world):
    world.add_keys()
    script = 'test -n "$AWS_SESSION_TOKEN" && test "$AWSENV_PROFILE" = ci && exit 7'
    done = world.run("exec", "ci", "--", "bash", "-c", script)
    assert done.returncode == 7, done.stderr
    cli = world.run("exec", "ci", "--", "aws", "sts", "get-caller-identity", "--output", "json")
    assert cli.returncode == 0 and json.loads(cli.stdout)["Account"] == "123456789012"
    missing = world.run("exec", "ci", "--", "no-such-program-xyz")
    assert missing.returncode == 127 and "not found" in missing.stderr


# 11 ---------------------------------------------------------------------------------
def test_unset_removes_everything_and_regions_do_not_leak(world):
    world.add_keys()
    script = """
set -e
export AWS_PROFILE=stale AWS_REGION=ap-south-1
eval "$(awsenv use dev --mfa-code 123456 --shell bash)"
echo "dev:${AWS_PROFILE-unset}:$AWS_REGION:$AWS_DEFAULT_REGION"
eval "$(awsenv use prod --shell bash)"
echo "prod:${AWS_REGION-unset}:${AWS_DEFAULT_REGION-unset}"
eval "$(awsenv unset --shell bash)"
echo "unset:${AWS_REGION-unset}:${AWS_DEFAULT_REGION-unset}"
env | grep -E '^(AWS_ACCESS|AWS_SECRET|AWS_SESSION|AWS_CREDENTIAL|AWSENV_)' || echo clean
"""
    done = world.shell("bash", script)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    # dev sets its own region and drops the stale AWS_PROFILE
    assert lines[0] == "dev:unset:eu-central-1:eu-central-1"
    # prod has no region: dev's does not leak, the hand-set one comes back
    assert lines[1] == "prod:ap-south-1:unset"
    assert lines[2] == "unset:ap-south-1:unset"
    assert lines[3] == "clean"


def test_region_flag_and_profile_region(world):
    world.add_keys()
    env = use(world, "dev", "--mfa-code", "123456", "--region", "sa-east-1")
    assert env["AWS_REGION"] == env["AWS_DEFAULT_REGION"] == "sa-east-1"


def test_unknown_profile_suggests_close_matches(world):
    line = one_line_error(world.run("use", "dve", "--shell", "bash"), 2)
    assert "unknown profile 'dve'" in line and "'dev'" in line


def test_malformed_config_names_file_and_line(world):
    path = world.home / ".aws" / "config"
    path.write_text("[profile a]\nregion = x\nthis is not ini\n")
    line = one_line_error(world.run("use", "a", "--shell", "bash"), 2)
    assert f"{path}:3" in line


def test_source_profile_cycle_names_the_loop(world):
    world.write_config(
        "[profile a]\nrole_arn = arn:aws:iam::123456789012:role/dev\nsource_profile = b\n"
        "[profile b]\nrole_arn = arn:aws:iam::123456789012:role/dev\nsource_profile = a\n"
    )
    line = one_line_error(world.run("use", "a", "--shell", "bash"), 2)
    assert "cycle" in line and "a -> b -> a" in line


@pytest.mark.parametrize("code", ["12345", "1234567", "abcdef", "12 456"])
def test_bad_mfa_code_refused_before_any_call(world, code):
    line = one_line_error(world.run("use", "dev", "--mfa-code", code, "--shell", "bash"), 2)
    assert "6 digits" in line
    assert world.moto.actions() == []


def test_duration_out_of_range(world):
    line = one_line_error(world.run("use", "jump", "--duration", "60", "--shell", "bash"), 2)
    assert "out of range" in line
    for outside in ("899", "129601"):
        line = one_line_error(world.run("use", "ci", "--duration", outside, "--shell", "bash"), 2)
        assert "--duration" in line and f"{outside} is out of range: 900 to 129600 seconds" in line, line
    # The limits themselves are STS's: both are asked for as they are.
    world.add_keys()
    for limit in ("900", "36h"):
        use(world, "ci", "--duration", limit)
    assert [c.params["DurationSeconds"] for c in world.moto.calls] == ["900", "129600"]


# "Reported in seconds, not after minutes of retries" is behaviour, so it is checked
# here with a wide margin (botocore's defaults would take minutes); how many seconds
# exactly is a speed figure and belongs to `make bench`.
IN_SECONDS = 60


def test_sts_unreachable_is_reported_in_seconds(world, refused_endpoint):
    world.add_keys()
    started = time.monotonic()
    done = world.run("use", "jump", "--mfa-code", "123456", "--shell", "bash", env={"AWS_ENDPOINT_URL": refused_endpoint})
    line = one_line_error(done, 1)
    assert "unreachable" in line
    assert time.monotonic() - started < IN_SECONDS


def test_sts_that_never_answers_is_reported_within_seconds(world, hanging_endpoint):
    world.add_keys()
    started = time.monotonic()
    done = world.run("use", "jump", "--mfa-code", "123456", "--shell", "bash", env={"AWS_ENDPOINT_URL": hanging_endpoint})
    line = one_line_error(done, 1)
    assert "unreachable" in line
    assert time.monotonic() - started < IN_SECONDS


def test_no_keyring_backend_fails_and_writes_nothing(world):
    before = {p for p in world.home.rglob("*")} | {p for p in world.tmp.rglob("*")}
    done = world.run("add", "jump", "--env", env={
        "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring",
        "AWS_ACCESS_KEY_ID": world.alice.key_id, "AWS_SECRET_ACCESS_KEY": world.alice.secret})
    assert done.returncode == 1 and done.stdout == "" and "Traceback" not in done.stderr
    line = done.stderr.splitlines()[0]  # what is wrong; the ways out follow (test_errors_and_help)
    assert "keyring" in line and "plaintext" in line and world.alice.secret not in done.stderr
    after = {p for p in world.home.rglob("*")} | {p for p in world.tmp.rglob("*")}
    assert after == before
    done = world.run("use", "dev", "--mfa-code", "123456", "--shell", "bash",
                     env={"PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring"})
    assert done.returncode == 1 and done.stdout == "" and "keyring" in done.stderr.splitlines()[0]


def test_unknown_shell(world):
    line = one_line_error(world.run("init", "tcsh"), 2)
    assert "tcsh" in line


def test_role_without_reachable_key(world):
    line = one_line_error(world.run("use", "deploy", "--shell", "bash"), 1)
    assert "no key stored for profile 'ci'" in line and "awsenv add ci" in line


# 14 ---------------------------------------------------------------------------------
def test_no_secret_or_token_on_disk_after_several_profiles(world):
    world.add_keys()
    outputs = [world.ok("use", *args, "--shell", "bash").stdout for args in (
        ("jump", "--mfa-code", "123456"), ("dev",), ("prod",), ("deploy",), ("ci",))]
    outputs.append(world.ok("use", "long", "--mfa-code", "654321", "--shell", "bash").stdout)
    secrets = [world.alice.secret, world.robot.secret]
    for out in outputs:
        env = env_after(world, out)
        secrets += [env["AWS_SECRET_ACCESS_KEY"], env["AWS_SESSION_TOKEN"]]
    assert len(secrets) == 14
    assert secrets_on_disk(world, *secrets) == []


# 15 ---------------------------------------------------------------------------------
def test_import_delete_plaintext(world):
    creds = world.home / ".aws" / "credentials"
    other = "# team keys\n[other]\naws_access_key_id = AKIAOTHER00000000000\naws_secret_access_key = keep/me+too\nregion=x  \n"
    legacy = f"[legacy]\naws_access_key_id = {world.robot.key_id}\naws_secret_access_key = {world.robot.secret}\n"
    creds.write_text(other + "\n" + legacy + "\n[tail]\nfoo = bar\n")
    creds.chmod(0o600)
    first = world.ok("use", "legacy", "--shell", "bash")
    assert "plaintext" in first.stderr and "awsenv import" in first.stderr
    imported = world.ok("import", "legacy", "--delete-plaintext")
    # The key ID, as `add` says it: which key is now in the keyring, never its secret.
    assert f"stored the key {world.robot.key_id} of profile 'legacy'" in imported.stderr
    assert world.robot.secret not in imported.stderr + imported.stdout
    text = creds.read_text()
    assert world.robot.secret not in text and world.robot.key_id not in text
    assert text.startswith(other) and "[legacy]\n" in text and text.endswith("[tail]\nfoo = bar\n")
    assert secrets_on_disk(world, world.robot.secret) == []
    assert oct(creds.stat().st_mode & 0o777) == "0o600"
    world.ok("clear")
    world.moto.calls.clear()
    done = world.ok("use", "legacy", "--shell", "bash")
    assert "plaintext" not in done.stderr
    assert world.moto.actions() == [("GetSessionToken", world.robot.key_id)]


# 16 ---------------------------------------------------------------------------------
def test_list_json(world):
    world.add_keys()
    world.ok("use", "dev", "--mfa-code", "123456", "--shell", "bash")
    rows = {row["profile"]: row for row in json.loads(world.ok("list", "--json").stdout)["profiles"]}
    assert set(rows) >= {"jump", "dev", "prod", "long", "ci", "deploy", "viaproc"}
    assert rows["dev"]["kind"] == "role" and rows["dev"]["source"] == "jump"
    assert rows["dev"]["mfa"] == world.alice.mfa_serial
    assert 3400 < rows["dev"]["session_seconds_left"] <= 3600
    assert rows["jump"]["kind"] == "base" and rows["jump"]["key_stored"] is True
    assert TWELVE_HOURS - 200 < rows["jump"]["session_seconds_left"] <= TWELVE_HOURS
    assert rows["prod"]["session_seconds_left"] is None
    assert rows["deploy"]["mfa"] is None and rows["ci"]["key_stored"] is True
    table = world.ok("list").stdout
    assert re.search(r"^dev\s+role\s+jump\s+yes\s+-\s+59m$", table, re.M), table


def test_remove_and_clear(world):
    world.add_keys()
    world.ok("use", "dev", "--mfa-code", "123456", "--shell", "bash")
    world.ok("clear", "dev")
    rows = {r["profile"]: r for r in json.loads(world.ok("list", "--json").stdout)["profiles"]}
    assert rows["dev"]["session_seconds_left"] is None and rows["jump"]["session_seconds_left"]
    config = (world.home / ".aws" / "config").read_text()
    said = world.ok("remove", "jump").stderr
    rows = {r["profile"]: r for r in json.loads(world.ok("list", "--json").stdout)["profiles"]}
    assert rows["jump"]["key_stored"] is False and rows["jump"]["session_seconds_left"] is None
    # The profile stays, as aws-vault's remove leaves it, and the user is told so.
    assert (world.home / ".aws" / "config").read_text() == config
    assert "forgot the key" in said and "its section in" in said and "stays" in said, said


def test_status(world):
    world.add_keys()
    env = use(world, "dev", "--mfa-code", "123456")
    status = json.loads(world.ok("status", "--json", env=env).stdout)
    assert status["active"] and status["profile"] == "dev" and 3400 < status["seconds_left"] <= 3600
    assert "dev" in world.ok("status", env=env).stdout
    assert json.loads(world.ok("status", "--json").stdout) == {"active": False}
    who = world.ok("whoami", env=env).stdout
    assert "assumed-role/dev/" in who


def test_stdout_carries_only_statements(world):
    world.add_keys()
    out = world.ok("use", "dev", "--mfa-code", "123456", "--shell", "bash").stdout
    for line in out.splitlines():
        assert re.fullmatch(r"(export [A-Z_]+='[^']*';|unset -v [A-Z_]+;)", line), line


def test_module_entry_point(world):
    done = subprocess.run([str(Path(AWSENV).with_name("python")), "-m", "awsenv", "--version"],
                          capture_output=True, text=True, env=world.env)
    assert done.returncode == 0 and done.stdout.startswith("awsenv ")
    assert os.access(AWSENV, os.X_OK)


# errors AWS gives, provoked through the emulator's fault injection ---------------------
def test_invalid_client_token_is_one_line(world):
    world.add_keys()
    world.moto.refuse = lambda call: call.key_id == world.alice.key_id
    line = one_line_error(world.run("use", "jump", "--mfa-code", "123456", "--shell", "bash"), 1)
    assert "InvalidClientTokenId" in line and "expired" in line
    assert world.alice.secret not in line


def test_access_denied_on_assume_role_names_the_role(world):
    world.add_keys()
    world.moto.refuse = lambda call: ("AccessDenied", "not authorized") if call.action == "AssumeRole" else None
    line = one_line_error(world.run("use", "dev", "--mfa-code", "123456", "--shell", "bash"), 1)
    assert "access denied" in line and "role/dev" in line


def test_wrong_mfa_code_without_terminal_is_one_line(world):
    from world import MFA_FAILED

    world.add_keys()
    world.moto.refuse = lambda call: MFA_FAILED if call.params.get("TokenCode") == "111111" else None
    line = one_line_error(world.run("use", "jump", "--mfa-code", "111111", "--shell", "bash"), 1)
    assert "MFA code was rejected" in line
    # A refused code was spent all the same: the next run does not send it again, though
    # that run obtained nothing to store (mutation: Resolver.save skipping the codes then).
    world.moto.calls.clear()
    line = one_line_error(world.run("use", "jump", "--mfa-code", "111111", "--shell", "bash"), 1)
    assert "already used" in line and world.moto.calls == []


def spawn_use(world, *args: str):
    """`awsenv use ...` on a terminal as eval runs it: stdout captured (use refuses to
    print its statements on a terminal), the MFA question on the terminal, then the
    captured statements shown and use's status kept. Ctrl-C is for awsenv, as the
    wrapper's `trap '' INT` around its eval leaves it."""
    import pexpect

    script = 'trap "" INT; out=$("$0" use "$@"); code=$?; printf "%s\\n" "$out"; exit $code'
    return pexpect.spawn("bash", ["-c", script, AWSENV, *args], env=world.env, cwd=str(world.root),
                         encoding="utf-8", timeout=30)


def test_wrong_mfa_code_is_asked_again_on_the_terminal(world):
    import pexpect

    from world import MFA_FAILED

    world.add_keys()
    world.moto.refuse = lambda call: MFA_FAILED if call.params.get("TokenCode") in ("111111", "222222") else None
    child = spawn_use(world, "jump", "--shell", "bash")
    try:
        for code in ("111111", "222222"):
            child.expect("MFA code for jump")
            child.sendline(code)
            child.expect("rejected that MFA code")
        child.expect("MFA code for jump")
        child.sendline("333333")
        child.expect("export AWSENV_PROFILE='jump';")
        child.expect(pexpect.EOF)
    finally:
        child.close()
    assert child.exitstatus == 0
    codes = [c.params.get("TokenCode") for c in world.moto.calls if c.action == "GetSessionToken"]
    assert codes == ["111111", "222222", "333333"]


def test_three_wrong_codes_give_up(world):
    import pexpect

    from world import MFA_FAILED

    world.add_keys()
    world.moto.refuse = lambda call: MFA_FAILED if call.action == "GetSessionToken" else None
    child = spawn_use(world, "jump", "--shell", "bash")
    try:
        for code in ("111111", "222222", "333333"):
            child.expect("MFA code for jump")
            child.sendline(code)
        child.expect("MFA code was rejected")
        child.expect(pexpect.EOF)
    finally:
        child.close()
    assert child.exitstatus == 1
    assert len([c for c in world.moto.calls if c.action == "GetSessionToken"]) == 3


def test_ctrl_c_at_the_mfa_question_exits_130_and_prints_nothing(world):
    import pexpect

    world.add_keys()
    child = spawn_use(world, "jump", "--shell", "bash")
    try:
        child.expect("MFA code for jump")
        child.sendintr()
        child.expect(pexpect.EOF)
        rest = child.before
    finally:
        child.close()
    assert child.exitstatus == 130
    assert "export" not in rest and "Traceback" not in rest and "cancelled" in rest
    assert world.moto.actions() == []


def test_add_on_a_terminal_hides_the_secret_and_offers_the_profile(world):
    status, seen, _after = add_on_a_terminal(world, "fresh")
    assert status == 0 and "has no [profile fresh]. Add it?" in seen
    assert world.robot.secret not in seen, "the secret is read without echo"
    assert (world.home / ".aws" / "config").read_text().endswith("\n[profile fresh]\n")
    world.moto.calls.clear()
    use(world, "fresh")
    assert world.moto.actions() == [("GetSessionToken", world.robot.key_id)]
