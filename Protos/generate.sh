#!/usr/bin/env bash
# Regenerates ShmIPCRemote's Swift code from the wire contract (CI does not: the generated
# files are committed). Needs protoc (Debian: apt-get install protobuf-compiler) and builds the
# two Swift plugins from the package's own dependencies (swift-protobuf, grpc-swift-protobuf).
#   Protos/generate.sh
set -euo pipefail
cd "$(dirname "$0")/.."
command -v protoc >/dev/null || { echo "protoc not found: apt-get install protobuf-compiler" >&2; exit 1; }
swift build -c release --product protoc-gen-swift
swift build -c release --product protoc-gen-grpc-swift-2
bin=$(swift build -c release --show-bin-path)
out=Sources/ShmIPCRemote/Generated
mkdir -p "$out"
protoc --plugin=protoc-gen-swift="$bin/protoc-gen-swift" --swift_out="$out" --swift_opt=Visibility=Package,UseAccessLevelOnImports=true \
  --plugin=protoc-gen-grpc-swift="$bin/protoc-gen-grpc-swift-2" --grpc-swift_out="$out" \
  --grpc-swift_opt=Visibility=Package,UseAccessLevelOnImports=true,Server=true,Client=true \
  -I Protos Protos/shmipc/remote/v1/remote.proto Protos/shmipc/remote/v1/workers.proto
echo "generated: $(ls "$out")"
