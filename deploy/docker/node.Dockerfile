# The kvmesh worker: one static binary (scripts/images.sh builds it with CGO_ENABLED=0)
# in an empty image. The model comes from a volume at /models, the swap file from the
# worker's own volume at /data; `node healthcheck URL` is the container healthcheck
# (there is no shell or curl in the image).
FROM scratch
COPY node /node
EXPOSE 9000 7946 7946/udp 9100
ENTRYPOINT ["/node"]
