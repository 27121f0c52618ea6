#!/usr/bin/env bash
# Makes test certificates for kvmesh's mutual TLS between nodes (gRPC between routers and
# leaders and between pipeline stages):
#
#   scripts/certs.sh DIR [NAME ...]
#
# writes DIR/ca.pem (a throwaway certificate authority) and DIR/node.pem, DIR/node-key.pem
# (one certificate, signed by it, for server and client use, valid for 127.0.0.1, localhost
# and every NAME given, e.g. a Kubernetes service's DNS names). Every node then runs with
#   --tls-cert DIR/node.pem --tls-key DIR/node-key.pem --tls-ca DIR/ca.pem
# For production, issue real certificates from your own CA instead. Needs openssl.
set -euo pipefail
dir=${1:?usage: scripts/certs.sh DIR [NAME ...]}
shift
mkdir -p "$dir"
san="IP:127.0.0.1,DNS:localhost"
for n in "$@"; do san="$san,DNS:$n"; done
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 365 \
  -subj "/CN=kvmesh test CA" -keyout "$dir/ca-key.pem" -out "$dir/ca.pem" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=kvmesh node" \
  -keyout "$dir/node-key.pem" -out "$dir/node.csr" 2>/dev/null
openssl x509 -req -in "$dir/node.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca-key.pem" -CAcreateserial \
  -days 365 -out "$dir/node.pem" \
  -extfile <(printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth,clientAuth\n' "$san") 2>/dev/null
rm -f "$dir/node.csr" "$dir/ca.srl"
echo "$dir/ca.pem $dir/node.pem $dir/node-key.pem"
