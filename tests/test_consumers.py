"""Real consumers of awsenv's credentials in other languages: small programs of ours
(tests/consumers/) on the AWS SDK for Go v2, the AWS SDK for Java v2 and the AWS SDK
for Rust, each asking moto's STS who it is, with the credentials a shell offers in three
ways: the environment `use` sets, a credential_process profile that runs `awsenv
export`, and server mode's endpoint (its token in a variable or in a file). Each program
is built once per session, outside the checkout, with the user's module caches."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import require
from helpers import env_after
from test_endpoint import ROLE, STATIC, fetch, served
from world import config_text

CONSUMERS = Path(__file__).parent / "consumers"
GO_HOME = "/usr/local/go/bin"  # where the Go project's own tarball puts go, off most PATHs
CARGO_HOME = str(Path.home() / ".cargo" / "bin")  # where rustup puts cargo, off some PATHs


def build(argv: list[str], cwd: Path, env: dict, what: str) -> None:
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=1800)
    if done.returncode != 0:
        pytest.fail(f"building the {what} consumer failed:\n{done.stdout}{done.stderr}")


@pytest.fixture(scope="session")
def go_whoami(tmp_path_factory) -> list[str]:
    go = require("go", GO_HOME)
    out = tmp_path_factory.mktemp("go")
    (out / "tmp").mkdir()
    # -mod=readonly: go.mod and go.sum are complete, and nothing is written into the
    # checkout. GOCACHE and GOMODCACHE stay the user's, so CI's caches are warm.
    env = {**os.environ, "GOFLAGS": "-mod=readonly -buildvcs=false", "TMPDIR": str(out / "tmp")}
    build([go, "build", "-o", str(out / "whoami"), "."], CONSUMERS / "go", env, "Go")
    return [str(out / "whoami")]


@pytest.fixture(scope="session")
def java_whoami(tmp_path_factory) -> list[str]:
    java, mvn = require("java"), require("mvn")
    out = tmp_path_factory.mktemp("java")
    (out / "tmp").mkdir()
    # No /tmp/hsperfdata_* and no temporary file in /tmp: the suite checks /tmp. A
    # short-lived JVM starts in about half the CPU time with the client compiler alone.
    jvm = ["-XX:-UsePerfData", f"-Djava.io.tmpdir={out / 'tmp'}", "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC"]
    build([mvn, "-q", "-B", "-Dstyle.color=never", "-f", str(CONSUMERS / "java" / "pom.xml"),
           f"-DbuildDirectory={out / 'build'}", "compile"],
          CONSUMERS / "java", {**os.environ, "MAVEN_OPTS": " ".join(jvm)}, "Java")
    classpath = (out / "build" / "classpath").read_text().strip()
    return [java, *jvm, "-cp", f"{out / 'build' / 'classes'}:{classpath}", "awsenv.consumer.Whoami"]


@pytest.fixture(scope="session")
def rust_whoami() -> list[str]:
    # No skip: `make test` runs tools/system-packages first, which makes sure of Rust.
    cargo = shutil.which("cargo", path=os.pathsep.join([os.environ.get("PATH", os.defpath), CARGO_HOME]))
    if cargo is None:
        pytest.fail(f"cargo is neither on PATH nor in {CARGO_HOME}: run `make system`")
    # The target folder is the user's, as Go's build cache is: a cold build takes minutes
    # (CONTRIBUTING.md, Tests), a warm one seconds. --locked: Cargo.lock is complete, and
    # the crates are the ones it names.
    target = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "awsenv-tests" / "rust-target"
    env = {**os.environ, "CARGO_TARGET_DIR": str(target), "CARGO_TERM_COLOR": "never"}
    build([cargo, "build", "--locked", "--quiet"], CONSUMERS / "rust", env, "Rust")
    return [str(target / "debug" / "whoami")]


@pytest.fixture(params=["go", "java", "rust"])
def whoami(request) -> list[str]:
    """The consumer's command line: it prints the caller's ARN, or fails."""
    return request.getfixturevalue(f"{request.param}_whoami")


@pytest.fixture(autouse=True)
def plain_config(world):
    """world's config without its hostile profile name: the Java SDK refuses a file
    that holds it, and the Go SDK reads the `;` in it as a comment, so that profile's
    settings land in the section above it, viaproc's. tests/test_hostile_profile.py
    covers the name with awsenv and the AWS CLI."""
    world.write_config(config_text(world.alice.mfa_serial))


def ask(argv: list[str], env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120)


def signers(world) -> list[str]:
    return [c.key_id for c in world.moto.calls if c.action == "GetCallerIdentity"]


def answers(world, whoami: list[str], env: dict, key: str) -> str:
    """The consumer's ARN, after checking that it signed with `key` (the one awsenv gave)
    and that it fails once AWS refuses that key. moto checks no signature, so a broken
    secret would still pass; the spy answers InvalidClientTokenId instead, as AWS
    does for a key it does not know. The refusal proves that the consumer's exit status
    means something, and that it had no other credentials to fall back on."""
    world.moto.calls.clear()
    done = ask(whoami, env)
    assert done.returncode == 0, done.stderr
    assert signers(world) == [key]
    world.moto.refuse = lambda call: call.key_id == key
    refused = ask(whoami, env)
    world.moto.refuse = None
    assert refused.returncode != 0 and "arn:" not in refused.stdout
    return done.stdout.strip()


def test_the_environment_use_sets(world, whoami):
    world.add_keys()
    env = env_after(world, world.ok("use", "dev", "--mfa-code", "123456", "--shell", "bash").stdout)
    assert answers(world, whoami, env, env["AWS_ACCESS_KEY_ID"]).startswith(ROLE.format("dev"))


def test_a_credential_process_profile(world, whoami):
    """`viaproc` runs `awsenv export --format json ci`: the key it hands out signs."""
    world.add_keys()
    key = json.loads(world.ok("export", "ci", "--format", "json").stdout)["AccessKeyId"]
    env = {**{k: v for k, v in world.env.items() if k not in STATIC}, "AWS_PROFILE": "viaproc"}
    answers(world, whoami, env, key)


@pytest.mark.parametrize("carrier", ["variable", "file"])
def test_server_modes_endpoint(world, whoami, carrier):
    """The token in AWS_CONTAINER_AUTHORIZATION_TOKEN, or in the file that
    AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE names (as on EKS), never both."""
    world.add_keys()
    env = served(world, "dev", "--mfa-code", "123456")
    uri, token = env["AWS_CONTAINER_CREDENTIALS_FULL_URI"], env["AWS_CONTAINER_AUTHORIZATION_TOKEN"]
    if carrier == "file":
        (world.tmp / "token").write_text(token)
        del env["AWS_CONTAINER_AUTHORIZATION_TOKEN"]
        env["AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"] = str(world.tmp / "token")
    key = json.loads(fetch(uri, token)[2])["AccessKeyId"]
    assert answers(world, whoami, env, key).startswith(ROLE.format("dev"))

    # A wrong token: the endpoint refuses it, and the consumer fails with no credentials.
    wrong = token[:-2] + ("BB" if token.endswith("AA") else "AA")
    if carrier == "file":
        (world.tmp / "token").write_text(wrong)
    else:
        env["AWS_CONTAINER_AUTHORIZATION_TOKEN"] = wrong
    refused = ask(whoami, env)
    assert refused.returncode != 0 and "arn:" not in refused.stdout


def test_one_go_process_switches_to_the_renewed_role_session(world, go_whoami):
    """As test_endpoint's boto3 test, for the Go SDK, which fetches again within 5
    minutes of the expiry it was given (botocore: 15). Time is compressed: the session is
    aged to 250 s left, inside the Go SDK's window (so every call asks the endpoint) and
    outside the agent's threshold, here the 60 s refresh window + 60 s, with no lead.
    Then it is aged past that threshold, the agent renews it, and the same process signs
    with the new key. In real life the agent renews 16 minutes ahead, before any SDK asks."""
    from world import ACCOUNT

    from test_broker import age, wait_until, watched

    world.add_keys()
    world.write_config(world.home.joinpath(".aws", "config").read_text() + (
        f"\n[profile short]\nrole_arn = arn:aws:iam::{ACCOUNT}:role/dev\nsource_profile = jump\n"
        f"mfa_serial = {world.alice.mfa_serial}\nduration_seconds = 900\n"))
    windows = {"AWSENV_REFRESH_WINDOW": "60", "AWSENV_BROKER_LEAD": "0"}
    env = served(world, "short", "--mfa-code", "123456", env=windows)
    age(world, "short", 250)
    sdk = subprocess.Popen([*go_whoami, "-lines"], env=env, text=True, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        def identity() -> str:
            sdk.stdin.write("go\n")
            sdk.stdin.flush()
            return sdk.stdout.readline().strip()

        world.moto.calls.clear()
        assert identity().startswith(ROLE.format("dev"))
        assert identity().startswith(ROLE.format("dev"))
        first = signers(world)
        assert len(first) == 2 and first[0] == first[1] and not watched(world, "short").get("renewals")

        age(world, "short", 100)
        wait_until(lambda: watched(world, "short").get("renewals"), what="the renewal")
        assert identity().startswith(ROLE.format("dev"))
        then = signers(world)
        assert len(then) == 3 and then[2] != then[0], "the same process signs with the renewed session"
    finally:
        sdk.stdin.close()
        sdk.wait(10)
