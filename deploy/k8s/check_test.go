package k8s

import (
	"bufio"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// images maps the container images the manifests may run to the binary in each (the
// names fixed by deploy/docker and scripts/images.sh).
var images = map[string]string{
	"kvmesh-router:dev": "router",
	"kvmesh-node:dev":   "node",
	"kvmesh-nats:dev":   "nats-server",
}

// modelImage is the image volume holding the model files, built from modelDockerfile.
const (
	modelImage      = "kvmesh-model:dev"
	modelDockerfile = "model.Dockerfile"
)

// serviceFlags are the flags whose values name Services: host:port lists or URLs.
var serviceFlags = map[string]bool{"seeds": true, "nats": true, "nats-url": true}

// secretKeys is the Secrets created outside the kustomization, and their keys.
type secretKeys map[string][]string

// secretCmd matches a `kubectl create secret generic NAME ...` command (continuation
// lines joined); fromRE its --from-literal and --from-file keys.
var (
	secretCmd = regexp.MustCompile(`kubectl\b.*\bcreate secret generic (\S+)(.*)`)
	fromRE    = regexp.MustCompile(`--from-(?:literal|file)=([^=\s]+)=`)
)

// docSecrets returns the Secrets that the commands of a document create, with their keys.
func docSecrets(path string) (secretKeys, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	text := strings.ReplaceAll(string(raw), "\\\n", " ")
	s := secretKeys{}
	for _, m := range secretCmd.FindAllStringSubmatch(text, -1) {
		for _, k := range fromRE.FindAllStringSubmatch(m[2], -1) {
			s[m[1]] = append(s[m[1]], k[1])
		}
	}
	return s, nil
}

// checker collects the problems of one bundle.
type checker struct {
	b       *bundle
	secrets secretKeys // created outside the kustomization
	errs    []error
}

func (c *checker) errorf(format string, args ...any) {
	c.errs = append(c.errs, fmt.Errorf(format, args...))
}

// check runs every static check on b (those that need no binary) and returns the problems.
func check(b *bundle, secrets secretKeys) []error {
	c := &checker{b: b, secrets: secrets}
	seen := map[string]bool{}
	for _, o := range b.objs {
		if k := o.kind + "/" + o.name; seen[k] {
			c.errorf("%s: defined twice", o)
		} else {
			seen[k] = true
		}
		if o.ns != "" && o.ns != b.kust.Namespace {
			c.errorf("%s: namespace %q, the kustomization puts everything in %q", o, o.ns, b.kust.Namespace)
		}
	}
	ws := b.workloads()
	for _, w := range ws {
		c.checkWorkload(w, ws)
	}
	for _, o := range b.objs {
		switch v := o.obj.(type) {
		case *corev1.Service:
			c.checkService(o, v, ws)
		case *policyv1.PodDisruptionBudget:
			if len(selected(v.Spec.Selector, ws)) == 0 {
				c.errorf("%s: its selector %v matches no workload's pods", o, metav1.FormatLabelSelector(v.Spec.Selector))
			}
		case *appsv1.StatefulSet:
			c.checkServiceName(o, v)
		}
	}
	return c.errs
}

// selected returns the workloads whose pod template sel matches.
func selected(sel *metav1.LabelSelector, ws []workload) []workload {
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil || sel == nil || s.Empty() {
		return nil
	}
	var out []workload
	for _, w := range ws {
		if s.Matches(labels.Set(w.template.Labels)) {
			out = append(out, w)
		}
	}
	return out
}

func (c *checker) checkWorkload(w workload, ws []workload) {
	s, err := metav1.LabelSelectorAsSelector(w.selector)
	switch {
	case err != nil:
		c.errorf("%s: selector: %v", w, err)
	case w.selector == nil || s.Empty():
		c.errorf("%s: an empty selector", w)
	case !s.Matches(labels.Set(w.template.Labels)):
		c.errorf("%s: selector %v does not match its pod template's labels %v", w, s, w.template.Labels)
	}
	spec := &w.template.Spec
	if sa := spec.ServiceAccountName; sa != "" {
		if _, ok := c.b.find("ServiceAccount", sa); !ok {
			c.errorf("%s: ServiceAccount %s is not in the kustomization", w, sa)
		}
	}
	if a := spec.Affinity; a != nil && a.PodAntiAffinity != nil {
		for _, t := range a.PodAntiAffinity.PreferredDuringSchedulingIgnoredDuringExecution {
			if len(selected(t.PodAffinityTerm.LabelSelector, ws)) == 0 {
				c.errorf("%s: an anti-affinity selector matches no workload's pods", w)
			}
		}
	}
	volumes := map[string]corev1.Volume{}
	for _, v := range spec.Volumes {
		volumes[v.Name] = v
		c.checkVolume(w, v)
	}
	for _, pvc := range w.claims {
		volumes[pvc.Name] = corev1.Volume{Name: pvc.Name, VolumeSource: corev1.VolumeSource{
			PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: pvc.Name}}}
	}
	used := map[string]bool{}
	for _, ctr := range slices.Concat(spec.InitContainers, spec.Containers) {
		for _, m := range ctr.VolumeMounts {
			used[m.Name] = true
			if _, ok := volumes[m.Name]; !ok {
				c.errorf("%s: container %s mounts volume %s, which the pod does not have", w, ctr.Name, m.Name)
			}
		}
		c.checkContainer(w, ctr, volumes)
	}
	for name := range volumes {
		if !used[name] {
			c.errorf("%s: volume %s is mounted by no container", w, name)
		}
	}
}

