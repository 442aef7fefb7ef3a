package engine

import (
	"encoding/json"
	"testing"
	"time"
)

func TestClassify(t *testing.T) {
	cases := []struct {
		method  string
		class   Class
		version int
		timeout time.Duration
	}{
		{MethodNewPayloadV1, ClassNewPayload, 1, 8 * time.Second},
		{MethodNewPayloadV2, ClassNewPayload, 2, 8 * time.Second},
		{MethodNewPayloadV3, ClassNewPayload, 3, 8 * time.Second},
		{MethodNewPayloadV4, ClassNewPayload, 4, 8 * time.Second},
		{MethodNewPayloadV5, ClassNewPayload, 5, 6 * time.Second},
		{MethodNewPayloadV6, ClassNewPayload, 6, 6 * time.Second},
		{"engine_newPayloadV9", ClassNewPayload, 9, 6 * time.Second},
		{"engine_newPayloadWithWitnessV4", ClassNewPayload, 4, 8 * time.Second},
		{"engine_newPayloadWithWitnessV5", ClassNewPayload, 5, 6 * time.Second},
		{MethodForkchoiceUpdatedV1, ClassForkchoice, 1, 8 * time.Second},
		{MethodForkchoiceUpdatedV2, ClassForkchoice, 2, 8 * time.Second},
		{MethodForkchoiceUpdatedV3, ClassForkchoice, 3, 8 * time.Second},
		{MethodForkchoiceUpdatedV4, ClassForkchoice, 4, 8 * time.Second},
		{MethodForkchoiceUpdatedV5, ClassForkchoice, 5, 8 * time.Second},
		{"engine_forkchoiceUpdatedV7", ClassForkchoice, 7, 8 * time.Second},
		{"engine_forkchoiceUpdatedWithWitnessV3", ClassForkchoice, 3, 8 * time.Second},
		{MethodGetPayloadV1, ClassGetPayload, 1, time.Second},
		{MethodGetPayloadV2, ClassGetPayload, 2, time.Second},
		{MethodGetPayloadV3, ClassGetPayload, 3, time.Second},
		{MethodGetPayloadV4, ClassGetPayload, 4, time.Second},
		{MethodGetPayloadV5, ClassGetPayload, 5, time.Second},
		{MethodGetPayloadV6, ClassGetPayload, 6, time.Second},
		{"engine_getPayloadV10", ClassGetPayload, 10, time.Second},
		{"engine_getPayloadV", ClassRead, 0, time.Second},
		{MethodGetPayloadBodiesByHashV1, ClassRead, 1, 10 * time.Second},
		{MethodGetPayloadBodiesByRangeV1, ClassRead, 1, 10 * time.Second},
		{MethodGetPayloadBodiesByHashV2, ClassRead, 2, 10 * time.Second},
		{MethodGetPayloadBodiesByRangeV2, ClassRead, 2, 10 * time.Second},
		{MethodGetBlobsV1, ClassRead, 1, time.Second},
		{MethodGetBlobsV2, ClassRead, 2, time.Second},
		{MethodGetBlobsV3, ClassRead, 3, time.Second},
		{MethodGetBlobsV4, ClassRead, 4, time.Second},
		{MethodGetInclusionListV1, ClassRead, 1, time.Second},
		{MethodExchangeCapabilities, ClassRead, 0, time.Second},
		{MethodGetClientVersionV1, ClassRead, 1, time.Second},
		{MethodExchangeTransitionConfigurationV1, ClassRead, 1, time.Second},
		{"engine_executeStatelessPayloadV4", ClassRead, 4, time.Second},
		{"engine_hasBlobs", ClassRead, 0, time.Second},
		{"engine_", ClassRead, 0, time.Second},
		{"eth_syncing", ClassNonEngine, 0, time.Second},
		{"eth_getBlockByNumber", ClassNonEngine, 0, time.Second},
		{"Engine_newPayloadV4", ClassNonEngine, 4, time.Second},
		{"", ClassNonEngine, 0, time.Second},
		{"V3", ClassNonEngine, 3, time.Second},
		{"engine_newPayloadV99999999999", ClassNewPayload, 0, 8 * time.Second},
	}
	for _, c := range cases {
		t.Run(c.method, func(t *testing.T) {
			if got := Classify(c.method); got != c.class {
				t.Errorf("Classify = %v, want %v", got, c.class)
			}
			if got := MethodVersion(c.method); got != c.version {
				t.Errorf("MethodVersion = %d, want %d", got, c.version)
			}
			if got := Timeout(c.method); got != c.timeout {
				t.Errorf("Timeout = %v, want %v", got, c.timeout)
			}
		})
	}
}

