"""The market simulator: agents (uploaders, callers, relayers) on the hub's rules, in memory or on
the deployed contracts, with reports; `modelhub sim` drives it (docs/simulator.md).
"""
