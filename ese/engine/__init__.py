"""Everything that talks to the Docker engine: commands, compose, the SDK, waits, images."""
