"""The one exception type for user mistakes: the CLI prints its message and exits 2."""


class RnnclfError(Exception):
    """A mistake the user can fix (bad config, missing file, bad data). The message is one line."""
