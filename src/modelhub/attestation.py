"""Old home of the attestation struct and its signing, kept importable for the relayer's code.

Everything here now lives in `modelhub.typed_data`; import it from there.
"""
# TODO(issue 11): remove once relayer/ imports typed_data

from .typed_data import (  # noqa: F401 -- re-exported
    ATTESTATION_TYPEHASH,
    ATTESTATION_TYPES,
    DOMAIN_NAME,
    DOMAIN_VERSION,
    Attestation,
    domain,
    recover_signer,
    signable_message,
)
from .typed_data import sign as sign_attestation  # noqa: F401
