package jwtauth

import (
	"encoding/base64"
	"encoding/json"
	"sync"
	"time"

	"github.com/sync-proxy/sync-proxy/internal/clock"
)

// DefaultReuse is how long a [Signer] reuses a token when
// [SignerOptions].Reuse is zero.
const DefaultReuse = 5 * time.Second

// MaxReuse caps [SignerOptions].Reuse. A token that is at most 10 s old leaves
// 50 s of the EL's ±60 s window for clock skew between the two hosts.
const MaxReuse = 10 * time.Second

// signedHeader is base64url({"alg":"HS256","typ":"JWT"}), the header geth's
// client sends too.
const signedHeader = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9"

// SignerOptions are the optional parts of a [Signer].
type SignerOptions struct {
	// ID is sent as the `id` claim (the spec's CL identifier) when not empty.
	ID string
	// CLV is sent as the `clv` claim (client name and version) when not empty.
	CLV string
	// Reuse is how long a minted token is reused, measured from its `iat`.
	// Zero means DefaultReuse, negative means a fresh token every call, and
	// values above MaxReuse are capped to it.
	Reuse time.Duration
}

// Signer mints the HS256 tokens sync-proxy sends to one EL. It is safe for
// concurrent use.
type Signer struct {
	mac   macFunc // holds the secret out of fmt's reach
	clk   clock.Clock
	id    string
	clv   string
	reuse time.Duration

	mu    sync.Mutex
	token string    // last minted token; "" before the first
	iat   time.Time // its iat
}

// NewSigner returns a Signer for secret. A nil clk means clock.Real.
func NewSigner(secret Secret, clk clock.Clock, opts SignerOptions) *Signer {
	if clk == nil {
		clk = clock.Real{}
	}
	reuse := opts.Reuse
	switch {
	case reuse == 0:
		reuse = DefaultReuse
	case reuse > MaxReuse:
		reuse = MaxReuse
	}
	return &Signer{mac: newMAC(secret), clk: clk, id: opts.ID, clv: opts.CLV, reuse: reuse}
}

// Token returns a signed token whose claims are {"iat": now in whole seconds}
// plus `id` and `clv` when configured, and no `exp`. The same token is
// returned until it is Reuse old, or if the clock has gone back before its
// `iat`.
func (s *Signer) Token() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.clk.Now()
	if s.token != "" && !now.Before(s.iat) && now.Sub(s.iat) < s.reuse {
		return s.token
	}
	s.iat = time.Unix(now.Unix(), 0)
	s.token = s.mint(s.iat)
	return s.token
}

// Authorization returns the Authorization header value: "Bearer " + Token().
func (s *Signer) Authorization() string { return "Bearer " + s.Token() }

// mint signs a token issued at iat.
func (s *Signer) mint(iat time.Time) string {
	claims := struct {
		IssuedAt int64  `json:"iat"`
		ID       string `json:"id,omitempty"`
		CLV      string `json:"clv,omitempty"`
	}{iat.Unix(), s.id, s.clv}
	payload, err := json.Marshal(claims)
	if err != nil {
		panic("jwtauth: marshal claims: " + err.Error()) // cannot happen: an int64 and two strings
	}
	input := signedHeader + "." + base64.RawURLEncoding.EncodeToString(payload)
	return input + "." + base64.RawURLEncoding.EncodeToString(s.mac(input))
}
