"""The errors ariel reports to users: one line that says what went wrong and what to do."""


class ArielError(Exception):
    """A problem with the user's input or environment; the CLI prints it and exits non-zero."""


class UnsupportedError(ArielError):
    """The model uses an operator, attribute or data type that ariel cannot compile."""


class DoesNotFitError(ArielError):
    """The firmware does not fit the board's flash or RAM."""


class FirmwareError(ArielError):
    """The firmware faulted, hung or reported an error while running."""
