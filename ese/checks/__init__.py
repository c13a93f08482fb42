"""Development-only checks run by `nox -s configs`: each generated file through its own tool."""
