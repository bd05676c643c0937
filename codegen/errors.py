"""The errors ariel reports to users: one line that says what went wrong and what to do."""


class ArielError(Exception):
    """A problem with the user's input or environment; the CLI prints it and exits non-zero."""


class UnsupportedError(ArielError):
    """The model uses an operator, attribute or data type that ariel cannot compile."""


class DoesNotFitError(ArielError):
    """The firmware does not fit the board's flash or RAM (`regions`: the linker script's
    regions that overflowed, e.g. FLASH, RAM)."""

    def __init__(self, message: str, regions: tuple[str, ...] = ()):
        super().__init__(message)
        self.regions = regions


class ToolError(ArielError):
    """A tool ariel ran (gcc, make) failed: a one-line summary, then the tool's own output,
    which the command line prints below it as it is (invisible characters escaped)."""

    def __init__(self, summary: str, output: str):
        super().__init__(f"{summary}:\n{output.strip()}")
        self.summary, self.output = summary, output.strip()


class BoardFileError(ToolError):
    """A board file with problems: a one-line summary, then one line per problem (printed as
    a tool's output is)."""


class FirmwareError(ArielError):
    """The firmware faulted, hung or reported an error while running."""
