package validate

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
	"sigs.k8s.io/yaml"
)

// statelabImage is the image the base names after kustomize's images
// transformer.
const statelabImage = "statelab:dev"

// rendered is one overlay rendered by kustomize and decoded into the
// upstream API types.
type rendered struct {
	dir          string
	namespaces   []*corev1.Namespace
	services     []*corev1.Service
	deployments  []*appsv1.Deployment
	statefulSets []*appsv1.StatefulSet
	pdbs         []*policyv1.PodDisruptionBudget
	ingresses    []*networkingv1.Ingress
	routes       []*gatewayv1.HTTPRoute
}

// typeMeta is what is read first to pick the Go type of an object.
type typeMeta struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
}

// decode decodes one YAML document strictly (unknown or duplicate fields
// are errors) into the API type its apiVersion and kind name, and files it.
func (r *rendered) decode(doc []byte) error {
	var tm typeMeta
	if err := yaml.Unmarshal(doc, &tm); err != nil {
		return err
	}
	var obj any
	switch tm.APIVersion + " " + tm.Kind {
	case "v1 Namespace":
		o := &corev1.Namespace{}
		r.namespaces, obj = append(r.namespaces, o), o
	case "v1 Service":
		o := &corev1.Service{}
		r.services, obj = append(r.services, o), o
	case "apps/v1 Deployment":
		o := &appsv1.Deployment{}
		r.deployments, obj = append(r.deployments, o), o
	case "apps/v1 StatefulSet":
		o := &appsv1.StatefulSet{}
		r.statefulSets, obj = append(r.statefulSets, o), o
	case "policy/v1 PodDisruptionBudget":
		o := &policyv1.PodDisruptionBudget{}
		r.pdbs, obj = append(r.pdbs, o), o
	case "networking.k8s.io/v1 Ingress":
		o := &networkingv1.Ingress{}
		r.ingresses, obj = append(r.ingresses, o), o
	case "gateway.networking.k8s.io/v1 HTTPRoute":
		o := &gatewayv1.HTTPRoute{}
		r.routes, obj = append(r.routes, o), o
	default:
		return fmt.Errorf("unexpected object %s %s", tm.APIVersion, tm.Kind)
	}
	return yaml.UnmarshalStrict(doc, obj)
}

// kubectl returns the path of a kubectl whose built-in kustomize is new
// enough for the overlays (v5), or skips the test saying why not.
func kubectl(t *testing.T) string {
	t.Helper()
	path, whyNot := findKubectl()
	if path == "" {
		t.Skip(whyNot)
	}
	return path
}

// findKubectl returns the path of a kubectl with kustomize v5, or "" and
// why there is none.
func findKubectl() (path, whyNot string) {
	path, err := exec.LookPath("kubectl")
	if err != nil {
		return "", "kubectl is not on PATH, so the kustomize overlays are not rendered (install kubectl >= 1.27 to run these checks)"
	}
	out, err := exec.Command(path, "version", "--client", "-o", "json").Output()
	if err != nil {
		return "", fmt.Sprintf("kubectl version --client failed (%v), so the overlays are not rendered", err)
	}
	var v struct {
		Kustomize string `json:"kustomizeVersion"`
	}
	if err := json.Unmarshal(out, &v); err != nil || !strings.HasPrefix(v.Kustomize, "v5") {
		return "", fmt.Sprintf("kubectl's kustomize is %q; the overlays need v5 (kubectl >= 1.27), so they are not rendered", v.Kustomize)
	}
	return path, ""
}

// renderCache holds kubectl kustomize's output per directory: the files do
// not change during a test run, and rendering takes a second each.
var renderCache sync.Map

