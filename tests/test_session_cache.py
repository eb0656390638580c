"""The session cache and how a profile is resolved from it: expiry, --duration and
AWSENV_MIN_TTL, damaged or foreign entries, roles whose config changed, role chains,
regions and session names. Each test was seen to fail with the behaviour broken by hand
(the mutation is named in its docstring)."""
from __future__ import annotations

import json
import subprocess
import threading
import time

import pytest
from conftest import AWSENV, require
from helpers import one_line_error, use
from helpers import keyring_get, keyring_set
from test_structure import wait_for_agent

ROLE = "arn:aws:iam::123456789012:role"


def test_a_write_drops_expired_sessions_from_the_keyring(world):
    """Mutation (cosmic-ray): the loop in Resolver.save that drops expired entries made
    empty. Expired credentials must not pile up in the keyring item."""
    from test_broker import age
    from helpers import keyring_get

    world.add_keys()
    use(world, "ci")
    age(world, "ci", -10, kind="session")  # the ci session has ended
    assert any(json.loads(key)[1] == "ci" for key in json.loads(keyring_get(world, "sessions")))
    use(world, "dev", "--mfa-code", "123456")  # the next write
    doc = json.loads(keyring_get(world, "sessions"))
    profiles = [json.loads(key)[1] for key in doc if key.startswith("[")]
    assert "ci" not in profiles and {"jump", "dev"} <= set(profiles), profiles


def test_duration_asks_for_a_role_session_of_that_length(world):
    """Mutation (cosmic-ray): --duration applied to the role's source instead of the
    role (`if top` made `if not top`): dev would get its usual hour."""
    world.add_keys()
    env = use(world, "dev", "--mfa-code", "123456", "--duration", "20m")
    assert 1100 < int(env["AWSENV_EXPIRES"]) - time.time() <= 1200
    (call,) = [c for c in world.moto.calls if c.action == "AssumeRole"]
    assert call.params["DurationSeconds"] == "1200"


# AWSENV_MIN_TTL at its threshold ------------------------------------------------------
class SessionsOnly:
    """The vault's session side, in memory; no long-term key is stored."""

    def __init__(self, doc: dict) -> None:
        self.doc = doc

    def load_sessions(self) -> dict:
        return self.doc

    def handoff(self) -> None:
        return None  # nothing for an agent to hold

    def get_key(self, _name: str):
        return None


@pytest.mark.parametrize(("left", "reused"), [(301, True), (300, False), (299, False)])
def test_min_ttl_threshold(tmp_path, monkeypatch, left, reused):
    """A cached session is reused while it has more than AWSENV_MIN_TTL left.
    Mutation: `>` made `>=`, or the variable not read."""
    from awsenv.core.cachekeys import session_key
    from awsenv.core.config import AwsConfig
    from awsenv.core.creds import Credentials
    from awsenv.core.errors import KeyringError
    from awsenv.session.resolver import Request, Resolver

    config = tmp_path / "config"
    config.write_text("[profile jump]\nmfa_serial = arn:aws:iam::123456789012:mfa/alice\n")
    monkeypatch.setenv("AWSENV_AGENT", "0")
    monkeypatch.setenv("AWSENV_MIN_TTL", "300")
    expires = 1_700_000_000
    cached = Credentials("ASIACACHED0000000000", "secret", "token", expires)
    doc = {session_key("jump", "arn:aws:iam::123456789012:mfa/alice"): cached.to_dict()}
    resolver = Resolver(AwsConfig(str(config), str(tmp_path / "credentials")), SessionsOnly(doc),
                        clock=lambda: expires - left)
    if reused:
        assert resolver.resolve(Request("jump"))[0] == cached
    else:
        with pytest.raises(KeyringError, match="no key stored"):  # it went for a new session
            resolver.resolve(Request("jump"))


