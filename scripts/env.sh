# Sourced by the other scripts: the project's venv and CLI first on PATH, quiet jsii.
export PATH="$PWD/.venv/bin:$PWD/node_modules/.bin:$PATH"
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION=20
export PYTHONDONTWRITEBYTECODE=1
