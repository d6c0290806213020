# forklift: thin wrapper over CMake. `make` builds build/forklift; `make test`, `make demo`
# and `make bench` first install what is missing (scripts/install-deps.sh).
BUILD ?= build
JOBS ?= $(shell nproc)
WERROR := $(if $(CI),ON,OFF)
CMAKE_FLAGS ?=
FUZZ_BUILD ?= build-fuzz
FUZZ_SECONDS ?= 60
CHAOS_SECONDS ?= 120

.PHONY: all build configure deps deps-test deps-bench test demo bench fuzz chaos clean

all: build

deps:
	@scripts/install-deps.sh build
deps-test:
	@scripts/install-deps.sh test
deps-bench:
	@scripts/install-deps.sh bench

$(BUILD)/build.ninja: CMakeLists.txt
	cmake -S . -B $(BUILD) -G Ninja -DFORKLIFT_WERROR=$(WERROR) $(CMAKE_FLAGS)

configure: $(BUILD)/build.ninja

build: configure
	cmake --build $(BUILD) -j $(JOBS)

test: deps-test
	$(MAKE) build
	ctest --test-dir $(BUILD) --output-on-failure -j $(JOBS) --timeout 120

demo: deps
	$(MAKE) build
	scripts/demo.sh $(BUILD)

bench: deps-bench
	$(MAKE) build CMAKE_FLAGS="$(CMAKE_FLAGS) -DFORKLIFT_BENCH=ON"
	bench/run_all.sh $(BUILD)

# libFuzzer over every parser of untrusted input, FUZZ_SECONDS each (scripts/fuzz.sh).
fuzz: deps-test
	scripts/fuzz.sh $(FUZZ_BUILD) $(FUZZ_SECONDS)

# Random SIGKILLs and resumes, a full journal disk, corrupted journals (CHAOS_SEED replays).
chaos: deps-test
	$(MAKE) build
	FORKLIFT=$(BUILD)/forklift python3 tests/chaos_test.py --seconds $(CHAOS_SECONDS) $(if $(CHAOS_SEED),--seed $(CHAOS_SEED))

clean:
	rm -rf $(BUILD)
