# forklift: thin wrapper over CMake. `make` builds build/forklift; `make test`, `make demo`,
# `make deb` and `make bench` first install what is missing (scripts/install-deps.sh).
# `make install` (PREFIX, DESTDIR) installs the CLI and the library: docs/install.md.
BUILD ?= build
JOBS ?= $(shell nproc)
WERROR := $(if $(CI),ON,OFF)
CMAKE_FLAGS ?=
FUZZ_BUILD ?= build-fuzz
FUZZ_SECONDS ?= 60
CHAOS_SECONDS ?= 120
PREFIX ?= /usr/local
DESTDIR ?=

.PHONY: all build configure deps deps-deb deps-test deps-bench test demo bench fuzz chaos clean \
        install uninstall deb

all: build

deps:
	@scripts/install-deps.sh build
deps-deb:
	@scripts/install-deps.sh deb
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

# The CLI, man pages, completions and libforklift (shared, static, headers, CMake package,
# pkg-config) under $(DESTDIR)$(PREFIX). A new shared library in a system directory is
# made known to the loader (ldconfig) unless staged under DESTDIR.
install: build
	DESTDIR="$(DESTDIR)" cmake --install $(BUILD) --prefix "$(PREFIX)"
	@cp $(BUILD)/install_manifest.txt $(BUILD)/make-install-manifest.txt
	@if [ -z "$(DESTDIR)" ] && [ "$$(id -u)" -eq 0 ] && command -v ldconfig >/dev/null; then ldconfig; fi

# Removes the files the last `make install` from $(BUILD) installed (the install manifest
# it kept; cmake --install rewrites install_manifest.txt on every install, the tests' too).
uninstall:
	@test -f $(BUILD)/make-install-manifest.txt || { echo "make uninstall: nothing was installed from $(BUILD) by make install" >&2; exit 1; }
	xargs -d '\n' rm -f -- < $(BUILD)/make-install-manifest.txt
	rm -f $(BUILD)/make-install-manifest.txt

# Debian packages forklift, libforklift0.2 and libforklift-dev into $(BUILD)/deb/, from the
# same build (stripped; dependencies from dpkg-shlibdeps).
deb: deps-deb
	$(MAKE) build
	cpack -G DEB --config $(BUILD)/CPackConfig.cmake -B $(abspath $(BUILD))/deb
	@ls -1 $(BUILD)/deb/*.deb

clean:
	rm -rf $(BUILD)
