#!/usr/bin/env bash
# Build the base image gossip-base:bookworm from Debian's packages, for machines that cannot pull
# images: debootstrap makes a minimal bookworm root file system with Python 3.11, and
# `docker import` turns it into an image. Runs as root; does nothing when the image exists.
set -euo pipefail
image="${GOSSIP_BASE_IMAGE:-gossip-base:bookworm}"
mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
if docker image inspect "$image" >/dev/null 2>&1; then
    echo "$image exists: not rebuilt"
    exit 0
fi
rootfs="$(mktemp -d)"
trap 'rm -rf "$rootfs"' EXIT
debootstrap --variant=minbase --include=python3,python3-venv bookworm "$rootfs" "$mirror" >&2
# What a container never reads: package lists and caches, documentation, manuals, translations.
rm -rf "$rootfs"/var/cache/apt/* "$rootfs"/var/lib/apt/lists/* "$rootfs"/usr/share/doc/* \
    "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* "$rootfs"/usr/share/locale/*
tar -C "$rootfs" -c . | docker import - "$image" >/dev/null
echo "built $image"
