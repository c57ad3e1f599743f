"""The indexer: follows the hub's contract events into a database (SQLite or PostgreSQL) and
answers the per-model, per-account and per-relayer signals the hub shows (signals.py).
"""
