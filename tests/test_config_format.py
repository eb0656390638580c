"""~/.aws/config and the credentials file as the AWS CLI reads them (issue 8).

A differential test: Hypothesis writes config files (hostile-but-valid section names,
`=` and `:`, comment lines, ` # ...` after values, indented continuations, nested
values, blank lines, duplicated sections and keys). botocore's own reader
(`raw_config_parse` + `build_profile_map`) and awsenv's `AwsConfig` read each one and
must agree: the same profiles with the same values, or both refuse the file. The one
deliberate difference (README, "Reading ~/.aws/config") is spelled out in
`expected_profiles`. Then one example per difference awsenv used to have, through the
real program.
"""
from __future__ import annotations

import json
import locale
import os
import shutil
import tempfile

import pytest
from botocore.configloader import build_profile_map, raw_config_parse
from botocore.exceptions import ConfigParseError
from conftest import WEIRD
from hypothesis import event, example, given, settings
from hypothesis import strategies as st
from helpers import add_on_a_terminal, one_line_error

from awsenv.core.config import PROFILE_KEYS, AwsConfig
from awsenv.core.configfile import append_profile
from awsenv.core.errors import ConfigError

# configparser opens the file in the locale's encoding, awsenv in UTF-8: the comparison
# means something only where the two are the same, as in every UTF-8 locale.
assert locale.getpreferredencoding(False).lower().replace("-", "") == "utf8"

# Pieces a config file is made of ------------------------------------------------------
TEXT = st.text(st.characters(codec="utf-8", exclude_characters="\n\r"), max_size=10)
FRAGMENTS = ["#", ";", "=", ":", " ", "\t", "[", "]", "'", '"', "\\", "$(x)", "`x`", "\xa0", "\x0b", "\u2028", "é", "中"]
NAME = st.one_of(
    st.sampled_from(["dev", "jump", "prod", "Dev", "default", "a b", '"a b"', "'dev'", "x\\y", WEIRD, "ev'il"]),
    st.lists(st.one_of(st.sampled_from(FRAGMENTS), TEXT), min_size=1, max_size=4).map("".join),
)
PROFILE_HEADER = st.builds(lambda gap, name, tail: "profile" + gap + name + tail,
                           st.sampled_from([" ", "  ", "\t", " \t"]), NAME, st.sampled_from(["", " ", "\t"]))
HEADER = st.one_of(
    st.sampled_from([
        "default", "DEFAULT", "Default", "default ", "profile", "profile ", " profile dev", "profilex y",
        "sso-session corp", "services s3", "plugins", "preview", " ",
    ]),
    PROFILE_HEADER,
    PROFILE_HEADER,
    TEXT.filter(bool),
)
INDENT = st.sampled_from(["", "", "", " ", "  ", "\t", "    ", "\xa0"])
KEY = st.one_of(
    st.sampled_from([*PROFILE_KEYS, "REGION", "Mfa_Serial", "aws_access_key_id", "aws_secret_access_key", "s3", "x"]),
    TEXT.map(lambda t: "k" + t.replace("=", "").replace(":", "")),
)
VALUE = st.one_of(
    st.sampled_from(["", "eu-west-1", "arn:aws:iam::123456789012:mfa/alice", "a = b", "x: y", "v # note",
                     "v ; note", "v#x", "  padded  "]),
    TEXT,
)
SPACE = st.sampled_from(["", " ", "  ", "\t"])
HEADER_LINE = st.builds(lambda indent, header, tail: f"{indent}[{header}]{tail}",
                        INDENT, HEADER, st.sampled_from(["", "", "  # note", " ; note", " junk", "]"]))
KEY_LINE = st.builds(lambda indent, key, left, sep, right, value: f"{indent}{key}{left}{sep}{right}{value}",
                     INDENT, KEY, SPACE, st.sampled_from(["=", "=", ":"]), SPACE, VALUE)
CONTINUATION = st.builds(lambda indent, text: indent + text, st.sampled_from([" ", "  ", "\t", "      "]),
                         st.one_of(st.builds("{} = {}".format, KEY, VALUE), st.builds("{} = {}".format, KEY, VALUE), TEXT))
