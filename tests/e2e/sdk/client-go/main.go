// Command prog is the SDK-matrix program for Go client-go: it uses only
// rest.InClusterConfig() (no server, CA, token or namespace configured here)
// and prints one JSON line per operation:
//
//	{"op": "...", "ok": true|false, "detail": "..."}
//
// It exits 0 even when an operation fails; non-zero only on a crash.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	authnv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

const (
	name  = "client-go"
	seed  = "sdk-" + name + "-seed"
	obj   = "sdk-" + name + "-x"
	saDir = "/var/run/secrets/kubernetes.io/serviceaccount"
)

func emit(op string, ok bool, detail string) {
	line, _ := json.Marshal(map[string]any{"op": op, "ok": ok, "detail": detail})
	fmt.Println(string(line))
}

func describe(err error) string {
	var status apierrors.APIStatus
	if errors.As(err, &status) {
		s := status.Status()
		return fmt.Sprintf("HTTP %d %s: %s", s.Code, s.Reason, s.Message)
	}
	return err.Error()
}

func main() {
	cfg, err := rest.InClusterConfig()
	if err != nil {
		fmt.Fprintln(os.Stderr, "in-cluster config:", err)
		os.Exit(1)
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "clientset:", err)
		os.Exit(1)
	}
	nsBytes, err := os.ReadFile(saDir + "/namespace")
	if err != nil {
		fmt.Fprintln(os.Stderr, "namespace:", err)
		os.Exit(1)
	}
	ns := strings.TrimSpace(string(nsBytes))
	wantUser := "system:serviceaccount:" + ns + ":" + os.Getenv("MCA_E2E_SA")
	cms := cs.CoreV1().ConfigMaps(ns)

	run := func(op string, fn func(ctx context.Context) (bool, string, error)) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		ok, detail, err := fn(ctx)
		if err != nil {
			ok, detail = false, describe(err)
		}
		emit(op, ok, detail)
	}

	run("whoami", func(ctx context.Context) (bool, string, error) {
		review, err := cs.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authnv1.SelfSubjectReview{}, metav1.CreateOptions{})
		if err != nil {
			return false, "", err
		}
		user := review.Status.UserInfo.Username
		return user == wantUser, user, nil
	})

	run("get", func(ctx context.Context) (bool, string, error) {
		cm, err := cms.Get(ctx, seed, metav1.GetOptions{})
		if err != nil {
			return false, "", err
		}
		return cm.Name == seed, cm.Name, nil
	})

	run("list", func(ctx context.Context) (bool, string, error) {
		list, err := cms.List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, "", err
		}
		for _, cm := range list.Items {
			if cm.Name == seed {
				return true, fmt.Sprintf("%d configmaps, seed included", len(list.Items)), nil
			}
		}
		return false, fmt.Sprintf("%d configmaps, seed missing", len(list.Items)), nil
	})

	run("create", func(ctx context.Context) (bool, string, error) {
		cm, err := cms.Create(ctx, &corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{Name: obj, Labels: map[string]string{"sdk": name}},
			Data:       map[string]string{"k": "v1"},
		}, metav1.CreateOptions{})
		if err != nil {
			return false, "", err
		}
		return cm.Name == obj, cm.Name, nil
	})

	run("patch-merge", func(ctx context.Context) (bool, string, error) {
		cm, err := cms.Patch(ctx, obj, types.MergePatchType, []byte(`{"data":{"k":"v2"}}`), metav1.PatchOptions{})
		if err != nil {
			return false, "", err
		}
		return cm.Data["k"] == "v2", "data.k=" + cm.Data["k"], nil
	})

	run("apply", func(ctx context.Context) (bool, string, error) {
		ac := corev1ac.ConfigMap(obj, ns).WithLabels(map[string]string{"sdk": name}).WithData(map[string]string{"applied": "yes"})
		cm, err := cms.Apply(ctx, ac, metav1.ApplyOptions{FieldManager: "mca-e2e-" + name})
		if err != nil {
			return false, "", err
		}
		return cm.Data["applied"] == "yes", "data.applied=" + cm.Data["applied"], nil
	})

	run("watch", func(ctx context.Context) (bool, string, error) {
		// The initial ADDED of our object shows the watch is streaming; a
		// patch from another goroutine must then come back as MODIFIED.
		ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		w, err := cms.Watch(ctx, metav1.ListOptions{LabelSelector: "sdk=" + name})
		if err != nil {
			return false, "", err
		}
		defer w.Stop()
		patched := make(chan error, 1)
		started := false
		var seen []string
		for {
			select {
			case <-ctx.Done():
				return false, fmt.Sprintf("no MODIFIED event within 20 s; saw: %v", seen), nil
			case err := <-patched:
				if err != nil {
					return false, "", err
				}
			case ev, open := <-w.ResultChan():
				if !open {
					return false, fmt.Sprintf("watch closed; saw: %v", seen), nil
				}
				cm, isCM := ev.Object.(*corev1.ConfigMap)
				if !isCM {
					seen = append(seen, fmt.Sprintf("%s %T", ev.Type, ev.Object))
					continue
				}
				seen = append(seen, fmt.Sprintf("%s %s %s", ev.Type, cm.Name, cm.Data["k"]))
				if ev.Type == watch.Added && cm.Name == obj && !started {
					started = true
					go func() {
						_, err := cms.Patch(context.Background(), obj, types.MergePatchType, []byte(`{"data":{"k":"v3"}}`), metav1.PatchOptions{})
						patched <- err
					}()
				} else if ev.Type == watch.Modified && cm.Name == obj && cm.Data["k"] == "v3" {
					return true, seen[len(seen)-1], nil
				}
			}
		}
	})

	run("delete", func(ctx context.Context) (bool, string, error) {
		if err := cms.Delete(ctx, obj, metav1.DeleteOptions{}); err != nil {
			return false, "", err
		}
		return true, "deleted", nil
	})

	run("forbidden", func(ctx context.Context) (bool, string, error) {
		_, err := cs.CoreV1().Secrets(ns).List(ctx, metav1.ListOptions{})
		if err == nil {
			return false, "listing secrets succeeded", nil
		}
		var status apierrors.APIStatus
		if !errors.As(err, &status) {
			return false, "not an API error: " + err.Error(), nil
		}
		s := status.Status()
		return apierrors.IsForbidden(err) && s.Code == 403, fmt.Sprintf("%d %s", s.Code, s.Reason), nil
	})
}
