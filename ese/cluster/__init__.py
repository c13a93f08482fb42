"""A local multi-node cluster (`invoke cluster.*`): node containers that each run a Docker
engine, a registry beside them on one bridge network, and a swarm across the nodes. Engine work
only, each change printed as the docker command it stands for; ese/flows/cluster.py puts the
steps together."""
