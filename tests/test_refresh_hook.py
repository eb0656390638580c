"""The prompt hook's refresh and the wrapper around it, in real shells: warn and off modes,
a capped role, set -u, a hostile profile name in the prompt, PROMPT_COMMAND as an array,
completion under another name, and refresh with the agent running."""
from __future__ import annotations

import json
import re
import time

import pytest
from conftest import AWSENV
from terminal import READY, now
from helpers import env_after, use
from helpers import keyring_get
from test_hostile_profile import nothing_ran
from test_shells import export
from test_structure import wait_for_agent


ROLE = "arn:aws:iam::123456789012:role"

# the wrapper's exit status --------------------------------------------------------------
FAILED_USE = {
    "bash": 'eval "$(awsenv init bash)"\nawsenv use {args}\necho "rc=$? profile=${{AWSENV_PROFILE-unset}}"\n',
    "zsh": 'eval "$(awsenv init zsh)"\nawsenv use {args}\necho "rc=$? profile=${{AWSENV_PROFILE-unset}}"\n',
    "fish": "awsenv init fish | source\nawsenv use {args}\nset -l rc $status\n"
            "set -q AWSENV_PROFILE; and set p set; or set p unset\necho \"rc=$rc profile=$p\"\n",
}


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_a_failed_use_through_the_wrapper_returns_its_status(world, shell):
    """Mutation: `__awsenv_eval` returning 0 (or the wrapper dropping the status)."""
    # unknown profile: a usage error (2); no key stored: a keyring failure (1)
    for args, code in (("nosuch", 2), ("dev --mfa-code 123456", 1)):
        done = world.shell(shell, FAILED_USE[shell].format(args=args))
        assert done.stdout.strip() == f"rc={code} profile=unset", (args, done.stdout, done.stderr)
        assert done.stderr.startswith("awsenv: "), done.stderr


# AWSENV_REFRESH=warn|off ----------------------------------------------------------------
def refresh_on_a_terminal(world, env: dict) -> tuple[int, str]:
    """`awsenv refresh` as the hook runs it, with a terminal it could ask on."""
    import pexpect

    child = pexpect.spawn(AWSENV, ["refresh", "--shell", "bash"], env=env, cwd=str(world.root),
                          encoding="utf-8", timeout=30)
    try:
        index = child.expect(["MFA code for jump", pexpect.EOF])
        output = child.before + (child.after if index == 0 else "")
        if index == 0:
            child.sendline("")  # decline
            child.expect(pexpect.EOF)
            output += child.before
    finally:
        child.close()
    return child.exitstatus, output


def test_refresh_warn_says_so_without_asking_and_off_does_nothing(world):
    """Mutations: `prompt=mode == "prompt"` made always True; the `off` check removed."""
    world.add_keys()
    # A jump session with 15 minutes left under a 1000 s window: due, and only a new
    # code can renew it.
    env = {**use(world, "jump", "--duration", "900", "--mfa-code", "123456"), "AWSENV_REFRESH_WINDOW": "1000"}
    world.moto.calls.clear()
    status, output = refresh_on_a_terminal(world, env)  # prompt, the default, asks
    assert status == 0 and "MFA code for jump" in output, output
    status, output = refresh_on_a_terminal(world, {**env, "AWSENV_REFRESH": "warn"})
    assert status == 0, output
    assert "MFA code for jump" not in output
    assert "cannot refresh jump" in output and "needs a new MFA code" in output, output
    assert re.search(r"export AWSENV_NEXT_CHECK='\d+';", output), "warned once, not on every prompt"
    status, output = refresh_on_a_terminal(world, {**env, "AWSENV_REFRESH": "off"})
    assert (status, output) == (0, "")
    assert world.moto.actions() == []


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_refresh_off_starts_nothing_at_the_prompt(world, term, shell):
    """Mutation: the hook's `AWSENV_REFRESH != off` check removed."""
    world.add_keys()
    t = term(shell, before=export(shell, "AWSENV_REFRESH_WINDOW", "1000") + "\n" + export(shell, "AWSENV_REFRESH", "off"))
    t.run("awsenv use jump --duration 900 --mfa-code 111111")
    runs = len(t.recorder.runs())
    for _ in range(2):
        t.run("")
    assert len(t.recorder.runs()) == runs, t.recorder.runs()[runs:]
    assert "MFA code for jump" not in t.output
    assert re.search(r"\(jump 1[45]m!\) " + READY, t.output), t.output[-300:]
    # The same shell with the default mode asks at the next prompt.
    t.child.send(export(shell, "AWSENV_REFRESH", "prompt") + "\r")
    t.expect("MFA code for jump")
    t.child.send("\r")
    t.prompt()

# a role capped below the window -----------------------------------------------------------
CAPPED = """
set -eu
eval "$(awsenv init bash)"
awsenv use dev --mfa-code 123456
export AWSENV_REFRESH_WINDOW=4000
__awsenv_hook
echo "renewed expires=$AWSENV_EXPIRES next=${AWSENV_NEXT_CHECK-none} now=$(date +%s)"
__awsenv_hook
__awsenv_hook
echo "quiet next=$AWSENV_NEXT_CHECK"
export AWSENV_NEXT_CHECK=$(date +%s)
__awsenv_hook
echo "again expires=$AWSENV_EXPIRES next=${AWSENV_NEXT_CHECK-none}"
"""


