# The README's two commands: `make run` (the main job) and `make test` (the test suite).
SWIFT ?= swift

.PHONY: setup build run test test-interop schema check-schema test-tsan fuzz-short test-faults sanitize-thread sanitize-address bench
setup:
	bash Scripts/setup.sh

build: setup
	$(SWIFT) build -c release

run: build
	.build/release/ganflow run pipelines/dcgan-fashion.json --resume

# The interop suites (names ending in InteropTests) run in test-interop, with their Python.
test: setup
	$(SWIFT) build --build-tests
	$(MAKE) check-schema
	$(SWIFT) test --skip-build --skip InteropTests
	$(MAKE) test-interop test-tsan fuzz-short test-faults

# The checks by the real peers: PyTorch loads exported generators and discriminators strictly and
# computes the same outputs (Scripts/torch_load_check.py); TensorBoard's reader reads the event
# files. Their Python is a venv with the CPU torch, built once by Scripts/dev-venv.sh (a missing tool
# is installed here, not skipped: in CI the tests fail without it). It is cached outside the clone,
# in ~/.cache/ganflow/venv: CI tests a fresh clone each time, and a venv under .build/ would cost its
# 5 to 9 minutes on every run instead of once per machine.
VENV ?= $(HOME)/.cache/ganflow/venv
test-interop: setup
	bash Scripts/dev-venv.sh $(VENV) >/dev/null
	$(SWIFT) build --build-tests
	GANFLOW_PYTHON="$(abspath $(VENV))/bin/python" $(SWIFT) test --skip-build --filter InteropTests

# pipelines/ganflow.schema.json, the JSON Schema that `ganflow schema` generates from the stage
# registry and the top level's declaration (PipelineDocument.keys). Run after changing either.
schema:
	$(SWIFT) build --product ganflow
	.build/debug/ganflow schema > pipelines/ganflow.schema.json.tmp
	mv pipelines/ganflow.schema.json.tmp pipelines/ganflow.schema.json

# The shipped schema is current, and a real validator (Debian's python3-jsonschema, draft 2020-12)
# accepts every pipeline and valid fixture with it and rejects the invalid fixtures it can see.
check-schema:
	$(SWIFT) build --product ganflow
	/usr/bin/python3 Scripts/check-schema.py .build/debug/ganflow

# The scheduler, evaluator and runner tests under the thread sanitizer. GANFLOW_TEST_ONLY trims the
# package to PipelineGraphTests and what it imports, so nothing else is built a second time. One
# test at a time: the profiler is one per process, and RunProfileTests counts every run's steps
# (the scheduler inside each run is still concurrent, which is what TSan is here for).
test-tsan:
	GANFLOW_TEST_ONLY=PipelineGraphTests TSAN_OPTIONS="halt_on_error=1" \
		$(SWIFT) test --sanitize=thread --scratch-path .build-tsan-ci --no-parallel

# The whole suite under each sanitizer (not in `make test`: each is a separate build of every
# module, and under TSan the suite runs many times slower; see README, Reliability).
sanitize-thread:
	TSAN_OPTIONS="halt_on_error=1" \
		$(SWIFT) test --sanitize=thread --scratch-path .build-tsan-full
sanitize-address:
	ASAN_OPTIONS="detect_leaks=0" $(SWIFT) test --sanitize=address --scratch-path .build-asan-full

# Every libFuzzer harness (pipeline, safetensors, IDX, CIFAR-10, PNG) for 12 s each, about a
# minute of fuzzing in all, after an optimised ASan build of the modules they read with (about 3 to
# 5 minutes here). `Scripts/fuzz.sh 1800` is the long run (see README, Reliability).
fuzz-short:
	bash Scripts/fuzz.sh 12

# A run whose output folder fills up (a 40 MB tmpfs; needs root, skipped with a message otherwise)
# must stop with status 1, naming the file and the last good checkpoint, which must still load.
test-faults:
	bash Scripts/diskfull.sh .build/debug/ganflow

# The speed comparison with PyTorch, interleaved with the project's PyTorch reference
# (Scripts/bench/torch_reference.py) run by the venv's CPU torch (see README, Benchmark).
bench: build
	bash Scripts/dev-venv.sh $(VENV) >/dev/null
	.build/release/ganflow bench --model mlp,dcgan32,dcgan64 --torch $(VENV)/bin/python --reference Scripts/bench/torch_reference.py --rounds 3
