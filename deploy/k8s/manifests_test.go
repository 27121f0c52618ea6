package k8s

import (
	"flag"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/kvmesh/kvmesh/kvindex"
)

// deployDoc is the page whose commands create the Secrets the kustomization leaves out.
const deployDoc = "../../docs/deploy.md"

// loadRepo loads the shipped manifests, failing the test on any decoding error.
func loadRepo(t *testing.T) *bundle {
	t.Helper()
	b, err := load(".")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func repoSecrets(t *testing.T) secretKeys {
	t.Helper()
	s, err := docSecrets(deployDoc)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestManifests decodes every manifest strictly and checks that they fit together.
func TestManifests(t *testing.T) {
	b := loadRepo(t)
	for _, err := range check(b, repoSecrets(t)) {
		t.Error(err)
	}
	// What the deployment needs, so that a manifest dropped from the kustomization is
	// noticed even though the rest still fits together.
	for _, want := range []string{
		"Namespace/kvmesh", "ServiceAccount/kvmesh", "ConfigMap/kvmesh-nats-config",
		"Deployment/kvmesh-nats", "Service/kvmesh-nats",
		"Deployment/kvmesh-router", "Service/kvmesh-router", "Service/kvmesh-router-peers", "PodDisruptionBudget/kvmesh-router",
		"StatefulSet/kvmesh-node", "Service/kvmesh-node", "PodDisruptionBudget/kvmesh-node",
	} {
		kind, name, _ := strings.Cut(want, "/")
		if _, ok := b.find(kind, name); !ok {
			t.Errorf("no %s in the kustomization", want)
		}
	}
	if b.kust.Namespace != "kvmesh" {
		t.Errorf("kustomization namespace %q, want kvmesh (docs/deploy.md's commands use it)", b.kust.Namespace)
	}
}

// TestSecure: TLS, the gossip key and NATS credentials are on in every kvmesh container.
func TestSecure(t *testing.T) {
	b := loadRepo(t)
	for _, c := range containers(b) {
		img := images[c.ctr.Image]
		if img != "router" && img != "node" {
			continue
		}
		args := strings.Join(c.ctr.Args, " ")
		for _, f := range []string{"--tls-cert=", "--tls-key=", "--tls-ca=", "--tls-server-name="} {
			if !strings.Contains(args, f) {
				t.Errorf("%s: container %s runs without %s", c.w, c.ctr.Name, f)
			}
		}
		env := map[string]bool{}
		for _, e := range c.ctr.Env {
			env[e.Name] = e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil
		}
		for _, e := range []string{"KVMESH_GOSSIP_KEY", "KVMESH_NATS_USER", "KVMESH_NATS_PASSWORD"} {
			if !env[e] {
				t.Errorf("%s: container %s does not take %s from a Secret", c.w, c.ctr.Name, e)
			}
		}
	}
}

// TestFixtures: the broken bundles of testdata/ fail with the problem each holds.
func TestFixtures(t *testing.T) {
	for _, tc := range []struct{ dir, want string }{
		{"unknown-field", `unknown field "replica"`},
		{"bad-selector", "does not match its pod template's labels"},
		{"bad-selector", "Service app (app.yaml#1): its selector map[app:web] matches no workload's pods"},
	} {
		t.Run(tc.dir, func(t *testing.T) {
			b, err := load(filepath.Join("testdata", tc.dir))
			wantProblem(t, b, err, nil, tc.want)
		})
	}
}

// wantProblem fails the test unless load's error, or else check's, mentions want.
func wantProblem(t *testing.T, b *bundle, loadErr error, secrets secretKeys, want string) {
	t.Helper()
	var msgs []string
	if loadErr != nil {
		msgs = append(msgs, loadErr.Error())
	} else {
		for _, e := range check(b, secrets) {
			msgs = append(msgs, e.Error())
		}
	}
	if all := strings.Join(msgs, "\n"); !strings.Contains(all, want) {
		t.Errorf("problems:\n%s\nwant one containing %q", all, want)
	}
}

// TestBreakages breaks a copy of the shipped manifests in one place at a time and checks
// that the problem is found: the checks hold on the real files, not only on fixtures.
func TestBreakages(t *testing.T) {
	secrets := repoSecrets(t)
	for _, tc := range []struct {
		name, file, old, new, want string
	}{
		{"unknown field", "node.yaml", "  serviceName: kvmesh-node", "  serviceNme: kvmesh-node", `unknown field "serviceNme"`},
		{"duplicate field", "router.yaml", "  replicas: 2\n", "  replicas: 2\n  replicas: 3\n", `"replicas" already set`},
		{"unlisted file", "kustomization.yaml", "  - nats.yaml\n", "", "nats.yaml is not listed in kustomization.yaml"},
		{"missing file", "kustomization.yaml", "  - nats.yaml\n", "  - nats.yaml\n  - gone.yaml\n", "kustomization.yaml lists gone.yaml"},
		{"unknown kind", "serviceaccount.yaml", "kind: ServiceAccount", "kind: Pod", "kind v1/Pod is not one the test checks"},
		{"selector", "node.yaml", "      labels:\n        app.kubernetes.io/name: kvmesh\n        app.kubernetes.io/component: node\n    spec:\n      serviceAccountName",
			"      labels:\n        app.kubernetes.io/name: kvmesh\n        app.kubernetes.io/component: worker\n    spec:\n      serviceAccountName",
			"selector app.kubernetes.io/component=node,app.kubernetes.io/name=kvmesh does not match its pod template's labels"},
		{"target port", "router.yaml", "      port: 80\n      targetPort: http", "      port: 80\n      targetPort: web", "port http targets web/TCP, which no container"},
		{"port protocol", "node.yaml", "      targetPort: gossip-udp\n      protocol: UDP", "      targetPort: gossip-udp\n      protocol: TCP", "targets gossip-udp/TCP"},
		{"probe port", "router.yaml", "              path: /readyz\n              port: http", "              path: /readyz\n              port: 8081", "readiness probe port 8081 is not a container port"},
		{"headless", "node.yaml", "  clusterIP: None\n  publishNotReadyAddresses: true\n  selector:\n    app.kubernetes.io/name: kvmesh\n    app.kubernetes.io/component: node",
			"  publishNotReadyAddresses: true\n  selector:\n    app.kubernetes.io/name: kvmesh\n    app.kubernetes.io/component: node", "its Service kvmesh-node is not headless"},
		{"missing Secret", "nats.yaml", "name: kvmesh-nats\n                  key: user", "name: kvmesh-nope\n                  key: user", "Secret kvmesh-nope is neither in the kustomization"},
		{"missing Secret key", "node.yaml", "name: kvmesh-gossip\n                  key: key", "name: kvmesh-gossip\n                  key: gossip", "Secret kvmesh-gossip has no key gossip"},
		{"missing ConfigMap", "nats.yaml", "            name: kvmesh-nats-config", "            name: kvmesh-nats-conf", "ConfigMap kvmesh-nats-conf is not in the kustomization"},
		{"missing ServiceAccount", "serviceaccount.yaml", "  name: kvmesh\n", "  name: kvmesh-sa\n", "ServiceAccount kvmesh is not in the kustomization"},
		{"unmounted volume", "router.yaml", "            - name: tls\n              mountPath: /etc/kvmesh/tls\n              readOnly: true\n", "", "volume tls is mounted by no container"},
		{"undefined variable", "node.yaml", "            - --advertise=$(POD_IP)", "            - --advertise=$(POD_ADDR)", "uses $(POD_ADDR), which is not in the container's env"},
		{"file off its Secret", "router.yaml", "--tls-key=/etc/kvmesh/tls/tls.key", "--tls-key=/etc/kvmesh/tls/key.pem", "volume tls provides no file key.pem"},
		{"file off the model image", "router.yaml", "--tokenizer=/models/tok512.bin", "--tokenizer=/models/tokenizer.bin", "volume model provides no file tokenizer.bin"},
		{"file on no volume", "node.yaml", "--swap=/data/swap.db", "--swap=/var/swap.db", "/var/swap.db is on no volume"},
		{"seed Service", "node.yaml", "--seeds=kvmesh-node:7946,", "--seeds=kvmesh-workers:7946,", "--seeds names kvmesh-workers, which is not a Service"},
		{"NATS port", "router.yaml", "--nats-url=nats://kvmesh-nats:4222", "--nats-url=nats://kvmesh-nats:4223", "Service kvmesh-nats has no port 4223"},
		{"GOMEMLIMIT over the limit", "node.yaml", "value: 200MiB", "value: 300MiB", "GOMEMLIMIT 300MiB is not below the memory limit 256Mi"},
		{"KV over GOMEMLIMIT", "node.yaml", "- --kv-memory=64", "- --kv-memory=200", "leaves nothing beyond the checkpoint and KV"},
		{"disk tier over its volume", "node.yaml", "- --swap-max=896", "- --swap-max=1024", "--swap-max 1024 MiB does not bound the disk tier below its volume's 1Gi"},
		{"no limit", "router.yaml", "              cpu: \"1\"\n", "", "no cpu request or limit"},
		{"unknown image", "nats.yaml", "image: kvmesh-nats:dev", "image: nats:2", `image "nats:2" is not one of kvmesh's images`},
		{"PDB selector", "node.yaml", "  maxUnavailable: 1\n  selector:\n    matchLabels:\n      app.kubernetes.io/name: kvmesh\n      app.kubernetes.io/component: node",
			"  maxUnavailable: 1\n  selector:\n    matchLabels:\n      app.kubernetes.io/name: kvmesh\n      app.kubernetes.io/component: worker", "PodDisruptionBudget kvmesh-node (node.yaml#2): its selector"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			files, _ := filepath.Glob("*.yaml")
			for _, f := range append(files, modelDockerfile) {
				raw, err := os.ReadFile(f)
				if err != nil {
					t.Fatal(err)
				}
				if f == tc.file {
					if n := strings.Count(string(raw), tc.old); n != 1 {
						t.Fatalf("%q occurs %d times in %s, want once", tc.old, n, f)
					}
					raw = []byte(strings.Replace(string(raw), tc.old, tc.new, 1))
				}
				if err := os.WriteFile(filepath.Join(dir, f), raw, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			b, err := load(dir)
			if b != nil {
				b.models = "../../models"
			}
			wantProblem(t, b, err, secrets, tc.want)
		})
	}
}

// TestFlags: every container's args parse with the flags of the binary its image holds.
func TestFlags(t *testing.T) {
	b := loadRepo(t)
	dir := binaries(t)
	checked := map[string]bool{}
	for _, c := range containers(b) {
		bin := images[c.ctr.Image]
		var err error
		switch bin {
		case "router", "node":
			fs := flagSet(t, filepath.Join(dir, bin))
			for _, a := range c.ctr.Args {
				if name, _, _ := flagValue(a); name != "" && fs.Lookup(name) == nil {
					t.Errorf("%s: container %s: %s has no flag --%s", c.w, c.ctr.Name, bin, name)
				}
			}
			if err = fs.Parse(c.ctr.Args); err == nil && fs.NArg() > 0 {
				t.Errorf("%s: container %s: arguments after the flags: %q", c.w, c.ctr.Name, fs.Args())
			}
		case "nats-server":
			_, err = server.ConfigureOptions(flag.NewFlagSet("nats-server", flag.ContinueOnError), c.ctr.Args, nil, nil, nil)
			if err != nil && strings.Contains(err.Error(), "no such file") {
				err = nil // the config file lives in the pod; TestNATSConfig reads it
			}
		default:
			t.Errorf("%s: container %s: no binary known for image %s", c.w, c.ctr.Name, c.ctr.Image)
			continue
		}
		if err != nil {
			t.Errorf("%s: container %s: %s rejects its arguments: %v", c.w, c.ctr.Name, bin, err)
		}
		checked[bin] = true
	}
	for _, bin := range []string{"router", "node", "nats-server"} {
		if !checked[bin] {
			t.Errorf("no container runs %s", bin)
		}
	}
}

// podProbes returns the probe paths of the containers running bin, by probe kind.
func podProbes(t *testing.T, b *bundle, bin string) map[string]*corev1.HTTPGetAction {
	t.Helper()
	for _, c := range containers(b) {
		if images[c.ctr.Image] == bin {
			ps := map[string]*corev1.HTTPGetAction{}
			for kind, p := range probes(c.ctr) {
				ps[kind] = p.HTTPGet
			}
			for _, kind := range []string{"liveness", "readiness"} {
				if ps[kind] == nil {
					t.Errorf("%s: container %s has no %s probe", c.w, c.ctr.Name, kind)
				}
			}
			return ps
		}
	}
	t.Fatalf("no container runs %s", bin)
	return nil
}

var routerLine = regexp.MustCompile(`url=(\S+) gossip=(\S+) nats=(\S+)`)

// tlsArgs returns the --tls-* arguments of the container running bin, with the files of
// the volume they name taken from dir instead.
func tlsArgs(t *testing.T, b *bundle, bin, dir string) []string {
	t.Helper()
	for _, c := range containers(b) {
		if images[c.ctr.Image] != bin {
			continue
		}
		var args []string
		for _, a := range c.ctr.Args {
			name, value, _ := flagValue(a)
			if !strings.HasPrefix(name, "tls-") {
				continue
			}
			for _, m := range c.ctr.VolumeMounts {
				if strings.HasPrefix(value, m.MountPath+"/") {
					value = filepath.Join(dir, strings.TrimPrefix(value, m.MountPath+"/"))
				}
			}
			args = append(args, "--"+name+"="+value)
		}
		return args
	}
	t.Fatalf("no container runs %s", bin)
	return nil
}

// TestProbesServed starts a router and a worker from the binaries, on loopback, with the
// manifests' TLS arguments and a certificate that names only the name those arguments
// verify, and GETs the paths their probes use: liveness (and startup) answer 200 as soon
// as the process serves, readiness once the worker has loaded its layers, both have
// joined, and the router has reached the leader over mutual TLS.
func TestProbesServed(t *testing.T) {
	b := loadRepo(t)
	dir := binaries(t)
	certs := t.TempDir()
	writeCerts(t, certs, "kvmesh-node")
	model, tok := "../../models/stories260K.bin", "../../models/tok512.bin"
	router := start(t, filepath.Join(dir, "router"), append([]string{"--id", "router-probe", "--model", model, "--tokenizer", tok,
		"--http", "127.0.0.1:0", "--gossip", "127.0.0.1:0", "--nats-listen", "127.0.0.1:0"}, tlsArgs(t, b, "router", certs)...)...)
	m := routerLine.FindStringSubmatch(router.line(t, "url="))
	if m == nil {
		t.Fatal("the router printed no url= gossip= nats= line")
	}
	routerURL, gossip, natsURL := m[1], m[2], m[3]
	nodeHTTP := freePort(t)
	node := start(t, filepath.Join(dir, "node"), append([]string{"--id", "worker-probe", "--model", model, "--grpc", "127.0.0.1:0",
		"--http", nodeHTTP, "--advertise", "127.0.0.1", "--gossip", "127.0.0.1:0", "--seeds", gossip, "--nats", natsURL},
		tlsArgs(t, b, "node", certs)...)...)
	nodeURL := "http://" + nodeHTTP

	for _, tc := range []struct {
		bin, base string
	}{{"router", routerURL}, {"node", nodeURL}} {
		ps := podProbes(t, b, tc.bin)
		for _, kind := range []string{"startup", "liveness", "readiness"} {
			p := ps[kind]
			if p == nil {
				continue
			}
			within := 10 * time.Second
			if kind == "readiness" {
				within = 20 * time.Second
			}
			waitStatus(t, tc.base+p.Path, http.StatusOK, within, router, node)
		}
	}
	// A path nothing serves is not mistaken for one that is.
	if got := status(routerURL + "/no-such-probe"); got != http.StatusNotFound {
		t.Errorf("GET /no-such-probe on the router: %d, want 404", got)
	}
}

// TestNATSConfig runs nats-server's own option parser over the NATS container's args and
// the ConfigMap's nats.conf, checks the ports against the container's, then starts the
// server and checks its probe paths and the credentials the Secret provides.
func TestNATSConfig(t *testing.T) {
	b := loadRepo(t)
	var ctr corev1.Container
	var pod *corev1.PodSpec
	for _, c := range containers(b) {
		if images[c.ctr.Image] == "nats-server" {
			ctr, pod = c.ctr, &c.w.template.Spec
		}
	}
	if pod == nil {
		t.Fatal("no container runs nats-server")
	}
	// The ConfigMap volumes, written where the args name them.
	root := t.TempDir()
	args := append([]string(nil), ctr.Args...)
	for _, mnt := range ctr.VolumeMounts {
		for _, v := range pod.Volumes {
			if v.Name != mnt.Name || v.ConfigMap == nil {
				continue
			}
			o, ok := b.find("ConfigMap", v.ConfigMap.Name)
			if !ok {
				t.Fatalf("ConfigMap %s missing", v.ConfigMap.Name)
			}
			d := filepath.Join(root, mnt.MountPath)
			if err := os.MkdirAll(d, 0o755); err != nil {
				t.Fatal(err)
			}
			for k, data := range o.obj.(*corev1.ConfigMap).Data {
				if err := os.WriteFile(filepath.Join(d, k), []byte(data), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			for i, a := range args {
				if strings.HasPrefix(a, mnt.MountPath+"/") {
					args[i] = filepath.Join(d, strings.TrimPrefix(a, mnt.MountPath))
				}
			}
		}
	}
	// Passwords of the shape docs/deploy.md makes (openssl rand -hex 24), including ones
	// that NATS's config syntax would take for numbers, and one of other characters.
	for _, password := range []string{
		"3f9c2b7e4d1a6c8e0b5f2a9d7c3e1b4a6d8f0c2e4b6a8d1f",
		"123456789012345678901234567890123456789012345678",
		"1e9c2b7e4d1a6c8e0b5f2a9d7c3e1b4a6d8f0c2e4b6a8d1f",
		"p@ss word:/=+$x{}",
	} {
		t.Run(password[:4], func(t *testing.T) {
			secret := map[string]string{"user": "kvmesh", "password": password}
			env := map[string]string{}
			for _, e := range ctr.Env {
				env[e.Name] = e.Value
				if r := e.ValueFrom; r != nil && r.SecretKeyRef != nil {
					env[e.Name] = secret[r.SecretKeyRef.Key]
					t.Setenv(e.Name, env[e.Name])
				}
			}
			args := expand(args, env)
			opts, err := server.ConfigureOptions(flag.NewFlagSet("nats-server", flag.ContinueOnError), args, nil, nil, nil)
			if err != nil {
				t.Fatalf("nats-server %v: %v", args, err)
			}
			if !hasPort(ctr, intPort(opts.Port), corev1.ProtocolTCP) || !hasPort(ctr, intPort(opts.HTTPPort), corev1.ProtocolTCP) {
				t.Errorf("nats.conf listens on %d and monitors on %d; the container declares %v", opts.Port, opts.HTTPPort, ctr.Ports)
			}
			opts.Host, opts.Port, opts.HTTPHost, opts.HTTPPort = "127.0.0.1", -1, "127.0.0.1", -1
			opts.NoSigs, opts.NoLog = true, true
			s, err := server.NewServer(opts)
			if err != nil {
				t.Fatal(err)
			}
			go s.Start()
			t.Cleanup(s.Shutdown)
			if !s.ReadyForConnections(5 * time.Second) {
				t.Fatal("nats-server did not start")
			}
			for kind, p := range probes(ctr) {
				if got := status("http://" + s.MonitorAddr().String() + p.HTTPGet.Path); got != http.StatusOK {
					t.Errorf("%s probe GET %s: %d, want 200", kind, p.HTTPGet.Path, got)
				}
			}
			nc, err := kvindex.Connect(s.ClientURL(), kvindex.ClientConfig{User: "kvmesh", Password: password})
			if err != nil {
				t.Fatalf("connecting with the Secret's credentials: %v", err)
			}
			nc.Close()
			if nc, err := kvindex.Connect(s.ClientURL(), kvindex.ClientConfig{User: "kvmesh", Password: "wrong"}); err == nil {
				nc.Close()
				t.Error("a wrong password connects: nats.conf sets no authorization")
			}
		})
	}
}

func intPort(p int) intstr.IntOrString { return intstr.FromInt32(int32(p)) }

// expand replaces $(VAR) in args by env's values, as the kubelet does.
func expand(args []string, env map[string]string) []string {
	out := make([]string, len(args))
	for i, a := range args {
		out[i] = varRE.ReplaceAllStringFunc(a, func(m string) string { return env[varRE.FindStringSubmatch(m)[1]] })
	}
	return out
}