@pytest.mark.parametrize("min_ttl", [None, "900"])
def test_a_role_capped_below_the_window_is_renewed_once_per_lifetime(world, min_ttl):
    """Mutation: `creds.expiration + MIN_TTL` in the AWSENV_NEXT_CHECK arithmetic."""
    world.add_keys()
    done = world.shell("bash", CAPPED, env={"AWSENV_MIN_TTL": min_ttl} if min_ttl else None)
    assert done.returncode == 0, done.stderr
    lines = {line.split()[0]: dict(kv.split("=") for kv in line.split()[1:]) for line in done.stdout.splitlines()}
    renewed, again = lines["renewed"], lines["again"]
    expires, next_check, at = int(renewed["expires"]), int(renewed["next"]), int(renewed["now"])
    # AWS caps the role at 1 h, under the 4000 s window: the next check is due when
    # the role has AWSENV_MIN_TTL left, inside its lifetime, not at every prompt.
    assert next_check == expires - int(min_ttl or 300)
    assert at < next_check < expires
    assert lines["quiet"]["next"] == renewed["next"]
    assert int(again["next"]) == int(again["expires"]) - int(min_ttl or 300)
    assumed = [a for a, _ in world.moto.actions()].count("AssumeRole")
    assert assumed == 3, "use, one renewal, and one more when the next check came"

# the prompt and the hook under set -u ------------------------------------------------------
NOUNSET = {
    "bash": """set -euo pipefail
PS1='$ '
eval "$(awsenv init bash)"
awsenv use dev --mfa-code 123456
__awsenv_hook
awsenv_prompt
printf '%s\\n' "${PS1@P}"
export AWSENV_REFRESH_WINDOW=4000
__awsenv_hook
printf '%s\\n' "${PS1@P}" "next=$AWSENV_NEXT_CHECK"
""",
    "zsh": """set -eu
PROMPT='$ '
eval "$(awsenv init zsh)"
awsenv use dev --mfa-code 123456
__awsenv_precmd
awsenv_prompt
print -rP -- "$PROMPT"
export AWSENV_REFRESH_WINDOW=4000
__awsenv_precmd
print -rP -- "$PROMPT"
print -r -- "next=$AWSENV_NEXT_CHECK"
""",
}


@pytest.mark.parametrize("shell", ["bash", "zsh"])
def test_prompt_and_hook_under_set_u_with_credentials_active(world, shell):
    """Mutation: any unguarded `$VAR` (e.g. `${AWSENV_NEXT_CHECK-}` made `$AWSENV_NEXT_CHECK`)."""
    world.add_keys()
    done = world.shell(shell, NOUNSET[shell])
    # The one stderr line is the refresh saying what it did (issue 8); nothing else.
    assert done.returncode == 0, done.stderr
    assert re.fullmatch(r"awsenv: renewed dev \((5[0-9]m|1h00m) left\)\n", done.stderr), done.stderr
    lines = done.stdout.splitlines()
    assert re.fullmatch(r"dev (5[0-9]m|1h00m)", lines[0]), lines
    assert re.fullmatch(r"\(dev (5[0-9]m|1h00m)\) \$ ", lines[1]), lines
    # after the refresh the window is 4000 s: the 1 h role is urgent, and checked once more later
    assert re.fullmatch(r"\(dev (5[0-9]m|1h00m)!\) \$ ", lines[2]), lines
    assert re.fullmatch(r"next=\d+", lines[3]), lines
    assert [a for a, _ in world.moto.actions()].count("AssumeRole") == 2

# a hostile profile name in the real prompt -----------------------------------------------
PROMPT_NAME = "p%n%F{red}%%$(touch PWNED)`touch PWNED2`\\w\\$;x'\"{}!"


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_hostile_profile_name_in_the_drawn_prompt(world, term, shell):
    """Mutations: PS1 built with the name inside it (not a variable), zsh's `%` not
    doubled, fish printing the segment as a format string."""
    world.add_keys()
    config = world.home / ".aws" / "config"
    config.write_text(config.read_text() + f"\n[profile {PROMPT_NAME}]\nrole_arn = {ROLE}/dev\n"
                      f"source_profile = jump\nmfa_serial = {world.alice.mfa_serial}\n")
    t = term(shell, env={"P": PROMPT_NAME})
    out = t.run('awsenv use "$P" --mfa-code 111111')
    assert re.search(re.escape(f"({PROMPT_NAME} ") + r"(5[0-9]m|1h00m)\) " + READY, out), out
    assert "(" + PROMPT_NAME + " " in t.run("")
    assert t.value("AWSENV_PROFILE") == PROMPT_NAME
    nothing_ran(world)


