// protobuf SPREAD_NS MAPPED_NS LABELED_NS: client-go's typed clients with their default
// protobuf bodies (Content-Type and Accept application/vnd.kubernetes.protobuf)
// through mca: creates, gets, updates, server-side apply, a list, a watch and
// deletes on a spread set and in a namespace-mapped namespace, and a create
// routed by its labels (placement=east) in LABELED_NS. Prints one JSON
// line per check ({"check": ..., "ok": ..., "detail": ...}) and one per HTTP
// exchange ({"http": method, "path", "sent", "got", "status"}) so the test can
// see the content types that crossed; exits 1 when a check failed.
package main

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	corev1apply "k8s.io/client-go/applyconfigurations/core/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

const clusterKey = "mca.io/cluster"

type recorder struct{ next http.RoundTripper }

func (r recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	res, err := r.next.RoundTrip(req)
	line := map[string]any{
		"http": req.Method, "path": req.URL.Path, "query": req.URL.RawQuery,
		"sent": req.Header.Get("Content-Type"), "accept": req.Header.Get("Accept"),
	}
	if err == nil {
		line["got"] = res.Header.Get("Content-Type")
		line["status"] = res.StatusCode
	}
	emit(line)
	return res, err
}

var failed bool

func check(name string, ok bool, detail string) {
	if !ok {
		failed = true
	}
	emit(map[string]any{"check": name, "ok": ok, "detail": detail})
}

func composite(rv string) bool { return strings.HasPrefix(rv, "mca.") }

func runProtobuf(spreadNS, mappedNS, labeledNS string) int {
	config, err := rest.InClusterConfig()
	if err != nil {
		fmt.Println("in-cluster config:", err)
		return 1
	}
	config.UserAgent = "mca-e2e-protobuf"
	config.WrapTransport = func(rt http.RoundTripper) http.RoundTripper { return recorder{rt} }
	client := kubernetes.NewForConfigOrDie(config)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	spread := client.CoreV1().ConfigMaps(spreadNS)
	names := []string{"pb-0", "pb-1", "pb-2", "pb-3"}
	for _, name := range names {
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name}, Data: map[string]string{"v": "1"}}
		got, err := spread.Create(ctx, cm, metav1.CreateOptions{})
		check("spread create "+name, err == nil && got.Annotations[clusterKey] != "" && composite(got.ResourceVersion), describeErr(got, err))
	}
	for _, name := range names {
		got, err := spread.Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			check("spread get "+name, false, err.Error())
			continue
		}
		where := got.Annotations[clusterKey]
		got.Data["v"] = "2"
		updated, err := spread.Update(ctx, got, metav1.UpdateOptions{})
		check("spread update "+name, err == nil && updated.Annotations[clusterKey] == where && updated.Data["v"] == "2" && composite(updated.ResourceVersion), describeErr(updated, err))
	}
	mapped := client.CoreV1().ConfigMaps(mappedNS)
	// The object names its namespace, as apps often do: the body must say the
	// cluster's namespace, as the path does, or kube-apiserver answers 400.
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "pb-mapped", Namespace: mappedNS, Labels: map[string]string{"app": "pb"}}, Data: map[string]string{"v": "1"}}
	created, err := mapped.Create(ctx, cm, metav1.CreateOptions{})
	check("mapped create", err == nil && created.Namespace == mappedNS, describeErr(created, err))
	got, err := mapped.Get(ctx, "pb-mapped", metav1.GetOptions{})
	check("mapped get", err == nil && got.Namespace == mappedNS && got.Labels["app"] == "pb", describeErr(got, err))
	if err == nil {
		got.Data["v"] = "2"
		updated, err := mapped.Update(ctx, got, metav1.UpdateOptions{})
		check("mapped update", err == nil && updated.Namespace == mappedNS && updated.Data["v"] == "2", describeErr(updated, err))
	}
	apply := corev1apply.ConfigMap("pb-applied", mappedNS).WithData(map[string]string{"v": "1"})
	applied, err := mapped.Apply(ctx, apply, metav1.ApplyOptions{FieldManager: "mca-e2e", Force: true})
	check("mapped apply", err == nil && applied.Namespace == mappedNS && applied.Data["v"] == "1", describeErr(applied, err))
	labeled := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "pb-labeled", Labels: map[string]string{"placement": "east"}}}
	_, err = client.CoreV1().ConfigMaps(labeledNS).Create(ctx, labeled, metav1.CreateOptions{})
	check("labeled create", err == nil, describeErr(nil, err))
	listAndWatch(ctx, spread, names)
	for _, name := range names {
		err := spread.Delete(ctx, name, metav1.DeleteOptions{})
		check("spread delete "+name, err == nil, describeErr(nil, err))
	}
	for _, name := range []string{"pb-mapped", "pb-applied"} {
		err := mapped.Delete(ctx, name, metav1.DeleteOptions{})
		check("mapped delete "+name, err == nil, describeErr(nil, err))
	}
	if failed {
		return 1
	}
	return 0
}

