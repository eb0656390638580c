"""The key stores other than the keyring (AWSENV_BACKEND=file|pass), on a machine with
no D-Bus at all: the day's flow against moto, what lies on disk, and the failures.

The file store is the real file with its real passphrase; pass is the real `pass` with a
throwaway GnuPG key (no passphrase) in the test's own GNUPGHOME, whose gpg-agent is
stopped at the end.
"""
from __future__ import annotations

import json
import shutil
import stat
import subprocess
import time
from pathlib import Path

import pytest

from conftest import BIN, require
from helpers import env_after, one_line_error, secrets_on_disk
from test_structure import heavy, imported

pytestmark = pytest.mark.no_secret_service

PASSPHRASE = "correct horse battery staple 7f3a"


@pytest.fixture
def file_store(world):
    assert "DBUS_SESSION_BUS_ADDRESS" not in world.env
    world.env.update({"AWSENV_BACKEND": "file", "AWSENV_FILE_PASSPHRASE": PASSPHRASE})
    world.store_file = world.home / ".local" / "share" / "awsenv" / "store"
    return world


@pytest.fixture
def pass_store(world):
    """pass initialised with a new GnuPG key; `pass` reached through a shim that logs
    every command line it is given, so a test can see that no secret was on one."""
    assert "DBUS_SESSION_BUS_ADDRESS" not in world.env
    real = require("pass")
    require("gpg")
    # gpg-agent's socket lives in GNUPGHOME: the short runtime directory keeps its path
    # within the 108 bytes a unix socket may have, and goes away with the test.
    gnupg = world.keyring.runtime_dir / "gnupg"
    gnupg.mkdir(mode=0o700)
    shim = world.root / "shim"
    shim.mkdir()
    (shim / "pass").write_text(f'#!/bin/sh\nprintf "%s\\n" "$*" >> "{world.root}/pass-argv.log"\nexec "{real}" "$@"\n')
    (shim / "pass").chmod(0o755)
    world.env.update({"AWSENV_BACKEND": "pass", "GNUPGHOME": str(gnupg), "PATH": f"{shim}:{world.env['PATH']}"})
    world.pass_log = world.root / "pass-argv.log"
    try:
        gpg = ["gpg", "--batch", "--quiet"]
        subprocess.run([*gpg, "--passphrase", "", "--quick-gen-key", "awsenv test <test@example.invalid>",
                        "future-default", "default", "never"], env=world.env, check=True, capture_output=True)
        keys = subprocess.run([*gpg, "--list-secret-keys", "--with-colons"], env=world.env, check=True,
                              capture_output=True, text=True).stdout
        fingerprint = next(line.split(":")[9] for line in keys.splitlines() if line.startswith("fpr:"))
        subprocess.run([real, "init", fingerprint], env=world.env, check=True, capture_output=True)
        yield world
    finally:
        for action in ("--kill", "--remove-socketdir"):
            subprocess.run(["gpgconf", action, *(["all"] if action == "--kill" else [])], env=world.env,
                           capture_output=True)
        assert _gpg_agents(gnupg) == [], "gpg-agent outlived the test"


def _gpg_agents(gnupg: Path) -> list[int]:
    deadline = time.monotonic() + 5
    while True:
        found = []
        for proc in Path("/proc").glob("[0-9]*"):
            try:
                if str(gnupg).encode() in (proc / "cmdline").read_bytes():
                    found.append(int(proc.name))
            except OSError:
                continue
        if not found or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


@pytest.fixture(params=["file", "pass"])
def store(request):
    return request.getfixturevalue(f"{request.param}_store")


def use(world, *args: str, env: dict | None = None) -> dict[str, str]:
    return env_after(world, world.ok("use", *args, "--shell", "bash", env=env).stdout)


def on_disk(world, *secrets: str) -> list[str]:
    """secrets_on_disk (HOME and TMPDIR) and the private runtime directory too."""
    found = secrets_on_disk(world, *secrets)
    for path in world.keyring.runtime_dir.rglob("*"):
        if path.is_file() and not path.is_symlink() and any(s.encode() in path.read_bytes() for s in secrets if s):
            found.append(str(path))
    return found