func (c *checker) checkVolume(w workload, v corev1.Volume) {
	switch {
	case v.ConfigMap != nil:
		c.checkKeys(fmt.Sprintf("%s: volume %s", w, v.Name), "ConfigMap", v.ConfigMap.Name, v.ConfigMap.Items)
	case v.Secret != nil:
		c.checkKeys(fmt.Sprintf("%s: volume %s", w, v.Name), "Secret", v.Secret.SecretName, v.Secret.Items)
	case v.PersistentVolumeClaim != nil:
		if _, ok := c.b.find("PersistentVolumeClaim", v.PersistentVolumeClaim.ClaimName); !ok {
			c.errorf("%s: volume %s: PersistentVolumeClaim %s is not in the kustomization", w, v.Name, v.PersistentVolumeClaim.ClaimName)
		}
	case v.Image != nil:
		if v.Image.Reference != modelImage {
			c.errorf("%s: image volume %s: %q is not the model image %s", w, v.Name, v.Image.Reference, modelImage)
		}
	case v.EmptyDir != nil:
	default:
		c.errorf("%s: volume %s: a kind of volume the test does not check", w, v.Name)
	}
}

// checkKeys reports a ConfigMap or Secret (kind) that does not exist, and every key of
// items it does not have.
func (c *checker) checkKeys(where, kind, name string, items []corev1.KeyToPath) {
	var keys []string
	var ok bool
	if kind == "Secret" {
		keys, ok = c.secretKeys(name)
	} else {
		keys, ok = c.configMapKeys(name)
	}
	switch {
	case !ok && kind == "Secret":
		c.errorf("%s: Secret %s is neither in the kustomization nor created by a command in docs/deploy.md", where, name)
	case !ok:
		c.errorf("%s: %s %s is not in the kustomization", where, kind, name)
	default:
		for _, it := range items {
			if !slices.Contains(keys, it.Key) {
				c.errorf("%s: %s %s has no key %s", where, kind, name, it.Key)
			}
		}
	}
}

// configMapKeys returns the keys of the ConfigMap name, and whether it exists.
func (c *checker) configMapKeys(name string) ([]string, bool) {
	o, ok := c.b.find("ConfigMap", name)
	if !ok {
		return nil, false
	}
	var keys []string
	for k := range o.obj.(*corev1.ConfigMap).Data {
		keys = append(keys, k)
	}
	return keys, true
}

// secretKeys returns the keys of the Secret name, from the kustomization or the commands
// of docs/deploy.md, and whether it exists.
func (c *checker) secretKeys(name string) ([]string, bool) {
	if o, ok := c.b.find("Secret", name); ok {
		var keys []string
		s := o.obj.(*corev1.Secret)
		for k := range s.Data {
			keys = append(keys, k)
		}
		for k := range s.StringData {
			keys = append(keys, k)
		}
		return keys, true
	}
	keys, ok := c.secrets[name]
	return keys, ok
}