def test_min_ttl_through_the_program(world):
    world.add_keys()
    use(world, "jump", "--mfa-code", "123456")  # 12 h
    world.moto.calls.clear()
    assert use(world, "jump", env={"AWSENV_MIN_TTL": str(12 * 3600 - 600)})["AWSENV_PROFILE"] == "jump"
    assert world.moto.actions() == []
    done = world.run("use", "jump", "--shell", "bash", env={"AWSENV_MIN_TTL": str(12 * 3600 + 60)})
    assert "needs an MFA code" in one_line_error(done, 1)
    # Not a number: one line that names it (mutation: env_seconds' ValueError not caught).
    done = world.run("use", "jump", "--shell", "bash", env={"AWSENV_MIN_TTL": "5m"})
    assert one_line_error(done, 2) == "awsenv: AWSENV_MIN_TTL must be a number of seconds, not '5m'"


@pytest.mark.parametrize("entry", [
    {"SecretAccessKey": "s", "SessionToken": "t", "Expiration": 4102444800},  # no key ID
    {"AccessKeyId": "ASIAX", "SecretAccessKey": "s", "Expiration": "soon"},
    {"AccessKeyId": "ASIAX", "SecretAccessKey": "s", "Expiration": [4102444800]},
])
def test_a_damaged_cached_session_is_replaced_not_a_traceback(world, entry):
    """The sessions item under the right key, but what it holds is not a session (the
    item can be edited by other tools). Mutations (cosmic-ray): KeyError, ValueError or
    TypeError from Credentials.from_dict not caught in `cached`."""
    world.add_keys()
    use(world, "ci")
    stored = json.loads(keyring_get(world, "sessions"))
    (key,) = [k for k in stored if k != "mfa-used"]
    world.ok("agent", "stop")
    keyring_set(world, "sessions", json.dumps({key: entry}))
    world.moto.calls.clear()
    env = use(world, "ci", env={"AWSENV_AGENT": "0"})
    assert world.moto.actions() == [("GetSessionToken", world.robot.key_id)]
    assert env["AWS_ACCESS_KEY_ID"] != "ASIAX"


# remove --sessions-only --------------------------------------------------------------
def rows(world) -> dict:
    return {r["profile"]: r for r in json.loads(world.ok("list", "--json").stdout)["profiles"]}


def test_remove_sessions_only_keeps_the_key(world):
    """Mutation: --sessions-only ignored (the key goes too) or doing nothing."""
    world.add_keys()
    use(world, "dev", "--mfa-code", "123456")
    use(world, "ci")
    done = world.ok("remove", "jump", "--sessions-only")
    assert "dropped 2 cached session(s) of 'jump'" in done.stderr, done.stderr
    listed = rows(world)
    assert listed["jump"]["key_stored"] is True
    assert listed["jump"]["session_seconds_left"] is None and listed["dev"]["session_seconds_left"] is None
    assert listed["ci"]["session_seconds_left"] is not None, "other profiles' sessions stay"
    world.moto.calls.clear()
    assert world.run("use", "dev", "--shell", "bash").returncode == 1, "the MFA session is gone"
    use(world, "dev", "--mfa-code", "654321")
    assert world.moto.actions()[0] == ("GetSessionToken", world.alice.key_id), "the stored key still signs"


# --from defaults to default --------------------------------------------------------------
def test_role_arn_without_from_is_reached_from_default(world):
    """Mutation: the `or "default"` dropped (the role would have no source)."""
    world.ok("add", "default", "--env", env={
        "AWS_ACCESS_KEY_ID": world.robot.key_id, "AWS_SECRET_ACCESS_KEY": world.robot.secret})
    world.moto.calls.clear()
    env = use(world, "--role-arn", f"{ROLE}/deploy")
    assert world.moto.actions() == [("AssumeRole", world.robot.key_id)]
    assert world.moto.calls[0].params["RoleArn"] == f"{ROLE}/deploy"
    assert env["AWSENV_ROLE_FROM"] == "default"
    assert env["AWS_REGION"] == "us-east-1", "the region of [default]"
    require("aws")
    cli = subprocess.run(["aws", "sts", "get-caller-identity", "--query", "Arn", "--output", "text"],
                         env=env, capture_output=True, text=True, timeout=120)
    assert "assumed-role/deploy/" in cli.stdout, cli.stderr


