"""~/.aws/config and the shared credentials file, read the way the AWS CLI reads them.

We parse the files ourselves rather than through botocore: botocore drops section
names it cannot split with shlex (a profile called ``ev'il"$(x)`` vanishes), and the
cached path must not import botocore at all. Pure: the only I/O is reading the files.
"""
from __future__ import annotations

import difflib
import os
import re

from .errors import ConfigError, UsageError

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs the cached switch an import
    from collections.abc import Iterable, Iterator

ROLE_ARN = re.compile(r"arn:aws[a-z-]*:iam::(?P<account>[0-9]{12}):role/(?P<name>[\w+=,.@/-]+)")

REGION = re.compile(r"(?![0-9]+$)(?!-)[a-zA-Z0-9-]{,63}(?<!-)")
MIN_ROLE_DURATION, MAX_ROLE_DURATION = 900, 43200
LINE_BREAK = re.compile(r"\r\n|[\r\n]")
LINE_WITH_END = re.compile(r".*?(?:\r\n|[\r\n])|.+$", re.S)
# The patterns of configparser.RawConfigParser, which botocore reads the files with: a
# header runs from `[` to the *last* `]` of the line (`[profile a] # x` is `profile a`), a
# key ends at the first `=` or `:`, and indentation is measured up to the first non-space.
SECTION = re.compile(r"\[(?P<header>.+)\]")
OPTION = re.compile(r"(?P<key>.*?)\s*[=:]\s*(?P<value>.*)$")
NONSPACE = re.compile(r"\S")
# configparser keeps [DEFAULT] out of the sections and lends its keys to every section.
DEFAULTS = "DEFAULT"
# `profile NAME` that shlex splits into exactly these two words without any quoting.
PLAIN_PROFILE = re.compile(r"profile[ \t]+([^ \t'\"\\]+)[ \t]*")

PROFILE_KEYS = (
    "region",
    "mfa_serial",
    "mfa_process",
    "role_arn",
    "source_profile",
    "duration_seconds",
    "role_session_name",
    "external_id",
    "credential_process",
)
SSO_PROFILE_KEYS = ("sso_session", "sso_account_id", "sso_role_name", "sso_start_url", "sso_region")


