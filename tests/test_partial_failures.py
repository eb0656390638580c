"""Odd inputs and partial failures: each gives one line (or the right state), never a
traceback. Found in review; each test failed before its fix."""
from __future__ import annotations

import json
import os
import re
import subprocess

import pytest
from conftest import AWSENV
from helpers import is_agent_of, keyring_get, keyring_set, one_line_error, use
from test_structure import wait_for_agent


def test_a_section_header_may_carry_a_comment(world):
    world.write_config(f"[profile jump]   # base profile\nMFA_Serial = {world.alice.mfa_serial}\n")
    world.add_keys_for("jump")
    rows = json.loads(world.ok("list", "--json").stdout)["profiles"]
    assert rows[0]["profile"] == "jump" and rows[0]["mfa"] == world.alice.mfa_serial


def test_duration_seconds_out_of_range_is_one_line_with_its_line(world):
    world.add_keys()
    config = world.home / ".aws" / "config"
    config.write_text(config.read_text() + "\n[profile short]\nrole_arn = arn:aws:iam::123456789012:role/dev\n"
                      "source_profile = jump\nduration_seconds = 100\n")
    line_no = config.read_text().splitlines().index("duration_seconds = 100") + 1
    line = one_line_error(world.run("use", "short", "--mfa-code", "123456", "--shell", "bash"), 2)
    assert f"{config}:{line_no}" in line and "900" in line
    assert world.moto.actions() == []


def test_corrupt_keyring_items_are_one_line(world):
    world.add_keys()
    keyring_set(world, "key:jump", "not json")
    line = one_line_error(world.run("use", "jump", "--mfa-code", "123456", "--shell", "bash"), 1)
    assert "awsenv add jump" in line
    rows = {r["profile"]: r for r in json.loads(world.ok("list", "--json").stdout)["profiles"]}
    assert rows["jump"]["key_stored"] == "damaged"
    keyring_set(world, "sessions", json.dumps({"x": {"Expiration": "soon"}, "y": 3}))
    world.moto.calls.clear()
    env = use(world, "ci", env={"AWSENV_AGENT": "0"})  # no agent: the damaged item itself is read
    assert env["AWSENV_PROFILE"] == "ci" and env["AWS_SESSION_TOKEN"]
    assert world.moto.actions() == [("GetSessionToken", world.robot.key_id)]
    # The bad entries were dropped when the new session was written; the good one stays.
    stored = json.loads(keyring_get(world, "sessions"))
    assert "x" not in stored and "y" not in stored
    assert [json.loads(k)[:2] for k in stored if k != "mfa-used"] == [["session", "ci"]]
    rows = {r["profile"]: r for r in json.loads(world.ok("list", "--json").stdout)["profiles"]}
    assert rows["ci"]["session_seconds_left"] > 3600
    assert all(rows[p]["session_seconds_left"] is None for p in rows if p != "ci")
    table = world.ok("list").stdout
    assert re.search(r"^ci\s+base\s+keyring\s+no\s+stored\s+1[12]h[0-5][0-9]m$", table, re.M), table


def test_a_failed_role_keeps_the_mfa_session_and_the_spent_code(world):
    world.add_keys()
    world.moto.refuse = lambda call: ("AccessDenied", "no") if call.action == "AssumeRole" else None
    one_line_error(world.run("use", "dev", "--mfa-code", "123456", "--shell", "bash"), 1)
    world.moto.refuse = None
    again = world.run("use", "jump", "--mfa-code", "123456", "--shell", "bash")
    assert again.returncode == 0, again.stderr  # the cached MFA session: the code isn't needed
    assert [a for a, _ in world.moto.actions()] == ["GetSessionToken", "AssumeRole"]
    world.moto.calls.clear()
    use(world, "dev")
    assert [a for a, _ in world.moto.actions()] == ["AssumeRole"]


def test_credential_process_without_expiration(world):
    world.add_keys()
    script = world.root / "static-creds"
    script.write_text('#!/bin/sh\necho \'{"Version": 1, "AccessKeyId": "ASIASTATIC0000000000", '
                      '"SecretAccessKey": "c3RhdGlj", "SessionToken": "dG9rZW4="}\'\n')
    script.chmod(0o700)
    config = world.home / ".aws" / "config"
    config.write_text(config.read_text() + f"\n[profile static]\ncredential_process = {script}\nregion = us-east-1\n")
    env = use(world, "static")
    assert world.moto.actions() == [], "a session from credential_process is used as it is"
    assert env["AWSENV_PROFILE"] == "static" and env["AWS_SESSION_TOKEN"] == "dG9rZW4="
    assert "AWSENV_EXPIRES" not in env and "AWS_CREDENTIAL_EXPIRATION" not in env
    doc = json.loads(world.ok("export", "static", "--format", "json").stdout)
    assert "Expiration" not in doc