var varRE = regexp.MustCompile(`\$\(([A-Za-z_][A-Za-z0-9_]*)\)`)

func (c *checker) checkContainer(w workload, ctr corev1.Container, volumes map[string]corev1.Volume) {
	where := fmt.Sprintf("%s: container %s", w, ctr.Name)
	if _, ok := images[ctr.Image]; !ok {
		c.errorf("%s: image %q is not one of kvmesh's images", where, ctr.Image)
	}
	env := map[string]string{}
	for _, e := range ctr.Env {
		env[e.Name] = e.Value
		if e.ValueFrom == nil {
			continue
		}
		if r := e.ValueFrom.SecretKeyRef; r != nil {
			c.checkKeys(fmt.Sprintf("%s: env %s", where, e.Name), "Secret", r.Name, []corev1.KeyToPath{{Key: r.Key}})
		}
		if r := e.ValueFrom.ConfigMapKeyRef; r != nil {
			c.checkKeys(fmt.Sprintf("%s: env %s", where, e.Name), "ConfigMap", r.Name, []corev1.KeyToPath{{Key: r.Key}})
		}
	}
	for _, a := range slices.Concat(ctr.Command, ctr.Args) {
		for _, m := range varRE.FindAllStringSubmatch(a, -1) {
			if _, ok := env[m[1]]; !ok {
				c.errorf("%s: argument %q uses $(%s), which is not in the container's env", where, a, m[1])
			}
		}
	}
	ports := map[string]corev1.ContainerPort{}
	for _, p := range ctr.Ports {
		if _, dup := ports[p.Name]; dup && p.Name != "" {
			c.errorf("%s: port name %s used twice", where, p.Name)
		}
		ports[p.Name] = p
	}
	for kind, p := range probes(ctr) {
		if p.HTTPGet == nil {
			c.errorf("%s: %s probe is not an HTTP GET", where, kind)
			continue
		}
		if !hasPort(ctr, p.HTTPGet.Port, corev1.ProtocolTCP) {
			c.errorf("%s: %s probe port %s is not a container port", where, kind, p.HTTPGet.Port.String())
		}
	}
	for _, res := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		req, okR := ctr.Resources.Requests[res]
		lim, okL := ctr.Resources.Limits[res]
		if !okR || !okL {
			c.errorf("%s: no %s request or limit", where, res)
		} else if req.Cmp(lim) > 0 {
			c.errorf("%s: %s request %s above its limit %s", where, res, req.String(), lim.String())
		}
	}
	for _, a := range ctr.Args {
		name, value, ok := flagValue(a)
		if !ok {
			continue
		}
		if serviceFlags[name] {
			c.checkServiceRefs(where, name, value)
		}
		if strings.HasPrefix(value, "/") {
			c.checkPath(where, value, ctr.VolumeMounts, volumes)
		}
	}
	c.checkMemory(where, ctr, env)
	c.checkDisk(where, ctr, w)
}

// checkDisk checks that a disk tier (--swap FILE) is bounded (--swap-max, MiB) below the
// size of the claim it lives on, so that a full tier degrades to recomputing instead of
// filling the volume.
func (c *checker) checkDisk(where string, ctr corev1.Container, w workload) {
	var path string
	var maxMiB int64 = -1
	for _, a := range ctr.Args {
		name, value, _ := flagValue(a)
		switch name {
		case "swap":
			path = value
		case "swap-max":
			v, err := strconv.ParseInt(value, 10, 64)
			if err != nil {
				c.errorf("%s: --swap-max %q: %v", where, value, err)
			}
			maxMiB = v
		}
	}
	if path == "" {
		return
	}
	for _, m := range ctr.VolumeMounts {
		if !strings.HasPrefix(path, strings.TrimSuffix(m.MountPath, "/")+"/") {
			continue
		}
		for _, pvc := range w.claims {
			if pvc.Name != m.Name {
				continue
			}
			size := pvc.Spec.Resources.Requests[corev1.ResourceStorage]
			if maxMiB <= 0 || maxMiB<<20 >= size.Value() {
				c.errorf("%s: --swap-max %d MiB does not bound the disk tier below its volume's %s", where, maxMiB, size.String())
			}
			return
		}
	}
	c.errorf("%s: --swap %s is not on a volume claim of its own", where, path)
}

