#!/bin/sh
# Seeds corpus/decode from the recorded QEMU fixtures. The first byte of
# each input picks the configuration (limits, resync, chunk size).
set -eu
cd "$(dirname "$0")"
mkdir -p corpus/decode
for fixture in ../tests/fixtures/greeting.json ../tests/fixtures/session.in ../tests/fixtures/session.out; do
    name=$(basename "$fixture")
    for config in 000 005 016 077 374; do
        { printf "\\$config"; cat "$fixture"; } > "corpus/decode/$name-$config"
    done
done
# The schema reply is 207 KB; its first 4 KB keep the fuzzer fast.
{ printf '\000'; head -c 4096 ../tests/fixtures/query-qmp-schema.reply; } > corpus/decode/schema-head
