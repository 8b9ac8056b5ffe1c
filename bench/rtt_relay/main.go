// rtt-relay: a TCP relay on loopback that delays every byte by half the
// requested round-trip time in each direction, so the benchmark can put an
// API server "behind a link" with the RTT users see in real clusters. The
// kernel here has no netem, so the delay is made in user space. Bandwidth is
// not limited; only latency is added.
//
//	rtt-relay -to 127.0.0.1:PORT -rtt 5ms   (prints the port it listens on)
package main

import (
	"flag"
	"fmt"
	"net"
	"os"
	"time"
)

type piece struct {
	data []byte
	due  time.Time
}

// pipe copies src to dst, each read delivered `delay` after it was read.
func pipe(src, dst *net.TCPConn, delay time.Duration) {
	queue := make(chan piece, 4096)
	go func() {
		defer close(queue)
		for {
			buf := make([]byte, 64*1024)
			n, err := src.Read(buf)
			if n > 0 {
				queue <- piece{buf[:n], time.Now().Add(delay)}
			}
			if err != nil {
				return
			}
		}
	}()
	for p := range queue {
		if wait := time.Until(p.due); wait > 0 {
			time.Sleep(wait)
		}
		if _, err := dst.Write(p.data); err != nil {
			break
		}
	}
	dst.CloseWrite()
	src.CloseRead()
}

func main() {
	to := flag.String("to", "", "upstream host:port (loopback)")
	rtt := flag.Duration("rtt", 5*time.Millisecond, "round-trip time to add")
	flag.Parse()
	upstream, err := net.ResolveTCPAddr("tcp", *to)
	if err != nil || !upstream.IP.IsLoopback() {
		fmt.Fprintln(os.Stderr, "rtt-relay: -to must be a loopback host:port")
		os.Exit(2)
	}
	ln, err := net.ListenTCP("tcp", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		fmt.Fprintln(os.Stderr, "rtt-relay:", err)
		os.Exit(1)
	}
	fmt.Println(ln.Addr().(*net.TCPAddr).Port)
	half := *rtt / 2
	for {
		c, err := ln.AcceptTCP()
		if err != nil {
			continue
		}
		go func() {
			u, err := net.DialTCP("tcp", nil, upstream)
			if err != nil {
				c.Close()
				return
			}
			c.SetNoDelay(true)
			u.SetNoDelay(true)
			done := make(chan struct{}, 2)
			go func() { pipe(c, u, half); done <- struct{}{} }()
			go func() { pipe(u, c, half); done <- struct{}{} }()
			<-done
			<-done
			c.Close()
			u.Close()
		}()
	}
}
