# The two commands of the quick start. Each installs what it needs first.
.PHONY: install run test

install:
	bash scripts/install.sh

# The main job: the default pipeline of this project.
run: install
	cargo run --release --locked -- run

# Every test, with lints and the coverage gate.
test:
	bash scripts/test.sh
