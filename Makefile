# The README's two commands: `make run` (the main job) and `make test` (the test suite).
SWIFT ?= swift

.PHONY: setup build run test test-tsan fuzz-short test-faults sanitize-thread sanitize-address bench
setup:
	bash Scripts/setup.sh

build: setup
	$(SWIFT) build -c release

run: build
	.build/release/ganflow run pipelines/dcgan-fashion.json

test: setup
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build
	$(MAKE) test-tsan fuzz-short test-faults

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

# The file-format harnesses (IDX, CIFAR-10, PNG: they need only ImageIO and TensorRuntime built
# with the sanitizers, about a minute) for 15 s each. The pipeline and safetensors harnesses need
# an optimised ASan build of every module (about 6 minutes here): run them with
# `Scripts/fuzz.sh 60` (all five), or `Scripts/fuzz.sh 1800` for a long run.
fuzz-short:
	bash Scripts/fuzz.sh 15 IDX CIFAR PNG

# A run whose output folder fills up (a 40 MB tmpfs; needs root, skipped with a message otherwise)
# must stop with status 1, naming the file and the last good checkpoint, which must still load.
test-faults:
	bash Scripts/diskfull.sh .build/debug/ganflow

# The speed comparison with PyTorch (needs torch in ~/torchref; see README).
bench: build
	.build/release/ganflow bench --model mlp,dcgan32,dcgan64 --torch $(HOME)/torchref/bin/python --reference ../shared/bench/torch_reference.py --rounds 3
