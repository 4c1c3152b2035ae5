"""Questions about local processes, asked by the CLI (is the server whose marker
we read alive?) and by embedded stores (did the writer that left this staging
table die?)."""

from __future__ import annotations

import os


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:   # alive, someone else's
        return True
    return True
