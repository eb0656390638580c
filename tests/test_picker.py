"""The profile picker (`awsenv use` with no profile, on a terminal) and `use -`: typed
into real bash, zsh and fish on a pseudo-terminal, through the wrapper, as a person
would (tests/terminal.py)."""
from __future__ import annotations

import pytest

ESC = "\x1b"
SHELLS = ["bash", "zsh", "fish"]


def status(term) -> str:
    """The exit status of the last command, in each shell's own words."""
    name = "status" if term.shell == "fish" else "?"
    return term.value(name)


def open_picker(term) -> str:
    term.child.send("awsenv use\r")
    return term.expect("profile>")


@pytest.mark.parametrize("shell", SHELLS)
def test_the_picker_applies_the_chosen_profile_in_the_shell(world, term, shell):
    world.add_keys()
    world.ok("use", "dev", "--mfa-code", "123456", "--shell", "bash")  # cached, and the most recent
    t = term(shell)

    open_picker(t)
    # Each row: profile, kind, time left of its cached credentials, region; the most
    # recently used first, marked as the selection.
    t.expect(r"> dev +role +\d\dm +eu-central-1")
    t.expect(r"jump +MFA +11h\d\dm +eu-west-1")
    t.expect(r"ci +key +-")

    t.child.send("dpy")  # fuzzy: d, p, y in order; only deploy has them
    t.child.send("\r")
    t.prompt()
    assert t.value("AWSENV_PROFILE") == "deploy"
    assert "assumed-role/deploy/" in t.run("aws sts get-caller-identity --query Arn --output text")
    # The picker drew on the terminal only: nothing of it was evaluated or left behind.
    assert "command not found" not in t.output and "Unknown command" not in t.output


@pytest.mark.parametrize("shell", SHELLS)
@pytest.mark.parametrize("key", ["esc", "ctrl-c"])
def test_esc_or_ctrl_c_in_the_picker_leaves_the_shell_unchanged(world, term, shell, key):
    world.add_keys()
    t = term(shell)
    t.run("awsenv use ci")
    before = t.value("AWS_ACCESS_KEY_ID")

    open_picker(t)
    t.expect(r"> ci +key")
    if key == "esc":
        t.child.send(ESC)
    else:
        t.child.sendcontrol("c")
    t.prompt()
    assert status(t) == "130"
    assert t.value("AWSENV_PROFILE") == "ci" and t.value("AWS_ACCESS_KEY_ID") == before


@pytest.mark.parametrize("shell", SHELLS)
def test_use_dash_goes_back_to_the_previous_profile(world, term, shell):
    world.add_keys()
    t = term(shell)
    t.run("awsenv use ci")
    t.run("awsenv use deploy")
    assert t.value("AWSENV_PREVIOUS") == "ci"

    t.run("awsenv use -")
    assert t.value("AWSENV_PROFILE") == "ci" and t.value("AWSENV_PREVIOUS") == "deploy"
    t.run("awsenv use -")
    assert t.value("AWSENV_PROFILE") == "deploy"
    t.run("awsenv unset")  # leaves nothing of awsenv behind, the previous profile too
    assert "no previous profile" in t.run("awsenv use -")
    assert t.value("AWSENV_PROFILE") == ""


def test_use_dash_in_a_fresh_shell_is_a_usage_error(home):
    done = home.run("use", "-", "--shell", "bash")

    assert done.returncode == 2 and done.stdout == ""
    assert "no previous profile" in done.stderr


def test_without_a_terminal_use_without_a_profile_stays_a_usage_error(home):
    (home.home / ".aws" / "config").write_text("[profile dev]\nregion = eu-west-1\n")

    done = home.run("use", "--shell", "bash", input="")

    assert done.returncode == 2 and done.stdout == ""
    assert "name a PROFILE" in done.stderr and "terminal" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_the_most_recently_used_profiles_are_kept_in_a_small_file_under_xdg_state(world):
    world.add_keys()
    for profile in ("ci", "deploy", "ci"):
        world.ok("use", profile, "--shell", "bash")

    state = world.home / ".local" / "state" / "awsenv" / "recent"
    assert state.read_text() == "ci\ndeploy\n"
    xdg = world.root / "state"
    world.ok("use", "deploy", "--shell", "bash", env={"XDG_STATE_HOME": str(xdg)})
    assert (xdg / "awsenv" / "recent").read_text() == "deploy\n"


def test_each_row_names_the_profiles_kind(tmp_path):
    """The kind column speaks of every kind `Profile.kind` knows, in the picker's words;
    a bad region reads `?` instead of failing the list."""
    from awsenv.cli.picker import rows
    from awsenv.core.config import AwsConfig

    config = tmp_path / "config"
    config.write_text(
        "[profile key]\n"
        "[profile mfa]\nmfa_serial = arn:aws:iam::123456789012:mfa/alice\n"
        "[profile role]\nrole_arn = arn:aws:iam::123456789012:role/dev\nsource_profile = mfa\n"
        "[profile portal]\nsso_start_url = https://example.awsapps.com/start\nsso_region = eu-west-1\n"
        "sso_account_id = 123456789012\nsso_role_name = Dev\n"
        "[profile signed]\nlogin_session = arn:aws:iam::123456789012:user/alice\n"
        "[profile web]\nrole_arn = arn:aws:iam::123456789012:role/web\nweb_identity_token_file = /t\n"
        "[profile ec2]\nrole_arn = arn:aws:iam::123456789012:role/ec2\ncredential_source = Ec2InstanceMetadata\n"
        "[profile odd]\nregion = eu-west-1 # note\n"
    )
    table = rows(AwsConfig(str(config), str(tmp_path / "credentials")), {}, ["role"], 0.0)
    assert [(name, kind, region) for name, kind, _, region in table] == [
        ("role", "role", ""), ("ec2", "credential-source", ""), ("key", "key", ""), ("mfa", "MFA", ""),
        ("odd", "key", "?"), ("portal", "SSO", ""), ("signed", "login", ""), ("web", "web-identity", ""),
    ]