COMMENT = st.builds(lambda indent, mark, text: indent + mark + text, INDENT, st.sampled_from(["#", ";"]), TEXT)
BLANK = st.sampled_from(["", "", " ", "\t"])
BODY = st.one_of(KEY_LINE, KEY_LINE, KEY_LINE, KEY_LINE, CONTINUATION, CONTINUATION, COMMENT, BLANK)
BLOCK = st.builds(lambda header, body: [header, *body], HEADER_LINE, st.lists(BODY, max_size=5))
# Now and then a line that is neither a key nor a header, somewhere in the file.
JUNK = st.one_of(st.just(None), st.just(None), st.just(None), st.tuples(st.integers(0, 30), TEXT))


def join(lead: list[str], blocks: list[list[str]], junk: tuple[int, str] | None, newline: str) -> str:
    lines = lead + [line for block in blocks for line in block]
    if junk is not None:
        lines.insert(junk[0] % (len(lines) + 1), junk[1])
    return newline.join(lines) + newline


FILE = st.builds(
    join, st.lists(st.one_of(COMMENT, BLANK), max_size=2), st.lists(BLOCK, max_size=5), JUNK,
    st.sampled_from(["\n", "\n", "\r\n", "\r"]),
)


# The two readers ----------------------------------------------------------------------
def botocore_reads(path: str) -> tuple[dict, dict] | None:
    """(sections with nested values parsed, the same with raw values), or None when the
    AWS CLI refuses the file."""
    try:
        return raw_config_parse(path), raw_config_parse(path, parse_subsections=False)
    except ConfigParseError:
        return None


def expected_profiles(raw: dict) -> dict[str, dict]:
    """The profiles awsenv must see: botocore's, section by section in file order (a later
    section of the same name wins, as in build_profile_map), plus the deliberate
    exception: a `[profile NAME]` that botocore drops because shlex can't split NAME into
    one word is kept as NAME, stripped."""
    profiles: dict[str, dict] = {}
    for header, values in raw.items():
        named = build_profile_map({header: values})["profiles"]
        if named:
            profiles.update(named)
        elif header.startswith(("profile ", "profile\t")) and header[7:].strip():
            profiles[header[7:].strip()] = values
    return profiles


def compare(text: str) -> None:
    folder = tempfile.mkdtemp(prefix="awsenv-format-")
    try:
        path = os.path.join(folder, "config")
        with open(path, "w", encoding="utf-8", newline="") as out:
            out.write(text)
        missing = os.path.join(folder, "absent")
        botocore = botocore_reads(path)
        try:
            as_config = AwsConfig(path, missing)
            as_credentials = AwsConfig(missing, path)
            as_credentials.names()
        except ConfigError as err:
            event(f"both refuse the file: {str(err).split(': ')[1][:24]}")
            assert botocore is None, f"awsenv refused what the AWS CLI reads: {err}"
            assert str(err).startswith(f"{path}:") and str(err)[len(path) + 1].isdigit(), err
            assert "\n" not in str(err)
            return
        assert botocore is not None, "awsenv read a file the AWS CLI refuses"
        parsed, raw = botocore
        profiles = expected_profiles(raw)
        event(f"both read it: {min(len(profiles), 3)}+ profiles")
        values = [v for section in parsed.values() for v in section.values()]
        event(f"values with continuations: {any(isinstance(v, str) and chr(10) in v for v in values)}")
        event(f"nested values: {any(isinstance(v, dict) for v in values)}")
        assert as_config.names() == list(profiles)
        for name, values in profiles.items():
            profile = as_config.profile(name)
            assert profile.values == values, name
            nested = expected_profiles(parsed)[name]
            for key, value in nested.items():
                if isinstance(value, dict):  # `key =` then indented sub-keys
                    with pytest.raises(ConfigError, match=f"^{path}:"):
                        profile.get(key)
                else:
                    assert profile.get(key) == (value or None), (name, key)
        # the credentials file: every section by its raw name, as botocore's provider reads it
        assert as_credentials.names() == list(raw)
        assert {n: s.values for n, s in as_credentials.credential_sections.items()} == raw
    finally:
        shutil.rmtree(folder)


