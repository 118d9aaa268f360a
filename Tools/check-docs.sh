#!/usr/bin/env bash
# Builds the Larder module's DocC documentation and fails on any warning: broken or ambiguous
# symbol links, missing symbols, parameters left undocumented, malformed articles. Extracts the
# public symbol graphs with SwiftPM (no plugin needed), then runs the toolchain's
# `docc convert --analyze --warnings-as-errors` on Sources/Larder/Documentation.docc.
#
# `swift package dump-symbol-graph` reads the modules the normal build made, so after
# `swift build` or `swift test` it rebuilds nothing (about 30 s here, then DocC about 20 s).
# Passing `-emit-symbol-graph` through `-Xswiftc` instead would rebuild every dependency with
# other flags, and leave the next `swift test` to rebuild them again.
#
# Usage: bash Tools/check-docs.sh
set -euo pipefail
cd "$(dirname "$0")/.."

scratch=".build/docs-check"
graphs="$scratch/symbol-graphs"
rm -rf "$scratch"
mkdir -p "$graphs"

swift package dump-symbol-graph --minimum-access-level public >"$scratch/dump.log" 2>&1 || {
  cat "$scratch/dump.log" >&2
  exit 1
}
dumped="$(sed -n 's/^Files written to //p' "$scratch/dump.log" | tail -1)"
[ -d "$dumped" ] || { echo "check-docs: no symbol graphs were written" >&2; exit 1; }
# DocC documents Larder alone: its own symbols and its extensions of other modules' types.
cp "$dumped"/Larder.symbols.json "$dumped"/Larder@*.symbols.json "$graphs"/

# The public interface an app sees through `import Larder` holds no storage-core type.
leaked="$(grep -oE '"(Environment|ReadTransaction|WriteTransaction|StorageError|StorageEvent|KeyPair|KeyRange|OrderedKey|StoredValue|ByteReader|ByteWriter|LMDBFaults|TableUsage|CursorDirection)"' "$graphs/Larder.symbols.json" | sort -u || true)"
if [ -n "$leaked" ]; then
  echo "check-docs: Larder's public interface exposes storage-core types: $leaked" >&2
  exit 1
fi

docc="$(dirname "$(command -v swift)")/docc"
[ -x "$docc" ] || docc="docc"
log="$scratch/docc.log"
if ! "$docc" convert Sources/Larder/Documentation.docc \
     --additional-symbol-graph-dir "$graphs" \
     --fallback-display-name Larder --fallback-bundle-identifier larder.Larder \
     --output-dir "$scratch/Larder.doccarchive" \
     --analyze --warnings-as-errors >"$log" 2>&1; then
  cat "$log" >&2
  echo "check-docs: DocC reported warnings or errors (above)" >&2
  exit 1
fi
if grep -qE "warning:|error:" "$log"; then
  cat "$log" >&2
  echo "check-docs: DocC reported warnings (above)" >&2
  exit 1
fi
echo "check-docs: Larder's documentation builds with no warnings"
