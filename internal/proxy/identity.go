package proxy

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/sync-proxy/sync-proxy/internal/jwtauth"
	"github.com/sync-proxy/sync-proxy/internal/upstream"
)

// Identity is who sent a request and how the proxy knows.
type Identity struct {
	Name   string // the beacon node's name as shown in logs, metrics and status
	Source string // "jwt", "path", "relay", "forwarded" or "address"
}

// bnPathPrefix is the path under which a beacon node may name itself: POST /bn/<name>.
const bnPathPrefix = "/bn/"

// identify decides which beacon node sent r. jwtName is the BN whose secret verified the
// token ("" when the token identified nobody in particular). The order is: the verified
// secret, the /bn/<name> path, the first proxy's header on a relayed request from a trusted
// peer, the client address forwarded by a trusted proxy, and the connection's address.
//
// A name bound to a secret (a --bn with its own jwt secret) is claimed only by a token
// signed with that secret: a request that names it any other way (its path, a relay's
// header, a forwarded or a connection address) while its token was signed with another
// secret, the shared one, is refused, so that whoever holds the shared secret cannot be
// counted as that node, let alone become the writer in its place. The refused identity is
// returned with the error, for the refusal's report.
func (p *Proxy) identify(r *http.Request, jwtName string) (Identity, error) {
	if jwtName != "" {
		return Identity{Name: jwtName, Source: "jwt"}, nil
	}
	id := p.claimed(r)
	if p.bound[id.Name] {
		return id, fmt.Errorf("beacon node %q is bound to its own jwt secret; this token was signed with another", id.Name)
	}
	return id, nil
}

// misboundWarnEvery spaces the warnings about requests refused for naming a bound node.
const misboundWarnEvery = time.Minute

// warnMisbound logs a request refused for naming a bound beacon node with another secret:
// at WARN at most once a minute (a beacon node given the shared secret instead of its own
// sends every request so), else at Debug.
func (p *Proxy) warnMisbound(r *http.Request, id Identity) {
	if !p.misbound.Allow(p.clk.Now()) {
		p.log.Debug("request refused: it names a beacon node bound to its own jwt secret", "bn", id.Name, "source", id.Source, "remote", r.RemoteAddr)
		return
	}
	p.log.Warn("request refused: it names a beacon node bound to its own jwt secret but its token was signed with another (the shared --jwt-secret); give that beacon node its own secret, or send it under another name",
		"bn", id.Name, "source", id.Source, "remote", r.RemoteAddr, "next_warning_in", misboundWarnEvery)
}

// claimed is the identity r claims without a secret of its own.
func (p *Proxy) claimed(r *http.Request) Identity {
	if name, ok := strings.CutPrefix(r.URL.Path, bnPathPrefix); ok && validName(name) {
		return Identity{Name: name, Source: "path"}
	}
	remote := remoteAddr(r.RemoteAddr)
	if p.trusted(remote) {
		if bn := r.Header.Get(upstream.HeaderBN); bn != "" && validName(bn) {
			return Identity{Name: bn, Source: "relay"}
		}
		if client, ok := p.forwardedClient(r.Header.Values("X-Forwarded-For")); ok {
			return Identity{Name: client.String(), Source: "forwarded"}
		}
	}
	if remote.IsValid() {
		return Identity{Name: remote.String(), Source: "address"}
	}
	return Identity{Name: r.RemoteAddr, Source: "address"}
}

// boundNames are the names of v's keys other than the shared one.
func boundNames(v *jwtauth.Verifier, shared string) map[string]bool {
	bound := make(map[string]bool)
	if v == nil {
		return bound
	}
	for _, n := range v.Names() {
		if n != shared {
			bound[n] = true
		}
	}
	return bound
}

// trusted reports whether addr belongs to a configured trusted proxy.
func (p *Proxy) trusted(addr netip.Addr) bool {
	if !addr.IsValid() {
		return false
	}
	for _, pre := range p.cfg.TrustedProxies {
		if pre.Contains(addr) {
			return true
		}
	}
	return false
}

// forwardedClient returns the client address from X-Forwarded-For: walking from the right,
// the first address that is not itself a trusted proxy. A header that does not parse names
// nobody, so the connection's address is used.
func (p *Proxy) forwardedClient(values []string) (netip.Addr, bool) {
	var hops []string
	for _, v := range values {
		hops = append(hops, strings.Split(v, ",")...)
	}
	for i := len(hops) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			return netip.Addr{}, false
		}
		a = a.Unmap()
		if !p.trusted(a) || i == 0 {
			return a, true
		}
	}
	return netip.Addr{}, false
}

// remoteAddr parses an http.Request.RemoteAddr ("1.2.3.4:5", "[::1]:5") into an address.
func remoteAddr(s string) netip.Addr {
	host, _, err := net.SplitHostPort(s)
	if err != nil {
		host = s
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}
	}
	return a.Unmap()
}

// validName reports whether s can name a beacon node: 1 to 64 characters of letters, digits,
// '.', '_', '-' and ':' (so relayed addresses such as "::1" pass).
func validName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, c := range s {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '.', c == '_', c == '-', c == ':':
		default:
			return false
		}
	}
	return true
}
