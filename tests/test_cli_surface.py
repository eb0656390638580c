"""The everyday surface of the CLI as a user meets it on a terminal: what `use` does
when its output would land on the screen, the labels of `agent status`, the region
warning, flag typos, `--refresh`, the MFA prompt, `add` and completion. Real shells on a
pseudo-terminal (tests/terminal.py), moto over HTTP, gnome-keyring."""
from __future__ import annotations

import re

import pytest

from test_wrapper import rc

CODE = "--mfa-code 111111"


# `use` with stdout on the terminal ---------------------------------------------------
@pytest.mark.parametrize("shell", ["bash", "zsh"])
def test_use_on_a_terminal_prints_no_secret_and_says_how_to_apply(world, term, shell):
    world.add_keys()
    t = term(shell, init="")  # a shell without `awsenv init`: the real program, stdout the tty
    out = t.run("awsenv use ci; echo rc=$?")
    assert re.search(r"^rc=2\r?$", out, re.M), out
    assert world.robot.secret not in out
    assert "AWS_SECRET_ACCESS_KEY" not in out and "AWS_SESSION_TOKEN" not in out
    assert 'eval "$(awsenv use ci)"' in out and "awsenv init" in out
    assert world.moto.actions() == [], "nothing is asked of AWS for output nobody can apply"
    assert t.value("AWS_ACCESS_KEY_ID") == ""

    # Applied through eval, the same command works: its stdout is a pipe there.
    assert rc(t, 'eval "$(awsenv use ci)"') == 0
    assert t.value("AWSENV_PROFILE") == "ci"


def test_use_through_the_wrapper_still_applies(world, term):
    world.add_keys()
    t = term("bash")
    assert rc(t, f"awsenv use dev {CODE}") == 0
    assert t.value("AWSENV_PROFILE") == "dev"


# `agent status` ----------------------------------------------------------------------
def test_agent_status_calls_a_session_without_mfa_no_mfa_session(world):
    from test_structure import wait_for_agent

    world.add_keys()
    world.ok("use", "ci", "--shell", "bash")  # robot: no mfa_serial, GetSessionToken without a code
    world.ok("use", "dev", "--shell", "bash", "--mfa-code", "111111")
    wait_for_agent(world)

    out = world.ok("agent", "status").stdout
    assert re.search(r"^  ci: session without MFA, ", out, re.M), out
    assert re.search(r"^  jump: MFA session, ", out, re.M), out
    assert "ci: MFA session" not in out


# a profile with no region ---------------------------------------------------------------
NO_REGION = """\
[default]
output = json

[profile ci]

[profile eu]
region = eu-west-1
"""


def test_use_warns_once_when_no_region_applies(world):
    world.add_keys()
    world.write_config(NO_REGION)
    done = world.ok("use", "ci", "--shell", "bash")
    assert "AWS_SESSION_TOKEN=" in done.stdout
    warning = [line for line in done.stderr.splitlines() if "region" in line]
    assert len(warning) == 1 and warning[0].startswith("awsenv: warning: no region for 'ci'"), done.stderr
    assert "--region" in warning[0]

    # A region from anywhere the AWS CLI looks: no warning.
    for args, env in ((("--region", "eu-west-1"), {}), ((), {"AWS_REGION": "eu-west-1"}),
                      ((), {"AWS_DEFAULT_REGION": "eu-west-1"})):
        done = world.ok("use", "ci", "--shell", "bash", *args, env=env)
        assert "region" not in done.stderr, (args, env, done.stderr)
    world.write_config(NO_REGION.replace("output = json", "region = us-east-1"))
    assert "region" not in world.ok("use", "ci", "--shell", "bash").stderr


def test_use_warns_when_the_region_an_earlier_use_set_goes(world):
    world.add_keys()
    world.write_config(NO_REGION)
    env = {"AWS_REGION": "eu-west-1", "AWS_DEFAULT_REGION": "eu-west-1", "AWSENV_REGION": "eu-west-1"}
    done = world.ok("use", "ci", "--shell", "bash", env=env)
    assert "unset -v AWS_REGION;" in done.stdout
    assert "awsenv: warning: no region for 'ci'" in done.stderr


