// Package validate checks the deployment files in deploy/ without a Docker
// engine or a Kubernetes cluster: the Dockerfile builds the way the project
// builds, compose.yaml loads with the Compose specification's own loader for
// every strategy profile, and every kustomize overlay renders into objects
// that decode strictly into the upstream Kubernetes API types.
//
// It is a module of its own so that k8s.io/api, the Gateway API types and
// compose-go stay out of statelab's dependency graph; `make test` runs it.
package validate
