#!/usr/bin/env bash
# Installs the Python test tools from PyPI into .build/test-tools (a Python virtual environment):
#   schemathesis       — the OpenAPI conformance test (Tests/LarderAdminTests/SchemathesisTests.swift)
#   prometheus-client  — its text-format parser reads /metrics (Tests/LarderAdminTests/MetricsTests.swift)
# Never fails: without python3 or PyPI those tests are skipped and say why.
# Idempotent: does nothing when the pinned versions are already installed.
set -uo pipefail
cd "$(dirname "$0")/.."

schemathesis_version="4.32.5"
prometheus_client_version="0.26.0"
venv=".build/test-tools"

installed() {
  "$venv/bin/schemathesis" --version 2>/dev/null | grep -q "version $schemathesis_version\$" \
    && "$venv/bin/python" -c "import importlib.metadata as m, sys; sys.exit(m.version('prometheus-client') != '$prometheus_client_version')" 2>/dev/null
}

if installed; then
  exit 0
fi
if ! command -v python3 >/dev/null 2>&1; then
  echo "test tools: python3 is missing; the schemathesis and Prometheus parser tests will be skipped" >&2
  exit 0
fi
mkdir -p .build
if python3 -m venv "$venv" >/dev/null 2>&1 \
  && "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
       "schemathesis==$schemathesis_version" "prometheus-client==$prometheus_client_version" >/dev/null 2>&1; then
  echo "test tools: $("$venv/bin/schemathesis" --version), prometheus-client $prometheus_client_version in $venv" >&2
else
  echo "test tools: could not install schemathesis==$schemathesis_version and prometheus-client==$prometheus_client_version from PyPI; the tests that need them will be skipped" >&2
  rm -rf "$venv"
fi
exit 0
