# The two commands of the README: `make run` and `make test`. Both call `setup`,
# which installs what is missing (apt packages, models, voices) and skips the rest.
CARGO ?= cargo
CONFIG ?= config/default.toml

.PHONY: setup run test bench fuzz clean-models

setup:
	@bash scripts/setup.sh

run: setup
	$(CARGO) build --release -p ivr-server
	./target/release/ivr serve --config $(CONFIG)

test: setup
	bash scripts/with-test-services.sh $(CARGO) test --workspace --no-fail-fast

bench: setup
	bash scripts/bench.sh

clean-models:
	rm -rf models/*/ voices/*/
