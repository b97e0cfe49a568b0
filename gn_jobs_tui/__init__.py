"""gn-jobs-tui: a terminal console for gn-uploader background jobs tracked in Redis."""

__version__ = "0.1.0"