# use --refresh ---------------------------------------------------------------------------
def test_refresh_renews_the_role_from_the_cached_mfa_session(world):
    world.add_keys()
    first = world.ok("use", "prod", "--shell", "bash", "--mfa-code", "111111").stdout
    world.moto.calls.clear()

    # No code and no terminal: only a prompt for a code could make this fail.
    done = world.run("use", "prod", "--shell", "bash", "--refresh")
    assert done.returncode == 0, done.stderr
    assert [c.action for c in world.moto.calls] == ["AssumeRole"]
    key = re.search(r"AWS_ACCESS_KEY_ID='(\w+)'", done.stdout).group(1)
    assert key not in first, "a new role session"

    # A new MFA session is an explicit choice: --refresh of the base profile, or clear.
    world.moto.calls.clear()
    world.ok("use", "jump", "--shell", "bash", "--refresh", "--mfa-code", "222222")
    assert [(c.action, c.params.get("TokenCode")) for c in world.moto.calls] == [("GetSessionToken", "222222")]
    world.ok("clear", "jump")
    done = world.run("use", "prod", "--shell", "bash")
    assert done.returncode != 0 and done.stdout == "", "the MFA session went with clear"


# the MFA prompt ---------------------------------------------------------------------------
def test_mfa_prompt_gives_up_after_three_malformed_entries(world, term):
    world.add_keys()
    t = term("bash")
    t.child.send("awsenv use dev; echo rc=$?\r")
    for answer in ("abc", "12345", "1234567"):
        t.expect("MFA code for dev")
        t.child.send(answer + "\r")
    out = t.prompt()
    assert re.search(r"^rc=2\r?$", out, re.M), out
    errors = [line for line in out.splitlines() if line.startswith("awsenv: ")]
    assert errors[-1].startswith("awsenv: ") and "3" in errors[-1] and "6 digits" in errors[-1], out
    assert out.count("MFA code for dev") == 0, "not asked a fourth time"  # the three were read by expect
    assert world.moto.actions() == [], "nothing was sent"
    assert t.value("AWSENV_PROFILE") == ""


def test_mfa_prompt_ignores_what_was_typed_before_it(world, term):
    world.add_keys()
    t = term("bash")
    t.child.send("awsenv use dev\r123456\r")  # typed ahead, before the question
    t.expect("MFA code for dev")
    t.child.send("111111\r")
    t.prompt()
    assert t.value("AWSENV_PROFILE") == "dev"
    assert [c.params.get("TokenCode") for c in world.moto.calls if c.action == "GetSessionToken"] == ["111111"]


# flag typos ----------------------------------------------------------------------------
def one_error_line(done, code: int = 2) -> str:
    assert done.returncode == code, (done.returncode, done.stderr)
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    return lines[0]


@pytest.mark.parametrize("argv", [["use", "dev", "--durration", "1h"], ["use", "dev", "--durration=1h"]])
def test_a_mistyped_flag_gets_its_close_match(world, argv):
    line = one_error_line(world.run(*argv))
    assert "--durration" in line and "did you mean --duration?" in line, line
    assert "awsenv use --help" in line, line
    assert world.moto.actions() == []


def test_a_mistyped_flag_of_an_sso_action_points_at_that_action(home):
    line = one_error_line(home.run("sso", "login", "--no-browzer"))
    assert "did you mean --no-browser?" in line and "awsenv sso login --help" in line, line


@pytest.mark.parametrize("argv, wrong, meant", [
    (["sso", "lgoin"], "lgoin", "login"),
    (["agent", "stpo"], "stpo", "stop"),
    (["export", "dev", "--format", "jsno"], "jsno", "json"),
    (["init", "fsh"], "fsh", "fish"),
])
def test_a_mistyped_choice_gets_its_close_match(home, argv, wrong, meant):
    line = one_error_line(home.run(*argv))
    assert f"invalid choice {wrong!r}" in line and line.count(f"did you mean {meant}?") == 1, line
    assert f"(see awsenv {argv[0]} --help)" in line, line


def test_exec_with_a_command_of_flags_but_no_double_dash_says_where_they_go(home):
    line = one_error_line(home.run("exec", "dev", "aws", "sts", "get-caller-identity", "--query", "Arn"))
    assert "unknown option --query" in line, line
    assert "goes after `--`: awsenv exec dev -- aws sts get-caller-identity" in line, line


def test_a_far_fetched_choice_gets_the_list_only(home):
    line = one_error_line(home.run("agent", "frobnicate"))
    assert "choose from status, stop" in line and "did you mean" not in line, line


def test_an_unknown_top_level_flag_says_so_and_shows_the_help(home):
    done = home.run("-v")
    assert done.returncode == 2 and done.stdout == ""
    first, *rest = done.stderr.splitlines()
    assert first.startswith("awsenv: -v is not an option") and "--version" in first, first
    assert any(line.startswith("usage: awsenv") for line in rest), done.stderr


