# Set-up and everyday commands. `make train` and `make test` are the README's two commands.
SHELL := /bin/bash
DEPS := libopenmpi-dev openmpi-bin libopenblas-dev zlib1g-dev libpng-dev libjpeg62-turbo-dev

.PHONY: deps build train test bench clean

deps:
	@bash scripts/install-deps.sh $(DEPS)

build: deps
	swift build -c release

train: build
	.build/release/dann-dist train

test: deps
	swift test -c release -Xswiftc -enable-testing

clean:
	rm -rf .build
