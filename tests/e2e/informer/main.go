// Command informer (informer NAMESPACE NAME) runs one client-go shared
// informer on the ConfigMaps of a namespace, with the in-cluster configuration only (so, in the e2e Pod,
// through mca), and prints one JSON line per thing that happened:
//
//	{"ev": "synced", "t": <unix ms>}
//	{"ev": "add"|"update"|"delete", "name": "...", "cluster": "...", "t": <unix ms>}
//	{"http": "GET", "path": "...", "query": "...", "got": "<Content-Type>", ...}
//
// The test counts lost, late and false events from these lines. With
// KUBE_FEATURE_WatchListClient=true in the environment, client-go's own
// feature gate makes the reflector use a watch-list (sendInitialEvents)
// instead of LIST + WATCH. It runs until stdin closes. `informer protobuf
// SPREAD_NS MAPPED_NS LABELED_NS` runs the protobuf checks of protobuf.go instead.
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
)

var out sync.Mutex

func emit(fields map[string]any) {
	fields["t"] = time.Now().UnixMilli()
	line, _ := json.Marshal(fields)
	out.Lock()
	defer out.Unlock()
	fmt.Println(string(line))
}

func describe(obj any, ev string) map[string]any {
	if tomb, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = tomb.Obj
	}
	cm, ok := obj.(*corev1.ConfigMap)
	if !ok {
		return map[string]any{"ev": ev, "name": fmt.Sprintf("%T", obj)}
	}
	return map[string]any{
		"ev":      ev,
		"name":    cm.Name,
		"cluster": cm.Annotations["mca.io/cluster"],
		"rv":      cm.ResourceVersion,
	}
}

func main() {
	if len(os.Args) == 5 && os.Args[1] == "protobuf" {
		os.Exit(runProtobuf(os.Args[2], os.Args[3], os.Args[4]))
	}
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: informer NAMESPACE NAME")
		os.Exit(2)
	}
	config, err := rest.InClusterConfig()
	if err != nil {
		fmt.Fprintln(os.Stderr, "in-cluster config:", err)
		os.Exit(1)
	}
	// NAME tells the runs apart in mca's log (user agent mca-e2e-informer/NAME).
	config.UserAgent = "mca-e2e-informer/" + os.Args[2]
	// Each HTTP exchange is a line too (protobuf.go's recorder): the test
	// checks the LIST and WATCH answers came in client-go's default protobuf.
	config.WrapTransport = func(rt http.RoundTripper) http.RoundTripper { return recorder{rt} }
	client := kubernetes.NewForConfigOrDie(config)
	factory := informers.NewSharedInformerFactoryWithOptions(
		client, 0, informers.WithNamespace(os.Args[1]))
	informer := factory.Core().V1().ConfigMaps().Informer()
	_, err = informer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { emit(describe(obj, "add")) },
		UpdateFunc: func(_, obj any) { emit(describe(obj, "update")) },
		DeleteFunc: func(obj any) { emit(describe(obj, "delete")) },
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "handler:", err)
		os.Exit(1)
	}
	stop := make(chan struct{})
	factory.Start(stop)
	if !cache.WaitForCacheSync(stop, informer.HasSynced) {
		fmt.Fprintln(os.Stderr, "cache never synced")
		os.Exit(1)
	}
	emit(map[string]any{"ev": "synced"})
	_, _ = io.Copy(io.Discard, os.Stdin)
	close(stop)
	factory.Shutdown()
	emit(map[string]any{"ev": "done"})
}
