"""The commands, grouped as the help groups them:

- credentials.py  use, unset, export, exec, status, whoami, login
- refresh.py      refresh (the prompt hook's renewal, env mode and server mode)
- served.py       server mode's endpoint tokens and exec, for use, exec and refresh
- keys.py         add, import, remove, clear, list, rotate, doctor, mfa
- sso.py          sso login, sso logout, sso profiles
- signin.py       signin (AWS's browser sign-in for people, as `aws login`)
- agent.py        agent status|stop

Each takes the parsed arguments, writes what it exists to print to stdout in one piece
at the end (so a failure prints nothing there), and talks to the user on the terminal
or stderr. Only the module of the command that runs is imported.
"""
from __future__ import annotations

import importlib

MODULES = {
    "use": "credentials", "unset": "credentials", "export": "credentials", "exec": "credentials",
    "refresh": "refresh", "status": "credentials", "whoami": "credentials", "login": "credentials",
    "add": "keys", "import": "keys", "remove": "keys", "clear": "keys", "list": "keys",
    "rotate": "keys", "doctor": "keys", "mfa": "keys",
    "sso": "sso",
    "signin": "signin",
    "agent": "agent",
}


def run(args) -> int | None:
    module = importlib.import_module(f".{MODULES[args.command]}", __name__)
    return getattr(module, "cmd_" + args.command.replace("-", "_"))(args)
