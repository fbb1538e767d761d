"""The one exception type the CLI turns into a one-line message and exit code 2."""


class UserError(Exception):
    """Bad input from the user: a missing file, a malformed field, an unknown name.

    The message must name the offending file, row or field; the CLI prints it on one line.
    """

    exit_code = 2
