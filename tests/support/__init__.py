"""Helpers the tests share: chains driven by cast, contract assertions, relayer processes,
synthetic index histories, throwaway PostgreSQL servers, the browser and the simulator."""
