// otlp-sink: a real OTLP receiver for MCA's tracing tests. It runs the
// OpenTelemetry Collector's own otlpreceiver (the code a Collector runs for
// its `otlp` receiver: gRPC on one port, HTTP with protobuf and JSON bodies
// on another) and appends every trace batch it accepts to a file as one
// OTLP JSON line (ptrace.JSONMarshaler, the Collector file exporter's
// format). A body the receiver cannot decode is refused by the receiver
// itself, exactly as a Collector would refuse it.
//
//	otlp-sink -grpc 127.0.0.1:PORT -http 127.0.0.1:PORT -out FILE
//
// It prints "ready" on stdout once both ports are bound, and stops on
// SIGTERM or SIGINT.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"sync"
	"syscall"

	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/receiver/otlpreceiver"
	"go.opentelemetry.io/collector/receiver/receivertest"
)

func main() {
	grpcAddr := flag.String("grpc", "", "OTLP/gRPC listen address (host:port)")
	httpAddr := flag.String("http", "", "OTLP/HTTP listen address (host:port)")
	outPath := flag.String("out", "", "file the received traces are appended to, one OTLP JSON line per batch")
	flag.Parse()
	if *grpcAddr == "" || *httpAddr == "" || *outPath == "" {
		fmt.Fprintln(os.Stderr, "otlp-sink: -grpc, -http and -out are required")
		os.Exit(2)
	}
	if err := run(*grpcAddr, *httpAddr, *outPath); err != nil {
		fmt.Fprintln(os.Stderr, "otlp-sink:", err)
		os.Exit(1)
	}
}

func run(grpcAddr, httpAddr, outPath string) error {
	out, err := os.OpenFile(outPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer out.Close()
	var mu sync.Mutex
	marshaler := &ptrace.JSONMarshaler{}
	sink, err := consumer.NewTraces(func(_ context.Context, td ptrace.Traces) error {
		line, err := marshaler.MarshalTraces(td)
		if err != nil {
			return err
		}
		mu.Lock()
		defer mu.Unlock()
		_, err = out.Write(append(line, '\n'))
		return err
	})
	if err != nil {
		return err
	}

	factory := otlpreceiver.NewFactory()
	cfg := factory.CreateDefaultConfig().(*otlpreceiver.Config)
	cfg.Protocols.GRPC.GetOrInsertDefault().NetAddr.Endpoint = grpcAddr
	cfg.Protocols.HTTP.GetOrInsertDefault().ServerConfig.NetAddr.Endpoint = httpAddr
	ctx := context.Background()
	recv, err := factory.CreateTraces(ctx, receivertest.NewNopSettings(factory.Type()), cfg, sink)
	if err != nil {
		return err
	}
	if err := recv.Start(ctx, componenttest.NewNopHost()); err != nil {
		return err
	}
	fmt.Println("ready")

	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	<-stop
	return recv.Shutdown(ctx)
}