// probes returns the container's probes by kind.
func probes(ctr corev1.Container) map[string]*corev1.Probe {
	ps := map[string]*corev1.Probe{}
	for kind, p := range map[string]*corev1.Probe{"startup": ctr.StartupProbe, "liveness": ctr.LivenessProbe, "readiness": ctr.ReadinessProbe} {
		if p != nil {
			ps[kind] = p
		}
	}
	return ps
}

// hasPort reports whether the container declares port p (a name or a number) for proto.
func hasPort(ctr corev1.Container, p intstr.IntOrString, proto corev1.Protocol) bool {
	for _, cp := range ctr.Ports {
		cproto := cp.Protocol
		if cproto == "" {
			cproto = corev1.ProtocolTCP
		}
		if cproto != proto {
			continue
		}
		if (p.Type == intstr.String && cp.Name == p.StrVal) || (p.Type == intstr.Int && cp.ContainerPort == p.IntVal) {
			return true
		}
	}
	return false
}

// flagValue splits "--name=value" or "-name=value"; a flag without "=" has no value.
func flagValue(arg string) (name, value string, ok bool) {
	if !strings.HasPrefix(arg, "-") {
		return "", "", false
	}
	name, value, ok = strings.Cut(strings.TrimLeft(arg, "-"), "=")
	return name, value, ok
}

// checkServiceRefs checks that every host:port (or URL) of a flag value is a Service of
// the kustomization with that port.
func (c *checker) checkServiceRefs(where, flag, value string) {
	for _, ref := range strings.Split(value, ",") {
		hostport := ref
		if strings.Contains(ref, "://") {
			u, err := url.Parse(ref)
			if err != nil {
				c.errorf("%s: --%s %q: %v", where, flag, ref, err)
				continue
			}
			hostport = u.Host
		}
		host, port, err := net.SplitHostPort(hostport)
		if err != nil {
			c.errorf("%s: --%s %q: %v", where, flag, ref, err)
			continue
		}
		o, ok := c.b.find("Service", host)
		if !ok {
			c.errorf("%s: --%s names %s, which is not a Service of the kustomization", where, flag, host)
			continue
		}
		n, _ := strconv.Atoi(port)
		if !slices.ContainsFunc(o.obj.(*corev1.Service).Spec.Ports, func(p corev1.ServicePort) bool { return int(p.Port) == n }) {
			c.errorf("%s: --%s names %s, but Service %s has no port %s", where, flag, ref, host, port)
		}
	}
}

// checkPath checks that a file named in the args is provided by the volume mounted at
// its folder: a key of a Secret or ConfigMap, a file the model image copies, or any file
// of a writable volume.
func (c *checker) checkPath(where, path string, mounts []corev1.VolumeMount, volumes map[string]corev1.Volume) {
	var mount *corev1.VolumeMount
	for i, m := range mounts {
		if strings.HasPrefix(path, strings.TrimSuffix(m.MountPath, "/")+"/") && (mount == nil || len(m.MountPath) > len(mount.MountPath)) {
			mount = &mounts[i]
		}
	}
	if mount == nil {
		c.errorf("%s: %s is on no volume (the images hold nothing but their binary)", where, path)
		return
	}
	rel := strings.TrimPrefix(path, strings.TrimSuffix(mount.MountPath, "/")+"/")
	v := volumes[mount.Name]
	var keys []string
	var ok bool
	switch {
	case v.Secret != nil:
		keys, ok = c.secretKeys(v.Secret.SecretName)
	case v.ConfigMap != nil:
		keys, ok = c.configMapKeys(v.ConfigMap.Name)
	case v.Image != nil:
		keys, ok = c.modelFiles()
	default:
		if mount.ReadOnly {
			c.errorf("%s: %s is on the read-only volume %s, which nothing fills", where, path, mount.Name)
		}
		return
	}
	if ok && !slices.Contains(keys, rel) {
		c.errorf("%s: %s: volume %s provides no file %s (it has %v)", where, path, mount.Name, rel, keys)
	}
}

