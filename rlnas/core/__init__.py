"""The core every layer builds on; nothing here imports torch at import time."""
