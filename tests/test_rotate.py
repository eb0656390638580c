"""`awsenv rotate` when a step fails: the old key or the new one is kept, and named, so no
key is ever lost."""
from __future__ import annotations

import re
import signal
import subprocess
import threading

from conftest import AWSENV
from helpers import use
from world import boto_client


# rotate's rollback paths --------------------------------------------------------------
def iam_keys(world, user: str) -> set[str]:
    listed = boto_client("iam", world.moto.url).list_access_keys(UserName=user)["AccessKeyMetadata"]
    return {k["AccessKeyId"] for k in listed}


def new_key_of(world) -> str:
    created = [c for c in world.moto.calls if c.action == "CreateAccessKey"]
    assert len(created) == 1
    (key,) = {c.key_id for c in world.moto.calls if c.action == "GetCallerIdentity"} - {world.robot.key_id}
    return key


def still_works_with(world, key_id: str) -> None:
    world.ok("clear")
    world.moto.calls.clear()
    use(world, "ci")
    assert world.moto.actions() == [("GetSessionToken", key_id)]


def test_rotate_whose_new_key_cannot_be_deleted_keeps_the_old_one_and_names_both(world):
    """Mutation: the cleanup's message dropped (the new key left in IAM unnamed)."""
    world.add_keys()
    old = world.robot.key_id
    world.moto.refuse = lambda call: (
        (call.action == "GetCallerIdentity" and call.key_id != old)
        or (call.action == "DeleteAccessKey" and call.params.get("AccessKeyId") != old and ("AccessDenied", "no"))
    )
    done = world.run("rotate", "ci", env={"AWSENV_ROTATE_VERIFY_SECONDS": "1"})
    world.moto.refuse = None
    new = new_key_of(world)
    assert done.returncode == 1 and done.stdout == "" and "Traceback" not in done.stderr
    assert re.search(rf"could not delete the new key {new}\b.*delete it in IAM", done.stderr), done.stderr
    assert f"the old key {old} is kept" in done.stderr
    assert world.robot.secret not in done.stderr
    assert iam_keys(world, "robot") == {old, new}
    still_works_with(world, old)


def test_rotate_interrupted_while_verifying_keeps_the_old_key(world):
    """Mutation: KeyboardInterrupt not caught around the verification (the new key
    stays in IAM), or the old key not named."""
    world.add_keys()
    old = world.robot.key_id
    verifying = threading.Event()

    def not_yet(call):
        if call.action == "GetCallerIdentity" and call.key_id != old:
            verifying.set()
            return True
        return None

    world.moto.refuse = not_yet
    child = subprocess.Popen(
        [AWSENV, "rotate", "ci"], env={**world.env, "AWSENV_ROTATE_VERIFY_SECONDS": "120"}, cwd=world.root,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )
    try:
        assert verifying.wait(60), "rotate never tried the new key"
        child.send_signal(signal.SIGINT)
        out, err = child.communicate(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
            child.communicate()
    world.moto.refuse = None
    new = new_key_of(world)
    assert child.returncode == 130 and out == "", err
    assert f"the old key {old} is kept" in err and new in err, err
    assert [c.params.get("AccessKeyId") for c in world.moto.calls if c.action == "DeleteAccessKey"] == [new]
    assert iam_keys(world, "robot") == {old}
    still_works_with(world, old)


def test_rotate_whose_old_key_cannot_be_deleted_keeps_the_new_one_stored(world):
    """Mutation: the new key stored only after the old one is deleted."""
    world.add_keys()
    old = world.robot.key_id
    world.moto.refuse = lambda call: (
        ("AccessDenied", "no") if call.action == "DeleteAccessKey" and call.params.get("AccessKeyId") == old else None
    )
    done = world.run("rotate", "ci")
    world.moto.refuse = None
    new = new_key_of(world)
    assert done.returncode == 1 and done.stdout == "" and "Traceback" not in done.stderr
    line = done.stderr.splitlines()[-1]  # after the progress line
    assert f"the new key {new} is stored and works" in line and f"old key {old} failed" in line, done.stderr
    assert iam_keys(world, "robot") == {old, new}
    still_works_with(world, new)
