"""The loopback credential endpoint (issue 9): `use --server` and `exec --server`, with
real consumers: the AWS CLI, boto3, the JavaScript SDK v3 and real shells, against
moto over HTTP. The endpoint follows botocore's ContainerProvider rules."""
from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import time
import urllib.parse
from pathlib import Path

import pytest
from conftest import BIN, require
from helpers import env_after
from test_structure import wait_for_agent

ROLE = "arn:aws:sts::123456789012:assumed-role/{}/"
NODE_DIR = Path(__file__).parent / "node"
STATIC = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE")


def served(world, profile: str, *args: str, env: dict | None = None) -> dict:
    done = world.ok("use", profile, "--server", "--shell", "bash", *args, env=env)
    return env_after(world, done.stdout)


def evaluated(start: dict, script: str) -> dict:
    """The environment after evaluating `script` in a bash that starts with `start`."""
    done = subprocess.run(["bash", "--noprofile", "--norc", "-c", 'eval "$AWSENV_OUT" && env -0'],
                          env={**start, "AWSENV_OUT": script}, capture_output=True, text=True, check=True)
    return dict(item.split("=", 1) for item in done.stdout.split("\0") if "=" in item)


def fetch(uri: str, token: str | None, host: str | None = None, path: str | None = None):
    parts = urllib.parse.urlsplit(uri)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    headers = {"Host": host or parts.netloc}
    if token is not None:
        headers["Authorization"] = token
    conn.request("GET", path or parts.path, headers=headers)
    response = conn.getresponse()
    body = response.read().decode()
    conn.close()
    return response.status, dict(response.getheaders()), body


def caller(world, env: dict, *argv: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in world.env.items() if k not in STATIC}
    return subprocess.run(argv, env={**clean, **env}, capture_output=True, text=True, timeout=120)


