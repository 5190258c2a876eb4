// sluice-grpc-load: an open-loop load generator for unary ModelInfer calls
// (inference.GRPCInferenceService, Open Inference Protocol over gRPC).
//
// Why it exists: a Node grpc-js client spends ~300 µs of CPU per unary call, so on a 2-core
// machine it saturates near 2,000 calls/s and cannot offer the 10,000 calls/s the gRPC latency
// figure is specified at. grpc-go costs a small fraction of that per call, and this program does
// nothing else in the timed path: the request is read once from a file as serialized bytes and
// sent as is, the answer is kept as bytes (the pass-through codec below), never decoded.
//
// Open loop: call i is scheduled at start + i/rate whatever happened to earlier calls, and
// runs in its own goroutine, so a slow server cannot slow the offered load down. Each latency
// is measured from the call's *scheduled* time to its answer, so time the generator itself
// lost before sending (a late timer, GC, a busy CPU) counts against the figure instead of
// hiding (coordinated omission corrected); how late calls left is recorded separately as the
// send lag, so a generator that could not keep up is visible rather than silent.
//
// Usage:
//
//	sluice-grpc-load -address 127.0.0.1:8001 -request req.bin -rate 10000 -duration 30 -connections 4 [-json]
//
// -request is one serialized inference.ModelInferRequest (plain protobuf bytes, without the
// 5-byte gRPC message prefix).
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
)

const method = "/inference.GRPCInferenceService/ModelInfer"

// rawCodec sends a *[]byte as the message and receives the message into a *[]byte: no protobuf
// code in the timed path, and no generated stubs needed. Its name, "proto", makes the
// content-type application/grpc+proto, what any protobuf client sends.
type rawCodec struct{}

func (rawCodec) Marshal(v any) ([]byte, error) {
	b, ok := v.(*[]byte)
	if !ok {
		return nil, fmt.Errorf("rawCodec: cannot marshal %T", v)
	}
	// The same request bytes are shared by every call; gRPC only reads them.
	return *b, nil
}

func (rawCodec) Unmarshal(data []byte, v any) error {
	b, ok := v.(*[]byte)
	if !ok {
		return fmt.Errorf("rawCodec: cannot unmarshal into %T", v)
	}
	*b = append((*b)[:0], data...)
	return nil
}

func (rawCodec) Name() string { return "proto" }

// Histograms in microseconds, 1 µs to 60 s, 3 significant digits.
func newHistogram() *hdrhistogram.Histogram { return hdrhistogram.New(1, 60_000_000, 3) }

func record(h *hdrhistogram.Histogram, d time.Duration) {
	us := d.Microseconds()
	if us < 0 {
		us = 0
	}
	if us > h.HighestTrackableValue() {
		us = h.HighestTrackableValue()
	}
	_ = h.RecordValue(us)
}

type stats struct {
	mu      sync.Mutex
	latency *hdrhistogram.Histogram // scheduled send -> answer, successful calls only
	lag     *hdrhistogram.Histogram // scheduled send -> actual send, every call
	errors  map[string]int64        // by gRPC status code name (plus EmptyResponse)

	sent     atomic.Int64
	answered atomic.Int64
	failed   atomic.Int64
}

type percentiles struct {
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P99  float64 `json:"p99"`
	P999 float64 `json:"p999"`
	Max  float64 `json:"max"`
}

type lagFigures struct {
	P50 float64 `json:"p50"`
	P99 float64 `json:"p99"`
	Max float64 `json:"max"`
}

type cpuFigures struct {
	UserS float64 `json:"userS"`
	SysS  float64 `json:"sysS"`
	WallS float64 `json:"wallS"`
	// (user+sys)/wall: the generator's CPU as a fraction of one core (can exceed 1).
	Cores float64 `json:"cores"`
}

type report struct {
	Address      string           `json:"address"`
	OfferedRate  float64          `json:"offeredRate"`
	DurationS    float64          `json:"durationS"`
	Connections  int              `json:"connections"`
	Sent         int64            `json:"sent"`
	Answered     int64            `json:"answered"`
	AchievedRate float64          `json:"achievedRate"`
	Errors       map[string]int64 `json:"errors"`
	ErrorCount   int64            `json:"errorCount"`
	LatencyMs    percentiles      `json:"latencyMs"`
	SendLagMs    lagFigures       `json:"sendLagMs"`
	CPU          cpuFigures       `json:"cpu"`
}

