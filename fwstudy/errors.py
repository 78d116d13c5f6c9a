"""Errors that the command line turns into a one-line message and exit status 2."""


class BadInput(ValueError):
    """Input a user can fix: unknown names, wrong types, non-positive sizes.

    Raised by validation anywhere in the library so that the CLI, the profile loader and the
    notebooks all report the same one-line message instead of a traceback.
    """


def choices(values) -> str:
    """Format the valid choices the same way in every message."""
    return ", ".join(str(v) for v in values)
