"""Layer 7, the shells: one module per shell, one small interface (direnv's Shell, mise's Shell trait):

    quote(value) -> str           a literal for that shell, never code
    export(name, value) -> str    one statement that sets an environment variable
    unset(name) -> str            one statement that removes it
    render(plan) -> str           the statements for an environ plan, in order
    init(options) -> str          the shell integration (awsenv init)
"""
from __future__ import annotations

import os

from ..core.errors import UsageError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from .base import Shell

NAMES = ("bash", "zsh", "fish", "pwsh")
ALIASES = {"powershell": "pwsh", "sh": "bash", "dash": "bash", "ksh": "bash"}
_made: dict[str, Shell] = {}


def _make(key: str) -> Shell:
    """Each shell's module is imported when that shell is asked for: a cached switch
    for bash loads posix.py alone."""
    if key in ("bash", "zsh"):
        from .posix import Bash, Zsh

        return Bash() if key == "bash" else Zsh()
    if key == "fish":
        from .fish import Fish

        return Fish()
    from .pwsh import Pwsh

    return Pwsh()


def get(name: str) -> Shell:
    key = ALIASES.get(name, name)
    if key not in NAMES:
        raise UsageError(f"unknown shell {name!r}; awsenv knows {', '.join(NAMES)}")
    if key not in _made:
        _made[key] = _make(key)
    return _made[key]


def detect(remedy: str = f"pass --shell {'|'.join(NAMES)}") -> Shell:
    """The shell that called awsenv (shellingham), else $SHELL. Failing both, say which
    was tried and what to do instead (`remedy`)."""
    tried = []
    try:
        import shellingham

        name, _path = shellingham.detect_shell()
        tried.append(f"the parent process is {name}")
        # On Windows too the name comes without ".exe": shellingham's nt.py drops it.
        key = ALIASES.get(name.lower(), name.lower())
        if key in NAMES:
            return get(key)
    except Exception as err:  # noqa: BLE001 - shellingham raises its own and OS errors
        tried.append(f"shellingham found no shell ({type(err).__name__})")
    fallback = os.path.basename(os.environ.get("SHELL", ""))
    if fallback:
        key = ALIASES.get(fallback, fallback)
        if key in NAMES:
            return get(key)
        tried.append(f"$SHELL is {fallback}")
    else:
        tried.append("$SHELL is unset")
    raise UsageError(f"cannot tell which shell to print for ({'; '.join(tried)}); {remedy}")
