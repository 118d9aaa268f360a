#!/usr/bin/env bash
# Makes Tests/Fixtures/schema-v1 from the schema-1 code (see ../README.md for the commit and the
# one-line Package.swift change it needs). Run from the package root of that commit, after
#   swift build --product larder && swift build --product make-v1-fixture
set -euo pipefail
out=Tests/Fixtures/schema-v1
work=$(mktemp -d)/store
trap 'rm -rf "$(dirname "$work")"' EXIT
bin=$(swift build --show-bin-path)
# Two kitchen days through the demo (the system clock), then the fixture's own writes.
"$bin/larder" demo --no-serve --db "$work" --seed 2026 > /dev/null
"$bin/larder" demo --no-serve --db "$work" --seed 2027 > /dev/null
rm -rf "$out/store"
"$bin/make-v1-fixture" "$work" "$out/store" "$out/answers.json" "$out/replays.json"
ls -l "$out/store"