type configMaps interface {
	List(context.Context, metav1.ListOptions) (*corev1.ConfigMapList, error)
	Watch(context.Context, metav1.ListOptions) (watch.Interface, error)
	Get(context.Context, string, metav1.GetOptions) (*corev1.ConfigMap, error)
	Update(context.Context, *corev1.ConfigMap, metav1.UpdateOptions) (*corev1.ConfigMap, error)
}

// listAndWatch lists the spread set, watches from the list's version and
// updates every object: each update must come back as one MODIFIED event
// marked with its cluster.
func listAndWatch(ctx context.Context, spread configMaps, names []string) {
	list, err := spread.List(ctx, metav1.ListOptions{})
	if err != nil {
		check("spread list", false, err.Error())
		return
	}
	clusters := map[string]string{}
	for _, item := range list.Items {
		clusters[item.Name] = item.Annotations[clusterKey]
	}
	ok := composite(list.ResourceVersion)
	for _, name := range names {
		ok = ok && clusters[name] != ""
	}
	check("spread list", ok, fmt.Sprintf("rv %s clusters %v", list.ResourceVersion, clusters))
	w, err := spread.Watch(ctx, metav1.ListOptions{ResourceVersion: list.ResourceVersion})
	if err != nil {
		check("spread watch", false, err.Error())
		return
	}
	defer w.Stop()
	for _, name := range names {
		got, err := spread.Get(ctx, name, metav1.GetOptions{})
		if err == nil {
			got.Data["v"] = "3"
			_, err = spread.Update(ctx, got, metav1.UpdateOptions{})
		}
		check("spread update before watch event "+name, err == nil, describeErr(nil, err))
	}
	seen := map[string]string{}
	timeout := time.After(30 * time.Second)
	for len(seen) < len(names) {
		select {
		case ev, open := <-w.ResultChan():
			if !open {
				check("spread watch", false, fmt.Sprintf("closed after %v", seen))
				return
			}
			cm, isCM := ev.Object.(*corev1.ConfigMap)
			if ev.Type == watch.Modified && isCM && cm.Data["v"] == "3" && composite(cm.ResourceVersion) {
				seen[cm.Name] = cm.Annotations[clusterKey]
			}
		case <-timeout:
			check("spread watch", false, fmt.Sprintf("timed out with %v", seen))
			return
		}
	}
	same := true
	for name, cluster := range seen {
		same = same && cluster == clusters[name]
	}
	check("spread watch", same, fmt.Sprintf("events %v", seen))
}

func describeErr(cm *corev1.ConfigMap, err error) string {
	if err != nil {
		return err.Error()
	}
	if cm == nil {
		return ""
	}
	return fmt.Sprintf("ns %s rv %s cluster %s", cm.Namespace, cm.ResourceVersion, cm.Annotations[clusterKey])
}
