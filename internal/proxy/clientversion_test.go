package proxy

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sync-proxy/sync-proxy/internal/engine"
	"github.com/sync-proxy/sync-proxy/internal/fakeel"
	"github.com/sync-proxy/sync-proxy/internal/upstream"
)

// clientVersionBody is the beacon node's engine_getClientVersionV1 request.
const clientVersionBody = `{"jsonrpc":"2.0","id":"cv","method":"engine_getClientVersionV1","params":[{"code":"LH","name":"Lighthouse","version":"v8.0.0","commit":"0x01020304"}]}`

// TestClientVersion: the ELs' answers in one flat array, the primary's first; ELs that fail
// or are slow are left out.
func TestClientVersion(t *testing.T) {
	roles := []upstream.Role{upstream.RoleFollower, upstream.RolePrimary, upstream.RoleSyncOnly, upstream.RoleRelay}
	tests := []struct {
		name    string
		script  func(els []*fakeel.EL)
		want    []string // names, in order; nil: an error
		maxTook time.Duration
	}{
		{name: "all answer", script: func([]*fakeel.EL) {}, want: []string{"el2", "el1", "el3"}},
		{
			name: "one EL times out",
			script: func(els []*fakeel.EL) {
				els[0].Set(fakeel.Hang, 0)
			},
			want: []string{"el2", "el3"}, maxTook: 1200 * time.Millisecond,
		},
		{
			name: "errors and garbage are dropped",
			script: func(els []*fakeel.EL) {
				els[1].SetError(engine.MethodGetClientVersionV1, engine.CodeMethodNotFound, "the method does not exist")
				els[2].SetResult(engine.MethodGetClientVersionV1, json.RawMessage(`"GE"`))
			},
			want: []string{"el1"},
		},
		{
			name: "an EL with two entries stays flat",
			script: func(els []*fakeel.EL) {
				els[1].SetResult(engine.MethodGetClientVersionV1, json.RawMessage(`[{"code":"GE","name":"a","version":"1","commit":"0x01"},{"code":"GE","name":"b","version":"1","commit":"0x01"}]`))
			},
			want: []string{"a", "b", "el1", "el3"},
		},
		{
			name: "no EL answers",
			script: func(els []*fakeel.EL) {
				for _, el := range els {
					el.Set(fakeel.HTTP500, 0)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRig(t, roles)
			tt.script(r.els)
			start := time.Now()
			_, body := r.post("bn1", []byte(clientVersionBody))
			took := time.Since(start)
			a := decode(t, body)
			if string(a.ID) != `"cv"` {
				t.Fatalf("answer id %s", a.ID)
			}
			if tt.want == nil {
				if a.Error == nil || a.Error.Code != engine.CodeServerError {
					t.Fatalf("answer %s, want a server error", body)
				}
				return
			}
			var got []struct {
				Code, Name, Version, Commit string
			}
			if a.Error != nil || json.Unmarshal(a.Result, &got) != nil {
				t.Fatalf("answer %s, want an array", body)
			}
			var names []string
			for _, v := range got {
				names = append(names, v.Name)
			}
			if !slices.Equal(names, tt.want) {
				t.Fatalf("answer %s: names %q, want %q", body, names, tt.want)
			}
			if tt.maxTook > 0 && took > tt.maxTook {
				t.Errorf("answer took %v, want under %v", took, tt.maxTook)
			}
			for i, el := range r.els {
				var fwd []string
				for _, rec := range el.Requests() {
					if rec.Method == engine.MethodGetClientVersionV1 {
						fwd = append(fwd, string(rec.Body))
					}
				}
				switch {
				case roles[i] == upstream.RoleRelay && len(fwd) != 0:
					t.Errorf("relay %s was asked for its version", el.Name)
				case roles[i] != upstream.RoleRelay && (len(fwd) != 1 || !strings.Contains(fwd[0], `"Lighthouse"`)):
					t.Errorf("%s got %q, want the beacon node's request", el.Name, fwd)
				}
			}
		})
	}
}