func ms(us int64) float64 { return math.Round(float64(us)) / 1000 }

func cpuSeconds() (user, sys float64) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, 0
	}
	tv := func(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }
	return tv(ru.Utime), tv(ru.Stime)
}

func fail(format string, a ...any) {
	fmt.Fprintf(os.Stderr, "sluice-grpc-load: "+format+"\n", a...)
	os.Exit(1)
}

func main() {
	address := flag.String("address", "", "server host:port (required)")
	requestFile := flag.String("request", "", "file holding one serialized ModelInferRequest, not length-prefixed (required)")
	rate := flag.Float64("rate", 1000, "calls per second offered")
	duration := flag.Float64("duration", 10, "seconds of load")
	connections := flag.Int("connections", 4, "separate gRPC client connections (one HTTP/2 connection each), used round-robin")
	deadline := flag.Duration("deadline", 10*time.Second, "per-call deadline")
	asJSON := flag.Bool("json", false, "print one JSON object on stdout instead of text")
	flag.Parse()
	if *address == "" || *requestFile == "" {
		flag.Usage()
		os.Exit(2)
	}
	if *rate <= 0 || *duration <= 0 || *connections < 1 {
		fail("-rate and -duration must be > 0 and -connections >= 1")
	}
	req, err := os.ReadFile(*requestFile)
	if err != nil {
		fail("%v", err)
	}
	if len(req) == 0 {
		fail("%s is empty", *requestFile)
	}

	// Separate ClientConns, not one: a ClientConn multiplexes every call on one HTTP/2
	// connection, and a server may spread connections (not streams) over its threads.
	conns := make([]*grpc.ClientConn, *connections)
	for i := range conns {
		cc, err := grpc.NewClient(*address,
			grpc.WithTransportCredentials(insecure.NewCredentials()),
			grpc.WithDefaultCallOptions(grpc.ForceCodec(rawCodec{}),
				grpc.MaxCallRecvMsgSize(math.MaxInt32), grpc.MaxCallSendMsgSize(math.MaxInt32)))
		if err != nil {
			fail("connection %d: %v", i, err)
		}
		defer cc.Close()
		conns[i] = cc
	}
	// One untimed call per connection: it connects them all before the clock starts, and a
	// server that cannot answer at all fails here with its error rather than as a run of errors.
	for i, cc := range conns {
		ctx, cancel := context.WithTimeout(context.Background(), *deadline)
		var resp []byte
		err := cc.Invoke(ctx, method, &req, &resp)
		cancel()
		if err != nil {
			fail("warm-up call on connection %d to %s: %v", i, *address, err)
		}
		if len(resp) == 0 {
			fail("warm-up call on connection %d to %s: empty answer", i, *address)
		}
	}

	st := &stats{latency: newHistogram(), lag: newHistogram(), errors: map[string]int64{}}
	var wg sync.WaitGroup
	call := func(cc *grpc.ClientConn, scheduled time.Time) {
		defer wg.Done()
		sendStart := time.Now()
		ctx, cancel := context.WithDeadline(context.Background(), sendStart.Add(*deadline))
		var resp []byte
		err := cc.Invoke(ctx, method, &req, &resp)
		cancel()
		done := time.Now()
		// The answer is checked minimally (status OK, non-empty body): correctness is checked
		// before any timed run by whoever runs this (bench/grpc.ts checks every server's answer).
		code := ""
		if err != nil {
			code = status.Code(err).String()
		} else if len(resp) == 0 {
			code = "EmptyResponse"
		}
		st.mu.Lock()
		record(st.lag, sendStart.Sub(scheduled))
		if code == "" {
			record(st.latency, done.Sub(scheduled))
		} else {
			st.errors[code]++
		}
		st.mu.Unlock()
		if code == "" {
			st.answered.Add(1)
		} else {
			st.failed.Add(1)
		}
	}

	total := int64(math.Round(*rate * *duration))
	interval := float64(time.Second) / *rate
	user0, sys0 := cpuSeconds()
	start := time.Now()

	// Progress on stderr, once a second; stdout stays clean for -json.
	stopProgress := make(chan struct{})
	progressDone := make(chan struct{})
	go func() {
		defer close(progressDone)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-stopProgress:
				return
			case now := <-t.C:
				s, a, f := st.sent.Load(), st.answered.Load(), st.failed.Load()
				fmt.Fprintf(os.Stderr, "%5.1fs  sent %d  answered %d  errors %d  in flight %d\n",
					now.Sub(start).Seconds(), s, a, f, s-a-f)
			}
		}
	}()

	// The schedule: one goroutine sleeps until the next call is due, then starts every call
	// that is due (after a late wake-up, the missed ones leave at once: catching up, not
	// skipping), each in its own goroutine so no answer is waited for.
	for i := int64(0); i < total; i++ {
		scheduled := start.Add(time.Duration(float64(i) * interval))
		if d := time.Until(scheduled); d > 0 {
			time.Sleep(d)
		}
		wg.Add(1)
		st.sent.Add(1)
		go call(conns[i%int64(len(conns))], scheduled)
	}
	wg.Wait() // every call ends by its deadline
	wall := time.Since(start).Seconds()
	user1, sys1 := cpuSeconds()
	close(stopProgress)
	<-progressDone

	st.mu.Lock()
	defer st.mu.Unlock()
	var errCount int64
	for _, n := range st.errors {
		errCount += n
	}
	lat := st.latency
	r := report{
		Address: *address, OfferedRate: *rate, DurationS: *duration, Connections: len(conns),
		Sent: st.sent.Load(), Answered: st.answered.Load(),
		// Answers per second over the time the answers took to arrive (at least -duration): a
		// server that falls behind answers everything eventually, and answered/duration would
		// then report the offered rate.
		AchievedRate: float64(st.answered.Load()) / math.Max(*duration, wall),
		Errors:       st.errors, ErrorCount: errCount,
		LatencyMs: percentiles{
			P50: ms(lat.ValueAtQuantile(50)), P90: ms(lat.ValueAtQuantile(90)), P99: ms(lat.ValueAtQuantile(99)),
			P999: ms(lat.ValueAtQuantile(99.9)), Max: ms(lat.Max()),
		},
		SendLagMs: lagFigures{P50: ms(st.lag.ValueAtQuantile(50)), P99: ms(st.lag.ValueAtQuantile(99)), Max: ms(st.lag.Max())},
		CPU:       cpuFigures{UserS: user1 - user0, SysS: sys1 - sys0, WallS: wall, Cores: (user1 - user0 + sys1 - sys0) / wall},
	}
	if *asJSON {
		enc := json.NewEncoder(os.Stdout)
		if err := enc.Encode(r); err != nil {
			fail("%v", err)
		}
		return
	}
	fmt.Print(describe(r))
}

