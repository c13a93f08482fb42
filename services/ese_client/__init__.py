"""ese-client: the demo's simulator, and the load generator of its benchmarks."""
