// h2-client: drives bench/repro/h2_server.ts the ways h2load cannot.
//
//	h2-client -url https://127.0.0.1:PORT -mode watch -n 200 -for 10s [-h1]
//	h2-client -url https://127.0.0.1:PORT -mode reset -n 20000 -c 16 [-h1]
//	h2-client -url https://127.0.0.1:PORT -mode upgrade
//
// watch: n concurrent GET /watch streams (over HTTP/2 they share one
// connection unless the server limits streams), each read for -for; prints
// how many lines each got (min, max) and how many connections were used.
// reset: n requests, c at a time, each cancelled mid-answer (a watch after
// its first line, or a /json before its answer is read), which over HTTP/2
// sends RST_STREAM(CANCEL); then one plain GET /json must still succeed.
// upgrade: see upgrade.go.
// The result is one JSON line on stdout; exit 1 if a check failed.
package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

type result struct {
	Mode     string  `json:"mode"`
	Proto    string  `json:"proto"`
	Streams  int     `json:"streams"`
	Conns    int     `json:"conns"`
	MinLines int     `json:"minLines,omitempty"`
	MaxLines int     `json:"maxLines,omitempty"`
	Errors   int64   `json:"errors"`
	Done     int64   `json:"done"`
	AfterOK  bool    `json:"afterOk"`
	Seconds  float64 `json:"seconds"`
	FirstErr string  `json:"firstErr,omitempty"`
}

func client(h1 bool) *http.Client {
	t := &http.Transport{
		TLSClientConfig:     &tls.Config{InsecureSkipVerify: true},
		ForceAttemptHTTP2:   !h1,
		MaxIdleConnsPerHost: 1000,
	}
	if h1 {
		t.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
	}
	return &http.Client{Transport: t, Timeout: 0}
}

type conns struct {
	mu   sync.Mutex
	seen map[string]bool
}

func (c *conns) trace(ctx context.Context) context.Context {
	return httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		GotConn: func(i httptrace.GotConnInfo) {
			c.mu.Lock()
			c.seen[i.Conn.LocalAddr().String()] = true
			c.mu.Unlock()
		},
	})
}

func watch(hc *http.Client, url string, n int, d time.Duration, r *result) {
	cs := &conns{seen: map[string]bool{}}
	lines := make([]int, n)
	var wg sync.WaitGroup
	var errs atomic.Int64
	var firstErr atomic.Value
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			req, _ := http.NewRequestWithContext(cs.trace(ctx), "GET", url+"/watch", nil)
			resp, err := hc.Do(req)
			if err != nil {
				errs.Add(1)
				firstErr.CompareAndSwap(nil, err.Error())
				return
			}
			r.Proto = resp.Proto
			sc := bufio.NewScanner(resp.Body)
			for sc.Scan() {
				lines[i]++
			}
			resp.Body.Close()
		}(i)
	}
	wg.Wait()
	r.MinLines, r.MaxLines = lines[0], lines[0]
	for _, l := range lines {
		r.MinLines = min(r.MinLines, l)
		r.MaxLines = max(r.MaxLines, l)
	}
	r.Errors = errs.Load()
	r.Conns = len(cs.seen)
	if v, ok := firstErr.Load().(string); ok {
		r.FirstErr = v
	}
}

func resetOne(hc *http.Client, url string, i int, cs *conns) error {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	path := "/watch"
	if i%2 == 1 {
		path = "/json"
	}
	req, _ := http.NewRequestWithContext(cs.trace(ctx), "GET", url+path, nil)
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	if path == "/watch" {
		_, err = bufio.NewReader(resp.Body).ReadString('\n')
	}
	cancel() // RST_STREAM(CANCEL) over h2; closes the connection over h1
	resp.Body.Close()
	return err
}

func reset(hc *http.Client, url string, n, c int, r *result) {
	cs := &conns{seen: map[string]bool{}}
	var next, done, errs atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	for w := 0; w < c; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1)
				if i > int64(n) {
					return
				}
				if err := resetOne(hc, url, int(i), cs); err != nil {
					errs.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
				}
				done.Add(1)
			}
		}()
	}
	wg.Wait()
	r.Done, r.Errors, r.Conns = done.Load(), errs.Load(), len(cs.seen)
	if v, ok := firstErr.Load().(string); ok {
		r.FirstErr = v
	}
}

func main() {
	url := flag.String("url", "", "server base URL")
	mode := flag.String("mode", "watch", "watch or reset")
	n := flag.Int("n", 200, "streams (watch) or requests (reset)")
	c := flag.Int("c", 16, "concurrency (reset)")
	d := flag.Duration("for", 10*time.Second, "how long each watch is read")
	h1 := flag.Bool("h1", false, "HTTP/1.1 only")
	bound := flag.Duration("bound", 120*time.Second, "give up after this")
	flag.Parse()
	time.AfterFunc(*bound, func() {
		fmt.Println(`{"error":"bound exceeded"}`)
		os.Exit(2)
	})
	if *mode == "upgrade" {
		fmt.Println(upgradeAll(*url))
		return
	}
	hc := client(*h1)
	r := &result{Mode: *mode, Streams: *n}
	start := time.Now()
	if *mode == "watch" {
		watch(hc, *url, *n, *d, r)
	} else {
		reset(hc, *url, *n, *c, r)
	}
	r.Seconds = time.Since(start).Seconds()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", *url+"/json", nil)
	if resp, err := hc.Do(req); err == nil {
		_, err = io.Copy(io.Discard, resp.Body)
		r.AfterOK = err == nil && resp.StatusCode == 200
		if r.Proto == "" {
			r.Proto = resp.Proto
		}
		resp.Body.Close()
	}
	out, _ := json.Marshal(r)
	fmt.Println(string(out))
	if !r.AfterOK || r.Errors > 0 {
		os.Exit(1)
	}
}