// describe is the human-readable form of a report.
func describe(r report) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: offered %.0f calls/s for %.0f s over %d connections (open loop)\n", r.Address, r.OfferedRate, r.DurationS, r.Connections)
	fmt.Fprintf(&b, "achieved %.1f calls/s: %d answered of %d sent, %d errors", r.AchievedRate, r.Answered, r.Sent, r.ErrorCount)
	if r.ErrorCount > 0 {
		codes := make([]string, 0, len(r.Errors))
		for c := range r.Errors {
			codes = append(codes, c)
		}
		sort.Strings(codes)
		parts := make([]string, len(codes))
		for i, c := range codes {
			parts[i] = fmt.Sprintf("%s %d", c, r.Errors[c])
		}
		fmt.Fprintf(&b, " (%s)", strings.Join(parts, ", "))
	}
	l := r.LatencyMs
	fmt.Fprintf(&b, "\nlatency from scheduled send, ms: p50 %.3f  p90 %.3f  p99 %.3f  p99.9 %.3f  max %.3f\n", l.P50, l.P90, l.P99, l.P999, l.Max)
	fmt.Fprintf(&b, "send lag, ms: p50 %.3f  p99 %.3f  max %.3f\n", r.SendLagMs.P50, r.SendLagMs.P99, r.SendLagMs.Max)
	fmt.Fprintf(&b, "generator CPU: %.2f cores (user %.1f s + sys %.1f s over %.1f s wall)\n", r.CPU.Cores, r.CPU.UserS, r.CPU.SysS, r.CPU.WallS)
	if r.SendLagMs.P99 > 1 {
		b.WriteString("note: send lag p99 > 1 ms: calls left late (generator short of CPU, or the machine busy), and that lateness is inside the latencies above\n")
	}
	return b.String()
}
