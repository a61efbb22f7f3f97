#!/usr/bin/env bash
# deps.sh — install exactly the Debian 12 packages Aspen's build and tests need.
#
# Idempotent: when every package is already installed it does nothing (no network, no
# apt-get update). When something is missing it runs `apt-get update` once and installs
# only what is missing. Every make target that needs a package calls this first, so a
# fresh Debian 12 machine goes from `git clone` to `make test` with nothing done by hand.
#
# Each package is listed with the reason it is needed; later issues add theirs here.
set -euo pipefail

packages=(
  build-essential     # gcc 12, make, libc headers; gcc's ASan/UBSan runtimes come with it
  pkg-config          # meson finds libraries through it
  meson               # the build system
  ninja-build         # meson's backend
  python3             # meson itself, and scripts/test-summary.py
  clang               # the libFuzzer build (-Dfuzz=true)
  libclang-rt-14-dev  # libFuzzer and clang's sanitizer runtimes
  clang-format        # `make fmt` and the format check inside `make test`
  librust-blake3-dev  # the official BLAKE3 C sources, compiled at build time (never copied)
  b3sum               # the BLAKE3 reference tool the hash tests compare against
  liblmdb-dev         # the storage engine (src/storage/lmdb.c): log + state in one env
  lmdb-utils          # mdb_stat/mdb_dump, to inspect data files in tests and by hand
  libuv1-dev          # aspen-node's event loop (src/node, src/net)
  libsodium-dev       # Ed25519 node identities (src/node/identity.c)
  libgnutls28-dev     # TLS 1.3 with raw public keys for the peer transport (src/net)
  libyaml-dev         # aspen-node's config file (YAML, keys named like etcd's flags)
  curl                # scripts/local-cluster talks to the nodes' HTTP endpoint
  libnghttp2-dev      # HTTP/2 for the gRPC client API (src/rpc/server.c), h2c on the client port
  protobuf-c-compiler # protoc-c: C code for the etcd v3 and aspen.v1 schemas (proto/), at build time
  libprotobuf-c-dev   # the runtime the protoc-c generated code links (rpc_proto_dep)
  protobuf-compiler   # protoc --decode/--decode_raw: tests check our field numbers on the wire
  python3-grpcio      # a real gRPC client for tests/integration/grpc_test.py (raw-bytes calls)
)

missing=()
for p in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [[ "$status" == "install ok installed" ]] || missing+=("$p")
done

if ((${#missing[@]} == 0)); then
  exit 0
fi

echo "deps: installing ${missing[*]}" >&2
sudo=()
if ((EUID != 0)); then
  command -v sudo >/dev/null 2>&1 || {
    echo "deps: need root (or sudo) to install: ${missing[*]}" >&2
    exit 1
  }
  sudo=(sudo)
fi
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
