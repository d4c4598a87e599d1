package validate

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// testSecrets stand in for the keys of the Secret "statelab" a user creates.
var testSecrets = map[string]string{
	"app-secret":        testSecret,
	"lb-secret":         "lb-0123456789abcdef0123456789abcdef",
	"postgres-password": "0123456789abcdef",
}

// varRef matches a $(VAR) reference Kubernetes expands in env values.
var varRef = regexp.MustCompile(`\$\(([A-Za-z_][A-Za-z0-9_]*)\)`)

// TestKustomizeOverlaysRun runs each strategy's overlay without a cluster:
// the cart pods (three, named cart-0..2) and, for sticky, statelab lb become
// statelab processes with the arguments and environment the rendered
// manifests give their containers, resolved the way the kubelet does (pod
// name from fieldRef, Secret keys, $(VAR) expansion); only addresses change
// (the pods' and Services' names become loopback ports, Redis and PostgreSQL
// the test services). Where the overlay has no statelab lb, a round-robin
// statelab lb stands in for the Service. Then a shopper adds, reads back and
// checks out through it.
func TestKustomizeOverlaysRun(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	k := kubectl(t)
	bin := statelabBinary(t)
	for _, st := range strategies {
		t.Run(st.name, func(t *testing.T) {
			storeURL := testStore(t, st)
			r := render(t, k, "overlays/"+st.name)
			tmpl, replicas := cartWorkload(t, r)
			pods := make([]string, replicas)
			addr := map[string]string{}    // pod → loopback host:port
			cluster := map[string]string{} // pod → loopback cluster host:port
			for i := range pods {
				pods[i] = fmt.Sprintf("cart-%d", i)
				addr[pods[i]], cluster[pods[i]] = freeAddr(t), freeAddr(t)
			}
			headless := "cart-pods"
			for _, s := range r.statefulSets {
				if s.Name == "cart" {
					headless = s.Spec.ServiceName
				}
			}
			// The stateless services: one process each stands for their
			// Service.
			var procs []*process
			svcAddr := map[string]string{}
			for _, svc := range []string{"pricing", "catalog"} {
				for _, d := range r.deployments {
					if d.Name != svc {
						continue
					}
					svcAddr[svc] = freeAddr(t)
					c := d.Spec.Template.Spec.Containers[0]
					env := podEnv(t, c, svc+"-0", func(_, v string) string { return v })
					env = append(env, "STATELAB_LISTEN="+svcAddr[svc], "STATELAB_SQLITE="+filepath.Join(t.TempDir(), "catalog.db"))
					procs = append(procs, startProcess(t, bin, svc, c.Args, env))
				}
			}
			serviceURL := regexp.MustCompile(`http://(pricing|catalog)(:80)?\b`)
			rewrite := func(name, v string) string {
				v = serviceURL.ReplaceAllStringFunc(v, func(u string) string {
					return "http://" + svcAddr[serviceURL.FindStringSubmatch(u)[1]]
				})
				for _, pod := range pods {
					v = strings.ReplaceAll(v, "http://"+pod+"."+headless+":8080", "http://"+addr[pod])
				}
				switch {
				case strings.HasPrefix(v, "redis://redis:"), strings.Contains(v, "@postgres:5432/"):
					return storeURL
				case name == "STATELAB_PEERS":
					var all []string
					for _, pod := range pods {
						all = append(all, cluster[pod])
					}
					return strings.Join(all, ",")
				}
				return v
			}
			for _, pod := range pods {
				c := tmpl.Spec.Containers[0]
				env := podEnv(t, c, pod, rewrite)
				env = append(env, "STATELAB_LISTEN="+addr[pod], "STATELAB_CLUSTER_LISTEN="+cluster[pod])
				procs = append(procs, startProcess(t, bin, pod, c.Args, env))
			}
			lbURL := "http://" + freeAddr(t)
			lbListen := strings.TrimPrefix(lbURL, "http://")
			var lb *corev1.Container
			for _, d := range r.deployments {
				if d.Name == "lb" {
					lb = &d.Spec.Template.Spec.Containers[0]
				}
			}
			if lb != nil {
				env := podEnv(t, *lb, "lb-0", rewrite)
				env = append(env, "STATELAB_LISTEN="+lbListen, "STATELAB_ADMIN="+freeAddr(t))
				procs = append(procs, startProcess(t, bin, "lb", lb.Args, env))
			} else {
				// kube-proxy's place: round robin over the ready pods.
				var backends []string
				for _, pod := range pods {
					backends = append(backends, pod+"=http://"+addr[pod])
				}
				procs = append(procs, startProcess(t, bin, "service", []string{"lb", "--listen", lbListen, "--admin", freeAddr(t),
					"--health-path", "/readyz", "--health-interval", "500ms", "--backend", strings.Join(backends, ",")},
					cleanEnv()))
			}
			waitServing(t, lbURL, procs)
			// statelab lb routes /api/quote and /api/catalog to the services;
			// the Service stand-in sends them to the carts, which call them.
			shop(t, lbURL, st, lb != nil)
		})
	}
}

// podEnv resolves a container's env the way the kubelet does for a pod
// named pod, then applies rewrite (name, value) to each value; it returns
// it with this process's environment minus every STATELAB_ variable.
func podEnv(t *testing.T, c corev1.Container, pod string, rewrite func(name, v string) string) []string {
	t.Helper()
	resolved := map[string]string{}
	env := cleanEnv()
	for _, e := range c.Env {
		v := e.Value
		switch {
		case e.ValueFrom == nil:
			v = varRef.ReplaceAllStringFunc(v, func(ref string) string {
				name := varRef.FindStringSubmatch(ref)[1]
				if r, ok := resolved[name]; ok {
					return r
				}
				return ref // Kubernetes leaves unknown references as they are
			})
		case e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == "metadata.name":
			v = pod
		case e.ValueFrom.SecretKeyRef != nil && e.ValueFrom.SecretKeyRef.Name == "statelab":
			var ok bool
			if v, ok = testSecrets[e.ValueFrom.SecretKeyRef.Key]; !ok {
				t.Fatalf("%s: Secret statelab has no key %q (docs/deploy.md creates %v)", e.Name, e.ValueFrom.SecretKeyRef.Key, testSecrets)
			}
		default:
			t.Fatalf("%s: unsupported valueFrom %+v", e.Name, e.ValueFrom)
		}
		resolved[e.Name] = v
		env = append(env, e.Name+"="+rewrite(e.Name, v))
	}
	return env
}

// cleanEnv is this process's environment without STATELAB_ variables, so
// that only what the deployment files say reaches a process.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "STATELAB_") {
			env = append(env, kv)
		}
	}
	return env
}