@settings(max_examples=400, deadline=None)
@given(text=FILE)
@example(text="[profile a]\nregion: eu-west-1\nmfa_serial : arn:x\n")
@example(text="[profile a]\nregion = x\n[profile b]\n[profile a]\n")
@example(text="[profile a]\nregion = x\nRegion = y\n")
@example(text="[profile a]\nrole_arn = arn:x\n  more\n\n  after a blank\n# comment\n\tlast\n")
@example(text="[profile a]\ns3 =\n  addressing_style = path\nregion =\n  x = y\n")
@example(text="[profile a]\ns3 =\n  not a sub-key\n")
@example(text="[profile a]\nregion = eu-west-1 # work\nmfa_serial = arn:x ; phone\n")
@example(text="[DEFAULT]\nregion = r\n[profile a]\n[default]\n[DEFAULT]\nx = 1\n")
@example(text="[default]\nregion = a\n[profile default]\nregion = b\n")
@example(text="[profile  a]\n[profile\tb ]\n[ profile c]\n[profilex d]\n[profile \"e f\"]\n[profile g h]\n")
@example(text=f"[profile {WEIRD}]\nregion = r\n[profile a] # note [x]\n[ ]\n[] = v\n")
@example(text="key = before any section\n")
def test_awsenv_reads_config_files_as_botocore_does(text):
    compare(text)


# Each former difference through the real program --------------------------------------
def aws_configure_get(world, key: str, profile: str) -> str | None:
    """What the AWS CLI itself reads for the profile (None: not set)."""
    done = world.shell("bash", f"aws configure get {key} --profile {profile}")
    assert done.returncode in (0, 1) and done.stderr == "", done.stderr
    return done.stdout.rstrip("\n") if done.returncode == 0 else None


def list_rows(world) -> dict[str, dict]:
    return {r["profile"]: r for r in json.loads(world.ok("list", "--json").stdout)["profiles"]}


def test_key_colon_value_is_a_setting(world):
    world.write_config(f"[profile jump]\nregion: eu-west-1\nmfa_serial :{world.alice.mfa_serial}\n")
    world.add_keys_for("jump")
    assert list_rows(world)["jump"]["mfa"] == world.alice.mfa_serial
    assert aws_configure_get(world, "mfa_serial", "jump") == world.alice.mfa_serial
    done = world.ok("use", "jump", "--mfa-code", "123456", "--shell", "bash")
    assert "export AWS_REGION='eu-west-1'" in done.stdout


@pytest.mark.parametrize("command", [["list"], ["use", "dev", "--shell", "bash"]])
def test_a_duplicated_section_is_refused_with_both_lines(world, command):
    config = world.home / ".aws" / "config"
    config.write_text(config.read_text() + "\n[profile dev]\nregion = us-west-2\n")
    first = config.read_text().splitlines().index("[profile dev]") + 1
    second = len(config.read_text().splitlines()) - 1
    done = world.run(*command)
    line = one_line_error(done, 2)
    assert line.startswith(f"awsenv: {config}:{second}: ")
    assert "'[profile dev]'" in line and f"lines {first} and {second}" in line
    assert done.stdout == ""


def test_a_duplicated_key_is_refused_with_both_lines(world):
    config = world.home / ".aws" / "config"
    world.write_config("[profile jump]\nregion = eu-west-1\nmfa_serial = x\nREGION: us-east-1\n")
    line = one_line_error(world.run("list"), 2)
    assert line.startswith(f"awsenv: {config}:4: ")
    assert "'region'" in line and "lines 2 and 4" in line and "'[profile jump]'" in line


