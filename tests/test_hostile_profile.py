"""`use` output in each shell, end to end: a hostile profile name stays data (issue 2,
item 12), and what `use dev` prints is accepted by each shell and by the AWS CLI
(item 8). The profile name reaches the shell through the environment, never through
the script text, so only awsenv's quoting is under test."""
from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from conftest import WEIRD
from test_quoting import ps_assignments

USE = {
    # strict mode: a failing awsenv or an unset variable ends the script with an error
    "bash": 'set -euo pipefail; eval "$(awsenv use "$P" --mfa-code 123456 --shell bash)"\n',
    "zsh": 'set -eu; eval "$(awsenv use "$P" --mfa-code 123456 --shell zsh)"\n',
    # `| source` would hide the status of a failed use: keep the output, check, then source
    "fish": 'awsenv use "$P" --mfa-code 123456 --shell fish > use.fish; or exit 3; source use.fish\n',
}
PRINT_PROFILE = 'printf %s "$AWSENV_PROFILE"\n'


def nothing_ran(world) -> None:
    canaries = [p for name in ("PWNED", "PWNED2") for p in world.root.rglob(name)]
    assert canaries == [], f"the profile name was executed: {canaries}"
    assert not (world.home / "PWNED").exists() and not (world.root / "PWNED2").exists()


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_hostile_profile_name_is_data(world, shell):
    world.add_keys()
    done = world.shell(shell, USE[shell] + PRINT_PROFILE, env={"P": WEIRD})
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert done.stdout.encode() == WEIRD.encode()
    nothing_ran(world)
    # the credentials really are the role's, not just the name
    assert [a for a, _key in world.moto.actions()] == ["GetSessionToken", "AssumeRole"]


def test_hostile_profile_name_in_pwsh(world):
    world.add_keys()
    done = world.run("use", WEIRD, "--mfa-code", "123456", "--shell", "pwsh")
    assert done.returncode == 0, done.stderr
    assigned = dict(ps_assignments(done.stdout))
    assert assigned["AWSENV_PROFILE"] == WEIRD
    assert assigned["AWS_ACCESS_KEY_ID"].startswith("ASIA")
    assert assigned["AWS_PROFILE"] is None  # removed, not set
    nothing_ran(world)


def test_hostile_profile_name_through_export(world):
    world.add_keys()
    world.ok("use", WEIRD, "--mfa-code", "123456", "--shell", "bash")  # caches the role session
    scripts = {
        "bash": 'set -euo pipefail; eval "$(awsenv export "$P" --format env)"\n' + PRINT_PROFILE,
        "zsh": 'set -eu; eval "$(awsenv export "$P" --format env)"\n' + PRINT_PROFILE,
        "fish": 'awsenv export "$P" --format fish | source\n' + PRINT_PROFILE,
    }
    for shell, script in scripts.items():
        done = world.shell(shell, script, env={"P": WEIRD})
        assert done.returncode == 0, (shell, done.stderr)
        assert done.stderr == "", shell
        assert done.stdout == WEIRD, shell
    done = world.ok("export", WEIRD, "--format", "powershell")
    assert dict(ps_assignments(done.stdout))["AWSENV_PROFILE"] == WEIRD
    nothing_ran(world)
    # the cached role session served every export: no second MFA session, no new code
    assert [a for a, _key in world.moto.actions()].count("GetSessionToken") == 1


CALLER = "aws sts get-caller-identity --output json"
# A stale AWS_PROFILE naming no profile makes the AWS CLI fail, so `use` must unset it.
STALE = {"AWS_PROFILE": "gone", "AWS_DEFAULT_PROFILE": "gone", "AWS_SECURITY_TOKEN": "stale"}


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_use_dev_output_works_in_each_shell(world, shell):
    assert shutil.which("aws", path=world.env["PATH"]), "awscli is a test dependency"
    world.add_keys()
    use = {
        "bash": 'set -euo pipefail; eval "$(awsenv use dev --mfa-code 123456 --shell bash)"\n',
        "zsh": 'set -eu; eval "$(awsenv use dev --mfa-code 123456 --shell zsh)"\n',
        "fish": "awsenv use dev --mfa-code 123456 --shell fish | source\n",
    }[shell]
    check = f"{CALLER}\n" if shell != "fish" else f"{CALLER}; or exit 4\n"
    done = world.shell(shell, use + check + PRINT_PROFILE, env=STALE)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    identity, _, profile = done.stdout.rpartition("}\n")
    assert profile == "dev"
    arn = json.loads(identity + "}")["Arn"]
    assert "assumed-role/dev" in arn, arn
    assert any(action == "GetCallerIdentity" for action, _key in world.moto.actions())


def test_use_dev_output_for_pwsh_parses_and_works(world):
    assert shutil.which("aws", path=world.env["PATH"]), "awscli is a test dependency"
    world.add_keys()
    done = world.ok("use", "dev", "--mfa-code", "123456", "--shell", "pwsh")
    env = {**world.env, **STALE}
    # what PowerShell would do with the statements: set or remove each variable
    for name, value in ps_assignments(done.stdout):
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    assert env["AWSENV_PROFILE"] == "dev"
    assert env["AWS_REGION"] == env["AWS_DEFAULT_REGION"] == "eu-central-1"
    assert "AWS_PROFILE" not in env and "AWS_SECURITY_TOKEN" not in env
    caller = subprocess.run(
        CALLER.split(), env=env, capture_output=True, text=True, cwd=world.root, timeout=120)
    assert caller.returncode == 0, caller.stderr
    assert "assumed-role/dev" in json.loads(caller.stdout)["Arn"]


def test_failed_use_changes_nothing_in_the_shell(world):
    """No key stored: `use` fails, and the eval leaves the variables as they were."""
    script = (
        'eval "$(awsenv use dev --mfa-code 123456 --shell bash)" || true\n'
        'printf %s "${AWSENV_PROFILE-unset}|${AWS_PROFILE-unset}"\n'
    )
    done = world.shell("bash", script, env={"AWS_PROFILE": "mine"})
    assert done.stdout == "unset|mine"
    assert done.stderr.strip() != ""
