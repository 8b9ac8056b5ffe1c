package main

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/url"
	"strings"
	"time"
)

// upgradeProbe sends, on a fresh TLS connection offering only http/1.1 (as
// client-go's SPDY and WebSocket executors do), the upgrade request kubectl
// exec sends: SPDY/3.1 as a POST with Content-Length 0, or a WebSocket GET.
// It reports the status line and whether bytes written after the 101 come
// back (the server echoes).
func upgradeProbe(base, kind string) (status string, echoed bool, err error) {
	u, _ := url.Parse(base)
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", u.Host,
		&tls.Config{InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}})
	if err != nil {
		return "", false, err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	head := "POST /api/v1/namespaces/d/pods/p/exec?command=sh HTTP/1.1\r\nHost: x\r\n" +
		"Connection: Upgrade\r\nUpgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: v4.channel.k8s.io\r\n" +
		"Content-Length: 0\r\n\r\n"
	if kind == "websocket" {
		head = "GET /api/v1/namespaces/d/pods/p/exec?command=sh HTTP/1.1\r\nHost: x\r\n" +
			"Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n" +
			"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n" +
			"Sec-WebSocket-Protocol: v5.channel.k8s.io\r\n\r\n"
	}
	if _, err = io.WriteString(conn, head); err != nil {
		return "", false, err
	}
	br := bufio.NewReader(conn)
	status, err = br.ReadString('\n')
	status = strings.TrimSpace(status)
	if err != nil || !strings.Contains(status, " 101 ") {
		return status, false, err
	}
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return status, false, err
		}
		if line == "\r\n" {
			break
		}
	}
	if kind == "websocket" {
		// a masked text frame "ping"; a raw echo sends the same bytes back
		// (mask bit set), a WebSocket server answers with an unmasked frame.
		frame := []byte{0x81, 0x84, 1, 2, 3, 4, 'p' ^ 1, 'i' ^ 2, 'n' ^ 3, 'g' ^ 4}
		conn.Write(frame)
		got := make([]byte, 6)
		if _, err = io.ReadFull(br, got[:2]); err != nil {
			return status, false, err
		}
		return status, got[0] == 0x81 && got[1] == 0x84, nil
	}
	conn.Write([]byte("ping"))
	got := make([]byte, 4)
	if _, err = io.ReadFull(br, got); err != nil {
		return status, false, err
	}
	return status, string(got) == "ping", nil
}

func upgradeAll(base string) string {
	out := []string{}
	for _, kind := range []string{"spdy", "websocket"} {
		status, echoed, err := upgradeProbe(base, kind)
		e := ""
		if err != nil {
			e = err.Error()
		}
		out = append(out, fmt.Sprintf(`{"kind":%q,"status":%q,"echoed":%v,"err":%q}`, kind, status, echoed, e))
	}
	return "[" + strings.Join(out, ",") + "]"
}