class Profile:
    """One profile's settings. A plain class: the cached path can't pay for dataclasses."""

    __slots__ = ("name", "values", "source_file", "line", "lines")

    def __init__(
        self, name: str, values: dict[str, str], source_file: str = "", line: int = 0,
        lines: dict[str, int] | None = None,
    ) -> None:
        self.name = name
        self.values = values
        self.source_file = source_file
        self.line = line
        self.lines = lines or {}

    def where(self, key: str | None = None) -> str:
        """`file:line` of the key (or of the section header), for error messages."""
        return f"{self.source_file}:{self.lines.get(key, self.line) if key else self.line}"

    def __repr__(self) -> str:
        return f"Profile({self.name!r})"

    def get(self, key: str) -> str | None:
        value = self.values.get(key)
        if value and value[0] == "\n":
            # botocore turns `key =` + indented lines into a dict of sub-keys, not a value
            raise ConfigError(
                f"{self.where(key)}: {key} of profile {self.name!r} is a block of indented "
                "sub-keys, not a value"
            )
        return value if value else None

    @property
    def is_role(self) -> bool:
        return self.get("role_arn") is not None

    @property
    def kind(self) -> str:
        """`base`, `role`, `sso`, `login`, or what `unsupported` names: `web-identity`, `credential-source`."""
        if self.is_sso:
            return "sso"
        if self.is_login:
            return "login"
        if self.get("web_identity_token_file"):
            return "web-identity"
        if self.is_role and self.get("credential_source") and not self.source_profile:
            return "credential-source"
        return "role" if self.is_role else "base"

    def unsupported(self) -> str | None:
        """The one line for a profile awsenv does not serve (what it is, what awsenv
        does with it), or None. The only place that decides it: use, export, exec,
        list and doctor all ask here."""
        kind = self.kind
        if kind == "web-identity":
            return (f"profile {self.name!r} assumes its role with a web identity token "
                    "(web_identity_token_file); awsenv leaves it to the SDKs, which read the token themselves")
        if kind == "credential-source":
            source = CREDENTIAL_SOURCES.get(self.get("credential_source") or "", "where credential_source says")
            return (f"profile {self.name!r} takes its source credentials {source} (credential_source); "
                    f"awsenv leaves it to the SDKs: set AWS_PROFILE={self.name}, or give it a source_profile")
        return None

    @property
    def is_sso(self) -> bool:
        """An IAM Identity Center profile: a base whose credentials come from a sign-in."""
        return not self.is_role and any(self.get(key) for key in SSO_PROFILE_KEYS)

    @property
    def is_login(self) -> bool:
        """An AWS sign-in profile (`aws login`'s login_session): a base whose credentials
        come from a console sign-in."""
        return not self.is_role and not self.is_sso and self.get("login_session") is not None

    @property
    def region(self) -> str | None:
        region = self.get("region")
        # botocore's validate_region_name: a host label. The AWS CLI keeps a ` # note`
        # after a value as part of it, so `region = eu-west-1 # work` fails there too.
        if region is not None and REGION.fullmatch(region) is None:
            raise ConfigError(
                f"{self.where('region')}: region of profile {self.name!r} is {region!r}, which is "
                "not a region name (a comment must be on a line of its own)"
            )
        return region

    @property
    def mfa_serial(self) -> str | None:
        return self.get("mfa_serial")

    @property
    def mfa_process(self) -> str | None:
        """A command that prints a code for this profile's mfa_serial (aws-vault's key)."""
        return self.get("mfa_process")

    @property
    def role_arn(self) -> str | None:
        return self.get("role_arn")

    @property
    def source_profile(self) -> str | None:
        return self.get("source_profile")

    @property
    def duration_seconds(self) -> int | None:
        raw = self.get("duration_seconds")
        if raw is None:
            return None
        try:
            seconds = int(raw)
        except ValueError:
            seconds = -1
        if not MIN_ROLE_DURATION <= seconds <= MAX_ROLE_DURATION:
            raise ConfigError(
                f"{self.where('duration_seconds')}: duration_seconds of profile {self.name!r} is "
                f"{raw!r}; a role lasts {MIN_ROLE_DURATION} to {MAX_ROLE_DURATION} seconds"
            )
        return seconds


CREDENTIAL_SOURCES = {
    "Environment": "from the environment",
    "Ec2InstanceMetadata": "from the EC2 instance metadata",
    "EcsContainer": "from the ECS container credentials",
}


class Section:
    __slots__ = ("name", "values", "line", "lines")

    def __init__(self, name: str, values: dict[str, str], line: int) -> None:
        self.name = name
        self.values = values
        self.line = line
        self.lines: dict[str, int] = {}


# Paths are plain strings: pathlib costs the cached switch several milliseconds.
def config_path() -> str:
    return os.path.expanduser(os.environ.get("AWS_CONFIG_FILE") or os.path.join("~", ".aws", "config"))


def credentials_path() -> str:
    return os.path.expanduser(
        os.environ.get("AWS_SHARED_CREDENTIALS_FILE") or os.path.join("~", ".aws", "credentials")
    )


def _scan(lines: Iterable[str]) -> Iterator[tuple[int, str, str, str]]:
    """configparser's reading loop (RawConfigParser._read: strict, `#`/`;` comment lines,
    no inline comments), one event per line: (number, kind, name, value). kind is
    "section" (name), "key" (name lowercased, value), "more" (value: an indented line
    that continues the open key, or "" for a blank line inside it), "skip" (a comment,
    or a blank line outside a value), or "bad" (name says what is wrong)."""
    in_section = key_open = False
    indent = 0
    for number, line in enumerate(lines, start=1):
        value = line.strip()
        if value.startswith(("#", ";")):
            yield number, "skip", "", ""
            continue
        if not value:
            yield number, "more" if key_open else "skip", "", ""
            continue
        first = NONSPACE.search(line)
        level = first.start() if first else 0
        if key_open and level > indent:
            yield number, "more", "", value
            continue
        indent = level
        header = SECTION.match(value)
        if header is not None:
            in_section, key_open = True, False
            yield number, "section", header.group("header"), ""
        elif not in_section:
            yield number, "bad", "'key = value' before any [section]", ""
        else:
            option = OPTION.match(value)
            if option is None or not option.group("key"):
                yield number, "bad", "expected 'key = value' or '[section]'", ""
            else:
                key_open = True
                yield number, "key", option.group("key").rstrip().lower(), option.group("value").strip()


