"""`python -m fake_grafana`: serve the fake Grafana API (the offline kit's image runs this)."""

from fake_grafana.server import main

raise SystemExit(main())
