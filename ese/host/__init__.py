"""This machine: its LAN address, ports, processes, shells and the per-install secrets."""
