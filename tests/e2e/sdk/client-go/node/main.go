// Command node is the node tier's client-go app (same module, same pinned
// client-go as the SDK-matrix program one directory up). It runs in a real
// Pod made by `mca --inject`, with rest.InClusterConfig() only, so every call
// goes through mca. Unlike the matrix program it keeps running: it holds one
// watch on the ConfigMaps labelled mca-e2e=ping and re-opens it whenever it
// ends (as a real controller does), so it outlives an mca restart.
//
// Each time the ConfigMap "ping" carries a round it has not answered yet, it
// answers through the API: list ConfigMaps, create ConfigMap "pong-<round>",
// list Secrets (which its ServiceAccount may not: 403 expected). Every thing
// it does is one JSON line on stdout, the test's only view of it:
//
//	{"op": "list"|"create"|"forbidden"|"watch-open"|"watch-closed"|"event",
//	 "round": "...", "ok": true|false, "detail": "..."}
//
// It never exits on its own: a failure is a line with "ok": false.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/rest"
)

const (
	saDir    = "/var/run/secrets/kubernetes.io/serviceaccount"
	selector = "mca-e2e=ping"
)

func emit(op, round string, ok bool, detail string) {
	line, _ := json.Marshal(map[string]any{
		"op": op, "round": round, "ok": ok, "detail": detail,
		"t": time.Now().UnixMilli(),
	})
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

type app struct {
	cs       kubernetes.Interface
	ns       string
	cms      typedcorev1.ConfigMapInterface
	answered map[string]bool
}

// answer makes the round's three calls, each reported on its own line.
func (a *app) answer(round string) {
	if round == "" || a.answered[round] {
		return
	}
	a.answered[round] = true
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	list, err := a.cms.List(ctx, metav1.ListOptions{})
	if err != nil {
		emit("list", round, false, describe(err))
	} else {
		emit("list", round, true, fmt.Sprintf("%d configmaps", len(list.Items)))
	}
	name := "pong-" + round
	cm, err := a.cms.Create(ctx, &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Data:       map[string]string{"round": round},
	}, metav1.CreateOptions{})
	if err != nil {
		emit("create", round, false, describe(err))
	} else {
		emit("create", round, cm.Name == name, cm.Name)
	}
	_, err = a.cs.CoreV1().Secrets(a.ns).List(ctx, metav1.ListOptions{})
	switch {
	case err == nil:
		emit("forbidden", round, false, "listing secrets succeeded")
	case apierrors.IsForbidden(err):
		emit("forbidden", round, true, describe(err))
	default:
		emit("forbidden", round, false, describe(err))
	}
}

// listed answers what is already there and returns the list's version.
func (a *app) listed() (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	list, err := a.cms.List(ctx, metav1.ListOptions{LabelSelector: selector})
	if err != nil {
		return "", err
	}
	for _, cm := range list.Items {
		a.answer(cm.Data["round"])
	}
	return list.ResourceVersion, nil
}

// follow reads one watch until it ends; returns the last version seen and
// whether the server said that version is gone (410: list again).
func (a *app) follow(w watch.Interface, rv string) (string, bool) {
	defer w.Stop()
	for ev := range w.ResultChan() {
		switch obj := ev.Object.(type) {
		case *corev1.ConfigMap:
			if ev.Type == watch.Bookmark {
				rv = obj.ResourceVersion
				continue
			}
			emit("event", obj.Data["round"], true, string(ev.Type)+" "+obj.Name)
			rv = obj.ResourceVersion
			if ev.Type == watch.Added || ev.Type == watch.Modified {
				a.answer(obj.Data["round"])
			}
		case *metav1.Status:
			emit("event", "", false, fmt.Sprintf("%d %s", obj.Code, obj.Message))
			if obj.Code == 410 {
				return rv, true
			}
		}
	}
	return rv, false
}

func main() {
	cfg, err := rest.InClusterConfig()
	if err != nil {
		fmt.Fprintln(os.Stderr, "in-cluster config:", err)
		os.Exit(1)
	}
	cfg.UserAgent = "mca-e2e-node-client-go"
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
	a := &app{cs: cs, ns: ns, cms: cs.CoreV1().ConfigMaps(ns), answered: map[string]bool{}}
	rv := ""
	for {
		if rv == "" {
			if rv, err = a.listed(); err != nil {
				emit("list", "", false, describe(err))
				time.Sleep(time.Second)
				continue
			}
		}
		w, err := a.cms.Watch(context.Background(), metav1.ListOptions{
			LabelSelector: selector, ResourceVersion: rv, AllowWatchBookmarks: true,
		})
		if err != nil {
			emit("watch-open", "", false, describe(err))
			if apierrors.IsResourceExpired(err) || apierrors.IsGone(err) {
				rv = ""
			}
			time.Sleep(time.Second)
			continue
		}
		emit("watch-open", "", true, "from resourceVersion "+rv)
		next, gone := a.follow(w, rv)
		emit("watch-closed", "", true, "at resourceVersion "+next)
		rv = next
		if gone {
			rv = ""
		}
		time.Sleep(200 * time.Millisecond)
	}
}