# survivors of `make mutants` in session.py ---------------------------------------------
def test_a_role_changed_in_the_config_is_not_served_from_its_old_session(world):
    """Mutations (cosmic-ray): role_arn, external_id or role_session_name left out of the
    role's cache key (`p("role_arn") or ""` made `and ""`): after an edit of the config,
    `use dev` would hand out the old role's credentials."""
    world.add_keys()
    use(world, "dev", "--mfa-code", "123456")
    config = world.home / ".aws" / "config"
    text = config.read_text()
    edits = [  # each setting set, then changed
        (f"role_arn = {ROLE}/dev", f"role_arn = {ROLE}/prod", "RoleArn", f"{ROLE}/prod"),
        ("[profile dev]\n", "[profile dev]\nexternal_id = partner-7\n", "ExternalId", "partner-7"),
        ("external_id = partner-7", "external_id = partner-8", "ExternalId", "partner-8"),
        ("[profile dev]\n", "[profile dev]\nrole_session_name = nightly\n", "RoleSessionName", "nightly"),
        ("role_session_name = nightly", "role_session_name = weekly", "RoleSessionName", "weekly"),
    ]
    for before, after, param, value in edits:
        assert before in text
        text = text.replace(before, after, 1)
        config.write_text(text)
        world.moto.calls.clear()
        use(world, "dev")  # the cached MFA session signs: no code
        (call,) = world.moto.calls
        assert (call.action, call.params.get(param)) == ("AssumeRole", value), (param, world.moto.calls)
        world.moto.calls.clear()
        use(world, "dev")
        assert world.moto.calls == [], "the session made for these settings is cached"


def test_cache_keys_this_version_did_not_write_are_passed_over(world):
    """Mutations (cosmic-ray): the exceptions of `key_profile` not caught; drop_sessions
    stopping at the spent codes' entry (`continue` made `break`). A keyring item
    can be edited by other tools (or an older awsenv): a key that is not JSON, not a
    list, or too short is nobody's session, and no command fails on it."""
    world.add_keys()
    use(world, "jump", "--mfa-code", "123456")  # a spent code: the "mfa-used" entry, sorted among them
    use(world, "ci")
    world.ok("agent", "stop")
    entry = {"AccessKeyId": "ASIAODDKEY0000000000", "SecretAccessKey": "x", "SessionToken": "y",
             "Expiration": int(time.time()) + 3600}
    odd = ["not json", "[]", "7", '{"a": 1}', '["role"]', "[1, 2]", '"session"', '["session", ["ci"]]']
    stored = json.loads(keyring_get(world, "sessions"))
    keyring_set(world, "sessions", json.dumps({**stored, **{key: entry for key in odd}}))
    use(world, "ci")  # no agent yet: this run reads the item, and starts one that loads it too
    wait_for_agent(world)
    status = json.loads(world.ok("agent", "status", "--json").stdout)
    assert [(s["profile"], s["kind"]) for s in status["sessions"]] == [("ci", "session"), ("jump", "session")], status
    done = world.ok("remove", "ci", "--sessions-only")
    assert "dropped 1 cached session(s) of 'ci'" in done.stderr, done.stderr
    assert rows(world)["ci"]["session_seconds_left"] is None
    done = world.ok("clear")  # every entry but the spent codes, wherever they sort
    assert f"dropped {len(odd) + 1} cached session(s)" in done.stderr, done.stderr


def test_a_first_session_of_an_explicit_duration_is_cached(world):
    """Mutation (cosmic-ray): `_store` skipping every session of an explicit --duration
    (`explicit and held...` made `or`), not only one shorter than the cached session:
    the next `use jump` would ask for an MFA code again."""
    world.add_keys()
    first = use(world, "jump", "--duration", "1h", "--mfa-code", "123456")
    world.moto.calls.clear()
    again = use(world, "jump")  # no code, and no terminal to ask on
    assert world.moto.calls == [] and again["AWSENV_EXPIRES"] == first["AWSENV_EXPIRES"]


