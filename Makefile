# Makefile - the two commands a new user needs, wrapping CMake.
#
#   make run    install what is missing, build (Release), start jobd in the
#               foreground on 127.0.0.1:7070 with its state under ./state
#   make test   the same set-up, then build with ASan+UBSan and -Werror and
#               run the whole suite under ctest
#   make bench  the benchmark (Release build), figures as ratios to anchors
#   make package  the Debian package: Release build for /usr, then
#               build/jobd_<version>_<arch>.deb (see packaging/CPack.cmake)
#   make fuzz   build the libFuzzer targets with clang (build-fuzz) and run
#               each for FUZZ_SECONDS; FUZZ_MERGE=1 merges new inputs into
#               fuzz/corpus (see fuzz/README.md)

JOBS   ?= $(shell nproc 2>/dev/null || echo 2)
LISTEN ?= 127.0.0.1:7070
FUZZ_SECONDS ?= 60
FUZZ_TARGETS ?= job route config frame array tokens
FUZZ_MERGE ?= 0
FUZZ_CC ?= clang

.PHONY: all deps deps-test build run test bench package fuzz format clean

all: build

# What make run (and make package) needs; the tests, the benchmark and the
# fuzzers need more (install-deps --test).
deps:
	@./scripts/install-deps

deps-test:
	@./scripts/install-deps --test

build: deps
	@cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF >/dev/null
	@cmake --build build -j $(JOBS)

run: build
	@mkdir -p state
	./build/jobd -c conf/jobd.conf --listen $(LISTEN) --state-dir $(CURDIR)/state

test: deps-test
	@cmake -S . -B build-test -DCMAKE_BUILD_TYPE=Debug -DJOBD_SANITIZE=ON -DJOBD_WERROR=ON \
		-DBUILD_TESTING=ON >/dev/null
	@cmake --build build-test -j $(JOBS)
	cd build-test && ctest --output-on-failure --timeout 600 -j $(JOBS)

bench: deps-test build
	@cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF >/dev/null
	@cmake --build build -j $(JOBS)
	python3 bench/run.py --jobd build/jobd --loadgen build/bench/loadgen \
		--bare build/bench/bare_server --out build/bench-results.json $(BENCH_ARGS)

package: deps
	@cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF \
		-DCMAKE_INSTALL_PREFIX=/usr >/dev/null
	@cmake --build build -j $(JOBS)
	cd build && cpack -G DEB

fuzz: deps-test
	@cmake -S . -B build-fuzz -DCMAKE_C_COMPILER=$(FUZZ_CC) -DCMAKE_BUILD_TYPE=RelWithDebInfo \
		-DJOBD_FUZZ=ON -DBUILD_TESTING=OFF >/dev/null
	@cmake --build build-fuzz -j $(JOBS) --target $(addprefix fuzz_,$(FUZZ_TARGETS))
	./scripts/fuzz build-fuzz $(FUZZ_SECONDS) $(FUZZ_MERGE) $(FUZZ_TARGETS)

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf build build-test build-fuzz
