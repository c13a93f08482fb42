"""ese-orchestration: bring up, observe and demo the ESE event-streaming backend."""

__version__ = "0.1.0"
