#!/usr/bin/env bash
# Builds the C floor for larder-compare's raw LMDB contestant into .build-c/raw_lmdb (ignored by
# git through `.build*/`). Needs a C compiler, liblmdb-dev and libssl-dev (OpenSSL's libcrypto
# for SHA-256). larder-compare finds the binary there, or takes --c-binary PATH.
set -euo pipefail
cd "$(dirname "$0")/../../.."
mkdir -p .build-c
"${CC:-cc}" -O2 -g -std=gnu11 -Wall -Wextra -o .build-c/raw_lmdb Benchmarks/Compare/c/raw_lmdb.c -llmdb -lcrypto
echo ".build-c/raw_lmdb"
