# Thin driver over CMake. `make test` and `make demo` work from a fresh Debian 12
# machine: they install the missing Debian packages first (as root, or through sudo).
BUILD ?= build
PREFIX ?= /usr/local
JOBS ?= 2
DEB_PACKAGES = cmake make gcc g++ pkg-config libunwind-dev libdw-dev libelf-dev \
               python3 python3-pytest valgrind libc6-dbg clang libclang-rt-14-dev \
               libc6-dev sqlite3 git jq xz-utils binutils gdb
DEMO_SAMPLE ?= leak_indirect

.PHONY: all deps build test test-long demo install asan fuzz clean
FUZZ_SECONDS ?= 60
LONG_FUZZ_SECONDS ?= 90

all: build

deps:
	@missing=""; \
	for p in $(DEB_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "memtrace: installing Debian packages:$$missing"; \
	  sudo=""; [ "$$(id -u)" = 0 ] || sudo=sudo; \
	  $$sudo apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq --no-install-recommends $$missing; \
	fi

build: deps
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	cmake --build $(BUILD) -j $(JOBS) -- --no-print-directory >/dev/null

test: build
	cd $(BUILD) && ctest --output-on-failure

# The long variants: the stress, real-program and hostile-program tests with bigger
# parameters (MEMTRACE_LONG=1: more threads, iterations, forks and repetitions), then the
# fuzzers for LONG_FUZZ_SECONDS each. About 12 minutes on 2 cores.
test-long: build
	MEMTRACE_LONG=1 MEMTRACE_BUILD_DIR=$(abspath $(BUILD)) MEMTRACE_SOURCE_DIR=$(CURDIR) \
	  /usr/bin/python3 -m pytest -q -p no:cacheprovider --durations=5 \
	  tests/e2e/test_stress.py tests/e2e/test_real_programs.py tests/e2e/test_hostile.py
	$(MAKE) --no-print-directory fuzz FUZZ_SECONDS=$(LONG_FUZZ_SECONDS)

demo: build
	$(BUILD)/memtrace --show-leak-kinds=all $(BUILD)/samples/$(DEMO_SAMPLE)

install: build
	cmake --install $(BUILD) --prefix $(PREFIX)

asan: deps
	cmake -S . -B $(BUILD)-asan -DCMAKE_BUILD_TYPE=Debug -DMEMTRACE_SANITIZE=ON >/dev/null
	cmake --build $(BUILD)-asan -j $(JOBS)
	cd $(BUILD)-asan && ctest --output-on-failure

# Each tests/fuzz/fuzz_NAME.c runs for FUZZ_SECONDS, from the seeds in tests/fuzz/corpus/NAME.
fuzz: deps
	cmake -S . -B $(BUILD)-fuzz -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ -DMEMTRACE_FUZZ=ON >/dev/null
	cmake --build $(BUILD)-fuzz -j $(JOBS) -- --no-print-directory >/dev/null
	@for f in $(BUILD)-fuzz/fuzz_*; do \
	  [ -f "$$f" ] && [ -x "$$f" ] || continue; \
	  name=$$(basename "$$f"); corpus="$(BUILD)-fuzz/corpus-$${name#fuzz_}"; \
	  mkdir -p "$$corpus" && cp tests/fuzz/corpus/$${name#fuzz_}/* "$$corpus"/; \
	  echo "fuzzing $$name for $(FUZZ_SECONDS) s"; \
	  "$$f" -max_total_time=$(FUZZ_SECONDS) -close_fd_mask=2 "$$corpus" > "$$f.log" 2>&1 \
	    || { tail -60 "$$f.log"; echo "$$name: FAILED (crash input kept in the current directory)"; exit 1; }; \
	  grep -E '^Done [0-9]+ runs' "$$f.log"; \
	done

clean:
	rm -rf $(BUILD) $(BUILD)-asan $(BUILD)-fuzz

.PHONY: bench
bench: build
	/usr/bin/python3 bench/run.py --install-deps --build $(BUILD) $(BENCH_ARGS)
