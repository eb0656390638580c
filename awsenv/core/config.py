"""The profile model: the profiles of ~/.aws/config and the credentials file, their
chains, portals and settings, as the AWS CLI reads them.

ini.py parses the files; configfile.py writes them.
"""
from __future__ import annotations

import os
import re

from .errors import ConfigError, UsageError
from .ini import LINE_BREAK, Section, parse_ini, read_text, scan_lines

ROLE_ARN = re.compile(r"arn:aws[a-z-]*:iam::(?P<account>[0-9]{12}):role/(?P<name>[\w+=,.@/-]+)")

REGION = re.compile(r"(?![0-9]+$)(?!-)[a-zA-Z0-9-]{,63}(?<!-)")
MIN_ROLE_DURATION, MAX_ROLE_DURATION = 900, 43200
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


# Paths are plain strings: pathlib costs the cached switch several milliseconds.
def config_path() -> str:
    return os.path.expanduser(os.environ.get("AWS_CONFIG_FILE") or os.path.join("~", ".aws", "config"))


def credentials_path() -> str:
    return os.path.expanduser(
        os.environ.get("AWS_SHARED_CREDENTIALS_FILE") or os.path.join("~", ".aws", "credentials")
    )


class AwsConfig:
    """The profiles of ~/.aws/config, with the credentials file read only when needed."""

    def __init__(self, config_file: str | None = None, credentials_file: str | None = None):
        self.config_file = config_file or config_path()
        self.credentials_file = credentials_file or credentials_path()
        self._profiles: dict[str, Profile] = {}
        self.sso_sessions: dict[str, Section] = {}
        text = read_text(self.config_file)
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
            text = read_text(self.credentials_file)
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

    def defines(self, name: str) -> bool:
        """Whether ~/.aws/config itself has a section for the profile."""
        return name in self._profiles

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
        import difflib  # for a mistyped name only: the cached switch never needs it

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
            text = read_text(path)
        except ConfigError:
            continue
        for _number, kind, header, _value in scan_lines(LINE_BREAK.split(text or "")):
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


