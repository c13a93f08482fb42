"""The flows behind the Invoke tasks, one module per task group."""
