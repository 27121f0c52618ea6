# The model as an OCI image, mounted read-only at /models in the router and worker pods
# (an image volume: deploy/k8s/node.yaml, router.yaml). Built from the models/ folder:
#
#   docker build -f deploy/k8s/model.Dockerfile -t kvmesh-model:dev models/
#
# Another model: copy its checkpoint and tokenizer here and change --model, --tokenizer and
# --model-name in the manifests (deploy/k8s/manifests_test.go checks they match).
FROM scratch
COPY stories260K.bin tok512.bin /
