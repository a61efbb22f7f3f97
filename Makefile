# Aspen — the targets users type. Meson + Ninja do the real work out of tree in build/
# (and build-asan/ for the sanitizer run); this file only names the entry points.
# Every target that needs Debian packages runs scripts/deps.sh first (a no-op when all
# are present).

BUILD      ?= build
ASAN_BUILD ?= build-asan
JOBS       ?= 2
MESON_OPTS ?=

.PHONY: all build deps run test bench fmt fmt-check fuzz clean

all: build

deps:
	@bash scripts/deps.sh

$(BUILD)/build.ninja:
	@bash scripts/deps.sh
	meson setup $(BUILD) $(MESON_OPTS)

build: $(BUILD)/build.ninja
	@bash scripts/deps.sh
	ninja -C $(BUILD) -j $(JOBS)

# Starts a local cluster once aspen-node exists (issue 5). Until then it builds
# everything and says so.
run: build
	@bash scripts/run.sh $(BUILD)

# Format check, normal build + all suites, ASan/UBSan build + unit/fuzz-replay
# suites, then one closing line "N passed, N failed".
test:
	@bash scripts/deps.sh
	@bash scripts/test.sh

bench: build
	@bash scripts/bench.sh $(BUILD)

fmt:
	@bash scripts/deps.sh
	@bash scripts/fmt.sh apply

fmt-check:
	@bash scripts/fmt.sh check

# libFuzzer build with clang; run each fuzzer for FUZZ_SECONDS.
FUZZ_SECONDS ?= 60
fuzz:
	@bash scripts/deps.sh
	@bash scripts/fuzz.sh $(FUZZ_SECONDS)

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) build-fuzz
