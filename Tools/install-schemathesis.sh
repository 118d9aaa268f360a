#!/usr/bin/env bash
# Installs schemathesis from PyPI into .build/schemathesis (a Python virtual environment), for
# the OpenAPI conformance test (Tests/LarderAdminTests/SchemathesisTests.swift), which finds it
# there. Never fails: without python3 or PyPI the test is skipped and says why.
# Idempotent: does nothing when the pinned version is already installed.
set -uo pipefail
cd "$(dirname "$0")/.."

version="4.32.5"
venv=".build/schemathesis"

if "$venv/bin/schemathesis" --version 2>/dev/null | grep -q "version $version\$"; then
  exit 0
fi
if ! command -v python3 >/dev/null 2>&1; then
  echo "schemathesis: python3 is missing; the schemathesis test will be skipped" >&2
  exit 0
fi
mkdir -p .build
if python3 -m venv "$venv" >/dev/null 2>&1 \
  && "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "schemathesis==$version" >/dev/null 2>&1; then
  echo "schemathesis: $("$venv/bin/schemathesis" --version) in $venv" >&2
else
  echo "schemathesis: could not install schemathesis==$version from PyPI; the schemathesis test will be skipped" >&2
  rm -rf "$venv"
fi
exit 0
