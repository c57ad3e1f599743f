"""The relayer daemon: follows paid calls on chain, runs their models, and settles them with
signed usage attestations; serves outputs and model files over HTTP."""
