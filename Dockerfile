# The gossip image: one node per container (gossip start-node), or the CLI.
#
# Build it with deploy/build-image.sh, which makes the base image from Debian's packages if it
# is missing and puts the locked dependencies' wheels in build/wheels first: the build itself
# reaches no network. BASE may be any Debian bookworm image with python3 and python3-venv.
ARG BASE=gossip-base:bookworm

FROM ${BASE} AS build
# Marks this build's images, so deploy/build-image.sh can prune the ones a rebuild left behind.
LABEL gossip.built-by=deploy/build-image.sh
COPY build/wheels /wheels
# The versions uv.lock pins, checked against its hashes; then gossip itself. The plotting
# stack (matplotlib, numpy, ...) is left out: nodes never draw, and it would double the image.
RUN python3 -m venv /opt/gossip \
    && /opt/gossip/bin/pip install --quiet --no-cache-dir --no-index --find-links /wheels --no-deps \
        --require-hashes -r /wheels/requirements.txt \
    && /opt/gossip/bin/pip install --quiet --no-cache-dir --no-index --no-deps /wheels/gossip-*.whl \
    && /opt/gossip/bin/pip uninstall --quiet --yes pip

FROM ${BASE}
LABEL gossip.built-by=deploy/build-image.sh
RUN groupadd --system --gid 10001 gossip \
    && useradd --system --uid 10001 --gid 10001 --home-dir /data --no-create-home gossip \
    && mkdir /data && chown gossip:gossip /data
COPY --from=build /opt/gossip /opt/gossip
ENV PATH=/opt/gossip/bin:$PATH \
    GOSSIP_HOME=/data \
    PYTHONUNBUFFERED=1
USER gossip
WORKDIR /data
VOLUME /data
EXPOSE 7001
ENTRYPOINT ["gossip"]
CMD ["--help"]
