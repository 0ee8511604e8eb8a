"""The core every layer builds on: settings, the registry, the evaluation store,
checkpoints and logging. Nothing here imports torch at import time."""
