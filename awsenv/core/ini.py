"""The INI dialect of the AWS CLI's files, parsed exactly as botocore reads it.

We parse the files ourselves rather than through botocore: botocore drops section
names it cannot split with shlex (a profile called ``ev'il"$(x)`` vanishes), and the
cached path must not import botocore at all.
"""
from __future__ import annotations

import re

from .errors import ConfigError

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs the cached switch an import
    from collections.abc import Iterable, Iterator


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


class Section:
    __slots__ = ("name", "values", "line", "lines")

    def __init__(self, name: str, values: dict[str, str], line: int) -> None:
        self.name = name
        self.values = values
        self.line = line
        self.lines: dict[str, int] = {}


def scan_lines(lines: Iterable[str]) -> Iterator[tuple[int, str, str, str]]:
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
    for number, kind, name, value in scan_lines(LINE_BREAK.split(text)):
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


def read_text(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8") as stream:
            return stream.read()
    except FileNotFoundError:
        return None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text") from None
    except OSError as err:
        raise ConfigError(f"{path}: cannot read: {err.strerror}") from None