def test_an_indented_line_continues_the_value_above(world):
    """configparser appends it to the value, as the AWS CLI shows; botocore reads
    `key =` followed by indented lines as nested sub-keys, so such a key is no value."""
    config = world.home / ".aws" / "config"
    world.write_config(
        "[profile jump]\nmfa_serial = arn:aws:iam::123456789012:mfa/a\n  region = eu-west-1\n"
        "s3 =\n  addressing_style = path\n"
        "[profile ci]\nregion =\n  name = eu-west-1\n"
    )
    assert list_rows(world)["jump"]["mfa"] == "arn:aws:iam::123456789012:mfa/a\nregion = eu-west-1"
    assert aws_configure_get(world, "region", "jump") is None  # the AWS CLI sees no region either
    world.add_keys_for("ci")
    line = one_line_error(world.run("use", "ci", "--shell", "bash"), 2)
    assert line.startswith(f"awsenv: {config}:7: ") and "region" in line and "sub-keys" in line


def test_nested_settings_without_an_equals_sign_refuse_the_file(world):
    config = world.home / ".aws" / "config"
    world.write_config("[profile jump]\ns3 =\n  addressing_style path\n")
    line = one_line_error(world.run("list"), 2)
    assert line.startswith(f"awsenv: {config}:2: ") and "'s3'" in line


def test_a_comment_after_a_value_is_part_of_it(world):
    """The AWS CLI has no inline comments: ` # work` stays in the value, and a region
    that holds one is refused by name and line instead of reaching AWS_REGION."""
    config = world.home / ".aws" / "config"
    world.write_config(f"[profile jump]\nmfa_serial = {world.alice.mfa_serial}\nregion = eu-west-1 # work\n")
    world.add_keys_for("jump")
    assert aws_configure_get(world, "region", "jump") == "eu-west-1 # work"
    done = world.run("use", "jump", "--mfa-code", "123456", "--shell", "bash")
    line = one_line_error(done, 2)
    assert line.startswith(f"awsenv: {config}:3: ") and "'eu-west-1 # work'" in line
    assert done.stdout == ""
    assert world.moto.actions() == []


def test_import_delete_plaintext_drops_colon_keys_and_their_continuations(world):
    creds = world.home / ".aws" / "credentials"
    creds.write_bytes(
        b"[legacy]\r\nregion = eu-west-1\r\naws_access_key_id: " + world.robot.key_id.encode()
        + b"\r\naws_secret_access_key : " + world.robot.secret.encode()
        + b"\r\naws_session_token = first part\r\n  second part\r\n\r\n  third part\r\n"
        b"# kept\r\noutput = json\r\n[other]\r\nx = 1\r\n"
    )
    world.ok("import", "legacy", "--delete-plaintext")
    assert creds.read_bytes() == (
        b"[legacy]\r\nregion = eu-west-1\r\n\r\n# kept\r\noutput = json\r\n[other]\r\nx = 1\r\n"
    )
    assert list_rows(world)["legacy"]["key_stored"] is True


def test_import_delete_plaintext_drops_a_section_it_empties_when_the_config_defines_it(world):
    """A section with nothing left but blank lines goes, where ~/.aws/config still names
    the profile; one that only the credentials file names stays, or the profile would."""
    config = world.home / ".aws" / "config"
    config.write_text(config.read_text() + "\n[profile both]\nregion = eu-west-1\n")
    creds = world.home / ".aws" / "credentials"
    key = f"aws_access_key_id = {world.robot.key_id}\naws_secret_access_key = {world.robot.secret}\n"
    creds.write_text(f"[only]\n{key}\n[both]\n{key}\n[kept]\n# a note\n{key}\n[tail]\nx = 1\n")
    world.ok("import", "only", "both", "kept", "--delete-plaintext")
    assert creds.read_text() == "[only]\n\n[kept]\n# a note\n\n[tail]\nx = 1\n"
    rows = list_rows(world)
    assert rows["both"]["key_stored"] and rows["only"]["key_stored"] and rows["kept"]["key_stored"]


@pytest.mark.parametrize("name", ["dev", "default", '"q"', "a\\b", "'x'", "a b", "-n", "ev'il", " x "])
def test_add_writes_a_header_that_both_read_back_as_the_name(tmp_path, name):
    path = str(tmp_path / "config")
    append_profile(path, "other", {"region": "eu-west-1"})
    append_profile(path, name, {"mfa_serial": "arn:x"})
    assert AwsConfig(path, str(tmp_path / "absent")).profile(name).values == {"mfa_serial": "arn:x"}
    assert build_profile_map(raw_config_parse(path))["profiles"][name] == {"mfa_serial": "arn:x"}


