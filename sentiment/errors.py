"""The errors every stage and command turns into one line on stderr and a non-zero exit."""


class PipelineError(Exception):
    """A problem the user can fix; its message names the problem and the fix (exit status 2)."""


class CheckFailed(Exception):
    """A check that could run and did not pass: a comparison's gate, a reproduction (exit 1)."""