def aws_identity(world, env: dict) -> str:
    done = caller(world, env, str(BIN / "aws"), "sts", "get-caller-identity", "--output", "json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)["Arn"]


def test_use_server_points_the_aws_cli_at_the_endpoint_with_no_static_key(world):
    world.add_keys()
    env = served(world, "dev", "--mfa-code", "123456")
    for name in STATIC:
        assert name not in env
    uri = env["AWS_CONTAINER_CREDENTIALS_FULL_URI"]
    assert uri.startswith("http://127.0.0.1:") and len(env["AWS_CONTAINER_AUTHORIZATION_TOKEN"]) >= 22
    assert aws_identity(world, env).startswith(ROLE.format("dev"))
    # The prompt's time is the MFA session's (12 h), not the role's hour.
    assert int(env["AWSENV_EXPIRES"]) - time.time() > 11 * 3600


def test_the_endpoint_answers_botocores_format_and_refuses_everything_else(world):
    world.add_keys()
    dev = served(world, "dev", "--mfa-code", "123456")
    prod = served(world, "prod")
    uri, token = dev["AWS_CONTAINER_CREDENTIALS_FULL_URI"], dev["AWS_CONTAINER_AUTHORIZATION_TOKEN"]
    port = urllib.parse.urlsplit(uri).port

    status, headers, body = fetch(uri, token)
    assert status == 200
    answer = json.loads(body)
    assert set(answer) == {"AccessKeyId", "SecretAccessKey", "Token", "Expiration"}
    assert answer["Expiration"].endswith("Z") and "+00:00" not in answer["Expiration"]
    assert not any(h.lower().startswith("access-control") for h in headers)
    secret = answer["SecretAccessKey"]

    refusals = {
        "no token": fetch(uri, None),
        "empty token": fetch(uri, ""),
        "wrong token": fetch(uri, token[:-2] + ("AA" if not token.endswith("AA") else "BB")),
        "foreign Host": fetch(uri, token, host=f"evil.example:{port}"),
        "localhost Host": fetch(uri, token, host=f"localhost:{port}"),
        "other path": fetch(uri, token, path="/latest/meta-data/"),
    }
    for why, (status, headers, body) in refusals.items():
        assert 400 <= status < 500, why
        assert secret not in body and "SecretAccessKey" not in body, why
        assert not any(h.lower().startswith("access-control") for h in headers), why

    # One profile per token: prod's token gets prod's role, never dev's.
    other = json.loads(fetch(prod["AWS_CONTAINER_CREDENTIALS_FULL_URI"], prod["AWS_CONTAINER_AUTHORIZATION_TOKEN"])[2])
    assert other["AccessKeyId"] != answer["AccessKeyId"]
    assert aws_identity(world, prod).startswith(ROLE.format("prod"))


def test_unset_and_a_plain_use_revoke_the_token(world):
    world.add_keys()
    env = served(world, "dev", "--mfa-code", "123456")
    uri, token = env["AWS_CONTAINER_CREDENTIALS_FULL_URI"], env["AWS_CONTAINER_AUTHORIZATION_TOKEN"]
    assert fetch(uri, token)[0] == 200

    unset = world.ok("unset", "--shell", "bash", env=env).stdout
    after = evaluated(env, unset)
    assert "AWS_CONTAINER_CREDENTIALS_FULL_URI" not in after and "AWSENV_SERVED" not in after
    assert fetch(uri, token)[0] == 403

    again = served(world, "dev")
    plain = evaluated(again, world.ok("use", "dev", "--shell", "bash", env=again).stdout)
    assert "AWS_CONTAINER_AUTHORIZATION_TOKEN" not in plain and plain["AWS_ACCESS_KEY_ID"]
    assert fetch(again["AWS_CONTAINER_CREDENTIALS_FULL_URI"], again["AWS_CONTAINER_AUTHORIZATION_TOKEN"])[0] == 403


def test_an_ad_hoc_role_is_served_and_its_settings_stay_for_the_hook(world):
    """`use --role-arn ARN --from ci --session-name N --server`: the endpoint serves the
    role, and the shell keeps AWSENV_ROLE_* for the hook's refresh, as in env mode.
    Mutation (cosmic-ray): server_plan dropping them (`adhoc or {}` made `and`)."""
    world.add_keys()
    arn = "arn:aws:iam::123456789012:role/deploy"
    env = env_after(world, world.ok("use", "--role-arn", arn, "--from", "ci", "--session-name", "night-run",
                                    "--server", "--shell", "bash").stdout)
    assert (env["AWSENV_ROLE_ARN"], env["AWSENV_ROLE_FROM"], env["AWSENV_ROLE_SESSION_NAME"]) == (
        arn, "ci", "night-run")
    assert aws_identity(world, env) == ROLE.format("deploy") + "night-run"
    # Back to a plain `use` of a named profile: the ad hoc settings go.
    plain = evaluated(env, world.ok("use", "ci", "--shell", "bash", env=env).stdout)
    assert not {"AWSENV_ROLE_ARN", "AWSENV_ROLE_FROM", "AWSENV_ROLE_SESSION_NAME"} & set(plain)


def test_clear_and_agent_stop_revoke_tokens(world):
    world.add_keys()
    env = served(world, "dev", "--mfa-code", "123456")
    uri, token = env["AWS_CONTAINER_CREDENTIALS_FULL_URI"], env["AWS_CONTAINER_AUTHORIZATION_TOKEN"]
    world.ok("clear", "dev")
    assert fetch(uri, token)[0] == 403

    env = served(world, "dev")
    world.ok("agent", "stop")
    with pytest.raises(OSError):
        fetch(env["AWS_CONTAINER_CREDENTIALS_FULL_URI"], env["AWS_CONTAINER_AUTHORIZATION_TOKEN"])


def test_a_second_use_server_of_the_same_profile_keeps_the_token(world):
    world.add_keys()
    env = served(world, "dev", "--mfa-code", "123456")
    again = served(world, "dev", env=env)
    assert again["AWS_CONTAINER_AUTHORIZATION_TOKEN"] == env["AWS_CONTAINER_AUTHORIZATION_TOKEN"]
    switched = served(world, "prod", env=again)
    assert fetch(env["AWS_CONTAINER_CREDENTIALS_FULL_URI"], env["AWS_CONTAINER_AUTHORIZATION_TOKEN"])[0] == 403
    assert aws_identity(world, switched).startswith(ROLE.format("prod"))


EXEC_PROBE = """
import json, os, sys, urllib.request
uri = os.environ["AWS_CONTAINER_CREDENTIALS_FULL_URI"]
token = os.environ["AWS_CONTAINER_AUTHORIZATION_TOKEN"]
request = urllib.request.Request(uri, headers={"Authorization": token})
assert json.load(urllib.request.urlopen(request))["AccessKeyId"]
assert not any(os.environ.get(n) for n in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"))
print(json.dumps([uri, token]))
sys.exit(7)
"""


def test_exec_server_serves_the_command_and_revokes_the_token_when_it_ends(world):
    world.add_keys()
    done = world.run("exec", "--server", "--mfa-code", "123456", "dev", "--", sys.executable, "-c", EXEC_PROBE)
    assert done.returncode == 7, done.stderr
    uri, token = json.loads(done.stdout)
    assert fetch(uri, token)[0] == 403

    cli = world.run("exec", "--server", "dev", "--", str(BIN / "aws"), "sts", "get-caller-identity")
    assert cli.returncode == 0, cli.stderr
    assert json.loads(cli.stdout)["Arn"].startswith(ROLE.format("dev"))


NEGLECTFUL_PARENT = """
import subprocess, sys, time
child = subprocess.Popen(sys.argv[1:])
print(child.pid, flush=True)
time.sleep(120)  # never reaps it, as a container's PID 1 may not
"""


def test_a_killed_exec_server_left_a_zombie_and_its_token_dies_anyway(world, tmp_path):
    from helpers import wait_gone  # a zombie counts as gone

    world.add_keys()
    world.run("use", "dev", "--mfa-code", "123456", "--shell", "bash")
    wait_for_agent(world)
    seen = tmp_path / "seen"
    probe = f"import json, os, time; open({str(seen)!r}, 'w').write(json.dumps(dict(os.environ))); time.sleep(120)"
    parent = subprocess.Popen([sys.executable, "-c", NEGLECTFUL_PARENT, BIN / "awsenv", "exec", "--server", "dev",
                               "--", sys.executable, "-c", probe], env=world.env, stdout=subprocess.PIPE, text=True,
                              start_new_session=True)
    try:
        owner = int(parent.stdout.readline())
        deadline = time.monotonic() + 30
        while not seen.exists() or not seen.read_text():
            assert time.monotonic() < deadline, "the command never started"
            time.sleep(0.05)
        env = json.loads(seen.read_text())
        uri, token = env["AWS_CONTAINER_CREDENTIALS_FULL_URI"], env["AWS_CONTAINER_AUTHORIZATION_TOKEN"]
        assert fetch(uri, token)[0] == 200
        os.kill(owner, signal.SIGKILL)  # awsenv gets no chance to revoke it
        assert wait_gone(owner, 5.0), "the killed exec is neither gone nor a zombie"
        assert fetch(uri, token)[0] == 403, "the token outlived the exec that owned it"
    finally:
        os.killpg(parent.pid, signal.SIGKILL)
        parent.wait(10)


def test_server_mode_is_refused_without_the_agent(world):
    world.add_keys()
    for argv in (("use", "dev", "--server", "--shell", "bash"), ("exec", "--server", "dev", "--", "true")):
        done = world.run(*argv, "--mfa-code", "123456", env={"AWSENV_AGENT": "0"})
        assert done.returncode == 2 and done.stdout == ""
        assert done.stderr.count("\n") == 1 and "AWSENV_AGENT=0" in done.stderr
    done = world.run("use", "dev", "--shell", "bash", env={"AWSENV_AGENT": "0", "AWSENV_SERVER": "1"})
    assert done.returncode == 2 and done.stdout == ""


def test_awsenv_server_makes_it_the_default_and_no_server_opts_out(world):
    world.add_keys()
    served(world, "dev", "--mfa-code", "123456")  # caches the MFA session
    default = env_after(world, world.ok("use", "prod", "--shell", "bash", env={"AWSENV_SERVER": "1"}).stdout)
    assert "AWS_CONTAINER_AUTHORIZATION_TOKEN" in default and "AWS_ACCESS_KEY_ID" not in default
    plain = env_after(world, world.ok("use", "prod", "--no-server", "--shell", "bash",
                                      env={"AWSENV_SERVER": "1"}).stdout)
    assert "AWS_CONTAINER_AUTHORIZATION_TOKEN" not in plain and plain["AWS_ACCESS_KEY_ID"]


# a long-lived SDK process across a renewal ----------------------------------------------
LONG_LIVED = """
import sys, boto3
sts = boto3.client("sts")  # one client, one credential provider, for the whole process
for line in sys.stdin:
    print(sts.get_caller_identity()["Arn"], flush=True)
"""


def test_one_boto3_process_switches_to_the_renewed_role_session(world):
    from test_broker import WINDOWS, age, wait_until, watched
    from world import ACCOUNT

    world.add_keys()
    world.write_config(world.home.joinpath(".aws", "config").read_text() + (
        f"\n[profile short]\nrole_arn = arn:aws:iam::{ACCOUNT}:role/dev\nsource_profile = jump\n"
        f"mfa_serial = {world.alice.mfa_serial}\nduration_seconds = 900\n"))
    env = served(world, "short", "--mfa-code", "123456", env=WINDOWS)
    clean = {k: v for k, v in world.env.items() if k not in STATIC}
    sdk = subprocess.Popen([sys.executable, "-c", LONG_LIVED], env={**clean, **env}, text=True,
                           stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        def identity() -> str:
            sdk.stdin.write("go\n")
            sdk.stdin.flush()
            return sdk.stdout.readline().strip()

        def signers() -> list[str]:
            return [c.key_id for c in world.moto.calls if c.action == "GetCallerIdentity"]

        world.moto.calls.clear()
        assert identity().startswith(ROLE.format("dev"))
        first = signers()
        assert len(first) == 1

        age(world, "short", 500)  # 900 s sessions sit in botocore's 15-minute advisory window
        wait_until(lambda: watched(world, "short").get("renewals"), what="the renewal")
        assert identity().startswith(ROLE.format("dev"))
        then = signers()
        assert len(then) == 2 and then[1] != then[0], "the same process signs with the renewed session"
    finally:
        sdk.stdin.close()
        sdk.wait(10)


# real shells --------------------------------------------------------------------------
def node_sdk() -> str:
    """node with @aws-sdk/client-sts from tests/node (`npm ci` there; .ci/run does it)."""
    node = require("node")
    if not (NODE_DIR / "node_modules" / "@aws-sdk" / "client-sts").is_dir():
        if os.environ.get("CI"):
            pytest.fail("tests/node/node_modules is missing, and CI must have it (cd tests/node && npm ci)")
        pytest.skip("tests/node has no node_modules (cd tests/node && npm ci)")
    return node


def agent_pid(world) -> int:
    return json.loads(world.ok("agent", "status", "--json").stdout)["pid"]


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_use_server_in_a_real_shell_serves_the_cli_and_the_javascript_sdk(world, shell):
    from terminal import Terminal

    node = node_sdk()
    world.add_keys()
    term = Terminal(shell, world)
    try:
        term.run("awsenv use dev --server --mfa-code 123456")
        assert "assumed-role/dev/" in term.run("aws sts get-caller-identity --query Arn --output text")
        assert "assumed-role/dev/" in term.run(f"{node} {NODE_DIR / 'whoami.mjs'}")
        for name in STATIC:
            assert term.value(name) == "", name
        assert term.value("AWS_CONTAINER_CREDENTIALS_FULL_URI").startswith("http://127.0.0.1:")
        assert "dev served 11h5" in term.run("awsenv_prompt")

        term.run("awsenv unset")
        assert term.value("AWS_CONTAINER_AUTHORIZATION_TOKEN") == ""
        assert "assumed-role/dev/" not in term.run("aws sts get-caller-identity --query Arn --output text")
    finally:
        term.close()


def test_a_killed_agent_is_repaired_by_the_next_prompt(world):
    from terminal import Terminal

    world.add_keys()
    term = Terminal("bash", world)
    try:
        term.run("awsenv use dev --server --mfa-code 123456")
        wait_for_agent(world)
        old = agent_pid(world)
        assert term.number("AWSENV_SERVED") == old
        os.kill(old, signal.SIGKILL)
        time.sleep(0.2)
        term.run("true")  # the prompt after it finds the agent gone and refreshes
        assert term.number("AWSENV_SERVED") == agent_pid(world) != old
        assert "assumed-role/dev/" in term.run("aws sts get-caller-identity --query Arn --output text")
        assert "Runs: " not in term.output
        # Nothing was asked: the MFA session was still cached.
        assert "MFA code" not in term.output
    finally:
        term.close()


def test_two_shells_with_endpoints_for_different_profiles(world):
    from terminal import Terminal

    world.add_keys()
    world.ok("use", "jump", "--mfa-code", "123456", "--shell", "bash")
    one, two = Terminal("bash", world), Terminal("zsh", world)
    try:
        one.run("awsenv use dev --server")
        two.run("awsenv use prod --server")
        assert "assumed-role/dev/" in one.run("aws sts get-caller-identity --query Arn --output text")
        assert "assumed-role/prod/" in two.run("aws sts get-caller-identity --query Arn --output text")
        assert one.value("AWSENV_SERVED") == two.value("AWSENV_SERVED")  # one agent serves both
        assert one.value("AWS_CONTAINER_AUTHORIZATION_TOKEN") != two.value("AWS_CONTAINER_AUTHORIZATION_TOKEN")
        one.run("awsenv unset")
        assert "assumed-role/prod/" in two.run("aws sts get-caller-identity --query Arn --output text")
    finally:
        one.close()
        two.close()


def test_the_agent_does_not_idle_out_while_tokens_are_live(world):
    from helpers import wait_gone

    world.add_keys()
    idle = {"AWSENV_AGENT_IDLE": "2"}
    env = served(world, "dev", "--mfa-code", "123456", env=idle)  # the agent it starts idles out in 2 s
    pid = agent_pid(world)
    time.sleep(4)
    status, _headers, _body = fetch(env["AWS_CONTAINER_CREDENTIALS_FULL_URI"], env["AWS_CONTAINER_AUTHORIZATION_TOKEN"])
    assert status == 200 and agent_pid(world) == pid
    world.ok("unset", "--shell", "bash", env=env)
    assert wait_gone(pid, 5.0), "with no token left, the idle agent exits"


def threads(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/task"))


def fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def test_idle_and_half_sent_connections_cost_the_agent_no_thread_and_end_in_seconds(world):
    """A thousand connections that send nothing or stop in the middle of their headers
    (slowloris): the owner is still served at once, the agent starts no thread for them,
    and closes each within its read timeout. Loopback only, bounded in time."""
    import resource
    import socket

    world.add_keys()
    env = served(world, "dev", "--mfa-code", "123456")
    uri, token = env["AWS_CONTAINER_CREDENTIALS_FULL_URI"], env["AWS_CONTAINER_AUTHORIZATION_TOKEN"]
    port = urllib.parse.urlsplit(uri).port
    assert fetch(uri, token)[0] == 200
    pid = agent_pid(world)
    baseline, open_files = threads(pid), fds(pid)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 1500:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(1500, hard), hard))
    held: list[socket.socket] = []
    try:
        for number in range(1000):
            conn = socket.create_connection(("127.0.0.1", port), timeout=10)
            if number % 2:
                conn.sendall(f"GET /awsenv/credentials HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthor".encode())
            held.append(conn)
        started = time.monotonic()
        status, _headers, body = fetch(uri, token)
        assert status == 200 and "SecretAccessKey" in body
        assert time.monotonic() - started < 1.0, "the owner waits for no one"
        assert threads(pid) <= baseline + 2, "no thread per connection"
        # Each one is closed by the agent within its read timeout (a few seconds).
        deadline = time.monotonic() + 15
        for conn in held:
            conn.settimeout(max(deadline - time.monotonic(), 0.01))
            try:
                assert conn.recv(1) == b""
            except ConnectionResetError:
                pass
        assert threads(pid) <= baseline and fds(pid) <= open_files + 2  # not one per connection
        assert fetch(uri, token)[0] == 200 and agent_pid(world) == pid
    finally:
        for conn in held:
            conn.close()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_a_trickled_request_is_cut_at_the_read_timeout_and_workers_are_bounded():
    """In process, no AWS. A request sent a byte at a time ends READ_TIMEOUT seconds
    after its connection opened, and no more than MAX_WORKERS requests are answered at
    once: the rest are closed at once rather than queued behind a slow renewal."""
    import select
    import socket
    import threading

    from awsenv.agent import endpoint
    from awsenv.core.creds import Credentials

    gate, inside = threading.Event(), []

    def serve(_watch: dict) -> Credentials:
        inside.append(1)
        gate.wait(20)
        return Credentials("ASIAEXAMPLE", "secret", "session", int(time.time()) + 3600)

    served_by = endpoint.Endpoint(serve)
    try:
        token = served_by.issue({"profile": "p"}, int(time.time()) + 3600, None)
        uri = f"http://{served_by.host}{endpoint.PATH}"
        trickle = socket.create_connection(("127.0.0.1", served_by.port), timeout=5)
        started = time.monotonic()
        request = f"GET {endpoint.PATH} HTTP/1.1\r\nHost: {served_by.host}\r\nAuthorization: {token}\r\n\r\n"
        for byte in request.encode():
            try:
                trickle.send(bytes([byte]))
            except OSError:
                break
            if select.select([trickle], [], [], 0.25)[0]:
                assert trickle.recv(1) == b""
                break
        took = time.monotonic() - started
        trickle.close()
        assert endpoint.READ_TIMEOUT - 0.5 < took < endpoint.READ_TIMEOUT + 2, took

        results: list = []

        def one() -> None:
            try:
                results.append(fetch(uri, token)[0])
            except OSError as err:
                results.append(type(err).__name__)

        callers = [threading.Thread(target=one) for _ in range(endpoint.MAX_WORKERS + 4)]
        for caller in callers:
            caller.start()
        deadline = time.monotonic() + 10
        while (len(inside) < endpoint.MAX_WORKERS or len(results) < 4) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(inside) == endpoint.MAX_WORKERS and len(results) == 4, (len(inside), results)
        assert 200 not in results, "the excess were closed at once"
        gate.set()
        for caller in callers:
            caller.join(10)
        assert results.count(200) == endpoint.MAX_WORKERS
    finally:
        gate.set()
        served_by.close()


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_kill_of_the_served_agent_is_repaired_by_the_prompt_right_after_it(world, term, shell):
    """`kill $AWSENV_SERVED` sends SIGTERM, and the prompt hook runs at once, while the
    agent is still on its way out: the hook must see it going, and repair the endpoint
    before the next command."""
    world.add_keys()
    t = term(shell)
    t.run("awsenv use dev --server --mfa-code 123456")
    wait_for_agent(world)
    old = t.number("AWSENV_SERVED")

    said = t.run("kill $AWSENV_SERVED")

    assert t.number("AWSENV_SERVED") == agent_pid(world) != old, said
    assert "assumed-role/dev/" in t.run("aws sts get-caller-identity --query Arn --output text")
    assert "MFA code" not in t.output and "Could not connect" not in t.output
    assert "a new agent serves it" in said


def test_a_served_agent_that_cannot_be_restarted_is_said_in_one_line(world, term):
    world.add_keys()
    t = term("bash")
    t.run("awsenv use dev --server --mfa-code 123456")
    wait_for_agent(world)
    t.run("export AWSENV_AGENT=0")  # from now on, no agent can start

    said = t.run("kill $AWSENV_SERVED")

    lines = [line for line in said.splitlines() if line.startswith("awsenv:")]
    assert len(lines) == 1 and "could not be restarted" in lines[0], said
    assert "awsenv use dev --server" in lines[0]
    assert "awsenv:" not in t.run("true")  # said once, not at every prompt


def test_agent_stop_in_server_mode_says_the_next_prompt_restarts_it(world, term):
    world.add_keys()
    t = term("bash")
    t.run("awsenv use dev --server --mfa-code 123456")
    wait_for_agent(world)
    old = t.number("AWSENV_SERVED")

    said = t.run("awsenv agent stop")

    assert "agent stopped" in said and "starts a new agent at its next prompt" in said
    assert "a new agent serves it" in said  # and this shell's next prompt did
    assert t.number("AWSENV_SERVED") == agent_pid(world) != old
    t.run("awsenv unset")
    said = t.run("awsenv agent stop")
    assert "agent stopped" in said and "next prompt" not in said
    assert "no agent is running" in t.run("awsenv agent status")


def test_status_in_server_mode_says_the_credentials_are_served(world):
    world.add_keys()
    env = served(world, "dev", "--mfa-code", "123456")
    pid = agent_pid(world)

    line = world.ok("status", env=env).stdout
    assert line.startswith("dev  served by the agent (pid %d) at http://127.0.0.1:" % pid), line
    report = json.loads(world.ok("status", "--json", env=env).stdout)
    assert report["served"] is True and report["agent_pid"] == pid and report["agent_running"] is True
    assert report["endpoint"] == env["AWS_CONTAINER_CREDENTIALS_FULL_URI"]
    os.kill(pid, signal.SIGTERM)
    assert "is gone; the next prompt starts a new one" in world.ok("status", env=env).stdout


def test_status_in_server_mode_says_when_the_endpoint_serves_this_shell_nothing(world):
    """`status` asks the endpoint as an SDK does: a shell whose token the agent no longer
    honours (here: `clear` revoked it) is not told that its credentials are served."""
    world.add_keys()
    env = served(world, "dev", "--mfa-code", "123456")
    assert json.loads(world.ok("status", "--json", env=env).stdout)["problem"] is None
    world.ok("clear", "dev")

    first, *_, last = world.ok("status", env=env).stdout.splitlines()
    assert first.startswith("dev  served by the agent"), first
    assert last.startswith("  but the endpoint serves no credentials to this shell: no valid token (HTTP 403)"), last
    assert "run `awsenv use dev --server`" in last and env["AWS_CONTAINER_AUTHORIZATION_TOKEN"] not in last
    assert json.loads(world.ok("status", "--json", env=env).stdout)["problem"] == "no valid token (HTTP 403)"