func TestKnownMethods(t *testing.T) {
	seen := map[string]bool{}
	for _, m := range KnownMethods() {
		if seen[m] {
			t.Errorf("%s listed twice", m)
		}
		seen[m] = true
		if Classify(m) == ClassNonEngine {
			t.Errorf("%s classified as non-engine", m)
		}
		b := []byte(m)
		if got := internMethod(b); got != m {
			t.Errorf("internMethod(%s) = %s", m, got)
		}
		if n := testing.AllocsPerRun(10, func() { _ = internMethod(b) }); n != 0 {
			t.Errorf("internMethod(%s) allocates", m)
		}
	}
	if len(seen) != 29 {
		t.Errorf("%d known methods, want 29", len(seen))
	}
	if KnownMethods()[0] = "x"; KnownMethods()[0] == "x" {
		t.Error("KnownMethods shares its slice")
	}
}

func TestClassString(t *testing.T) {
	want := map[Class]string{ClassNonEngine: "non-engine", ClassForkchoice: "forkchoice", ClassNewPayload: "new-payload",
		ClassGetPayload: "get-payload", ClassRead: "read", 9: "class(9)"}
	for c, s := range want {
		if c.String() != s {
			t.Errorf("Class(%d).String() = %q, want %q", c, c.String(), s)
		}
	}
}

func TestHash(t *testing.T) {
	h := mustHash(t, "0x"+"AB"+tHash[4:])
	if h.String() != "0xab"+tHash[4:] {
		t.Errorf("String = %s", h)
	}
	if h.IsZero() || !(Hash{}).IsZero() {
		t.Error("IsZero")
	}
	b, err := json.Marshal(struct{ H Hash }{h})
	if err != nil || string(b) != `{"H":"0xab`+tHash[4:]+`"}` {
		t.Errorf("json = %s, %v", b, err)
	}
	var back struct{ H Hash }
	if err := json.Unmarshal(b, &back); err != nil || back.H != h {
		t.Errorf("round trip = %v, %v", back.H, err)
	}
	for _, bad := range []string{"", "0x", tHash[:65], tHash + "0", tHash[2:] + "00", "0X" + tHash[2:], tHash[:65] + "g"} {
		if _, err := ParseHash(bad); err == nil {
			t.Errorf("ParseHash(%q) succeeded", bad)
		}
	}
}

func TestParseQuantity(t *testing.T) {
	cases := []struct {
		in   string
		want uint64
		ok   bool
	}{
		{"0x0", 0, true},
		{"0x1", 1, true},
		{"0xff", 255, true},
		{"0xFF", 255, true},
		{"0xffffffffffffffff", 1<<64 - 1, true},
		{"0x", 0, false},
		{"0x00", 0, false},
		{"0x01", 0, false},
		{"0x10000000000000000", 0, false},
		{"1", 0, false},
		{"0X1", 0, false},
		{"0xg", 0, false},
		{"-0x1", 0, false},
	}
	for _, c := range cases {
		t.Run(c.in, func(t *testing.T) {
			got, ok := parseQuantity([]byte(c.in))
			if got != c.want || ok != c.ok {
				t.Errorf("parseQuantity = %d, %v; want %d, %v", got, ok, c.want, c.ok)
			}
		})
	}
}

func TestServedOnEnginePort(t *testing.T) {
	for m, want := range map[string]bool{
		"engine_newPayloadV4": true, "engine_somethingNewV1": true, "eth_chainId": true, "eth_getBlockByHash": true,
		"eth_sendRawTransaction": true, "eth_sendTransaction": false, "debug_setHead": false, "admin_addPeer": false,
		"Eth_chainId": false, "": false,
	} {
		if got := ServedOnEnginePort(m); got != want {
			t.Errorf("ServedOnEnginePort(%q) = %v, want %v", m, got, want)
		}
	}
}