// render runs kubectl kustomize on a directory below deploy/k8s and decodes
// every object it prints.
func render(t *testing.T, kubectlPath, dir string) *rendered {
	t.Helper()
	out, ok := renderCache.Load(dir)
	if !ok {
		cmd := exec.Command(kubectlPath, "kustomize", filepath.Join(repoRoot(t), "deploy", "k8s", dir))
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		b, err := cmd.Output()
		if err != nil {
			t.Fatalf("kubectl kustomize %s: %v\n%s", dir, err, stderr.String())
		}
		renderCache.Store(dir, b)
		out = b
	}
	r := &rendered{dir: dir}
	for i, doc := range bytes.Split(out.([]byte), []byte("\n---\n")) {
		if len(bytes.TrimSpace(doc)) == 0 {
			continue
		}
		if err := r.decode(doc); err != nil {
			t.Fatalf("%s: object %d does not decode strictly: %v\n%s", dir, i, err, doc)
		}
	}
	return r
}

// overlayDirs lists every directory below deploy/k8s/overlays that holds a
// kustomization, relative to deploy/k8s.
func overlayDirs(t *testing.T) []string {
	t.Helper()
	root := filepath.Join(repoRoot(t), "deploy", "k8s")
	var dirs []string
	err := filepath.WalkDir(filepath.Join(root, "overlays"), func(p string, d os.DirEntry, err error) error {
		if err == nil && d.Name() == "kustomization.yaml" {
			rel, _ := filepath.Rel(root, filepath.Dir(p))
			dirs = append(dirs, filepath.ToSlash(rel))
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return dirs
}

// strategyOf returns the strategy an overlay directory deploys: the first
// path element below overlays/ (alternatives of sticky are sticky).
func strategyOf(t *testing.T, dir string) strategy {
	t.Helper()
	name := strings.Split(dir, "/")[1]
	for _, st := range strategies {
		if st.name == name {
			return st
		}
	}
	t.Fatalf("%s: overlay of no strategy", dir)
	return strategy{}
}

// TestKustomizeOverlays renders every overlay, decodes every object strictly
// into the Kubernetes API types and checks what each strategy needs.
func TestKustomizeOverlays(t *testing.T) {
	k := kubectl(t)
	dirs := overlayDirs(t)
	for _, st := range strategies {
		if !slices.Contains(dirs, "overlays/"+st.name) {
			t.Errorf("no overlay for strategy %s", st.name)
		}
	}
	base := render(t, k, "base")
	var baseTemplate corev1.PodTemplateSpec
	for _, d := range base.deployments {
		if d.Name == "cart" {
			baseTemplate = d.Spec.Template
		}
	}
	if baseTemplate.Labels == nil {
		t.Fatal("base: no cart Deployment")
	}
	for _, dir := range dirs {
		t.Run(dir, func(t *testing.T) {
			r := render(t, k, dir)
			st := strategyOf(t, dir)
			checkNamespace(t, r)
			tmpl, replicas := cartWorkload(t, r)
			checkCartPod(t, tmpl, st)
			checkCartService(t, r, tmpl.Labels)
			checkPDB(t, r, tmpl.Labels)
			checkImages(t, r)
			for _, name := range []string{"pricing", "catalog"} {
				checkStatelessService(t, r, tmpl, name)
			}
			if sts := r.statefulSets; len(sts) > 0 && sts[0].Name == "cart" {
				if !sameTemplate(baseTemplate, *tmpl) {
					t.Errorf("the cart StatefulSet's pod template differs from the base Deployment's")
				}
			}
			switch {
			case strings.HasSuffix(dir, "/service-clientip"):
				checkClientIPAffinity(t, r)
			case strings.HasSuffix(dir, "/ingress"):
				checkIngressAffinity(t, r)
			case strings.HasSuffix(dir, "/gateway-api"):
				checkGatewayPersistence(t, r)
			case st.name == "sticky":
				checkStatelabLB(t, r, replicas)
			case st.store == "replicated":
				checkPeers(t, r, tmpl)
			case st.redis:
				checkStoreService(t, r, tmpl, "STATELAB_REDIS", "redis")
			case st.pg:
				checkStoreService(t, r, tmpl, "STATELAB_POSTGRES", "postgres")
				checkEnvOrder(t, tmpl, "POSTGRES_PASSWORD", "STATELAB_POSTGRES")
			}
		})
	}
}

func checkNamespace(t *testing.T, r *rendered) {
	t.Helper()
	if len(r.namespaces) != 1 {
		t.Fatalf("%d Namespace objects, want 1", len(r.namespaces))
	}
	ns := r.namespaces[0].Name
	check := func(kind, name, got string) {
		if got != ns {
			t.Errorf("%s %s in namespace %q, want %q", kind, name, got, ns)
		}
	}
	for _, o := range r.services {
		check("Service", o.Name, o.Namespace)
	}
	for _, o := range r.deployments {
		check("Deployment", o.Name, o.Namespace)
	}
	for _, o := range r.statefulSets {
		check("StatefulSet", o.Name, o.Namespace)
	}
	for _, o := range r.pdbs {
		check("PodDisruptionBudget", o.Name, o.Namespace)
	}
}

// cartWorkload returns the pod template and replica count of the one
// workload named cart (a Deployment, or a StatefulSet for statelab lb).
func cartWorkload(t *testing.T, r *rendered) (*corev1.PodTemplateSpec, int32) {
	t.Helper()
	var found []*corev1.PodTemplateSpec
	var replicas int32
	for _, d := range r.deployments {
		if d.Name == "cart" {
			found, replicas = append(found, &d.Spec.Template), ptrOr(d.Spec.Replicas, 1)
		}
	}
	for _, s := range r.statefulSets {
		if s.Name == "cart" {
			found, replicas = append(found, &s.Spec.Template), ptrOr(s.Spec.Replicas, 1)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%d workloads named cart, want 1", len(found))
	}
	if replicas < 3 {
		t.Errorf("cart runs %d replicas, want 3", replicas)
	}
	return found[0], replicas
}

func checkCartPod(t *testing.T, tmpl *corev1.PodTemplateSpec, st strategy) {
	t.Helper()
	spec := tmpl.Spec
	if len(spec.Containers) != 1 {
		t.Fatalf("cart pod has %d containers, want 1", len(spec.Containers))
	}
	c := spec.Containers[0]
	if c.Image != statelabImage || !slices.Equal(c.Args, []string{"app"}) {
		t.Errorf("cart container runs %s %q, want %s [app]", c.Image, c.Args, statelabImage)
	}
	if got := envValue(c, "STATELAB_STORE"); got != st.store {
		t.Errorf("STATELAB_STORE=%q, want %q for %s", got, st.store, st.name)
	}
	if e := envVar(c, "STATELAB_ID"); e == nil || e.ValueFrom == nil || e.ValueFrom.FieldRef == nil || e.ValueFrom.FieldRef.FieldPath != "metadata.name" {
		t.Error("STATELAB_ID is not the pod name (X-Served-By must name the pod)")
	}
	if e := envVar(c, "STATELAB_SECRET"); e == nil || e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil {
		t.Error("STATELAB_SECRET does not come from a Secret")
	}
	checkProbe(t, "readiness", c.ReadinessProbe, "/readyz")
	checkProbe(t, "liveness", c.LivenessProbe, "/healthz")
	if c.Resources.Requests.Cpu().IsZero() || c.Resources.Requests.Memory().IsZero() {
		t.Errorf("cart container requests %v, want cpu and memory", c.Resources.Requests)
	}
	sc := spec.SecurityContext
	if sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot {
		t.Error("cart pod does not set runAsNonRoot")
	}
	// The drain: SIGTERM, /readyz 503 for the drain delay, then in-flight
	// requests for the shutdown timeout; the kubelet must not kill sooner.
	drain, shutdown := envDuration(t, c, "STATELAB_DRAIN_DELAY"), envDuration(t, c, "STATELAB_SHUTDOWN_TIMEOUT")
	if drain < 5*time.Second {
		t.Errorf("STATELAB_DRAIN_DELAY=%v: shorter than the time endpoints and the lb's health check need to notice", drain)
	}
	if d := readinessWindow(c.ReadinessProbe); d > drain {
		t.Errorf("the readiness probe notices a draining pod after %v, later than the drain delay %v", d, drain)
	}
	grace := time.Duration(ptrOr(spec.TerminationGracePeriodSeconds, 30)) * time.Second
	if grace < drain+shutdown+5*time.Second {
		t.Errorf("terminationGracePeriodSeconds %v < drain delay %v + shutdown timeout %v + 5 s", grace, drain, shutdown)
	}
	if c.Lifecycle != nil && c.Lifecycle.PreStop != nil {
		t.Error("a preStop hook delays SIGTERM with /readyz still 200; the app's drain delay does the draining")
	}
}

func checkProbe(t *testing.T, what string, p *corev1.Probe, path string) {
	t.Helper()
	if p == nil || p.HTTPGet == nil || p.HTTPGet.Path != path || p.HTTPGet.Port.String() != "http" {
		t.Errorf("%s probe %+v, want GET %s on port http", what, p, path)
	}
}

// readinessWindow is how long after a pod starts failing readiness the
// kubelet marks it unready: period × failure threshold.
func readinessWindow(p *corev1.Probe) time.Duration {
	if p == nil {
		return 0
	}
	period, failures := p.PeriodSeconds, p.FailureThreshold
	if period == 0 {
		period = 10
	}
	if failures == 0 {
		failures = 3
	}
	return time.Duration(period*failures) * time.Second
}

func checkCartService(t *testing.T, r *rendered, podLabels map[string]string) {
	t.Helper()
	for _, s := range r.services {
		if s.Name == "cart" && selects(s.Spec.Selector, podLabels) && len(s.Spec.Ports) > 0 && s.Spec.Ports[0].TargetPort.String() == "http" {
			return
		}
	}
	t.Error("no Service cart selecting the cart pods' http port")
}

func checkPDB(t *testing.T, r *rendered, podLabels map[string]string) {
	t.Helper()
	for _, p := range r.pdbs {
		if p.Spec.Selector != nil && selects(p.Spec.Selector.MatchLabels, podLabels) {
			if p.Spec.MaxUnavailable == nil && p.Spec.MinAvailable == nil {
				t.Errorf("PodDisruptionBudget %s sets neither maxUnavailable nor minAvailable", p.Name)
			}
			return
		}
	}
	t.Errorf("no PodDisruptionBudget selects the pods labelled %v", podLabels)
}

// checkStatelessService checks one of the stateless services the carts
// call: a Deployment of at least two pods running the project's image with
// its subcommand, probes, drain and requests; a Service and a
// PodDisruptionBudget selecting them; the cart pointing at that Service.
func checkStatelessService(t *testing.T, r *rendered, cart *corev1.PodTemplateSpec, name string) {
	t.Helper()
	var d *appsv1.Deployment
	for _, x := range r.deployments {
		if x.Name == name {
			d = x
		}
	}
	if d == nil {
		t.Fatalf("no Deployment %s", name)
	}
	if ptrOr(d.Spec.Replicas, 1) < 2 {
		t.Errorf("%s runs %d pods, want at least 2", name, ptrOr(d.Spec.Replicas, 1))
	}
	spec := d.Spec.Template.Spec
	c := spec.Containers[0]
	if c.Image != statelabImage || !slices.Equal(c.Args, []string{name}) {
		t.Errorf("%s container runs %s %q, want %s [%s]", name, c.Image, c.Args, statelabImage, name)
	}
	checkProbe(t, name+" readiness", c.ReadinessProbe, "/readyz")
	checkProbe(t, name+" liveness", c.LivenessProbe, "/healthz")
	drain, shutdown := envDuration(t, c, "STATELAB_DRAIN_DELAY"), envDuration(t, c, "STATELAB_SHUTDOWN_TIMEOUT")
	if grace := time.Duration(ptrOr(spec.TerminationGracePeriodSeconds, 30)) * time.Second; grace < drain+shutdown+5*time.Second {
		t.Errorf("%s: terminationGracePeriodSeconds %v < drain %v + shutdown %v + 5 s", name, grace, drain, shutdown)
	}
	s := service(r, name)
	if s == nil || !selects(s.Spec.Selector, d.Spec.Template.Labels) {
		t.Errorf("no Service %s selecting its pods", name)
	}
	checkPDB(t, r, d.Spec.Template.Labels)
	key := "STATELAB_" + strings.ToUpper(name)
	if got := envValue(cart.Spec.Containers[0], key); got != "http://"+name {
		t.Errorf("cart %s=%q, want http://%s (the Service)", key, got, name)
	}
}

// checkImages checks that every container runs the project's image or a
// pinned official Redis or PostgreSQL image.
func checkImages(t *testing.T, r *rendered) {
	t.Helper()
	var pods []corev1.PodSpec
	for _, d := range r.deployments {
		pods = append(pods, d.Spec.Template.Spec)
	}
	for _, s := range r.statefulSets {
		pods = append(pods, s.Spec.Template.Spec)
	}
	for _, p := range pods {
		for _, c := range append(p.InitContainers, p.Containers...) {
			if c.Image != statelabImage && !pinnedImage.MatchString(c.Image) {
				t.Errorf("container %s runs %q: neither the project's image nor a pinned official Redis/PostgreSQL", c.Name, c.Image)
			}
			if c.Resources.Requests.Cpu().IsZero() || c.Resources.Requests.Memory().IsZero() {
				t.Errorf("container %s has no cpu and memory requests", c.Name)
			}
		}
	}
}

// checkStatelabLB checks the sticky overlay's in-cluster balancer: policy
// sticky, one backend per StatefulSet pod under its headless Service's DNS
// names, health checks on /readyz.
func checkStatelabLB(t *testing.T, r *rendered, replicas int32) {
	t.Helper()
	var sts *appsv1.StatefulSet
	for _, s := range r.statefulSets {
		if s.Name == "cart" {
			sts = s
		}
	}
	if sts == nil {
		t.Fatal("statelab lb needs the cart pods as a StatefulSet (one address per pod)")
	}
	headless := service(r, sts.Spec.ServiceName)
	if headless == nil || headless.Spec.ClusterIP != corev1.ClusterIPNone || !selects(headless.Spec.Selector, sts.Spec.Template.Labels) {
		t.Errorf("StatefulSet serviceName %q is not a headless Service selecting the cart pods", sts.Spec.ServiceName)
	}
	var lb *appsv1.Deployment
	for _, d := range r.deployments {
		if d.Name == "lb" {
			lb = d
		}
	}
	if lb == nil {
		t.Fatal("no Deployment lb")
	}
	c := lb.Spec.Template.Spec.Containers[0]
	if c.Image != statelabImage || !slices.Equal(c.Args, []string{"lb"}) {
		t.Errorf("lb container runs %s %q, want %s [lb]", c.Image, c.Args, statelabImage)
	}
	var want []string
	for i := range replicas {
		pod := sts.Name + "-" + strconv.Itoa(int(i))
		want = append(want, fmt.Sprintf("%s=http://%s.%s:8080", pod, pod, sts.Spec.ServiceName))
	}
	if got := envValue(c, "STATELAB_BACKEND"); got != strings.Join(want, ",") {
		t.Errorf("lb STATELAB_BACKEND=%q, want %q", got, strings.Join(want, ","))
	}
	if envValue(c, "STATELAB_POLICY") != "sticky" || envValue(c, "STATELAB_HEALTH_PATH") != "/readyz" {
		t.Error("lb must run policy sticky with health checks on /readyz")
	}
	if e := envVar(c, "STATELAB_SECRET"); ptrOr(lb.Spec.Replicas, 1) > 1 && (e == nil || e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil) {
		t.Error("several lb pods without a shared STATELAB_SECRET would not honour each other's cookies")
	}
	if s := service(r, "lb"); s == nil || !selects(s.Spec.Selector, lb.Spec.Template.Labels) {
		t.Error("no Service lb in front of the lb pods")
	}
	if c.ReadinessProbe == nil || c.LivenessProbe == nil {
		t.Error("lb container without readiness and liveness probes")
	}
}

// checkPeers checks that replicated pods join through a DNS name that
// resolves to every cart pod, ready or not.
func checkPeers(t *testing.T, r *rendered, tmpl *corev1.PodTemplateSpec) {
	t.Helper()
	c := tmpl.Spec.Containers[0]
	host, port, ok := strings.Cut(envValue(c, "STATELAB_PEERS"), ":")
	if !ok {
		t.Fatalf("STATELAB_PEERS=%q, want HOST:PORT", envValue(c, "STATELAB_PEERS"))
	}
	s := service(r, host)
	if s == nil || s.Spec.ClusterIP != corev1.ClusterIPNone || !s.Spec.PublishNotReadyAddresses || !selects(s.Spec.Selector, tmpl.Labels) {
		t.Fatalf("STATELAB_PEERS names %q, want a headless Service publishing not-ready cart pods", host)
	}
	if _, lp, _ := strings.Cut(envValue(c, "STATELAB_CLUSTER_LISTEN"), ":"); lp != port {
		t.Errorf("peers are joined on port %s but replicas listen on %q", port, envValue(c, "STATELAB_CLUSTER_LISTEN"))
	}
	protocols := map[corev1.Protocol]bool{}
	for _, p := range c.Ports {
		if strconv.Itoa(int(p.ContainerPort)) == port {
			protocols[p.Protocol] = true
		}
	}
	if !protocols[corev1.ProtocolTCP] || !protocols[corev1.ProtocolUDP] {
		t.Errorf("cart container does not declare port %s on both TCP and UDP (memberlist uses both)", port)
	}
}

// checkStoreService checks that the URL in the env var points at a Service
// of the overlay that selects the store's StatefulSet pods on that port.
func checkStoreService(t *testing.T, r *rendered, tmpl *corev1.PodTemplateSpec, envName, store string) {
	t.Helper()
	u := envValue(tmpl.Spec.Containers[0], envName)
	m := regexp.MustCompile(`^[a-z]+://(?:[^@/]*@)?([a-z0-9-]+):(\d+)/`).FindStringSubmatch(u)
	if m == nil {
		t.Fatalf("%s=%q is not a URL naming a host and port", envName, u)
	}
	s := service(r, m[1])
	var sts *appsv1.StatefulSet
	for _, x := range r.statefulSets {
		if x.Name == store {
			sts = x
		}
	}
	if s == nil || sts == nil || !selects(s.Spec.Selector, sts.Spec.Template.Labels) || strconv.Itoa(int(s.Spec.Ports[0].Port)) != m[2] {
		t.Errorf("%s points at %s:%s, which is not a Service in front of the %s StatefulSet", envName, m[1], m[2], store)
	}
}

// checkEnvOrder checks that first comes before then in the cart container's
// env, as Kubernetes expands $(first) in then only in that order.
func checkEnvOrder(t *testing.T, tmpl *corev1.PodTemplateSpec, first, then string) {
	t.Helper()
	i := slices.IndexFunc(tmpl.Spec.Containers[0].Env, func(e corev1.EnvVar) bool { return e.Name == first })
	j := slices.IndexFunc(tmpl.Spec.Containers[0].Env, func(e corev1.EnvVar) bool { return e.Name == then })
	if i < 0 || j < 0 || i > j || !strings.Contains(tmpl.Spec.Containers[0].Env[j].Value, "$("+first+")") {
		t.Errorf("%s must be defined before %s, which expands $(%s)", first, then, first)
	}
}

func checkClientIPAffinity(t *testing.T, r *rendered) {
	t.Helper()
	s := service(r, "cart")
	if s == nil || s.Spec.SessionAffinity != corev1.ServiceAffinityClientIP || s.Spec.SessionAffinityConfig == nil {
		t.Error("Service cart without sessionAffinity ClientIP and its timeout")
	}
}

func checkIngressAffinity(t *testing.T, r *rendered) {
	t.Helper()
	if len(r.ingresses) != 1 {
		t.Fatalf("%d Ingresses, want 1", len(r.ingresses))
	}
	in := r.ingresses[0]
	if in.Annotations["nginx.ingress.kubernetes.io/affinity"] != "cookie" {
		t.Error("Ingress without ingress-nginx cookie affinity")
	}
	for _, rule := range in.Spec.Rules {
		for _, p := range rule.HTTP.Paths {
			if p.Backend.Service == nil || service(r, p.Backend.Service.Name) == nil {
				t.Errorf("Ingress path %s does not route to a Service of the overlay", p.Path)
			}
		}
	}
}

func checkGatewayPersistence(t *testing.T, r *rendered) {
	t.Helper()
	if len(r.routes) != 1 || len(r.routes[0].Spec.Rules) == 0 {
		t.Fatal("want one HTTPRoute with rules")
	}
	for _, rule := range r.routes[0].Spec.Rules {
		sp := rule.SessionPersistence
		if sp == nil || sp.Type == nil || *sp.Type != gatewayv1.CookieBasedSessionPersistence {
			t.Error("HTTPRoute rule without cookie session persistence")
		}
		for _, b := range rule.BackendRefs {
			if service(r, string(b.Name)) == nil {
				t.Errorf("HTTPRoute routes to %s, not a Service of the overlay", b.Name)
			}
		}
	}
}

// sameTemplate reports whether two cart pod templates are the same apart from
// STATELAB_STORE and the order of their env (kustomize patches reorder it).
func sameTemplate(a, b corev1.PodTemplateSpec) bool {
	norm := func(p corev1.PodTemplateSpec) corev1.PodTemplateSpec {
		p = *p.DeepCopy()
		for i := range p.Spec.Containers {
			c := &p.Spec.Containers[i]
			c.Env = slices.DeleteFunc(c.Env, func(e corev1.EnvVar) bool { return e.Name == "STATELAB_STORE" })
			slices.SortFunc(c.Env, func(x, y corev1.EnvVar) int { return strings.Compare(x.Name, y.Name) })
		}
		return p
	}
	return reflect.DeepEqual(norm(a), norm(b))
}

func service(r *rendered, name string) *corev1.Service {
	for _, s := range r.services {
		if s.Name == name {
			return s
		}
	}
	return nil
}

// selects reports whether a label selector matches the labels.
func selects(selector, labels map[string]string) bool {
	if len(selector) == 0 {
		return false
	}
	for k, v := range selector {
		if labels[k] != v {
			return false
		}
	}
	return true
}

func envVar(c corev1.Container, name string) *corev1.EnvVar {
	for i := range c.Env {
		if c.Env[i].Name == name {
			return &c.Env[i]
		}
	}
	return nil
}

func envValue(c corev1.Container, name string) string {
	if e := envVar(c, name); e != nil {
		return e.Value
	}
	return ""
}

func envDuration(t *testing.T, c corev1.Container, name string) time.Duration {
	t.Helper()
	d, err := time.ParseDuration(envValue(c, name))
	if err != nil {
		t.Errorf("%s=%q: %v", name, envValue(c, name), err)
	}
	return d
}

func ptrOr[T any](p *T, def T) T {
	if p == nil {
		return def
	}
	return *p
}

// TestStrictDecodingRefusesUnknownFields checks the checker: a misspelt
// field (readinessProbe under the pod spec instead of the container) must
// fail to decode, not be dropped silently.
func TestStrictDecodingRefusesUnknownFields(t *testing.T) {
	doc := []byte(`apiVersion: apps/v1
kind: Deployment
metadata: {name: cart}
spec:
  selector: {matchLabels: {app: cart}}
  template:
    metadata: {labels: {app: cart}}
    spec:
      readinessProbe: {httpGet: {path: /readyz, port: 8080}}
      containers: [{name: cart, image: statelab:dev}]
`)
	r := &rendered{}
	if err := r.decode(doc); err == nil || !strings.Contains(err.Error(), "readinessProbe") {
		t.Fatalf("decode = %v, want an unknown-field error naming readinessProbe", err)
	}
	if err := r.decode([]byte("apiVersion: v1\nkind: Pod\nmetadata: {name: x}\n")); err == nil {
		t.Fatal("a kind the overlays do not use decoded without error")
	}
}
