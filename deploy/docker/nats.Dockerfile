# NATS for the external-NATS setup: the nats-server of the version go.mod pins, built as a
# static binary by scripts/images.sh, in an empty image. Flags (--user, --pass, ...) go
# after the image name.
FROM scratch
COPY nats-server /nats-server
EXPOSE 4222
ENTRYPOINT ["/nats-server"]
CMD ["--addr", "0.0.0.0", "--port", "4222"]
