"""What a real browser shows of the consumer dashboard, read by one script."""

from __future__ import annotations

from typing import Any

# Metric label/value pairs, charts that have a canvas or svg, alert boxes and exception boxes.
# Ready = every metric, all four charts and the table are drawn.
PROBE = """(() => {
  const all = (s) => Array.from(document.querySelectorAll(s));
  const charts = all('[data-testid="stVegaLiteChart"]').filter(c => c.querySelector('canvas, svg'));
  const metrics = Object.fromEntries(all('[data-testid="stMetric"]').map(m => [
    m.querySelector('[data-testid="stMetricLabel"]')?.innerText.trim(),
    m.querySelector('[data-testid="stMetricValue"]')?.innerText.trim()]));
  const alerts = all('[data-testid="stAlertContainer"]').map(a => a.innerText.trim());
  const exceptions = all('[data-testid="stException"]').length;
  const tables = all('[data-testid="stDataFrame"] canvas').length;
  return {ready: charts.length >= 4 && Object.keys(metrics).length >= 7 && tables >= 1,
          charts: charts.length, metrics, alerts, exceptions, tables};
})()"""


def ready(value: Any) -> bool:
    """PROBE's answer says the dashboard is drawn."""
    return isinstance(value, dict) and bool(value.get("ready"))