# PROMPT_COMMAND as an array --------------------------------------------------------------
def test_prompt_command_as_an_array(world, term):
    """Mutation: the array branch of __awsenv_install_hook treating it as a string
    (only element 0 runs, so the hook would never run)."""
    world.add_keys()
    t = term("bash", before="__mark() { __marks=$((${__marks:-0} + 1)); }\nPROMPT_COMMAND=(__mark 'true')",
             after='eval "$(awsenv init bash)"')
    listing = t.run("declare -p PROMPT_COMMAND")
    assert 'declare -a PROMPT_COMMAND=([0]="__mark" [1]="true" [2]="__awsenv_hook")' in listing, listing
    marks = t.number("__marks")
    t.run("awsenv use dev --mfa-code 111111")
    assert re.search(r"\(dev (5[0-9]m|1h00m)\) " + READY, t.output[-200:]), t.output[-300:]
    assert t.number("__marks") > marks, "the user's own command still runs"
    # and the hook in the array refreshes: silently, from the cached MFA session
    runs = len(t.recorder.runs())
    t.run("export AWSENV_EXPIRES=$((EPOCHSECONDS + 100))")
    assert any(run.startswith("refresh") for run in t.recorder.runs()[runs:])
    assert t.number("AWSENV_EXPIRES") - now() > 600


# completion under --cmd NAME ------------------------------------------------------------
@pytest.mark.parametrize("shell", ["bash", "zsh"])
def test_completion_under_another_command_name(world, term, shell):
    """Mutation: the completer registered for `awsenv` instead of the wrapper's name."""
    init = f'eval "$(awsenv init {shell} --cmd aws-env)"'
    t = term(shell, init=init, after="autoload -Uz compinit && compinit -u" if shell == "zsh" else "")
    t.run("")
    t.child.send("aws-env use lo\t")
    t.expect(r"use long")
    t.cancel_line()
    t.child.send("aws-env us\t")
    t.expect(r"aws-env use(\x1b\[[0-9;]*m)? ")
    t.cancel_line()


def test_fish_completion_under_another_command_name(world):
    done = world.shell("fish", "awsenv init fish --cmd aws-env | source; complete -C 'aws-env use lo'")
    assert done.returncode == 0, done.stderr
    assert "long" in [line.split("\t")[0] for line in done.stdout.splitlines()], done.stdout


def test_a_bad_refresh_window_does_not_stop_use(world):
    """Mutation (cosmic-ray): `refresh_window()` not falling back to 600. The hooks
    read AWSENV_REFRESH_WINDOW with the same fallback; `use` only passes it on to the
    agent, so a typo in it must not stop the switch."""
    world.add_keys()
    env = use(world, "deploy", env={"AWSENV_REFRESH_WINDOW": "10m"})
    assert env["AWSENV_PROFILE"] == "deploy"


def get_session_key(world, profile: str, kind: str = "session") -> str:
    """The access key ID of the cached session of that kind for `profile`."""
    stored = json.loads(keyring_get(world, "sessions"))
    (key_id,) = [v["AccessKeyId"] for k, v in stored.items() if k != "mfa-used" and json.loads(k)[:2] == [kind, profile]]
    return key_id


def test_the_hooks_refresh_asks_the_agent_to_renew_a_role_it_does_not_watch_yet(world):
    """The prompt hook finds dev due and the agent has not renewed it (it never watched
    dev: the switch happened before it started). The refresh asks the agent, whose STS
    client is warm, instead of importing botocore at the prompt. Mutation (cosmic-ray):
    `self._agent = doc is not None` made `is None`, so the refresh renewed it itself."""
    from test_broker import age, assumed, watched
    from test_structure import HEAVY, heavy, imported

    world.add_keys()
    first = use(world, "dev", "--mfa-code", "123456")  # no agent yet: this run starts it
    wait_for_agent(world)
    assert watched(world, "dev") == {}
    age(world, "dev", 200)
    world.moto.calls.clear()
    due = {"AWSENV_PROFILE": "dev", "AWSENV_EXPIRES": str(int(time.time()) + 200),
           "AWS_ACCESS_KEY_ID": first["AWS_ACCESS_KEY_ID"], "PYTHONPROFILEIMPORTTIME": "1"}
    done = world.ok("refresh", "--shell", "bash", env=due)
    assert heavy(imported(done.stderr), HEAVY) == [], "no SDK and no keyring at the prompt"
    (renewal,) = assumed(world)
    assert renewal.key_id == get_session_key(world, "jump"), "from the cached MFA session"
    renewed = env_after(world, done.stdout)
    assert renewed["AWS_ACCESS_KEY_ID"] == get_session_key(world, "dev", "role") != first["AWS_ACCESS_KEY_ID"]


def test_refresh_with_the_agent_running_makes_new_sessions_itself(world):
    """`use dev --refresh` renews dev itself: one new role session from the cached MFA
    session, not the agent's renewal of dev, and no new MFA session (a code given is
    not spent). No test ran --refresh with the agent up."""
    world.add_keys()
    use(world, "dev", "--mfa-code", "123456")
    wait_for_agent(world)
    use(world, "dev")  # through the agent, which now watches dev
    world.moto.calls.clear()
    use(world, "dev", "--refresh", "--mfa-code", "654321")
    assert [(c.action, c.params.get("TokenCode")) for c in world.moto.calls] == [("AssumeRole", None)]
