package loadgen

import (
	"context"
	"crypto/rand"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/sync-proxy/sync-proxy/internal/jwtauth"
)

func newSecret(t *testing.T) *jwtauth.Secret {
	t.Helper()
	var s jwtauth.Secret
	if _, err := rand.Read(s[:]); err != nil {
		t.Fatal(err)
	}
	return &s
}

func startEL(t *testing.T, cfg FakeELConfig) *FakeEL {
	t.Helper()
	el, err := StartFakeEL("127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = el.Close() })
	return el
}

func TestRunAgainstFakeEL(t *testing.T) {
	secret := newSecret(t)
	el := startEL(t, FakeELConfig{Secret: secret})
	next := uint64(0)
	for _, name := range []string{"np-1.4KB", "np-300KB", "fcu", "fcu-attrs"} {
		res, err := Run(context.Background(), RunConfig{
			URL: el.URL(), Template: template(t, name), Secret: secret, Concurrency: 3,
			Requests: 30, Warmup: 3, Duration: 10 * time.Second, StartSeq: next,
			Expect: Expect{Statuses: []string{StatusValid}},
		})
		if err != nil {
			t.Fatal(err)
		}
		if res.Sent != 30 || res.OK != 30 || len(res.Latencies) != 30 {
			t.Fatalf("%s: %v; errors %v (%s)", name, res, res.Errors, res.FirstErr)
		}
		if res.NextSeq != next+33 {
			t.Errorf("%s: NextSeq %d, want %d", name, res.NextSeq, next+33)
		}
		if res.Quantile(0.5) <= 0 || res.Quantile(0.5) > res.Max() || res.Throughput() <= 0 {
			t.Errorf("%s: p50 %v max %v throughput %v", name, res.Quantile(0.5), res.Max(), res.Throughput())
		}
		next = res.NextSeq
	}
	st := el.Stats()
	if st.Requests != 4*33 || st.Rejected != 0 || st.NewPayloads != 66 || st.Forkchoices != 66 {
		t.Errorf("stats %+v", st)
	}
	if st.Accepted > 4*3 {
		t.Errorf("%d connections for 4 runs of 3 senders", st.Accepted)
	}
}

func TestRunRate(t *testing.T) {
	el := startEL(t, FakeELConfig{})
	start := time.Now()
	res, err := Run(context.Background(), RunConfig{URL: el.URL(), Template: template(t, "fcu"), Rate: 50, Duration: 400 * time.Millisecond, Concurrency: 2})
	if err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took < 350*time.Millisecond || took > 2*time.Second {
		t.Errorf("run took %v", took)
	}
	if res.OK < 12 || res.OK > 25 {
		t.Errorf("%d requests at 50/s for 0.4s", res.OK)
	}
}

func TestRunReportsWrongAnswers(t *testing.T) {
	secret := newSecret(t)
	el := startEL(t, FakeELConfig{Secret: secret, Status: StatusSyncing})
	res, err := Run(context.Background(), RunConfig{URL: el.URL(), Template: template(t, "fcu"), Secret: secret, Requests: 5, Expect: Expect{Statuses: []string{StatusValid}}})
	if err != nil {
		t.Fatal(err)
	}
	if res.OK != 0 || res.Errors[ErrUnexpected.Error()] != 5 {
		t.Errorf("%v, errors %v", res, res.Errors)
	}
	// Without a token the EL refuses.
	res, err = Run(context.Background(), RunConfig{URL: el.URL(), Template: template(t, "fcu"), Requests: 2})
	if err != nil {
		t.Fatal(err)
	}
	if res.Errors["http 401"] != 2 || !strings.Contains(res.FirstErr, "missing token") {
		t.Errorf("errors %v (%s)", res.Errors, res.FirstErr)
	}
}

func TestRunValidates(t *testing.T) {
	if _, err := Run(context.Background(), RunConfig{}); err == nil {
		t.Error("empty config accepted")
	}
}

func TestFakeELHang(t *testing.T) {
	el := startEL(t, FakeELConfig{Hang: true})
	res, err := Run(context.Background(), RunConfig{URL: el.URL(), Template: template(t, "fcu"), Requests: 1, Timeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if res.OK != 0 || res.Errors["transport"] != 1 {
		t.Errorf("%v errors %v", res, res.Errors)
	}
	if st := el.Stats(); st.Hung != 1 || st.Forkchoices != 1 {
		t.Errorf("stats %+v", st)
	}
}

func TestFakeELOtherMethods(t *testing.T) {
	el := startEL(t, FakeELConfig{})
	for body, want := range map[string]string{
		`{"jsonrpc":"2.0","id":"a","method":"engine_exchangeCapabilities","params":[[]]}`: `"id":"a","result":["engine_newPayloadV1"`,
		`{"jsonrpc":"2.0","id":2,"method":"eth_chainId","params":[]}`:                     `{"jsonrpc":"2.0","id":2,"result":"0x1"}`,
		`{"jsonrpc":"2.0","id":3,"method":"engine_getPayloadV5","params":["0x01"]}`:       `"code":-38001`,
		`{"jsonrpc":"2.0","id":4,"method":"foo_bar","params":[]}`:                         `"code":-32601`,
		`{"jsonrpc":"2.0","id":5,"method":"engine_newPayloadV4","params":[{}]}`:           `"code":-32602`,
	} {
		resp, err := http.Post(el.URL(), "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !strings.Contains(string(got), want) {
			t.Errorf("%s → %s, want %s", body, got, want)
		}
	}
}

func TestParseProc(t *testing.T) {
	cpu, flt, err := parseStat([]byte("123 (a b) c) S 1 2 3 4 5 6 7 8 9 10 250 50 0 0 20 0 1"))
	if err != nil || cpu != 3*time.Second || flt != 7 {
		t.Errorf("cpu %v, faults %d, %v", cpu, flt, err)
	}
	hwm, err := parseHWM([]byte("Name:\tx\nVmPeak:\t 10 kB\nVmHWM:\t    2048 kB\n"))
	if err != nil || hwm != 2<<20 {
		t.Errorf("hwm %d, %v", hwm, err)
	}
	if _, err := parseHWM([]byte("Name: x\n")); err == nil {
		t.Error("missing VmHWM accepted")
	}
	self, err := ReadProc(os.Getpid())
	if err != nil || self.PeakRSS <= 0 {
		t.Errorf("ReadProc(self) = %+v, %v", self, err)
	}
}
