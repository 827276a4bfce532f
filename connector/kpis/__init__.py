"""KPI engine (DESIGN §4): set-based SQL, identical on SQLite and PostgreSQL.

``compute(session, opts, scope, period, ids)`` returns ``{scope_key: {kpi: value}}``:
durations as ``{"mean", "median", "p90", "count"}`` in seconds, rates and percentages on
0-100, NPS on -100..100, money as floats in the account currency, counts as ints.
Scope keys are internal ids as strings ("account" for the account scope, the business
number id for ``phone_number``); ``report`` speaks external ids (agent external id,
campaign key, deal key, contact wa_id) and adds baselines. ``compute_many(session, opts,
{scope: ids}, period)`` computes several scopes at once, reading what their ids touch once.
"""

from connector.kpis.engine import KPI_NAMES, compute, compute_many
from connector.kpis.options import MODELS, SCOPES, KpiOptions, Period

__all__ = ["KPI_NAMES", "MODELS", "SCOPES", "KpiOptions", "Period", "compute", "compute_many"]
