# A static liberator binary in a distroless image, running as non-root.
#   docker build -t liberator .
#   docker run --rm -v $PWD/liberator.yaml:/etc/liberator/liberator.yaml liberator run --config /etc/liberator/liberator.yaml
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/liberator ./cmd/liberator

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/liberator /liberator
USER nonroot:nonroot
EXPOSE 8080
ENTRYPOINT ["/liberator"]
CMD ["run", "--config", "/etc/liberator/liberator.yaml"]