def parse_ini(text: str, filename: str) -> list[Section]:
    """Parse the INI dialect of the AWS CLI exactly as botocore reads it (configparser,
    then botocore's nested values): `=` or `:`, keys lowercased, `#`/`;` comment lines,
    a value kept whole up to the end of its line (a ` # ...` in it is part of it), indented
    lines that continue the value above them, [DEFAULT] lending its keys to every
    section, and a duplicated section or key refused with both line numbers."""
    sections: list[Section] = []
    defaults = Section(DEFAULTS, {}, 0)
    current: Section | None = None
    key = ""
    # Only \n, \r and \r\n end a line, as in configparser; str.splitlines would also
    # break at \x0b, \x0c, \x1c-\x1e, \x85, \u2028 and \u2029.
    for number, kind, name, value in _scan(LINE_BREAK.split(text)):
        if kind == "bad":
            raise ConfigError(f"{filename}:{number}: {name}")
        if kind == "section":
            current = _open_section(sections, defaults, name, number, filename)
        elif kind == "key" and current is not None:
            if name in current.values:
                raise ConfigError(
                    f"{filename}:{number}: key {name!r} is set twice in {_bracketed(current.name)} "
                    f"(lines {current.lines[name]} and {number}); the AWS CLI refuses such a file"
                )
            key = name
            current.values[key] = value
            current.lines[key] = number
        elif kind == "more" and current is not None:
            current.values[key] += "\n" + value
    return _finish(sections, defaults, filename)


def _open_section(
    sections: list[Section], defaults: Section, name: str, number: int, filename: str,
) -> Section:
    if name == DEFAULTS:  # configparser lets [DEFAULT] appear more than once
        defaults.line = defaults.line or number
        return defaults
    for earlier in sections:
        if earlier.name == name:
            raise ConfigError(
                f"{filename}:{number}: section {_bracketed(name)} appears twice (lines "
                f"{earlier.line} and {number}); the AWS CLI refuses such a file"
            )
    section = Section(name, {}, number)
    sections.append(section)
    return section


def _finish(sections: list[Section], defaults: Section, filename: str) -> list[Section]:
    """Join the values as configparser does, lend [DEFAULT]'s keys, and check the nested
    values botocore parses (a value that starts with a newline: `s3 =` + indented lines)."""
    for section in (defaults, *sections):
        for key, value in section.values.items():
            section.values[key] = value.rstrip()
    for section in sections:
        for key, value in defaults.values.items():
            if key not in section.values:
                section.values[key] = value
                section.lines[key] = defaults.lines[key]
        for key, value in section.values.items():
            # botocore's _parse_nested: each non-blank line needs an `=`
            if value.startswith("\n") and any(
                "=" not in line for line in value.splitlines() if line.strip()
            ):
                raise ConfigError(
                    f"{filename}:{section.lines[key]}: the indented lines under {key!r} are nested "
                    "settings, and each needs 'name = value'"
                )
    return sections


def _bracketed(name: str) -> str:
    return repr(f"[{name}]")


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8") as stream:
            return stream.read()
    except FileNotFoundError:
        return None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text") from None
    except OSError as err:
        raise ConfigError(f"{path}: cannot read: {err.strerror}") from None


