//go:build tools

// Package tools pins the helm command that ../build_helm.sh compiles, so
// `go mod tidy` keeps every module it needs in go.sum.
package tools

import (
	_ "helm.sh/helm/v3/cmd/helm"
)
