# roadsign: the predict service (and `roadsign run` for pipeline steps).
#
#   docker build -t roadsign:dev .
#   docker run --rm -p 5000:5000 roadsign:dev             # GUI on http://localhost:5000
#   docker run --rm roadsign:dev roadsign run --pipeline classes

# ---- builder: Rust toolchain, libtorch (CPU) and Tesseract headers ----
FROM rust:1.89-bookworm AS builder
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      libtesseract-dev libleptonica-dev libclang-dev patchelf python3-pip \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY scripts/install-libtorch.sh scripts/
RUN bash scripts/install-libtorch.sh && rm -rf .deps/wheels
COPY . .
RUN cargo build --release --locked --bins \
 && strip target/release/roadsign target/release/roadsign-ocr target/release/roadsign-torch

# ---- runtime: the binary, libtorch's CPU libraries, Tesseract, ffmpeg ----
FROM debian:bookworm-slim AS runtime
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      tesseract-ocr tesseract-ocr-eng tesseract-ocr-fra ffmpeg libgomp1 curl ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /app --shell /usr/sbin/nologin roadsign
COPY --from=builder /src/.deps/libtorch/lib/ /opt/libtorch/lib/
# `roadsign` loads neither libtorch nor Tesseract; it hands the commands that
# need them to roadsign-torch or roadsign-ocr, beside it.
COPY --from=builder /src/target/release/roadsign /src/target/release/roadsign-ocr \
     /src/target/release/roadsign-torch /usr/local/bin/
ENV LD_LIBRARY_PATH=/opt/libtorch/lib
WORKDIR /app
COPY pipelines.yml catalog.yml parameters.yml ./
COPY conf/ conf/
# The shipped model: served until a run trains one into data/06_models/.
COPY models/yolov8n-roadsign-synthetic.safetensors models/
RUN mkdir -p /app/data && chown -R roadsign:roadsign /app/data
USER 10001
EXPOSE 5000
HEALTHCHECK --interval=30s --timeout=3s --start-period=20s --retries=3 \
  CMD ["curl", "-fsS", "http://127.0.0.1:5000/health"]
CMD ["roadsign", "serve", "--host", "0.0.0.0"]