class AwsConfig:
    """The profiles of ~/.aws/config, with the credentials file read only when needed."""

    def __init__(self, config_file: str | None = None, credentials_file: str | None = None):
        self.config_file = config_file or config_path()
        self.credentials_file = credentials_file or credentials_path()
        self._profiles: dict[str, Profile] = {}
        self.sso_sessions: dict[str, Section] = {}
        text = _read(self.config_file)
        self.exists = text is not None
        if text is not None:
            for section in parse_ini(text, str(self.config_file)):
                name = _profile_name(section.name)
                if name is not None:
                    self._profiles[name] = Profile(
                        name, section.values, str(self.config_file), section.line, section.lines
                    )
                else:
                    session = _sso_session_name(section.name)
                    if session is not None:
                        self.sso_sessions[session] = section
        self._credentials: dict[str, Section] | None = None

    # The credentials file is read lazily: the cached path never needs it for a
    # profile that ~/.aws/config defines.
    @property
    def credential_sections(self) -> dict[str, Section]:
        if self._credentials is None:
            self._credentials = {}
            text = _read(self.credentials_file)
            if text is not None:
                for section in parse_ini(text, str(self.credentials_file)):
                    self._credentials[section.name] = section
        return self._credentials

    def names(self) -> list[str]:
        names = dict.fromkeys(self._profiles)
        names.update(dict.fromkeys(self.credential_sections))
        return list(names)

    def has(self, name: str) -> bool:
        return name in self._profiles or name in self.credential_sections

    def profile(self, name: str) -> Profile:
        found = self._profiles.get(name)
        if found is not None:
            return found
        section = self.credential_sections.get(name)
        if section is not None:
            values = {k: v for k, v in section.values.items() if k in PROFILE_KEYS}
            return Profile(name, values, str(self.credentials_file), section.line, section.lines)
        if not self.exists and not self.credential_sections:
            raise UsageError(
                f"unknown profile {name!r}: {self.config_file} does not exist; create a first profile "
                "with `awsenv add NAME`, which offers to write it"
            )
        hint = difflib.get_close_matches(name, self.names(), n=3, cutoff=0.5)
        suffix = f"; did you mean {', '.join(repr(h) for h in hint)}?" if hint else ""
        raise UsageError(f"unknown profile {name!r} in {self.config_file}{suffix}")

    def portal(self, profile: Profile) -> Portal:
        """The sign-in an SSO profile uses: its [sso-session], or the legacy start URL
        and region in the profile itself."""
        name = profile.name
        for key in ("sso_account_id", "sso_role_name"):
            if not profile.get(key):
                raise ConfigError(f"{profile.where()}: SSO profile {name!r} has no {key}")
        session = profile.get("sso_session")
        if session is None:
            url, region = profile.get("sso_start_url"), profile.get("sso_region")
            if not url or not region:
                raise ConfigError(
                    f"{profile.where()}: SSO profile {name!r} needs sso_session, or both sso_start_url and sso_region"
                )
            return Portal(url, url, region, (), session=False)
        section = self.sso_sessions.get(session)
        if section is None:
            raise ConfigError(
                f"{profile.where('sso_session')}: profile {name!r} names sso_session {session!r}, "
                f"but {self.config_file} has no [sso-session {session}]"
            )
        return self.session_portal(session)

    def session_portal(self, session: str) -> Portal:
        section = self.sso_sessions.get(session)
        if section is None:
            raise UsageError(f"no [sso-session {session}] in {self.config_file}")
        values = section.values
        where = f"{self.config_file}:{section.line}"
        for key in ("sso_start_url", "sso_region"):
            if not values.get(key):
                raise ConfigError(f"{where}: [sso-session {session}] has no {key}")
        scopes = tuple(s.strip() for s in values.get("sso_registration_scopes", "").split(",") if s.strip())
        return Portal(session, values["sso_start_url"], values["sso_region"], scopes, session=True)

    def adhoc(self, role_arn: str, source: str, session_name: str | None = None) -> str:
        """Register a role given by ARN (`use --role-arn`) as a profile reached from
        `source`, the way change-role.sh assumes any role by account and name."""
        match = ROLE_ARN.fullmatch(role_arn)
        if match is None:
            raise UsageError(f"not a role ARN: {role_arn!r} (arn:aws:iam::ACCOUNT:role/NAME)")
        self.profile(source)  # unknown source: the usual error with suggestions
        name = f"{match.group('name').rsplit('/', 1)[-1]}@{match.group('account')}"
        values = {"role_arn": role_arn, "source_profile": source}
        if session_name:
            values["role_session_name"] = session_name
        self._profiles[name] = Profile(name, values, "--role-arn", 0)
        return name

    def plaintext_key(self, name: str) -> tuple[str, str] | None:
        section = self.credential_sections.get(name)
        if section is None:
            return None
        key_id = section.values.get("aws_access_key_id")
        secret = section.values.get("aws_secret_access_key")
        if key_id and secret:
            return key_id, secret
        return None

    def built_on(self, base: str) -> set[str]:
        """The profile and every profile whose chain starts from it (just the name when
        no config section knows it)."""
        names = {base}
        for name in self.names():
            try:
                if self.chain(name)[-1].name == base:
                    names.add(name)
            except UsageError:
                continue
        return names

    def chain(self, name: str) -> list[Profile]:
        """The profile and its sources, target first, base last. A cycle names the loop."""
        chain: list[Profile] = []
        seen: list[str] = []
        current = self.profile(name)
        while True:
            if current.name in seen:
                loop = " -> ".join(seen[seen.index(current.name):] + [current.name])
                raise ConfigError(f"source_profile cycle: {loop}")
            seen.append(current.name)
            chain.append(current)
            if not current.is_role or current.unsupported():
                return chain  # a profile awsenv does not serve has no source it could follow
            source = current.source_profile
            if source is None:
                raise ConfigError(
                    f"{current.where()}: role profile {current.name!r} has no source_profile, "
                    "so no key can reach it"
                )
            if not self.has(source):
                raise ConfigError(
                    f"role profile {current.name!r} names source_profile {source!r}, which does not exist"
                )
            current = self.profile(source)

    def unsupported(self, name: str, chain: list[Profile] | None = None) -> str | None:
        """Profile.unsupported for the first link of `name`'s chain awsenv can't serve."""
        for profile in chain or self.chain(name):
            sentence = profile.unsupported()
            if sentence is not None:
                return sentence if profile.name == name else f"{sentence} (and {name!r} is reached from it)"
        return None