@pytest.mark.parametrize("printed", ["not json at all", "[1, 2]", '{"Version": 1, "AccessKeyId": "ASIAX"}'])
def test_credential_process_that_prints_no_credentials_is_one_line(world, printed):
    """Mutation (cosmic-ray): the exceptions caught around its JSON (ValueError,
    AttributeError for a list, KeyError for a missing secret) not caught."""
    script = world.root / "bad-creds"
    script.write_text(f"#!/bin/sh\nprintf '%s\\n' '{printed}'\n")
    script.chmod(0o700)
    config = world.home / ".aws" / "config"
    config.write_text(config.read_text() + f"\n[profile broken]\ncredential_process = {script}\n")
    line = one_line_error(world.run("use", "broken", "--shell", "bash"), 1)
    assert "credential_process of profile 'broken' did not print Version 1 JSON" in line
    assert "ASIAX" not in line


def test_credential_process_that_fails_is_one_line_with_its_status(world):
    """Mutation (cosmic-ray): `check=False` made True, so a failing process gave
    "internal error (CalledProcessError)". What it printed may hold a secret: not shown."""
    script = world.root / "failing-creds"
    script.write_text("#!/bin/sh\necho '{\"Version\": 1, \"SecretAccessKey\": \"half-written-secret\"'\nexit 3\n")
    script.chmod(0o700)
    config = world.home / ".aws" / "config"
    config.write_text(config.read_text() + f"\n[profile failing]\ncredential_process = {script}\n")
    line = one_line_error(world.run("use", "failing", "--shell", "bash"), 1)
    assert line == "awsenv: credential_process of profile 'failing' exited with 3"


def test_import_through_a_symlink_rewrites_the_real_file(world):
    dotfiles = world.root / "dotfiles"
    dotfiles.mkdir()
    real = dotfiles / "credentials"
    real.write_text(f"[legacy]\naws_access_key_id = {world.robot.key_id}\naws_secret_access_key = {world.robot.secret}\n")
    (world.home / ".aws" / "credentials").symlink_to(real)
    world.ok("import", "legacy", "--delete-plaintext")
    assert (world.home / ".aws" / "credentials").is_symlink()
    assert world.robot.secret not in real.read_text() and "[legacy]" in real.read_text()


def test_refresh_keeps_a_region_override(world):
    world.add_keys()
    env = use(world, "dev", "--mfa-code", "123456", "--region", "us-west-2")
    env["AWSENV_REFRESH_WINDOW"] = "4000"
    world.moto.calls.clear()
    done = subprocess.run([AWSENV, "refresh", "--shell", "bash"], env=env, capture_output=True, text=True,
                          start_new_session=True)
    assert done.returncode == 0, done.stderr
    assert "AWS_REGION" not in done.stdout, "a refresh renews credentials and leaves the region as it is"
    assert "export AWS_ACCESS_KEY_ID=" in done.stdout
    assert [a for a, _ in world.moto.actions()] == ["AssumeRole"]


def test_status_ignores_a_nonsense_expiry(world):
    for value in ("99999999999999999999", "١٢٣", "12a"):
        done = world.ok("status", "--json", env={"AWSENV_PROFILE": "x", "AWSENV_EXPIRES": value})
        assert json.loads(done.stdout) == {"active": False}


def test_the_agent_gets_no_aws_variables(world):
    world.add_keys()
    secret_like = "s3cr3t-that-must-not-linger"
    world.ok("use", "ci", "--shell", "bash", env={"AWS_SECRET_ACCESS_KEY": secret_like, "AWS_ACCESS_KEY_ID": "AKIAX"})
    wait_for_agent(world)
    agents = [pid for pid in os.listdir("/proc") if pid.isdigit() and is_agent_of(pid, world)]
    assert agents
    for pid in agents:
        environ = open(f"/proc/{pid}/environ", "rb").read().split(b"\0")
        assert not any(item.startswith(b"AWS_") for item in environ)
        assert os.readlink(f"/proc/{pid}/cwd") == "/"


def test_agent_off_still_drops_sessions_from_a_running_agent(world):
    from awsenv.store import agentclient as agent

    world.add_keys()
    world.ok("use", "ci", "--shell", "bash")
    wait_for_agent(world)
    sock = str(world.keyring.runtime_dir / "awsenv" / "agent.sock")
    assert agent._request({"op": "get"}, sock)["doc"]
    world.ok("clear", env={"AWSENV_AGENT": "0"})
    doc = agent._request({"op": "get"}, sock)["doc"]
    assert [k for k in doc if k != "mfa-used"] == []


def test_federation_url_must_be_tls(world):
    world.add_keys()
    line = one_line_error(world.run("login", "ci", "--print", env={"AWSENV_FEDERATION_URL": "http://example.com/f"}), 2)
    assert "https" in line


def test_doctor_reports_a_damaged_key_and_audits_the_rest(world):
    world.add_keys()
    keyring_set(world, "key:jump", "not json")
    done = world.run("doctor", "--json")
    assert done.returncode == 1 and "Traceback" not in done.stderr
    findings = {(f["profile"], f["check"]) for f in json.loads(done.stdout)["findings"]}
    assert ("jump", "missing-key") in findings and ("ci", "no-mfa") in findings
