"""The indexer: follows the hub's contract events into a database (SQLite or PostgreSQL) and
answers the per-model, per-account and per-relayer signals the hub shows (signals.py).
"""

# The names of the signal windows and of the keys the model list sorts by (signals.py defines
# what each one counts); here, so that the CLI can offer them without importing SQLAlchemy.
WINDOWS = {"all": None, "7d": 7, "30d": 30}
SORT_KEYS = ("calls", "revenue", "callers", "repeat_callers", "organic_calls", "relayers", "price", "newest",
             "success_rate", "median_settle_seconds")
