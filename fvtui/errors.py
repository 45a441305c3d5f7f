"""Errors a user can cause. The front ends print their message and exit with code 2."""


class UserError(Exception):
    """A mistake in what the user asked for: one clear message, exit code 2, no saved file touched."""

    exit_code = 2


class Cancelled(Exception):
    """The run was asked to stop; the round in progress is discarded, finished rounds stay."""


EXIT_CODES = ("exit codes: 0 done; 1 a benchmark session failed, or a deletion was declined; 2 a mistake in what "
              "was asked (unknown name, out-of-range value, missing data or session), nothing saved was changed, or "
              "samples wait for a person's labels; "
              "130 interrupted (finished rounds and saved samples are kept)")
