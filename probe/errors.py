"""One error base: every user-facing failure is a ProbeError with a one-line message naming the fix."""


class ProbeError(ValueError):
    """Bad input or an unusable resource; the CLI prints the message alone (no traceback) and exits 2."""
