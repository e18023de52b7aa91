#!/usr/bin/env bash
# Builds the `kvmstor` extension into a venv under target/ and runs the pytest suite
# against the ontap-sim binary. Exit status: pytest's, except that "no tests ran" fails.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
venv="$root/target/py-bindings-venv"
python="${PYTHON:-python3}"

if [ ! -x "$venv/bin/python" ]; then
    "$python" -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$here/requirements-dev.txt"

# The suite starts the simulator binary.
(cd "$root" && cargo build --quiet -p ontap-sim --bin ontap-sim)

# Build the extension and install it into the venv (replacing any earlier build).
(cd "$here" && VIRTUAL_ENV="$venv" PATH="$venv/bin:$PATH" "$venv/bin/maturin" develop --quiet)

export KVMSTOR_SIM_BIN="$root/target/debug/ontap-sim"
set +e
"$venv/bin/python" -m pytest -v -p no:cacheprovider "$here/tests" "$@"
rc=$?
set -e
if [ "$rc" -eq 5 ]; then
    echo "run-tests.sh: pytest ran no tests" >&2
    exit 1
fi
exit "$rc"
