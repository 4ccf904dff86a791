"""Market-data defaults, in a light module: the CLI reads them without loading pandas."""

from cryptobot.clock import HOUR_MS

DEFAULT_STORE_DIR = "data/store"  # relative to the working directory; gitignored in the repo
MAX_SILENT_GAP_MS = HOUR_MS  # a longer hole inside the requested span is an error
