package k8s

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

// kustomization is the part of a kustomize Kustomization these manifests use. It is
// decoded strictly too: a field kustomize knows but this struct does not fails, so that
// nothing (a patch, a label transformer rewriting selectors) changes the manifests
// behind the test's back without the test learning about it.
type kustomization struct {
	APIVersion string   `json:"apiVersion"`
	Kind       string   `json:"kind"`
	Namespace  string   `json:"namespace,omitempty"`
	Resources  []string `json:"resources"`
}

// object is one decoded document of a manifest file.
type object struct {
	file string // the file, relative to the bundle's folder
	doc  int    // its index in the file, from 0
	kind string
	name string
	ns   string
	obj  any // *corev1.Service, *appsv1.Deployment, ...
}

func (o object) String() string { return fmt.Sprintf("%s %s (%s#%d)", o.kind, o.name, o.file, o.doc) }

// bundle is the manifests a kustomization lists.
type bundle struct {
	dir    string
	models string // the repository's models/ folder, which the model image is built from
	kust   kustomization
	objs   []object
}

// kinds maps apiVersion/kind to a new value of its Go type: the kinds the manifests may
// hold. Another kind fails, rather than escaping the checks.
var kinds = map[string]func() any{
	"v1/Namespace":                  func() any { return new(corev1.Namespace) },
	"v1/ServiceAccount":             func() any { return new(corev1.ServiceAccount) },
	"v1/ConfigMap":                  func() any { return new(corev1.ConfigMap) },
	"v1/Secret":                     func() any { return new(corev1.Secret) },
	"v1/Service":                    func() any { return new(corev1.Service) },
	"v1/PersistentVolumeClaim":      func() any { return new(corev1.PersistentVolumeClaim) },
	"apps/v1/Deployment":            func() any { return new(appsv1.Deployment) },
	"apps/v1/StatefulSet":           func() any { return new(appsv1.StatefulSet) },
	"policy/v1/PodDisruptionBudget": func() any { return new(policyv1.PodDisruptionBudget) },
}

// load reads dir's kustomization.yaml and every file it lists, strictly. It fails on a
// YAML file of dir that the kustomization does not list, a listed file that is missing,
// an unknown kind, and a field the kind's Go type does not have.
func load(dir string) (*bundle, error) {
	b := &bundle{dir: dir, models: filepath.Join(dir, "..", "..", "models")}
	raw, err := os.ReadFile(filepath.Join(dir, "kustomization.yaml"))
	if err != nil {
		return nil, err
	}
	if err := yaml.UnmarshalStrict(raw, &b.kust); err != nil {
		return nil, fmt.Errorf("kustomization.yaml: %w", err)
	}
	if b.kust.APIVersion != "kustomize.config.k8s.io/v1beta1" || b.kust.Kind != "Kustomization" {
		return nil, fmt.Errorf("kustomization.yaml: apiVersion %q kind %q, want kustomize.config.k8s.io/v1beta1 Kustomization", b.kust.APIVersion, b.kust.Kind)
	}
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		return nil, err
	}
	var errs []error
	for _, f := range files {
		if base := filepath.Base(f); base != "kustomization.yaml" && !slices.Contains(b.kust.Resources, base) {
			errs = append(errs, fmt.Errorf("%s is not listed in kustomization.yaml's resources", base))
		}
	}
	for _, res := range b.kust.Resources {
		objs, err := loadFile(dir, res)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		b.objs = append(b.objs, objs...)
	}
	return b, errors.Join(errs...)
}

// loadFile decodes every document of one manifest file.
func loadFile(dir, name string) ([]object, error) {
	raw, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		return nil, fmt.Errorf("kustomization.yaml lists %s: %w", name, err)
	}
	var objs []object
	var errs []error
	for i, doc := range splitDocs(raw) {
		if empty(doc) {
			continue
		}
		var tm metav1.TypeMeta
		if err := yaml.Unmarshal(doc, &tm); err != nil {
			errs = append(errs, fmt.Errorf("%s#%d: %w", name, i, err))
			continue
		}
		kind := tm.APIVersion + "/" + tm.Kind
		mk, ok := kinds[kind]
		if !ok {
			errs = append(errs, fmt.Errorf("%s#%d: kind %s is not one the test checks", name, i, kind))
			continue
		}
		v := mk()
		if err := yaml.UnmarshalStrict(doc, v); err != nil {
			errs = append(errs, fmt.Errorf("%s#%d (%s): %w", name, i, tm.Kind, err))
			continue
		}
		meta := v.(metav1.ObjectMetaAccessor).GetObjectMeta()
		objs = append(objs, object{file: name, doc: i, kind: tm.Kind, name: meta.GetName(), ns: meta.GetNamespace(), obj: v})
	}
	return objs, errors.Join(errs...)
}

// splitDocs splits a YAML stream at its "---" lines.
func splitDocs(raw []byte) [][]byte {
	var docs [][]byte
	var cur []byte
	for line := range bytes.Lines(raw) {
		if strings.TrimRight(string(line), " \t\r\n") == "---" {
			docs = append(docs, cur)
			cur = nil
			continue
		}
		cur = append(cur, line...)
	}
	return append(docs, cur)
}

// empty reports whether a document holds only comments and blank lines.
func empty(doc []byte) bool {
	for line := range bytes.Lines(doc) {
		if s := strings.TrimSpace(string(line)); s != "" && !strings.HasPrefix(s, "#") {
			return false
		}
	}
	return true
}

// find returns the object of kind and name.
func (b *bundle) find(kind, name string) (object, bool) {
	for _, o := range b.objs {
		if o.kind == kind && o.name == name {
			return o, true
		}
	}
	return object{}, false
}

// workload is a Deployment's or StatefulSet's pod template and selector.
type workload struct {
	object
	selector *metav1.LabelSelector
	template *corev1.PodTemplateSpec
	claims   []corev1.PersistentVolumeClaim // a StatefulSet's volumeClaimTemplates
}

func (b *bundle) workloads() []workload {
	var ws []workload
	for _, o := range b.objs {
		switch v := o.obj.(type) {
		case *appsv1.Deployment:
			ws = append(ws, workload{object: o, selector: v.Spec.Selector, template: &v.Spec.Template})
		case *appsv1.StatefulSet:
			ws = append(ws, workload{object: o, selector: v.Spec.Selector, template: &v.Spec.Template, claims: v.Spec.VolumeClaimTemplates})
		}
	}
	return ws
}
