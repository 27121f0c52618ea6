// Package k8s holds kvmesh's Kubernetes manifests (the YAML files beside this one, applied
// with `kubectl apply -k deploy/k8s`; docs/deploy.md explains them) and the test that
// checks them. There is no Go API here: the package exists for its test.
//
// # What the test holds the manifests to
//
//   - Every YAML file of the folder is listed in kustomization.yaml and every listed file
//     exists; every document decodes strictly into its k8s.io/api type (an unknown or
//     duplicated field fails), and its kind is one the test knows.
//   - Workloads: selectors match their pod template's labels; every Service and
//     PodDisruptionBudget selects at least one workload; a Service's target ports are
//     container ports (by name or number, same protocol) of every pod it selects; a
//     StatefulSet's serviceName is a headless Service selecting it.
//   - References: every ConfigMap, Secret, ServiceAccount, volume and claim a pod names
//     exists in the kustomization, or (Secrets only) is created by a command in
//     docs/deploy.md with every key the pods read; every file path in container args lies
//     under a volume mount that provides it (a key of its Secret or ConfigMap, a file the
//     model image copies); every $(VAR) in args is a container env variable; every Service
//     named in --seeds, --nats and --nats-url exists with that port.
//   - The binaries: container args parse with the flags `router --help` and `node --help`
//     list (the nats-server's with its own option parser); the probe paths are served by
//     the real processes (liveness and startup 200 at once, readiness 200 once a router
//     and a worker form a cluster); the NATS config parses, listens on the ports the
//     container declares, and takes the credentials the Secret provides.
//   - Sizing: GOMEMLIMIT lies between what the process must hold (checkpoint plus
//     --kv-memory) and the container's memory limit.
//
// Negative fixtures in testdata/ show that an unknown field, a mismatched selector, a
// wrong target port, a missing Secret and an unlisted file each fail.
package k8s
