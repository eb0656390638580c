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
