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


class Interrupted(ContrastError):
    """The user stopped the run (Ctrl-C); ``why`` says what is done and how to go on."""

    exit_code = 130


class InputError(ContrastError):
    """An input file that cannot be used: missing, unreadable, too large, wrong kind."""

    exit_code = 1


class ArgumentError(UsageError, ValueError):
    """A library function got a bad argument; ``argument`` is the parameter's name.

    It is also a ``ValueError``, so callers that catch the builtin (as for any bad argument
    value in Python) keep working.

    Library code speaks of its own parameters (``tile_overlap``); the command line shows the
    matching flag instead (``--tile-overlap``, see :meth:`as_flag`).
    """

    def __init__(self, argument: str, why: str) -> None:
        self.argument = str(argument)
        super().__init__(f"argument {self.argument!r}", why)

    def as_flag(self, flag: str | None = None) -> UsageError:
        """The same error phrased for the command line: ``--name: why``."""
        flag = flag or "--" + self.argument.replace("_", "-")
        return UsageError(flag, self.why)


class ConfigError(UsageError):
    """A configuration field is unknown or has an invalid value; ``field`` names it
    (``section`` says which configuration: ``"model"``, ``"train"``, ...)."""

    def __init__(self, field: str, why: str, section: str = "model") -> None:
        self.field, self.section = str(field), str(section)
        super().__init__(f"{self.section} config field {self.field!r}", why)


class UnknownModelError(UsageError):
    """``name`` is not a registered model variant; ``choices`` are the registered names."""

    def __init__(self, name: str, choices: tuple[str, ...] | list[str]) -> None:
        self.name, self.choices = str(name), tuple(choices)
        super().__init__(f"unknown model {self.name!r}", f"choose from {', '.join(self.choices)}")


class MissingWeightsError(ContrastError):
    """A registered model has no bundled weights for ``scale``; ``model`` names it."""

    def __init__(
        self, model: str, scale: int, hint: str | None = None, bundled: str | None = None
    ) -> None:
        self.model, self.scale, self.bundled = str(model), int(scale), bundled
        self.hint = hint or (
            "pass a checkpoint path (train one with 'contrast-sr train' or import one with "
            "'contrast-sr convert')"
        )
        shipped = f"weights ship only for {bundled}; " if bundled else ""
        super().__init__(
            f"model {self.model!r} has no bundled weights for x{self.scale}",
            f"{shipped}{self.hint}",
        )
