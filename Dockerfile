# syntax=docker/dockerfile:1
#
# bareflow container image: one binary for `bareflow server | worker | boot |
# migrate`. docker-compose.yml runs each as its own service.
#
#   docker build --build-arg VERSION=$(git describe --always --dirty) -t bareflow .
#
# The image runs as the unprivileged user bareflow (uid 10001). The boot
# service alone needs more: DHCP on port 67 and raw sockets on the machines'
# L2 segment, so compose runs it with host networking and only the
# capabilities NET_ADMIN, NET_RAW and NET_BIND_SERVICE (see docker-compose.yml).

ARG GO_VERSION=1.26

FROM golang:${GO_VERSION}-bookworm AS build
WORKDIR /src
ENV CGO_ENABLED=0
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod \
	go mod download
COPY . .
ARG VERSION=dev
RUN --mount=type=cache,target=/go/pkg/mod \
	--mount=type=cache,target=/root/.cache/go-build \
	go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/bareflow ./cmd/bareflow

FROM debian:bookworm-slim
RUN apt-get update \
	&& DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
		ca-certificates \
		ipmitool \
	&& rm -rf /var/lib/apt/lists/*
RUN groupadd --system --gid 10001 bareflow \
	&& useradd --system --uid 10001 --gid bareflow --home-dir /var/lib/bareflow \
		--shell /usr/sbin/nologin bareflow \
	&& install -d -o bareflow -g bareflow -m 0750 /var/lib/bareflow
COPY --from=build /out/bareflow /usr/local/bin/bareflow
ENV BAREFLOW_DATA_DIR=/var/lib/bareflow
WORKDIR /var/lib/bareflow
VOLUME /var/lib/bareflow
USER bareflow:bareflow
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/bareflow"]
CMD ["server"]
