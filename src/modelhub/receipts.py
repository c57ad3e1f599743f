"""Old home of the receipt struct and of the libsecp256k1 signing path, kept importable for the
relayer's code. Everything here now lives in `modelhub.typed_data`; import it from there.
"""
# TODO(issue 11): remove once relayer/ imports typed_data

from .typed_data import (  # noqa: F401 -- re-exported
    RECEIPT_TYPEHASH,
    RECEIPT_TYPES,
    Attestation,
    Receipt,
    domain,
    domain_separator,
    opening_receipt,
    recover_digest_address,
    recover_digest_signer,
    signable_message,
    struct_hash,
)
from .typed_data import KeySigner as FastSigner  # noqa: F401
from .typed_data import call_id as receipt_call_id  # noqa: F401
from .typed_data import digest as attestation_digest  # noqa: F401
from .typed_data import digest as receipt_digest  # noqa: F401
from .typed_data import recover_valid_signer as recover_receipt_signer  # noqa: F401
from .typed_data import sign as sign_receipt  # noqa: F401
