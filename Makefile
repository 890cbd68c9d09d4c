# The README's two commands: `make run` (the main job) and `make test` (the test suite).
SWIFT ?= swift

.PHONY: setup build run test bench
setup:
	bash Scripts/setup.sh

build: setup
	$(SWIFT) build -c release

run: build
	.build/release/ganflow run pipelines/dcgan-fashion.json

test: setup
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build

# The speed comparison with PyTorch (needs torch in ~/torchref; see README).
bench: build
	.build/release/ganflow bench --model mlp,dcgan32,dcgan64 --torch $(HOME)/torchref/bin/python --reference ../shared/bench/torch_reference.py --rounds 3
