"""The one exception type for bad user input: the CLI prints its message on one line, exit 2."""


class UserError(Exception):
    """Something the user asked for cannot be done; the message says what is wrong and what to do."""
