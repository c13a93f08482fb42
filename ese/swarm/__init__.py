"""The Docker Swarm flavour of the stack: `invoke swarm.up`, `swarm.scale`, `swarm.down`."""
