package jwtauth_test

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/sync-proxy/sync-proxy/internal/clock"
	"github.com/sync-proxy/sync-proxy/internal/jwtauth"
)

// secretErr matches every error ParseSecret may return: fixed text and
// numbers, so no content can be echoed.
var secretErr = regexp.MustCompile(`^(empty, want 64 hex characters \(32 bytes\)|want 64 hex characters \(32 bytes\), (got \d+|found a non-hex character at offset \d+|decoding failed))$`)

func TestParseSecret(t *testing.T) {
	want := testSecret(0xa1)
	h := hex.EncodeToString(want[:])
	tests := []struct {
		name string
		text string
		err  string // "" = parses to want
	}{
		{"plain", h, ""},
		{"0x prefix", "0x" + h, ""},
		{"0X prefix", "0X" + h, ""},
		{"uppercase", strings.ToUpper(h), ""},
		{"0x uppercase", "0x" + strings.ToUpper(h), ""},
		{"trailing newline", h + "\n", ""},
		{"CRLF", h + "\r\n", ""},
		{"surrounding whitespace", " \t\n0x" + h + " \n\n", ""},
		{"empty", "", "empty, want 64 hex characters (32 bytes)"},
		{"whitespace only", " \n", "empty, want 64 hex characters (32 bytes)"},
		{"prefix only", "0x", "empty, want 64 hex characters (32 bytes)"},
		{"62 chars", h[:62], "want 64 hex characters (32 bytes), got 62"},
		{"66 chars", h + "ab", "want 64 hex characters (32 bytes), got 66"},
		{"0x and 62 chars", "0x" + h[:62], "want 64 hex characters (32 bytes), got 62"},
		{"double prefix", "0x0x" + h[:62], "want 64 hex characters (32 bytes), found a non-hex character at offset 1"},
		{"inner space", h[:32] + " " + h[32:], "want 64 hex characters (32 bytes), got 65"},
		{"non-hex", h[:10] + "g" + h[11:], "want 64 hex characters (32 bytes), found a non-hex character at offset 10"},
		{"non-hex first", "z" + h[1:], "want 64 hex characters (32 bytes), found a non-hex character at offset 0"},
		{"32 raw bytes", string(want[:]), "want 64 hex characters (32 bytes), got 32"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := jwtauth.ParseSecret([]byte(tt.text))
			if tt.err == "" {
				if err != nil || got != want {
					t.Fatalf("ParseSecret = %v, want the secret", err)
				}
				return
			}
			if err == nil {
				t.Fatal("ParseSecret succeeded, want an error")
			}
			if err.Error() != tt.err {
				t.Errorf("error %q, want %q", err, tt.err)
			}
			if got != (jwtauth.Secret{}) {
				t.Error("failed parse returned a non-zero secret")
			}
			if l := leaks(err.Error(), want); l != "" {
				t.Errorf("error %q leaks content %q", err, l)
			}
		})
	}
}

func TestLoadSecret(t *testing.T) {
	want := testSecret(0xa1)
	h := hex.EncodeToString(want[:])
	dir := t.TempDir()
	write := func(name, content string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	tests := []struct {
		name    string
		path    string
		content string   // what must not appear in the error
		errs    []string // substrings; nil = success
		is      error
	}{
		{"geth jwt.hex", write("jwt.hex", "0x"+h+"\n"), "", nil, nil},
		{"bare hex", write("bare", h), "", nil, nil},
		{"empty file", write("empty", ""), "", []string{"jwt secret " + filepath.Join(dir, "empty") + ": empty"}, nil},
		{"62 chars", write("short", h[:62]+"\n"), h[:62], []string{"jwt secret " + filepath.Join(dir, "short") + ": want 64 hex characters (32 bytes), got 62"}, nil},
		{"non-hex", write("nonhex", "0x"+h[:63]+"q"), h[:63], []string{filepath.Join(dir, "nonhex"), "non-hex character at offset 63"}, nil},
		{"too large", write("large", strings.Repeat(h, 100)), h, []string{filepath.Join(dir, "large"), "file larger than 4096 bytes"}, nil},
		{"missing file", filepath.Join(dir, "missing"), "", []string{"read jwt secret: open " + filepath.Join(dir, "missing")}, fs.ErrNotExist},
		{"directory", dir, "", []string{"read jwt secret: read " + dir}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := jwtauth.LoadSecret(tt.path)
			if tt.errs == nil {
				if err != nil || got != want {
					t.Fatalf("LoadSecret = %v, want the secret", err)
				}
				return
			}
			if err == nil {
				t.Fatal("LoadSecret succeeded, want an error")
			}
			for _, s := range tt.errs {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not contain %q", err, s)
				}
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("error %q is not %v", err, tt.is)
			}
			if tt.content != "" && strings.Contains(err.Error(), tt.content) {
				t.Errorf("error %q echoes the file content", err)
			}
		})
	}
}