# the day's flow, in both stores ----------------------------------------------------------
def test_add_use_role_and_credential_process_without_dbus(store):
    world = store
    added = world.run("add", "jump", "--env", env={
        "AWS_ACCESS_KEY_ID": world.alice.key_id, "AWS_SECRET_ACCESS_KEY": world.alice.secret,
        "PYTHONPROFILEIMPORTTIME": "1"})
    assert added.returncode == 0, added.stderr[-2000:]
    assert heavy(imported(added.stderr), ("keyring", "secretstorage", "jeepney")) == []
    place = {"file": "the file store", "pass": "pass"}[world.env["AWSENV_BACKEND"]]
    assert f"stored the key {world.alice.key_id} of profile 'jump' in {place}" in added.stderr
    world.add_keys_for("ci")

    base = use(world, "jump", "--mfa-code", "123456")
    assert world.moto.actions() == [("GetSessionToken", world.alice.key_id)]
    world.moto.calls.clear()
    role = use(world, "dev", "--mfa-code", "123456")  # the MFA session is cached: no code spent
    assert world.moto.actions() == [("AssumeRole", base["AWS_ACCESS_KEY_ID"])]
    assert role["AWSENV_PROFILE"] == "dev"
    cli = subprocess.run(["aws", "sts", "get-caller-identity", "--query", "Arn", "--output", "text"],
                         env=role, capture_output=True, text=True)
    assert "assumed-role/dev/" in cli.stdout, cli.stderr

    # credential_process = awsenv export --format json ci, read by the AWS CLI.
    world.moto.calls.clear()
    cli = subprocess.run(["aws", "sts", "get-caller-identity", "--profile", "viaproc", "--output", "json"],
                         env=world.env, capture_output=True, text=True)
    assert cli.returncode == 0, cli.stderr
    assert json.loads(cli.stdout)["Account"] == "123456789012"
    assert world.moto.actions()[0] == ("GetSessionToken", world.robot.key_id)

    secrets = [world.alice.secret, world.robot.secret, base["AWS_SECRET_ACCESS_KEY"], base["AWS_SESSION_TOKEN"],
               role["AWS_SECRET_ACCESS_KEY"], role["AWS_SESSION_TOKEN"], PASSPHRASE]
    assert on_disk(world, *secrets) == []
    if world.env["AWSENV_BACKEND"] == "pass":
        argv = world.pass_log.read_text()
        assert "insert --multiline --force awsenv/key:jump" in argv and "show awsenv/sessions" in argv
        assert not [s for s in secrets if s in argv]
        entries = {p.relative_to(world.home / ".password-store").as_posix()
                   for p in (world.home / ".password-store").rglob("*.gpg")}
        assert entries == {"awsenv/key:jump.gpg", "awsenv/key:ci.gpg", "awsenv/sessions.gpg"}


def test_agent_status_and_doctor_name_the_store(store):
    world = store
    world.add_keys_for("ci")
    use(world, "ci")
    kind = world.env["AWSENV_BACKEND"]
    report = json.loads(world.run("doctor", "--json").stdout)
    assert report["store"].startswith(f"{kind} ")
    assert not [f for f in report["findings"] if f["check"] == "keyring-backend"]
    assert world.run("doctor").stdout.splitlines()[0] == f"store: {report['store']}"
    status = wait_for_agent(world)
    assert status["store"].startswith(f"{kind} ")
    assert f"store: {status['store']}" in world.ok("agent", "status").stdout
    if kind == "file":
        assert status["store"] == f"file {world.store_file} (unlocked)"
        # The agent was handed the key, never the passphrase: not in its environment either.
        proc = Path("/proc") / str(status["pid"])
        assert PASSPHRASE.encode() not in (proc / "environ").read_bytes() + (proc / "cmdline").read_bytes()


def test_an_unknown_store_is_one_line_and_exit_2(world):
    for args in (["add", "ci", "--env"], ["use", "ci", "--shell", "bash"], ["list"]):
        line = one_line_error(world.run(*args, env={
            "AWSENV_BACKEND": "vault9", "AWS_ACCESS_KEY_ID": world.robot.key_id,
            "AWS_SECRET_ACCESS_KEY": world.robot.secret}), 2)
        assert "AWSENV_BACKEND" in line and "keyring, file or pass" in line


# the file store ------------------------------------------------------------------------------
def test_the_file_is_private_sealed_and_names_nothing(file_store):
    world = file_store
    world.add_keys()
    use(world, "dev", "--mfa-code", "123456")
    path = world.store_file
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    header, sealed, end = path.read_bytes().split(b"\n")
    assert end == b"" and sealed
    fields = json.loads(header)
    assert fields["kdf"] == "scrypt" and fields["cipher"] == "AES-256-GCM" and fields["n"] >= 1 << 15
    # Item names are sealed with the values (`:` and `-` are not base64: no match by chance),
    # and so are the sessions, in their own file under the same key.
    sessions = path.parent / "sessions"
    assert stat.S_IMODE(sessions.stat().st_mode) == 0o600
    assert json.loads(sessions.read_bytes().split(b"\n")[0])["check"] == fields["check"]
    for name in (b"key:jump", b"key:ci", b"mfa-used", b"role", b"Expiration"):
        assert name not in path.read_bytes() and name not in sessions.read_bytes()
    # No temporary file is left beside them; only the lock file.
    assert sorted(p.name for p in path.parent.iterdir()) == ["sessions", "store", "store.lock"]


