# syntax=docker/dockerfile:1
# roadsign: the predict service (and `roadsign run` for pipeline steps).
#
#   docker build -t roadsign:dev .
#   docker run --rm -p 5000:5000 roadsign:dev             # GUI on http://localhost:5000
#   docker run --rm roadsign:dev roadsign run --pipeline classes
#
# The base images are build arguments whose defaults are the official images;
# scripts/image-test.sh passes locally made ones (no registry there) and
# changes nothing else.
ARG BUILDER_IMAGE=rust:1.89-bookworm
ARG RUNTIME_IMAGE=debian:bookworm-slim

# ---- builder: Rust toolchain, libtorch (CPU) and Tesseract headers ----
FROM ${BUILDER_IMAGE} AS builder
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      libtesseract-dev libleptonica-dev libclang-dev libturbojpeg0-dev libgloo-dev patchelf python3-pip \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY scripts/install-libtorch.sh scripts/
# The torch wheels, the cargo registry and the target folder are caches, not
# layers (scripts/image-test.sh mounts the host's there): the executables
# are copied out of target/ in the same step.
RUN --mount=type=cache,target=/src/.deps/wheels bash scripts/install-libtorch.sh
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bins \
 && mkdir -p /out \
 && cp target/release/roadsign target/release/roadsign-ocr target/release/roadsign-torch /out/ \
 && strip /out/roadsign /out/roadsign-ocr /out/roadsign-torch

# ---- ffmpeg: Debian's source (patches included), built for what roadsign does ----
# Every native decoder, demuxer and filter, dav1d for AV1, H.264 (x264) and
# AAC out; no devices, network or hardware acceleration. Debian's ffmpeg
# package would pull in 700 MB of libraries (Mesa, LLVM, codecs roadsign
# never writes).
FROM ${BUILDER_IMAGE} AS ffmpeg
RUN sed -i 's/^Types: deb$/Types: deb deb-src/' /etc/apt/sources.list.d/*.sources \
 && apt-get update \
 && apt-get install -y --no-install-recommends dpkg-dev xz-utils nasm libx264-dev libdav1d-dev zlib1g-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /build
RUN apt-get update \
 && apt-get source --only-source ffmpeg \
 && rm -rf /var/lib/apt/lists/* \
 && mv ffmpeg-*/ ffmpeg
WORKDIR /build/ffmpeg
RUN ./configure --prefix=/opt/ffmpeg --disable-debug --disable-doc --disable-ffplay \
      --disable-autodetect --disable-network --disable-devices --disable-hwaccels \
      --enable-gpl --enable-libx264 --enable-libdav1d --enable-zlib \
      --disable-encoders --enable-encoder=libx264,aac,rawvideo,pcm_s16le,png \
 && make -j"$(nproc)" \
 && make install \
 && strip /opt/ffmpeg/bin/ffmpeg /opt/ffmpeg/bin/ffprobe

# ---- runtime: the executables, libtorch's CPU libraries, Tesseract, ffmpeg ----
FROM ${RUNTIME_IMAGE} AS runtime
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      tesseract-ocr tesseract-ocr-eng tesseract-ocr-fra libturbojpeg0 libx264-164 libdav1d6 libgomp1 curl ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /app --shell /usr/sbin/nologin roadsign
COPY --from=builder /src/.deps/libtorch/lib/ /opt/libtorch/lib/
# `roadsign` loads neither libtorch nor Tesseract; it hands the commands that
# need them to roadsign-torch or roadsign-ocr, beside it.
COPY --from=builder /out/ /usr/local/bin/
COPY --from=ffmpeg /opt/ffmpeg/bin/ffmpeg /opt/ffmpeg/bin/ffprobe /usr/local/bin/
ENV LD_LIBRARY_PATH=/opt/libtorch/lib
WORKDIR /app
COPY pipelines.yml catalog.yml parameters.yml ./
COPY conf/ conf/
# The shipped model: served until a run trains one into data/06_models/.
COPY models/yolov8n-roadsign.safetensors models/
RUN mkdir -p /app/data && chown -R roadsign:roadsign /app/data
USER 10001
EXPOSE 5000
HEALTHCHECK --interval=30s --timeout=3s --start-period=20s --retries=3 \
  CMD ["curl", "-fsS", "http://127.0.0.1:5000/health"]
CMD ["roadsign", "serve", "--host", "0.0.0.0"]
