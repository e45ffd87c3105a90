# The two commands of the quick start. Each installs what it needs first.
.PHONY: install run test

install:
	bash scripts/install.sh

# The main job: the default pipeline of this project.
# Every executable is built: `roadsign` hands what needs libtorch or
# Tesseract over to `roadsign-torch` or `roadsign-ocr` beside it.
run: install
	cargo build --release --locked
	target/release/roadsign run

# Every test, with lints and the coverage gate.
test:
	bash scripts/test.sh