// TestSecretNeverPrinted renders secrets, and values holding them, every way a
// log line, a config dump or a debug print might, and looks for the bytes.
func TestSecretNeverPrinted(t *testing.T) {
	secret := testSecret(0xa1)
	key := jwtauth.Key{Name: "bn1", Secret: secret}
	v, err := jwtauth.NewVerifier([]jwtauth.Key{key}, jwtauth.DefaultMaxDrift, clock.NewManual(t0))
	if err != nil {
		t.Fatal(err)
	}
	signer := jwtauth.NewSigner(secret, clock.NewManual(t0), jwtauth.SignerOptions{})
	_ = signer.Token()
	values := map[string]any{
		"Secret":         secret,
		"*Secret":        &secret,
		"Key":            key,
		"[]Key":          []jwtauth.Key{key},
		"map":            map[string]jwtauth.Secret{"s": secret},
		"exported field": struct{ S jwtauth.Secret }{secret},
		"*Verifier":      v,
		"*Signer":        signer,
	}
	verbs := []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "% x", "%d", "%o", "%b", "%c", "%U"}

	type rendering struct{ how, text string }
	var out []rendering
	for name, val := range values {
		for _, verb := range verbs {
			out = append(out, rendering{name + " " + verb, fmt.Sprintf(verb, val)})
		}
		if b, err := json.Marshal(val); err == nil {
			out = append(out, rendering{name + " json", string(b)})
		}
		for _, h := range []struct {
			name string
			new  func(*bytes.Buffer) slog.Handler
		}{
			{"text", func(b *bytes.Buffer) slog.Handler { return slog.NewTextHandler(b, nil) }},
			{"json", func(b *bytes.Buffer) slog.Handler { return slog.NewJSONHandler(b, nil) }},
		} {
			var buf bytes.Buffer
			slog.New(h.new(&buf)).Info("config", "value", val)
			out = append(out, rendering{name + " slog " + h.name, buf.String()})
		}
	}
	text, _ := secret.MarshalText()
	out = append(out, rendering{"MarshalText", string(text)}, rendering{"Sprint", fmt.Sprint(secret)}, rendering{"Sprintln", fmt.Sprintln(secret)})

	for _, r := range out {
		if l := leaks(r.text, secret); l != "" {
			t.Errorf("%s = %q reveals the secret (%q)", r.how, r.text, l)
		}
	}

	exact := []struct{ got, want string }{
		{fmt.Sprint(secret), "[redacted]"},
		{fmt.Sprintf("%x", secret), "[redacted]"},
		{fmt.Sprintf("%#v", secret), "jwtauth.Secret([redacted])"},
		{secret.String(), "[redacted]"},
		{string(text), "[redacted]"},
	}
	if b, _ := json.Marshal(secret); true {
		exact = append(exact, struct{ got, want string }{string(b), `"[redacted]"`})
	}
	for _, e := range exact {
		if e.got != e.want {
			t.Errorf("got %q, want %q", e.got, e.want)
		}
	}
}

// FuzzParseSecret: never panic; errors are one of the fixed texts; an
// accepted input decodes to 32 bytes whose hex is the input modulo case,
// prefix and surrounding whitespace.
func FuzzParseSecret(f *testing.F) {
	s := testSecret(0xa1)
	h := hex.EncodeToString(s[:])
	for _, seed := range []string{h, "0x" + h, "0X" + strings.ToUpper(h), " " + h + "\n", h[:62], h + "00", "0x", "", h[:20] + "G" + h[21:], "0x0x" + h[:60]} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, text []byte) {
		got, err := jwtauth.ParseSecret(text)
		if err != nil {
			if !secretErr.MatchString(err.Error()) {
				t.Fatalf("unexpected error text %q", err)
			}
			return
		}
		norm := strings.TrimSpace(string(text))
		if len(norm) >= 2 && (norm[:2] == "0x" || norm[:2] == "0X") {
			norm = norm[2:]
		}
		if enc := hex.EncodeToString(got[:]); enc != strings.ToLower(norm) {
			t.Fatalf("ParseSecret(%q) re-encodes to %s", text, enc)
		}
	})
}
