"""MFA codes: a code is spent once it reached AWS, a stored TOTP secret makes the codes of
a role's base profile, and the memory of sent codes outlives the run."""
from __future__ import annotations

import json
import time

import pytest
from helpers import one_line_error, use
from helpers import keyring_set


# the MFA code memory ----------------------------------------------------------------------
class NoTerminal:
    available = False


@pytest.mark.parametrize(("elapsed", "refused"), [(0, True), (89, True), (90, False), (600, False)])
def test_a_sent_code_is_spent_for_90_seconds(elapsed, refused):
    """Mutation: 3 * STEP (90 s) made 1 * STEP (30 s). STS accepts a code about one
    step either side of its own, so a code stays spent for three steps."""
    from awsenv.core.errors import MfaError
    from awsenv.session.mfa import CodeSource

    sent_at = 1_700_000_000
    codes = CodeSource("123456", lambda _profile: None, {"SERIAL": ["123456", sent_at]}, terminal=NoTerminal(),
                       clock=lambda: sent_at + elapsed)
    if refused:
        with pytest.raises(MfaError, match="already used"):
            codes.code("jump", "SERIAL")
    else:
        assert codes.code("jump", "SERIAL") == "123456"
    other = CodeSource("654321", lambda _profile: None, {"SERIAL": ["123456", sent_at]}, terminal=NoTerminal(),
                       clock=lambda: sent_at + elapsed)
    assert other.code("jump", "SERIAL") == "654321", "only the code that was sent is spent"


def test_a_role_takes_its_mfa_code_from_the_base_profiles_totp_secret(world):
    """Mutation (cosmic-ray): the secret looked up under the role's name (`base or
    profile` made `and`). The secret is stored for the profile that holds the device."""
    import pyotp

    world.add_keys()
    world.ok("mfa", "set", "jump", input=pyotp.random_base32() + "\n")
    env = use(world, "dev")  # no --mfa-code and no terminal: the code comes from jump's secret
    assert env["AWSENV_PROFILE"] == "dev"
    assert [a for a, _ in world.moto.actions()] == ["GetSessionToken", "AssumeRole"]


def test_a_stored_totp_secret_that_is_not_base32_is_one_line(world):
    """Mutation (cosmic-ray): the errors of a bad secret not caught in _totp. `mfa set`
    refuses such a secret, but the keyring item can be changed by other tools."""
    from helpers import keyring_set

    world.add_keys()
    keyring_set(world, "totp:jump", "not base32!")
    line = one_line_error(world.run("use", "jump", "--shell", "bash"), 1)
    assert "TOTP secret" in line and "not base32" in line and "awsenv mfa set" in line
    assert world.moto.actions() == []


def test_a_totp_code_already_sent_waits_for_the_next_step_and_no_longer(monkeypatch):
    """Mutation (cosmic-ray): the wait for the next TOTP step miscounted (`%` made `//`,
    a sign flipped, one second less). 20 s into a step, the next code comes 11 s later
    (one second into the next step), not sooner and not a step later."""
    import pyotp

    from awsenv.session.mfa import STEP, CodeSource

    secret = pyotp.random_base32()
    now = [STEP * 56_666_666 + 20]
    monkeypatch.setattr(pyotp.TOTP, "now", lambda self: self.at(now[0]))
    slept = []

    def sleep(seconds):
        slept.append(seconds)
        now[0] += seconds

    class Said:
        available = True
        lines: list = []

        def say(self, text):
            self.lines.append(text)

    sent = pyotp.TOTP(secret).at(now[0])
    codes = CodeSource(None, lambda _profile: secret, {"SERIAL": [sent, now[0] - 5]}, terminal=Said(),
                       clock=lambda: now[0], sleep=sleep)
    code = codes.code("jump", "SERIAL")
    assert slept == [11] and code == pyotp.TOTP(secret).at(STEP * 56_666_667 + 1) != sent
    assert Said.lines == ["awsenv: waiting 11s for the next MFA code"]


@pytest.mark.parametrize(("ago", "refused"), [(60, True), (120, False)])
def test_the_code_memory_is_kept_between_runs(world, ago, refused):
    """The same limit through the program and the keyring: a code sent a minute ago by
    another run is refused before any call; one sent two minutes ago goes to STS."""
    world.add_keys()
    serial = world.alice.mfa_serial
    keyring_set(world, "sessions", json.dumps({"mfa-used": {serial: ["123456", int(time.time()) - ago]}}))
    done = world.run("use", "jump", "--mfa-code", "123456", "--shell", "bash", env={"AWSENV_AGENT": "0"})
    if refused:
        assert "already used" in one_line_error(done, 1)
        assert world.moto.actions() == []
    else:
        assert done.returncode == 0, done.stderr
        assert [c.params.get("TokenCode") for c in world.moto.calls] == ["123456"]
