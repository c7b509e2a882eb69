# Portico: the two commands are `make run` and `make test`.
# Everything else is here for developers: build, fuzz, bench, test-long.

JOBS ?= $(shell nproc 2>/dev/null || echo 2)
CLANG ?= clang-14
RELEASE_DIR := build/release
ASAN_DIR := build/asan
FUZZ_DIR := build/fuzz
FUZZ_SECONDS ?= 60
CONF ?= examples/portico.conf

.PHONY: all deps build release asan run test unit integration smoke fuzz fuzz-smoke bench bench-upstream test-long clean format

all: build

deps:
	@bash scripts/deps.sh

build release: deps
	@cmake -S . -B $(RELEASE_DIR) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPT_TESTS=OFF >/dev/null
	@cmake --build $(RELEASE_DIR) -j $(JOBS)

asan: deps
	@cmake -S . -B $(ASAN_DIR) -DCMAKE_C_COMPILER=$(CLANG) -DCMAKE_BUILD_TYPE=Debug \
		-DCMAKE_C_FLAGS_DEBUG="-O1 -g" -DPT_SANITIZE=ON >/dev/null
	@cmake --build $(ASAN_DIR) -j $(JOBS)

run: build
	@bash scripts/run.sh $(RELEASE_DIR)/portico $(CONF)

test: asan
	@bash scripts/test.sh $(ASAN_DIR)

unit: asan
	@cd $(ASAN_DIR) && ctest --output-on-failure

integration: asan
	@PORTICO_BIN=$(CURDIR)/$(ASAN_DIR)/portico /usr/bin/python3 -m pytest -q tests/integration

fuzz-build: deps
	@cmake -S . -B $(FUZZ_DIR) -DCMAKE_C_COMPILER=$(CLANG) -DCMAKE_BUILD_TYPE=Debug \
		-DCMAKE_C_FLAGS_DEBUG="-O1 -g" -DPT_FUZZ=ON -DPT_TESTS=OFF >/dev/null
	@cmake --build $(FUZZ_DIR) -j $(JOBS)

fuzz: fuzz-build
	@bash scripts/fuzz.sh $(FUZZ_DIR) $(FUZZ_SECONDS)

fuzz-smoke: fuzz-build
	@bash scripts/fuzz.sh $(FUZZ_DIR) 20

bench: build
	@/usr/bin/python3 bench/run.py --portico $(RELEASE_DIR)/portico

# Only the upstream scenarios (slow origin, failing origin, LB overhead):
# bench/results/upstream.{json,md,png}.
bench-upstream: build
	@/usr/bin/python3 bench/run.py --portico $(RELEASE_DIR)/portico --upstream

test-long: asan fuzz-build
	@PT_LONG=1 bash scripts/test.sh $(ASAN_DIR)
	@bash scripts/fuzz.sh $(FUZZ_DIR) 600

format:
	@clang-format -i src/*/*.c src/*/*.h src/main.c tests/unit/*.c tests/fuzz/*.c

clean:
	rm -rf build