// modelFiles returns the files the model image copies (COPY SRC... / in
// model.Dockerfile), after checking that each is in models/.
func (c *checker) modelFiles() ([]string, bool) {
	f, err := os.Open(filepath.Join(c.b.dir, modelDockerfile))
	if err != nil {
		c.errorf("the model image: %v", err)
		return nil, false
	}
	defer f.Close()
	var files []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 3 || !strings.EqualFold(fields[0], "COPY") {
			continue
		}
		if dst := fields[len(fields)-1]; dst != "/" {
			c.errorf("%s: COPY to %s; the manifests expect the model files at the image's root", modelDockerfile, dst)
		}
		for _, src := range fields[1 : len(fields)-1] {
			if _, err := os.Stat(filepath.Join(c.b.models, src)); err != nil {
				c.errorf("%s copies %s: %v", modelDockerfile, src, err)
			}
			files = append(files, src)
		}
	}
	return files, true
}

// checkMemory checks a container's GOMEMLIMIT against its memory limit, and against what
// the process must hold: its checkpoint and its KV budget (--kv-memory, MiB).
func (c *checker) checkMemory(where string, ctr corev1.Container, env map[string]string) {
	lim, ok := ctr.Resources.Limits[corev1.ResourceMemory]
	gml, set := env["GOMEMLIMIT"]
	if !ok || !set {
		return
	}
	soft, err := resource.ParseQuantity(strings.TrimSuffix(gml, "B"))
	if err != nil {
		c.errorf("%s: GOMEMLIMIT %q: %v", where, gml, err)
		return
	}
	if soft.Cmp(lim) >= 0 {
		c.errorf("%s: GOMEMLIMIT %s is not below the memory limit %s", where, gml, lim.String())
	}
	var need int64
	for _, a := range ctr.Args {
		name, value, _ := flagValue(a)
		switch name {
		case "kv-memory":
			mib, err := strconv.ParseInt(value, 10, 64)
			if err != nil {
				c.errorf("%s: --kv-memory %q: %v", where, value, err)
			}
			need += mib << 20
		case "model":
			st, err := os.Stat(filepath.Join(c.b.models, filepath.Base(value)))
			if err != nil {
				c.errorf("%s: --model %s: %v", where, value, err)
				continue
			}
			need += st.Size()
		}
	}
	if need >= soft.Value() {
		c.errorf("%s: GOMEMLIMIT %s leaves nothing beyond the checkpoint and KV (%d bytes)", where, gml, need)
	}
}

func (c *checker) checkService(o object, svc *corev1.Service, ws []workload) {
	sel := &metav1.LabelSelector{MatchLabels: svc.Spec.Selector}
	pods := selected(sel, ws)
	if len(pods) == 0 {
		c.errorf("%s: its selector %v matches no workload's pods", o, svc.Spec.Selector)
		return
	}
	for _, p := range svc.Spec.Ports {
		target := p.TargetPort
		if target.Type == intstr.Int && target.IntVal == 0 {
			target = intstr.FromInt32(p.Port)
		}
		proto := p.Protocol
		if proto == "" {
			proto = corev1.ProtocolTCP
		}
		for _, w := range pods {
			if !slices.ContainsFunc(w.template.Spec.Containers, func(ctr corev1.Container) bool { return hasPort(ctr, target, proto) }) {
				c.errorf("%s: port %s targets %s/%s, which no container of %s declares", o, p.Name, target.String(), proto, w)
			}
		}
	}
}

// checkServiceName checks that a StatefulSet's governing Service is headless and selects it.
func (c *checker) checkServiceName(o object, ss *appsv1.StatefulSet) {
	so, ok := c.b.find("Service", ss.Spec.ServiceName)
	if !ok {
		c.errorf("%s: serviceName %q is not a Service of the kustomization", o, ss.Spec.ServiceName)
		return
	}
	svc := so.obj.(*corev1.Service)
	if svc.Spec.ClusterIP != corev1.ClusterIPNone {
		c.errorf("%s: its Service %s is not headless (clusterIP: None)", o, svc.Name)
	}
	if !labels.SelectorFromSet(svc.Spec.Selector).Matches(labels.Set(ss.Spec.Template.Labels)) || len(svc.Spec.Selector) == 0 {
		c.errorf("%s: its Service %s does not select its pods", o, svc.Name)
	}
}
