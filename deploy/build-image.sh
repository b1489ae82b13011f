#!/usr/bin/env bash
# Build the gossip image (gossip:latest, or $GOSSIP_IMAGE) from this checkout, offline but
# for PyPI on this machine: the base image from Debian's packages if it is missing
# (deploy/base-image.sh), the wheels of the versions uv.lock pins in build/wheels, then the
# Dockerfile (pip, run by uvx, fetches the wheels). Bookworm's glibc is 2.36; pip takes a
# platform literally, so the older manylinux tags that run on it (orjson's) are named too.
# Run as a user who may use docker.
set -euo pipefail
cd "$(dirname "$0")/.."
image="${GOSSIP_IMAGE:-gossip:latest}"
base="${GOSSIP_BASE_IMAGE:-gossip-base:bookworm}"
# Only plotting needs these (matplotlib and what it alone pulls in): nodes never draw.
plotting="matplotlib contourpy cycler fonttools kiwisolver numpy packaging pillow pyparsing
    python-dateutil tzdata"
bash deploy/base-image.sh
wheels=build/wheels
rm -rf "$wheels"
mkdir -p "$wheels"
# shellcheck disable=SC2046
uv export --frozen --no-dev --no-emit-project --quiet -o "$wheels/requirements.txt" \
    $(printf -- '--no-emit-package %s ' $plotting)
uv build --wheel --quiet -o "$wheels"
uvx --quiet pip download --quiet --disable-pip-version-check --only-binary=:all: --no-deps \
    --python-version 3.11 --implementation cp --abi cp311 --platform manylinux_2_36_x86_64 \
    --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    -r "$wheels/requirements.txt" -d "$wheels" 2> >(grep -v "is ignored" >&2)
docker build --quiet --build-arg BASE="$base" -t "$image" . >/dev/null
# The build stage, and the image this one replaced: dangling now, only disk space.
docker image prune --force --filter label=gossip.built-by=deploy/build-image.sh >/dev/null
echo "built $image"
