"""Errors that the command line turns into one-line messages and exit codes.

Library code raises these instead of printing; the CLI prints ``error: <what>: <why>`` and exits
with ``exit_code`` (1 runtime failure, 2 usage/configuration error), without a traceback.
"""

from __future__ import annotations


class ContrastError(Exception):
    """A failure a user can act on: ``what`` went wrong and ``why``."""

    exit_code = 1

    def __init__(self, what: str, why: str | None = None) -> None:
        self.what = str(what)
        self.why = None if why is None else str(why)
        super().__init__(self.message)

    @property
    def message(self) -> str:
        text = self.what if self.why is None else f"{self.what}: {self.why}"
        return " ".join(text.split())  # always one line


class UsageError(ContrastError):
    """Bad arguments or configuration (exit code 2)."""

    exit_code = 2


class InputError(ContrastError):
    """An input file that cannot be used: missing, unreadable, too large, wrong kind."""

    exit_code = 1
