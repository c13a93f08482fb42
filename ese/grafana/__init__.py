"""Grafana's HTTP API: the provisioning client."""
