"""The exception types the CLI turns into a one-line message and a non-zero exit code."""


class UserError(Exception):
    """Bad input from the user: a missing file, a malformed field, an unknown name.

    The message must name the offending file, row or field; the CLI prints it on one line.
    """

    exit_code = 2


class RunFailed(UserError):
    """A training or prediction run that cannot be trusted (an epoch that saw fewer images than its
    sampler holds, a non-finite loss, missing predictions). The message names the run and the cause;
    exit code 1, since the input may be fine and the run is what failed."""

    exit_code = 1
