"""FastSession, the caller side of fast calls, against the test chain and a real relayer process
(`modelhub relayer run`): answers checked against bare onnxruntime, channels, resumption,
price rises, tampered answers, and the two-step withdrawal of accounts that sign receipts."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from eth_utils import keccak

from modelhub import errors as e
from modelhub.codec import encode_output, to_plain
from modelhub.deployments import save_deployment
from modelhub.hub import Hub, OutputVerificationError, Upload
from modelhub.session import FastSession, canonical_input, resolve_relayer

from relayer.relayer_support import RelayerProcess
from sdk_support import IRIS, IRIS_INPUT, PRICE

TOKEN = 10**18


# ---------------------------------------------------------------- fixtures


@pytest.fixture
def relayer_process(relayer_hub: Hub, deployment, chain, tmp_path: Path) -> Iterator[RelayerProcess]:
    """TEST::3 bonded with its own URL as endpoint, running `modelhub relayer run`."""
    folder = tmp_path / "deployments"
    save_deployment(deployment, folder)
    process = RelayerProcess(chain.provider.http_uri, "TEST::3", tmp_path / "relayer-store", folder)
    bond = relayer_hub.min_bond
    relayer_hub.faucet(bond)
    relayer_hub.relayer_register(process.url, bond)
    process.start()
    yield process
    process.kill()


@pytest.fixture
def served_iris(uploader_hub: Hub, relayer_process: RelayerProcess) -> Upload:
    """The iris example at PRICE per call, its file uploaded to the running relayer."""
    return uploader_hub.upload_model(IRIS, "iris", PRICE, relayer_url=relayer_process.url)


@pytest.fixture
def rich_caller(caller_hub: Hub) -> Hub:
    """The caller with 1 token of credit: a thousand calls at PRICE."""
    caller_hub.faucet(TOKEN)
    caller_hub.deposit(TOKEN)
    return caller_hub


def bare_onnxruntime(inputs: dict) -> bytes:
    """The canonical output of the iris model run by onnxruntime directly."""
    session = ort.InferenceSession(str(IRIS), providers=["CPUExecutionProvider"])
    feed = {name: np.asarray(value, dtype=np.float32) for name, value in inputs.items()}
    names = [output.name for output in session.get_outputs()]
    return encode_output(dict(zip(names, to_plain(session.run(names, feed)))))


# ---------------------------------------------------------------- inputs


def test_an_input_has_one_canonical_form_whether_given_as_a_dict_or_as_bytes():
    from_dict = canonical_input(IRIS_INPUT)
    assert from_dict == b'{"X":[[5.1,3.5,1.4,0.2]]}'
    assert canonical_input(b'{ "X" : [[5.1, 3.5, 1.4, 0.2]] }') == from_dict
    assert canonical_input({"X": np.array([[5.1, 3.5, 1.4, 0.2]])}) == from_dict
    for bad in ({"X": [[1, 2], [3]]}, {"X": "text"}, b"[1, 2]", b"{not json", [1, 2]):
        with pytest.raises(e.InvalidInputError):
            canonical_input(bad)


# ---------------------------------------------------------------- withdrawals


def test_an_account_that_signs_receipts_withdraws_in_two_steps(funded_caller: Hub, chain):
    assert funded_caller.withdraw(PRICE) == 9 * PRICE  # one step before receipts
    assert funded_caller.enable_receipts() is True
    assert funded_caller.enable_receipts() is False

    with pytest.raises(e.WithdrawalDelayError, match="announce first"):
        funded_caller.withdraw(PRICE)
    notice = funded_caller.announce_withdrawal(2 * PRICE)
    assert (notice.receipts_enabled, notice.announced) == (True, 2 * PRICE)
    assert notice.ready_at >= chain.blocks.head.timestamp + funded_caller.withdrawal_delay
    with pytest.raises(e.WithdrawalDelayError, match="wait until then"):
        funded_caller.withdraw(PRICE)

    chain.mine(timestamp=notice.ready_at)
    assert funded_caller.withdraw(PRICE) == 8 * PRICE
    assert funded_caller.withdrawal_notice().announced == PRICE  # the rest stays announced
    with pytest.raises(e.WithdrawalDelayError, match="announce first"):
        funded_caller.withdraw(2 * PRICE)


# ---------------------------------------------------------------- opening a session


def test_a_relayer_is_found_by_url_or_by_its_registered_address(relayer_process, caller_hub, relayer):
    assert resolve_relayer(caller_hub, relayer_process.url + "/") == (relayer.address, relayer_process.url)
    assert resolve_relayer(caller_hub, relayer.address.lower()) == (relayer.address, relayer_process.url)
    assert resolve_relayer(caller_hub, None) == (relayer.address, relayer_process.url)

    with pytest.raises(e.RelayerMismatchError, match="neither a relayer's URL"):
        resolve_relayer(caller_hub, "relayer-one")
    with pytest.raises(e.RelayerMismatchError, match="not a registered relayer"):
        resolve_relayer(caller_hub, caller_hub.address)
    with pytest.raises(e.RelayerUnreachableError, match="cannot reach the relayer"):
        resolve_relayer(caller_hub, "http://127.0.0.1:9")


def test_a_session_refuses_to_open_when_it_could_not_work(served_iris, relayer_process, caller_hub,
                                                          uploader_hub):
    model = served_iris.model_id
    with pytest.raises(e.InsufficientCreditError, match="deposit more"):
        caller_hub.fast_session(model, relayer=relayer_process.url)
    # Nothing irreversible happened: receipts stay off until a session can open.
    assert caller_hub.withdrawal_notice().receipts_enabled is False

    caller_hub.faucet(PRICE)
    caller_hub.deposit(PRICE)
    with pytest.raises(e.PriceAboveMaxError, match="above your max_price"):
        caller_hub.fast_session(model, relayer=relayer_process.url, max_price=PRICE - 1)
    with pytest.raises(e.UnknownVersionError):
        caller_hub.fast_session(model, relayer=relayer_process.url, version=2)
    uploader_hub.set_active(model, False)
    with pytest.raises(e.ModelInactiveError):
        caller_hub.fast_session(model, relayer=relayer_process.url)
    assert caller_hub.withdrawal_notice().receipts_enabled is False
