"""One error base: every user-facing failure is a ProbeError with a one-line message naming the fix."""


class ProbeError(ValueError):
    """Bad input or an unusable resource; the CLI prints the message alone (no traceback) and exits 2."""


def printable(s) -> str:
    """`s` safe to echo to a terminal: control, bidirectional and other invisible format characters (\\n, \\r,
    \\x1b, U+202E, U+2066..2069, ...) written as escapes (`\\n`, `\\x1b`, `\\u202e`)."""
    import unicodedata

    unsafe = ("Cc", "Cf", "Zl", "Zp")
    return "".join(
        ch.encode("unicode_escape").decode("ascii") if unicodedata.category(ch) in unsafe else ch for ch in str(s)
    )
