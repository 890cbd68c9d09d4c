# The README's two commands: `make run` (the main job) and `make test` (the test suite).
SWIFT ?= swift

.PHONY: setup build run test bench
setup:
	bash Scripts/setup.sh

build: setup
	$(SWIFT) build -c release

run: build
	.build/release/ganflow bench

test: setup
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build

bench: build
	bash Scripts/bench.sh
