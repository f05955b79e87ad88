# Sourced by the other scripts: the project's pinned Node (package.json's `node`, Node's own
# binaries from the npm registry) and CDK CLI first on PATH, then the venv; jsii (the Python
# CDK's bridge to Node) runs the first `node` on PATH.
export PATH="$PWD/node_modules/.bin:$PWD/.venv/bin:$PATH"
export PYTHONDONTWRITEBYTECODE=1
