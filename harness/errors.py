"""Errors the CLI turns into one line and an exit code."""

from __future__ import annotations


class HarnessError(Exception):
    """Bad input from the user: the CLI prints the message as one line and exits with 2.

    The message should say what is wrong, where, and what to do about it.
    """

    exit_code = 2


class BackendUnavailable(HarnessError):
    """A backend that is not built yet or whose optional dependency is missing."""


class Interrupted(HarnessError):
    """Ctrl-C (SIGINT) during a run: exit 130, the shell's code for it; what finished is kept."""

    exit_code = 130
