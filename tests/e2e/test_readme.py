"""The README's shell blocks marked as running against `make up` run as written, in the README's
order, in a shell of the checkout against a hub that `modelhub up` started (on free ports: the
README's 8545, 8700 and 8800 are moved to them); every command exits 0 and each block prints
what the README says it does."""

from __future__ import annotations

import subprocess

from tests.support.readme import runnable_blocks, on_ports
from tests.support.up import ROOT, UpProcess

AUTHOR = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"  # TEST::1
OPERATOR = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"  # TEST::0, the default account

# What each block (known by how it starts) must print, on stdout or stderr, in the README's order.
# A block newly marked as running against `make up` needs its line here.
EXPECTED = {
    "source tools/env.sh": ["iris-classifier", "diabetes-regressor", '"label"', "Verified: output hash",
                            f"{AUTHOR} has"],
    "modelhub models upload": ["Registered model 3 (my-iris)", "version 2", "is the file of model 1 version 1",
                               "stored at", "X  tensor(float)  [N, 4]", "Withdrew"],
    "modelhub faucet 5": ["Minted 5 tOPG", '"label"', OPERATOR, "Withdrew 0.5 tOPG"],
    "modelhub faucet 2": ["Reserved 1 tOPG", "Announced the release of 0.5 tOPG", "Moved the chain's clock forward by 3600 s",
                          "Released 0.5 tOPG"],
    "modelhub index --once": ["indexing chain 31337"],
    "modelhub models list --sort revenue": ["iris-classifier", '"models"', f'"{AUTHOR.lower()}"'],
}


def _script(block: str) -> str:
    """The block as a bash script that stops at the first command that fails, naming it."""
    lines = ["source tools/env.sh"]  # "Every command below assumes `source tools/env.sh`"
    for number, line in enumerate(block.splitlines(), 1):
        if line.strip() and not line.lstrip().startswith("#"):
            lines += ["{", line, f"}} || {{ code=$?; echo 'README command {number} failed' >&2; exit $code; }}"]
    return "\n".join(lines) + "\n"


def test_every_readme_block_marked_runnable_runs_as_written_against_up(tmp_path):
    blocks = runnable_blocks("sh")
    starts = [next((key for key in EXPECTED if block.startswith(key)), block.splitlines()[0]) for block in blocks]
    assert starts == list(EXPECTED), "the README's runnable blocks and EXPECTED differ: add or fix the entries"
    up = UpProcess(tmp_path)
    # The commands' default network is the hub's chain, and the index they write is the test's.
    env = {**up.env, "MODELHUB_NETWORK": up.chain_url, "MODELHUB_INDEX_DB": f"sqlite:///{tmp_path / 'index.sqlite'}"}
    try:
        up.start()
        for block, (first, expected) in zip(blocks, EXPECTED.items()):
            script = on_ports(block, up.chain_url, up.relayer_url, up.hub_url)
            ran = subprocess.run(["bash", "-c", _script(script)], cwd=ROOT, env=env, capture_output=True,
                                 text=True, timeout=600)
            said = ran.stdout + ran.stderr
            assert ran.returncode == 0, f"README block `{first}` failed:\n{script}\n{said}"
            for phrase in expected:
                assert phrase in said, f"README block `{first}` did not print {phrase!r}:\n{said}"
        assert up.stop() == 0, up.output
    finally:
        up.kill()
