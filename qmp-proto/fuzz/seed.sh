#!/bin/sh
# Seeds corpus/decode from the recorded QEMU fixtures. The first byte of
# each input picks the configuration (limits, resync, chunk size).
set -eu
cd "$(dirname "$0")"
mkdir -p corpus/decode
for fixture in ../tests/fixtures/qemu-*/greeting.json ../tests/fixtures/qemu-*/session.in ../tests/fixtures/qemu-*/session.out; do
    name=$(basename "$(dirname "$fixture")")-$(basename "$fixture")
    for config in 000 005 016 077 374; do
        { printf "\\$config"; cat "$fixture"; } > "corpus/decode/$name-$config"
    done
done
# The schema replies are 200+ KB; their first 4 KB keep the fuzzer fast.
for version in 7.2 10.0; do
    { printf '\000'; head -c 4096 "../tests/fixtures/qemu-$version/query-qmp-schema.reply"; } > "corpus/decode/schema-head-$version"
done