def test_a_wrong_passphrase_is_one_line_and_changes_nothing(file_store):
    world = file_store
    world.add_keys()
    before = world.store_file.read_bytes()
    wrong = {"AWSENV_FILE_PASSPHRASE": "not the passphrase", "AWSENV_AGENT": "0",
             "AWS_ACCESS_KEY_ID": world.robot.key_id, "AWS_SECRET_ACCESS_KEY": world.robot.secret}
    for args in (["add", "ci", "--env"], ["use", "dev", "--mfa-code", "123456", "--shell", "bash"]):
        done = world.run(*args, env=wrong)
        line = one_line_error(done, 1)
        assert f"wrong passphrase for the file store {world.store_file} (from AWSENV_FILE_PASSPHRASE)" in line
        assert "not the passphrase" not in done.stderr and PASSPHRASE not in done.stderr
        assert world.store_file.read_bytes() == before
    assert world.moto.actions() == []


@pytest.mark.parametrize("damage", ["truncated", "flipped", "empty", "header"])
def test_a_damaged_file_is_one_line_naming_it(file_store, damage):
    world = file_store
    world.add_keys()
    data = world.store_file.read_bytes()
    header, sealed, _ = data.split(b"\n")
    world.store_file.write_bytes({
        "truncated": data[: len(data) // 2],
        "flipped": header + b"\n" + flip(sealed, 10) + b"\n",
        "empty": b"",
        # The header is sealed too. (A changed salt or cost gives another key: that reads
        # as a wrong passphrase, which it can't be told from.)
        "header": flip(header, header.index(b'"nonce":"') + 9) + b"\n" + sealed + b"\n",
    }[damage])
    damaged = world.store_file.read_bytes()
    for args in (["use", "jump", "--mfa-code", "123456", "--shell", "bash"], ["add", "ci", "--env"]):
        line = one_line_error(world.run(*args, env={"AWSENV_AGENT": "0", "AWS_ACCESS_KEY_ID": world.robot.key_id,
                                                    "AWS_SECRET_ACCESS_KEY": world.robot.secret}), 1)
        assert f"the file store {world.store_file} is damaged (" in line
    assert world.store_file.read_bytes() == damaged
    # `list` still lists the config, and says once why keys are not shown.
    done = world.run("list", env={"AWSENV_AGENT": "0"})
    assert done.returncode == 0 and "jump" in done.stdout
    said = [text for text in done.stderr.splitlines() if text]
    assert len(said) == 1 and said[0].startswith(line) and "not shown" in said[0]


def flip(data: bytes, at: int) -> bytes:
    """Another base64 character at `at`."""
    return data[:at] + (b"A" if data[at:at + 1] != b"A" else b"B") + data[at + 1:]


def test_no_passphrase_and_no_terminal_says_how_to_give_it(file_store):
    world = file_store
    world.add_keys()
    world.env.pop("AWSENV_FILE_PASSPHRASE")
    line = one_line_error(world.run("use", "ci", "--shell", "bash", env={"AWSENV_AGENT": "0"}), 1)
    assert "no terminal to ask on; set AWSENV_FILE_PASSPHRASE" in line
    # Nor does a missing file get made without one.
    (world.store_file).unlink()
    line = one_line_error(world.run("add", "ci", "--env", env={
        "AWSENV_AGENT": "0", "AWS_ACCESS_KEY_ID": world.robot.key_id, "AWS_SECRET_ACCESS_KEY": world.robot.secret}), 1)
    assert "AWSENV_FILE_PASSPHRASE" in line and not world.store_file.exists()


def test_racing_writers_lose_nothing(file_store):
    world = file_store
    names = [f"racer{i}" for i in range(6)]
    world.write_config("".join(f"[profile {name}]\n" for name in names))
    world.ok("add", names[0], "--env", env={"AWS_ACCESS_KEY_ID": "AKIAEXAMPLE000000000",
                                            "AWS_SECRET_ACCESS_KEY": "a" * 40})  # the file exists
    env = {**world.env, "AWSENV_AGENT": "0"}
    racers = [subprocess.Popen(
        [str(BIN / "awsenv"), "add", name, "--env"], cwd=world.root, start_new_session=True,
        env={**env, "AWS_ACCESS_KEY_ID": f"AKIAEXAMPLE00000000{i}", "AWS_SECRET_ACCESS_KEY": f"{i}" * 40},
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) for i, name in enumerate(names[1:], 1)]
    for racer in racers:
        assert racer.wait(60) == 0, racer.stderr.read() if racer.stderr else ""
        if racer.stderr:
            racer.stderr.close()
    rows = json.loads(world.ok("list", "--json").stdout)["profiles"]
    assert {row["profile"]: row["key_stored"] for row in rows} == dict.fromkeys(names, True)


def test_the_passphrase_is_asked_once_then_the_agent_holds_the_key(file_store, term):
    world = file_store
    world.env.pop("AWSENV_FILE_PASSPHRASE")
    t = term("bash")
    # Made on the terminal: asked twice, never echoed.
    t.child.send(f"AWS_ACCESS_KEY_ID={world.robot.key_id} AWS_SECRET_ACCESS_KEY={world.robot.secret} "
                 "awsenv add ci --env\r")
    t.expect("New passphrase: ")
    t.child.send(PASSPHRASE + "\r")
    t.expect("same passphrase again: ")
    t.child.send(PASSPHRASE + "\r")
    assert "stored the key" in t.prompt()
    # The first switch asks for it and starts the agent, which is handed the key.
    t.child.send("awsenv use ci\r")
    t.expect("Passphrase for the awsenv file store")
    t.child.send(PASSPHRASE + "\r")
    t.prompt()
    assert t.value("AWSENV_PROFILE") == "ci"
    wait_for_agent(world)
    # A new role session is written to the store without a question, on the terminal...
    out = t.run("awsenv use deploy")
    assert "Passphrase" not in out and t.value("AWSENV_PROFILE") == "deploy"
    # ...and where there is none to ask on.
    world.ok("add", "jump", "--env", env={"AWS_ACCESS_KEY_ID": world.alice.key_id,
                                          "AWS_SECRET_ACCESS_KEY": world.alice.secret})
    assert PASSPHRASE not in t.output
    # Once the agent is gone, the passphrase is needed again.
    world.ok("agent", "stop")
    line = one_line_error(world.run("use", "dev", "--mfa-code", "123456", "--shell", "bash"), 1)
    assert "AWSENV_FILE_PASSPHRASE" in line


def wait_for_agent(world) -> dict:
    """The agent's status once it answers with the document loaded."""
    deadline = time.monotonic() + 10
    while not (status := json.loads(world.ok("agent", "status", "--json").stdout)).get("loaded"):
        assert time.monotonic() < deadline, f"no agent with the document: {status}"
        time.sleep(0.1)
    return status


@pytest.mark.parametrize("how", ["awsenv agent stop", "kill $AWSENV_SERVED"])
def test_the_agent_a_server_mode_prompt_starts_holds_the_file_store(file_store, term, how):
    """After `agent stop` (or a kill), the prompt starts a new agent for a server-mode
    shell. With the file store, that agent must be handed the key as the first one was,
    or it serves `no session for dev` while the prompt says all is well."""
    world = file_store
    world.add_keys()
    t = term("bash")
    t.run("awsenv use dev --server --mfa-code 123456")
    wait_for_agent(world)

    said = t.run(how)

    assert "a new agent serves it" in said
    assert "assumed-role/dev/" in t.run("aws sts get-caller-identity --query Arn --output text")
    status = json.loads(world.ok("agent", "status", "--json").stdout)
    assert "(unlocked)" in status["store"] and status["loaded"], status


# pass ------------------------------------------------------------------------------------
def test_a_profile_name_stays_inside_the_awsenv_folder(pass_store):
    world = pass_store
    hostile = "../x y/'$(touch PWNED)`"
    world.write_config(f"[profile {hostile}]\n")
    world.ok("add", hostile, "--env", env={"AWS_ACCESS_KEY_ID": world.robot.key_id,
                                           "AWS_SECRET_ACCESS_KEY": world.robot.secret})
    store = world.home / ".password-store"

    def entries() -> set[str]:
        return {p.relative_to(store).as_posix() for p in store.rglob("*.gpg")}

    # One file in awsenv/: the `/`s, the space, the quote, `$`, `(` and the backtick encoded.
    assert entries() == {"awsenv/key:..%2Fx%20y%2F%27%24%28touch%20PWNED%29%60.gpg", "awsenv/sessions.gpg"}
    rows = json.loads(world.ok("list", "--json").stdout)["profiles"]
    assert [row["key_stored"] for row in rows if row["profile"] == hostile] == [True]
    assert world.ok("remove", hostile).returncode == 0
    assert entries() == {"awsenv/sessions.gpg"} and not list(world.root.rglob("PWNED"))


def test_pass_missing_or_not_initialised_is_one_line_with_the_way_out(pass_store):
    world = pass_store
    key = {"AWS_ACCESS_KEY_ID": world.robot.key_id, "AWS_SECRET_ACCESS_KEY": world.robot.secret}
    line = one_line_error(world.run("add", "ci", "--env", env={**key, "PATH": str(BIN)}), 1)
    assert "`pass` program" in line and "install" in line
    empty = world.root / "empty-store"
    empty.mkdir()
    for args in (["add", "ci", "--env"], ["use", "ci", "--shell", "bash"]):
        line = one_line_error(world.run(*args, env={**key, "PASSWORD_STORE_DIR": str(empty)}), 1)
        assert f"{empty} is not initialised" in line and "pass init" in line
    assert list(empty.iterdir()) == []


def test_a_pass_failure_is_one_line(pass_store):
    world = pass_store
    world.add_keys_for("ci")
    # The entry is there but GnuPG can't decrypt it: the secret key is gone.
    shutil.rmtree(Path(world.env["GNUPGHOME"]) / "private-keys-v1.d")
    subprocess.run(["gpgconf", "--kill", "gpg-agent"], env=world.env, capture_output=True)
    line = one_line_error(world.run("use", "ci", "--shell", "bash", env={"AWSENV_AGENT": "0"}), 1)
    assert line.startswith("awsenv: pass failed while reading awsenv/") and "decrypt" in line


# fewer unlocks (issue 22, item 4) -----------------------------------------------------------
def test_a_scripted_day_reads_the_file_store_once_per_mfa_session(file_store):
    """One MFA session, 30 switches among three roles and five renewals at the prompt,
    with the agent up: the file is read once (the long-term key, for the MFA session).
    inotify counts the reads, from outside (tests/storereads.py)."""
    from storereads import EXTRA_CONFIG, RENEWALS, FileReads, scripted_day

    world = file_store
    config = world.home / ".aws" / "config"
    config.write_text(config.read_text() + EXTRA_CONFIG.format(serial=world.alice.mfa_serial))
    world.add_keys()
    use(world, "ci")  # yesterday: the agent started, holding the store's key
    wait_for_agent(world)
    world.ok("clear")  # and today no session is left
    world.moto.calls.clear()

    reads = FileReads(world.store_file.parent)
    try:
        problems = scripted_day(lambda *args, env: _ran(world.run(*args, env=env)), world.env, "123456")
        count, by_name = reads.count(), dict(reads.by_name)
    finally:
        reads.close()
    assert problems == []
    actions = [action for action, _key in world.moto.actions()]
    assert actions.count("GetSessionToken") == 1 and actions.count("AssumeRole") == 3 + RENEWALS, actions
    assert count == 1, f"the file store was read {count} times in the day: {by_name}"


def _ran(done) -> tuple[int, str, str]:
    return done.returncode, done.stdout, done.stderr


def test_two_file_stores_sharing_a_runtime_dir_never_see_each_others_sessions(file_store):
    """One agent per runtime directory, and writes start from the agent's copy: a file
    store elsewhere (another XDG_DATA_HOME) must neither read the first one's sessions
    from the agent nor have them written into its file."""
    world = file_store
    world.add_keys_for("jump")
    use(world, "jump", "--mfa-code", "123456")
    other = {"XDG_DATA_HOME": str(world.root / "other-data")}
    world.ok("add", "ci", "--env", env={**other, "AWS_ACCESS_KEY_ID": world.robot.key_id,
                                       "AWS_SECRET_ACCESS_KEY": world.robot.secret})
    world.moto.calls.clear()
    listed = json.loads(world.ok("list", "--json", env=other).stdout)
    jump = next(row for row in listed["profiles"] if row["profile"] == "jump")
    assert not jump["session_seconds_left"], "the other store sees the first one's MFA session"
    use(world, "ci", env=other)  # a write to the other store, with the first one's agent up
    assert world.moto.actions() == [("GetSessionToken", world.robot.key_id)]
    again = use(world, "jump", "--mfa-code", "123456")  # the first store still has its session
    assert world.moto.actions() == [("GetSessionToken", world.robot.key_id)], "the first store lost its session"
    assert again["AWSENV_PROFILE"] == "jump"
    listed = json.loads(world.ok("list", "--json", env=other).stdout)
    jump = next(row for row in listed["profiles"] if row["profile"] == "jump")
    assert not jump["session_seconds_left"], "the first store's session was written into the other"
