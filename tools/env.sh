# Source me (`source tools/env.sh`): this checkout's tools for the current shell, as the Makefile
# sets them -- anvil, forge, cast and the solc front on PATH, the venv's `ape` and `modelhub`,
# and Ape's data (the OpenZeppelin dependency) kept in .ape/. Run `make install` first.
_modelhub_root="$(cd "$(dirname "${BASH_SOURCE[0]:-$0}")/.." && pwd)"
export PATH="$_modelhub_root/node_modules/.bin:$_modelhub_root/.venv/bin:$PATH"
export SOLCX_BINARY_PATH="$_modelhub_root/tools/solc"
export APE_DATA_FOLDER="${APE_DATA_FOLDER:-$_modelhub_root/.ape}"
unset _modelhub_root
