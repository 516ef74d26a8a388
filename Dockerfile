# One image for every CRM process; docker-compose.yml picks the command per service.
#
# No image can be pulled from a registry here, so there is no multi-stage build with a Swift
# image. The flow (docs/DOCKER.md):
#   1. scripts/docker-base.sh            -> local base image crm-base:bookworm (debootstrap
#                                           minbase + libsqlite3-0 libcrypt1 libssl3
#                                           ca-certificates tzdata, then `docker import`)
#   2. swift build -c release --static-swift-stdlib
#                                        -> .build/release/{Gateway,UserService,...}, with the
#                                           Swift runtime and Foundation linked in statically
#   3. docker build -t crm:latest .      -> this file copies the prebuilt binaries in (crm too:
#                                           `crm gateway` holds the port across gateway restarts)
# The toolchain is NOT in the image; the binaries need only glibc, libstdc++/libgcc_s (in
# every Debian base), libsqlite3, libcrypt (libxcrypt) and libcrypto (OpenSSL 3).
#
# Build arguments:
#   BASE     the base image (default crm-base:bookworm, made by scripts/docker-base.sh)
#   BIN_DIR  where the release binaries are, relative to the build context
#            (default .build/release; e.g. .build-docker/release with --scratch-path)
ARG BASE=crm-base:bookworm
FROM ${BASE}

ARG BIN_DIR=.build/release
ARG CRM_UID=10001
ARG CRM_GID=10001

# One non-root user for every process: each service chmods its socket to 0600, so the gateway
# must run as the same uid to connect. /run/crm and /data are the mount points of the named
# volumes; a new, empty named volume takes the owner and mode of the image's folder, so both
# start out owned by crm, and /run/crm is 0700 because the services trust the caller identity
# in a request envelope (ARCHITECTURE.md, Security).
# The base from scripts/docker-base.sh already has the runtime libraries, so this step needs
# no network. With a bare Debian base it installs them from Debian's mirror (apt inside
# `docker build` reaches the mirror the host's apt uses, when the host reaches it).
RUN set -eu; \
    pkgs="libsqlite3-0 libcrypt1 libssl3 ca-certificates tzdata"; \
    if ! dpkg -s $pkgs >/dev/null 2>&1; then \
        apt-get update; \
        DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $pkgs; \
        rm -rf /var/lib/apt/lists/*; \
    fi; \
    groupadd --system --gid "${CRM_GID}" crm; \
    useradd --uid "${CRM_UID}" --gid crm --home-dir /nonexistent --no-create-home \
            --shell /usr/sbin/nologin crm; \
    install -d -o crm -g crm -m 0700 /run/crm /data

COPY ${BIN_DIR}/Gateway ${BIN_DIR}/UserService ${BIN_DIR}/CustomerService \
     ${BIN_DIR}/RecordService ${BIN_DIR}/ContractService ${BIN_DIR}/StatsService \
     ${BIN_DIR}/crm /usr/local/bin/

# Fail the build, not the first start, when a runtime library is missing.
RUN set -eu; \
    for b in Gateway UserService CustomerService RecordService ContractService StatsService crm; do \
        if ldd "/usr/local/bin/$b" | grep -q 'not found'; then ldd "/usr/local/bin/$b"; exit 1; fi; \
    done

ENV LANG=C.UTF-8
USER crm:crm
WORKDIR /data
# No VOLUME line: docker-compose.yml names every volume it mounts. A VOLUME here gave each
# container that does not mount /data (the gateway) a new anonymous volume on every `up`.
EXPOSE 9015
# SIGTERM: services drain their connections and close the database; the gateway stops
# accepting and finishes in-flight requests.
STOPSIGNAL SIGTERM
CMD ["Gateway", "--host", "0.0.0.0", "--port", "9015"]
