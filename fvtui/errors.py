"""Errors a user can cause. The front ends print their message and exit with code 2."""


class UserError(Exception):
    """A mistake in what the user asked for: one clear message, exit code 2, no saved file touched."""

    exit_code = 2


class Cancelled(Exception):
    """The run was asked to stop; the round in progress is discarded, finished rounds stay."""
