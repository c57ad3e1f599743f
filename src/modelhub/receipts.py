"""Old home of the receipt struct and of the libsecp256k1 signer, kept importable for the market
simulator's code. Everything here now lives in `modelhub.typed_data`; import it from there.
"""
# TODO(issue 11): remove once sim/chain.py imports typed_data

from .typed_data import KeySigner as FastSigner  # noqa: F401 -- re-exported
from .typed_data import Receipt, opening_receipt  # noqa: F401
