"""The Docker Swarm flavour of the stack: the engine-level work behind `invoke swarm.*`
(the flows in ese/flows/swarm.py), one module per job."""
