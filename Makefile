# Set-up and everyday commands. `make train` and `make test` are the README's two commands.
SHELL := /bin/bash
DEPS := libopenmpi-dev openmpi-bin libopenblas-dev zlib1g-dev libpng-dev libjpeg62-turbo-dev
TEST_DEPS := libjpeg-turbo-progs iproute2

.PHONY: deps test-deps build train test bench clean

deps:
	@bash scripts/install-deps.sh $(DEPS)

test-deps: deps
	@bash scripts/install-deps.sh $(TEST_DEPS)
	@bash scripts/install-test-deps.sh

build: deps
	swift build -c release

# The main job: SVHN → MNIST on the bundled data (the SVHN sample unless data/svhn holds the full set).
train: build
	.build/release/dann-dist train

# The whole suite, in release (the gradient checks run a naive Double network; debug would take far longer).
test: test-deps
	swift build -c release --build-tests -Xswiftc -enable-testing
	swift test -c release -Xswiftc -enable-testing --skip-build

bench: build
	bash scripts/bench.sh

clean:
	rm -rf .build
