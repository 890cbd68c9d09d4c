# The README's two commands: `make run` (the main job) and `make test` (the test suite).
SWIFT ?= swift

.PHONY: setup build run test test-tsan fuzz-short bench
setup:
	bash Scripts/setup.sh

build: setup
	$(SWIFT) build -c release

run: build
	.build/release/ganflow run pipelines/dcgan-fashion.json

test: setup
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build
	$(MAKE) test-tsan

# The scheduler, evaluator and runner tests under the thread sanitizer. GANFLOW_TEST_ONLY trims the
# package to PipelineGraphTests and what it imports, so nothing else is built a second time. One
# test at a time: the profiler is one per process, and RunProfileTests counts every run's steps
# (the scheduler inside each run is still concurrent, which is what TSan is here for).
test-tsan:
	GANFLOW_TEST_ONLY=PipelineGraphTests TSAN_OPTIONS="suppressions=$(CURDIR)/Scripts/tsan.supp halt_on_error=1" \
		$(SWIFT) test --sanitize=thread --scratch-path .build-tsan-ci --no-parallel

# Each fuzz harness for 12 s, about a minute in all (Scripts/fuzz.sh 1800 for a long run). Not
# part of `make test` for now: its optimised ASan build costs about 6 minutes here, and in a clean
# clone the harnesses were built without coverage counters (libFuzzer: "no interesting inputs"),
# so the pass only replays the seeds; the inputs fuzzing found have unit tests of their own.
fuzz-short:
	bash Scripts/fuzz.sh 12

# The speed comparison with PyTorch (needs torch in ~/torchref; see README).
bench: build
	.build/release/ganflow bench --model mlp,dcgan32,dcgan64 --torch $(HOME)/torchref/bin/python --reference ../shared/bench/torch_reference.py --rounds 3