# `sso-session NAME` that shlex splits into exactly these two words without any quoting.
PLAIN_SSO_SESSION = re.compile(r"sso-session[ \t]+([^ \t'\"\\]+)[ \t]*")


def _sso_session_name(section: str) -> str | None:
    """The session an `[sso-session NAME]` header defines, as botocore's
    build_profile_map names it: the second of exactly two shlex words."""
    if not section.startswith("sso-session"):
        return None
    plain = PLAIN_SSO_SESSION.fullmatch(section)
    if plain is not None:
        return plain.group(1)
    import shlex

    try:
        words = shlex.split(section)
    except ValueError:
        return None
    return words[1] if len(words) == 2 else None


class Portal:
    """One IAM Identity Center sign-in: an [sso-session] (`name` is the session's), or a
    legacy profile's start URL (`name` is the URL). Every profile naming it shares it."""

    __slots__ = ("name", "start_url", "region", "scopes", "session")

    def __init__(self, name: str, start_url: str, region: str, scopes: tuple, session: bool) -> None:
        self.name = name
        self.start_url = start_url
        self.region = region
        self.scopes = scopes
        self.session = session

    def __repr__(self) -> str:
        return f"Portal({self.name!r})"

    @property
    def label(self) -> str:
        return f"sso-session {self.name}" if self.session else self.start_url


def readable_names(config_file: str | None = None, credentials_file: str | None = None) -> list[str]:
    """The profile names in files that do not parse, for completion: every section
    header the reading loop finds, whatever is wrong around it."""
    names: dict[str, None] = {}
    for path, in_config in ((config_file or config_path(), True), (credentials_file or credentials_path(), False)):
        try:
            text = _read(path)
        except ConfigError:
            continue
        for _number, kind, header, _value in _scan(LINE_BREAK.split(text or "")):
            name = (_profile_name(header) if in_config else header) if kind == "section" else None
            if name:
                names[name] = None
    return list(names)


