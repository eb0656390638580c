"""Opening a URL in the user's browser, which must not inherit stdout."""
from __future__ import annotations

import os
import sys


def open_browser(url: str) -> bool:
    """Open `url` with `webbrowser` (which honours BROWSER). The browser inherits no
    stdout: `use` prints statements there for the shell to evaluate."""
    import webbrowser

    sys.stdout.flush()
    saved = os.dup(1)
    try:
        os.dup2(2, 1)
        return bool(webbrowser.open(url))
    except Exception:  # noqa: BLE001 - no browser is a message, not a failure
        return False
    finally:
        os.dup2(saved, 1)
        os.close(saved)