def test_no_stored_key_names_the_profile_that_needs_it(world):
    """Mutation (cosmic-ray): the "(the source of ...)" part said for the wrong
    profile (`for_profile != base.name` negated)."""
    line = one_line_error(world.run("use", "dev", "--mfa-code", "123456", "--shell", "bash"), 1)
    assert line == "awsenv: no key stored for profile 'jump' (the source of 'dev'); run `awsenv add jump`"
    line = one_line_error(world.run("use", "jump", "--mfa-code", "123456", "--shell", "bash"), 1)
    assert line == "awsenv: no key stored for profile 'jump'; run `awsenv add jump`"


def test_a_failure_is_reported_even_when_the_keyring_goes_before_the_save(world):
    """A run that fails keeps what it got (the MFA session) in the keyring; when that
    write fails too, the user is still told the first failure, the one that matters.
    Mutation (cosmic-ray): the save's own exception not caught in `resolve`."""
    world.add_keys()
    asked, answer = threading.Event(), threading.Event()

    def refuse(call):
        if call.action != "AssumeRole":
            return None
        asked.set()
        answer.wait(30)
        return ("AccessDenied", "not allowed to assume dev")

    world.moto.refuse = refuse
    run = subprocess.Popen([AWSENV, "use", "dev", "--mfa-code", "123456", "--shell", "bash"], env=world.env,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        assert asked.wait(30), "AssumeRole was never called"
        world.keyring.stop()  # the Secret Service goes while AWS is deciding
    finally:
        answer.set()
        out, err = run.communicate(timeout=60)
    done = subprocess.CompletedProcess(run.args, run.returncode, out, err)
    line = one_line_error(done, 1)
    assert line == f"awsenv: access denied assuming role {ROLE}/dev", line


def test_a_role_reached_from_a_role_is_assumed_with_that_roles_session(world):
    """deep -> dev -> jump: dev's session assumes prod, for at most the hour AWS allows a
    chained role. Mutations (cosmic-ray): `if source.is_role` negated, which asked for an
    MFA session of dev as if it were a base profile; the source resolved with
    `top=True`, which gave it the target's --duration. No test resolved such a chain."""
    world.add_keys()
    config = world.home / ".aws" / "config"
    config.write_text(config.read_text() + f"\n[profile deep]\nrole_arn = {ROLE}/prod\nsource_profile = dev\n")
    env = use(world, "deep", "--mfa-code", "123456")
    assert [c.action for c in world.moto.calls] == ["GetSessionToken", "AssumeRole", "AssumeRole"]
    get_session, to_dev, to_prod = world.moto.calls
    assert to_dev.params["RoleArn"] == f"{ROLE}/dev" and to_dev.key_id == get_session_key(world, "jump")
    assert to_prod.params["RoleArn"] == f"{ROLE}/prod" and to_prod.key_id == get_session_key(world, "dev", "role")
    assert to_prod.params["DurationSeconds"] == "3600"
    assert 3000 < int(env["AWSENV_EXPIRES"]) - time.time() <= 3600
    world.moto.calls.clear()
    use(world, "deep")
    assert world.moto.calls == [], "both sessions are cached"
    # --duration is the target's: dev's cached session still serves as the source.
    use(world, "deep", "--duration", "20m")
    (call,) = world.moto.calls
    assert (call.params["RoleArn"], call.params["DurationSeconds"]) == (f"{ROLE}/prod", "1200")


def get_session_key(world, profile: str, kind: str = "session") -> str:
    """The access key ID of the cached session of that kind for `profile`."""
    stored = json.loads(keyring_get(world, "sessions"))
    (key_id,) = [v["AccessKeyId"] for k, v in stored.items() if k != "mfa-used" and json.loads(k)[:2] == [kind, profile]]
    return key_id


def test_the_agent_renews_an_ad_hoc_role(world):
    """`use --role-arn ARN --from jump`: the role is in no config file, so the agent is
    given its ARN and source to renew it. Mutation (cosmic-ray): the watch's `adhoc`
    part given for config profiles only (`==` made `!=`)."""
    from test_broker import WINDOWS, age, assumed, wait_until, watched

    world.add_keys()
    args = ("--role-arn", f"{ROLE}/prod", "--from", "jump")
    use(world, *args, "--mfa-code", "123456", env=WINDOWS)
    wait_for_agent(world)
    name = use(world, *args, env=WINDOWS)["AWSENV_PROFILE"]  # through the agent: it watches the role
    assert name == "prod@123456789012"
    wait_until(lambda: watched(world, name).get("state") == "fresh", what="watching")
    world.moto.calls.clear()
    age(world, name, 500)  # inside the agent's lead
    (renewal,) = wait_until(lambda: assumed(world), what="the agent's renewal")
    assert renewal.params["RoleArn"] == f"{ROLE}/prod"
    assert renewal.key_id == get_session_key(world, "jump")
    wait_until(lambda: watched(world, name).get("state") == "fresh", what="renewed")


@pytest.mark.parametrize("command, says", [
    ("/nonexistent/creds-helper --profile x", "failed: No such file or directory"),
    ("creds-helper --token 'unbalanced", "is not a valid command line"),
])
def test_a_credential_process_that_cannot_start_is_one_line_without_its_command(world, command, says):
    """Mutations (cosmic-ray): OSError or ValueError (shlex) not caught. The command line
    may hold a token: the line names the profile and the reason only."""
    config = world.home / ".aws" / "config"
    config.write_text(config.read_text() + f"\n[profile helper]\ncredential_process = {command}\n")
    line = one_line_error(world.run("use", "helper", "--shell", "bash"), 1)
    assert line == f"awsenv: credential_process of profile 'helper' {says}"


def test_a_role_is_assumed_in_its_own_region_else_its_sources(world):
    """dev names eu-central-1; prod names none and is reached from jump (eu-west-1):
    each AssumeRole is signed for that region. Mutation (cosmic-ray): `profile.region
    or source.region` made `and`."""
    world.add_keys()
    use(world, "dev", "--mfa-code", "123456")
    use(world, "prod")
    regions = {c.params["RoleArn"].rpartition("/")[2]: c.region for c in world.moto.calls if c.action == "AssumeRole"}
    assert regions == {"dev": "eu-central-1", "prod": "eu-west-1"}, world.moto.calls


def test_a_role_session_is_named_after_the_local_user(world):
    """SPEC: role_session_name defaults to something traceable in CloudTrail, the local
    user name, with what STS refuses made `-` and cut to 64. Mutation (cosmic-ray):
    `name[:64] or "awsenv"` made `and` (every session named "awsenv")."""
    world.add_keys()
    for login, named in (("jane doe/ops", "jane-doe-ops"), ("x" * 70, "x" * 64)):
        env = {"LOGNAME": login, "USER": login}
        use(world, "deploy", "--refresh", env=env)
        assert world.moto.calls[-1].params["RoleSessionName"] == named


def test_a_role_whose_source_profile_changed_is_not_served_from_its_old_session(world):
    """Mutation (cosmic-ray): source_profile left out of the role's cache key."""
    world.ok("add", "default", "--env", env={
        "AWS_ACCESS_KEY_ID": world.robot.key_id, "AWS_SECRET_ACCESS_KEY": world.robot.secret})
    world.add_keys()
    use(world, "deploy")
    config = world.home / ".aws" / "config"
    text = config.read_text()
    assert text.count("source_profile = ci\n") == 1
    config.write_text(text.replace("source_profile = ci\n", "source_profile = default\n"))
    world.moto.calls.clear()
    use(world, "deploy")
    assert [c.action for c in world.moto.calls] == ["AssumeRole"], "a new session, from default"


