// audit_decode reads audit.k8s.io/v1 Event objects (one JSON object per
// line, as a log backend writes them, or EventList objects with -list, as a
// webhook receives them) and decodes each STRICTLY with the Go types
// kube-apiserver itself uses: an unknown or mistyped field is an error.
// On success it prints one compact summary line per event so a test can
// compare MCA's events with kube-apiserver's own audit log.
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"

	auditv1 "k8s.io/apiserver/pkg/apis/audit/v1"
)

type summary struct {
	AuditID     string            `json:"auditID"`
	Stage       string            `json:"stage"`
	Level       string            `json:"level"`
	Verb        string            `json:"verb"`
	RequestURI  string            `json:"requestURI"`
	User        string            `json:"user"`
	Resource    string            `json:"resource,omitempty"`
	Subresource string            `json:"subresource,omitempty"`
	Namespace   string            `json:"namespace,omitempty"`
	Name        string            `json:"name,omitempty"`
	APIGroup    string            `json:"apiGroup,omitempty"`
	APIVersion  string            `json:"apiVersion,omitempty"`
	Code        int32             `json:"code"`
	HasRequest  bool              `json:"hasRequest"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

func strict(data []byte, into any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(into); err != nil {
		return err
	}
	if dec.More() {
		return fmt.Errorf("trailing data after the object")
	}
	return nil
}

func summarize(e *auditv1.Event) summary {
	s := summary{
		AuditID: string(e.AuditID), Stage: string(e.Stage), Level: string(e.Level),
		Verb: e.Verb, RequestURI: e.RequestURI, User: e.User.Username,
		HasRequest: e.RequestObject != nil, Annotations: e.Annotations,
	}
	if e.ObjectRef != nil {
		s.Resource, s.Subresource = e.ObjectRef.Resource, e.ObjectRef.Subresource
		s.Namespace, s.Name = e.ObjectRef.Namespace, e.ObjectRef.Name
		s.APIGroup, s.APIVersion = e.ObjectRef.APIGroup, e.ObjectRef.APIVersion
	}
	if e.ResponseStatus != nil {
		s.Code = e.ResponseStatus.Code
	}
	return s
}

func check(e *auditv1.Event) error {
	if e.Kind != "Event" || e.APIVersion != "audit.k8s.io/v1" {
		return fmt.Errorf("kind/apiVersion %q/%q, want Event/audit.k8s.io/v1", e.Kind, e.APIVersion)
	}
	if e.AuditID == "" || e.Stage == "" || e.Level == "" || e.Verb == "" || e.RequestURI == "" {
		return fmt.Errorf("auditID, stage, level, verb and requestURI are required")
	}
	if e.RequestReceivedTimestamp.IsZero() || e.StageTimestamp.IsZero() {
		return fmt.Errorf("timestamps are required")
	}
	return nil
}

func main() {
	list := flag.Bool("list", false, "each line is an EventList (webhook batches)")
	flag.Parse()
	scanner := bufio.NewScanner(os.Stdin)
	scanner.Buffer(make([]byte, 1<<20), 64<<20)
	out := json.NewEncoder(os.Stdout)
	line := 0
	for scanner.Scan() {
		line++
		data := bytes.TrimSpace(scanner.Bytes())
		if len(data) == 0 {
			continue
		}
		var events []auditv1.Event
		if *list {
			var l auditv1.EventList
			if err := strict(data, &l); err != nil {
				fmt.Fprintf(os.Stderr, "line %d: %v\n", line, err)
				os.Exit(1)
			}
			if l.Kind != "EventList" || l.APIVersion != "audit.k8s.io/v1" {
				fmt.Fprintf(os.Stderr, "line %d: kind/apiVersion %q/%q, want EventList/audit.k8s.io/v1\n", line, l.Kind, l.APIVersion)
				os.Exit(1)
			}
			events = l.Items
		} else {
			var e auditv1.Event
			if err := strict(data, &e); err != nil {
				fmt.Fprintf(os.Stderr, "line %d: %v\n", line, err)
				os.Exit(1)
			}
			events = []auditv1.Event{e}
		}
		for i := range events {
			if err := check(&events[i]); err != nil {
				fmt.Fprintf(os.Stderr, "line %d: %v\n", line, err)
				os.Exit(1)
			}
			_ = out.Encode(summarize(&events[i]))
		}
	}
	if err := scanner.Err(); err != nil {
		fmt.Fprintf(os.Stderr, "reading stdin: %v\n", err)
		os.Exit(1)
	}
}