# Names and values from outside awsenv (a command line, a prompt, the SSO portal) that
# the writer must keep as data: botocore reads back exactly them, and nothing else.
HOSTILE_NAMES = [WEIRD, "a]b", "x ; y", "#c", "[profile z]", "k = v", "èрт🚒♞中片", "%(x)s", "{}"]
# What no reader may be handed: a line break of any kind, or another control character.
UNWRITABLE = ["a\nb", "a\rb", "a\r\ncredential_process = touch PWNED", "a\x0bb", "a\x0cb", "a\x1cb",
              "a\x85b", "a\u2028b", "a\u2029b", "\x1b[31mred", "nul\x00", "del\x7f"]


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_written_profiles_read_back_exactly_with_hostile_names_and_values(tmp_path, name):
    path = str(tmp_path / "config")
    values = {"sso_role_name": name, "mfa_serial": "arn:aws:iam::123456789012:mfa/x", "note": f"[{name}]"}
    append_profile(path, name, values)
    profiles = build_profile_map(raw_config_parse(path))["profiles"]
    assert profiles == {name: values}
    assert AwsConfig(path, str(tmp_path / "absent")).profile(name).values == values


@pytest.mark.parametrize("bad", UNWRITABLE)
def test_the_config_writer_refuses_control_characters_in_names_keys_and_values(tmp_path, bad):
    from awsenv.core.errors import UsageError

    path = tmp_path / "config"
    path.write_text("[profile kept]\nregion = eu-west-1\n")
    before = path.read_bytes()
    for name, values in ((bad, {"region": "x"}), ("fine", {"region": bad}), ("fine", {bad: "x"}),
                         ("fine", {"region": " padded "})):
        with pytest.raises(UsageError) as refused:
            append_profile(str(path), name, values)
        message = str(refused.value)
        assert "\n" not in message and "\r" not in message and "\x1b" not in message
        assert path.read_bytes() == before, "nothing is written"


def test_add_offers_to_write_hostile_names_as_data_and_refuses_what_is_not(world):
    config = world.home / ".aws" / "config"
    before = build_profile_map(raw_config_parse(str(config)))["profiles"]
    name, serial = "x ; y]#[profile z] = $(touch PWNED)", "arn:aws:iam::123456789012:mfa/fresh"
    assert add_on_a_terminal(world, name, serial)[0] == 0
    after = build_profile_map(raw_config_parse(str(config)))["profiles"]
    assert {k: v for k, v in after.items() if k not in before} == {name: {"mfa_serial": serial}}
    written = config.read_bytes()
    # What is typed at the MFA question is checked as STS checks a serial number; it is
    # asked again, and after three bad answers the section is not written.
    hostile = "arn:aws:iam::123456789012:mfa/x\x1b[2J credential_process"
    status, _seen, output = add_on_a_terminal(world, "fresh", [hostile] * 3)
    assert status == 2 and "Traceback" not in output
    assert [line for line in output.splitlines() if line.startswith("awsenv: that is not an MFA")] != []
    assert "was not written: 3 answers were not an MFA device ARN" in output
    assert config.read_bytes() == written
    # A name no config file can hold is refused before any question.
    done = world.run("add", "a\x1b]0;x\x07b", "--env", env={
        "AWS_ACCESS_KEY_ID": world.robot.key_id, "AWS_SECRET_ACCESS_KEY": world.robot.secret})
    assert done.returncode == 2 and done.stdout == ""
    (line,) = done.stderr.splitlines()
    assert line.startswith("awsenv: ") and "\x1b" not in line
    assert config.read_bytes() == written
    assert not (world.root / "PWNED").exists()


def test_add_without_a_terminal_names_the_header_it_would_write(world):
    done = world.ok("add", '"q"', "--env", env={
        "AWS_ACCESS_KEY_ID": world.robot.key_id, "AWS_SECRET_ACCESS_KEY": world.robot.secret})
    assert "has no [profile '\"q\"']" in done.stderr