def _profile_name(section: str) -> str | None:
    """The profile a section defines, as botocore's build_profile_map names it: the
    second of exactly two shlex words of a header that starts with `profile`. Where
    botocore drops `[profile NAME]` (an unbalanced quote or more than one word in NAME),
    awsenv keeps it as NAME, stripped: the credentials reach the shell as variables, so
    the AWS CLI never needs the name."""
    if section == "default":
        return "default"
    if not section.startswith("profile"):
        return None  # sso-session, services, plugins ...
    plain = PLAIN_PROFILE.fullmatch(section)
    if plain is not None:  # most names: no need to import shlex
        return plain.group(1)
    import shlex

    try:
        words = shlex.split(section)
    except ValueError:
        words = []
    if len(words) == 2:
        return words[1]
    rest = section[len("profile"):]
    return rest.strip() if rest[:1] in (" ", "\t") and rest.strip() else None


# What no name or value awsenv writes to a config file may hold: a line break of any
# kind a reader might split on (configparser ends a line at \r too) or another control
# character. Patterns as text, compiled on first use: the cached switch never writes.
UNWRITABLE = r"[\x00-\x1f\x7f-\x9f\u2028\u2029]"
CONFIG_KEY = r"[A-Za-z0-9_]+"


def section_header(name: str) -> str:
    """A header that the AWS CLI and awsenv both read as profile `name`: as typed where
    shlex leaves it alone, else shlex-quoted."""
    if name == "default":
        return "[default]"
    if re.search(UNWRITABLE, name):
        raise UsageError(f"a profile name can't hold a line break or a control character: {name!r}")
    import shlex

    try:
        words = shlex.split(f"profile {name}")
    except ValueError:
        words = []
    return f"[profile {name}]" if words == ["profile", name] else f"[profile {shlex.quote(name)}]"


def append_profile(path: str, name: str, values: dict[str, str]) -> None:
    """Add a `[profile NAME]` section at the end of the config file. Every value must
    read back as written: one line, no control character, no space at either end (which
    configparser strips). Callers check what they took from outside; this is the last
    guard, so that no value can end its line and start a key of its own."""
    header = section_header(name)
    for key, value in values.items():
        if not re.fullmatch(CONFIG_KEY, key) or re.search(UNWRITABLE, value) or value != value.strip():
            raise UsageError(f"refusing to write {key!r} = {value!r} to {path}: not a one-line setting")
    os.makedirs(os.path.dirname(path) or ".", mode=0o700, exist_ok=True)
    existing = _read(path) or ""
    lines = [header] + [f"{k} = {v}" for k, v in values.items()]
    sep = "" if not existing or existing.endswith("\n\n") else ("\n" if existing.endswith("\n") else "\n\n")
    with open(path, "a", encoding="utf-8") as out:
        out.write(sep + "\n".join(lines) + "\n")


SECRET_KEYS = ("aws_access_key_id", "aws_secret_access_key", "aws_session_token", "aws_security_token")


def remove_plaintext(path: str, profiles: list[str]) -> None:
    """Drop the key lines of `profiles` from the credentials file. Every other line is
    kept byte for byte, section headers included, so a profile that only the
    credentials file names still exists. The file is replaced atomically through a
    0600 temporary file beside it; no backup copy is left."""
    path = os.path.realpath(path)  # a dotfiles symlink: rewrite the file that holds the key
    with open(path, "rb") as stream:
        text = stream.read().decode("utf-8")
    wanted = set(profiles)
    lines = LINE_WITH_END.findall(text)
    kept: list[str] = []
    section: str | None = None
    dropping = False
    # The lines are read as parse_ini reads them, so a key written `name: value` and the
    # indented lines that continue a secret go with it.
    for (number, kind, word, value), line in zip(_scan(lines), lines):
        if kind == "bad":
            raise ConfigError(f"{path}:{number}: {word}")
        if kind == "section":
            section, dropping = word, False
        elif kind == "key":
            dropping = section in wanted and word in SECRET_KEYS
        if dropping and (kind == "key" or (kind == "more" and value)):
            continue  # a blank line inside the value stays: it separates the sections
        kept.append(line)
    mode = os.stat(path).st_mode & 0o777
    folder, name = os.path.split(path)
    tmp = os.path.join(folder, f".{name}.awsenv-{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write("".join(kept).encode("utf-8"))
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, mode & 0o600 or 0o600)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
