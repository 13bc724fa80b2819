"""The error every stage turns into one line on stderr and a non-zero exit."""


class PipelineError(Exception):
    """A problem the user can fix; its message names the problem and the fix."""
