"""harness: an evaluation-first benchmark harness for distilled reasoning models."""

__version__ = "0.1.0"