@pytest.mark.parametrize("command", ["agent", "sso"])
def test_a_missing_action_is_called_action(home, command):
    line = one_error_line(home.run(command))
    assert line.endswith(f"required: ACTION (see awsenv {command} --help)"), line


# add on a terminal --------------------------------------------------------------------------
def spawn_add(world, name: str):
    import pexpect

    from conftest import AWSENV

    return pexpect.spawn(AWSENV, ["add", name], env=world.env, cwd=str(world.root), encoding="utf-8", timeout=30)


def add_until_the_offer(world, name: str):
    """`awsenv add NAME` on a terminal, alice's key typed, at the offer to write the profile."""
    child = spawn_add(world, name)
    child.expect(f"Access key ID for {name}: ")
    child.sendline(world.alice.key_id)
    child.expect(f"Secret access key for {name}: ")
    child.sendline(world.alice.secret)
    child.expect(r"Add it\? \[Y/n\] ")
    return child


def test_add_refuses_a_key_id_before_asking_for_the_secret(world):
    import pexpect

    child = spawn_add(world, "fresh")
    try:
        child.expect("Access key ID for fresh: ")
        child.sendline("alice")
        index = child.expect(["Secret access key", pexpect.EOF])
        rest = child.before
    finally:
        child.close()
    assert index == 1, "no secret asked for after a key ID that is not one"
    assert child.exitstatus == 2
    assert "does not look like an access key ID" in rest


def test_add_writes_a_profile_with_a_region_and_only_a_real_mfa_serial(world):
    import pexpect

    world.write_config("")  # no [default] region to fall back on
    child = add_until_the_offer(world, "fresh")
    try:
        child.sendline("")
        child.expect("Region, e.g. eu-west-1: ")
        child.sendline("")  # nothing to fall back on: asked again
        child.expect("awsenv: that is not a region name")
        child.expect("Region, e.g. eu-west-1: ")
        child.sendline("eu-west-1")
        child.expect(r"MFA device ARN \(mfa_serial\), empty for none: ")
        child.sendline("alice")
        child.expect("awsenv: that is not an MFA device ARN")
        child.expect("MFA device ARN")
        child.sendline(world.alice.mfa_serial)
        child.expect(pexpect.EOF)
    finally:
        child.close()
    assert child.exitstatus == 0
    text = (world.home / ".aws" / "config").read_text()
    assert text.endswith(f"[profile fresh]\nregion = eu-west-1\nmfa_serial = {world.alice.mfa_serial}\n"), text


def test_add_gives_up_on_three_bad_mfa_serials_and_writes_nothing(world):
    import pexpect

    config = world.home / ".aws" / "config"
    before = config.read_text()
    child = add_until_the_offer(world, "fresh")
    try:
        child.sendline("y")
        child.expect("Region")
        child.sendline("")
        for bad in ("alice", "arn:aws:iam::123456789012:user/alice", "x"):
            child.expect("MFA device ARN")
            child.sendline(bad)
        child.expect(pexpect.EOF)
        rest = child.before
    finally:
        child.close()
    assert child.exitstatus == 2
    assert "[profile fresh] was not written" in rest and "the key is stored" in rest
    assert config.read_text() == before


# completion ----------------------------------------------------------------------------------
BROKEN = """\
[profile beta]
region = eu-west-1
this line is not a setting
[profile alpha]
"""


@pytest.mark.parametrize("shell", ["bash", "zsh"])
def test_tab_with_a_malformed_config_offers_its_profiles_and_says_what_is_wrong(world, term, shell):
    from test_wrapper import COMPINIT, TAB_TWICE, listed

    world.write_config(BROKEN)
    t = term(shell, after=COMPINIT if shell == "zsh" else "")
    out = listed(t, f"awsenv use {TAB_TWICE[shell]}", "beta")
    assert "alpha" in out, out
    assert "awsenv-runs.log" not in out, "no file names instead of profiles"
    assert out.count("expected 'key = value' or '[section]'") == 1, out
    assert "config:3:" in out, out


def test_zsh_lists_profiles_sorted_and_nothing_else(world, term):
    from test_wrapper import COMPINIT, listed

    t = term("zsh", after=f"{COMPINIT}\nsetopt list_rows_first")  # the listing reads left to right
    out = listed(t, "awsenv use \t", "viaproc")
    words = [w for w in re.split(r"\s+", out.split("awsenv use", 1)[1]) if w]
    profiles = [w for w in words if w in {"ci", "default", "deploy", "dev", "jump", "long", "prod", "viaproc"}]
    assert profiles == sorted(profiles) and len(profiles) == 8, out
    assert "--" not in words, out
