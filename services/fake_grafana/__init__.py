"""A fake of Grafana's HTTP API: the offline kit's Grafana stand-in and the tests' Grafana."""
