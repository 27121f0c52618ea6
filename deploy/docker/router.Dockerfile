# The kvmesh router: one static binary (scripts/images.sh builds it with CGO_ENABLED=0)
# in an empty image. The model and tokenizer come from a volume at /models;
# `router healthcheck URL` is the container healthcheck (there is no shell or curl in
# the image).
FROM scratch
COPY router /router
EXPOSE 8080 7946 7946/udp
ENTRYPOINT ["/router"]
