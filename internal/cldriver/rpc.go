package cldriver

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"
)

// maxResponseBytes bounds what Post reads back; getPayload answers can be tens of MB.
const maxResponseBytes = 256 << 20

// ID is a raw JSON-RPC id: a number or a string (hive and geth vectors use "np7", "fcu7").
type ID json.RawMessage

// NumberID returns the id n.
func NumberID(n uint64) ID { return ID(strconv.AppendUint(nil, n, 10)) }

// StringID returns the id "s".
func StringID(s string) ID {
	b, _ := json.Marshal(s) // a string always marshals
	return ID(b)
}

// Request is one JSON-RPC call without its id: the method and the exact params bytes.
type Request struct {
	Method string
	Params json.RawMessage
}

// NewRequest marshals params into a Request.
func NewRequest(method string, params ...any) (Request, error) {
	if params == nil {
		params = []any{}
	}
	raw, err := json.Marshal(params)
	if err != nil {
		return Request{}, fmt.Errorf("marshal %s params: %w", method, err)
	}
	return Request{Method: method, Params: raw}, nil
}

// Body returns the JSON-RPC 2.0 request body with the given id. Params are copied byte for byte.
func (r Request) Body(id ID) []byte {
	method, _ := json.Marshal(r.Method) // a string always marshals
	var b bytes.Buffer
	b.WriteString(`{"jsonrpc":"2.0","id":`)
	b.Write(id)
	b.WriteString(`,"method":`)
	b.Write(method)
	b.WriteString(`,"params":`)
	b.Write(r.Params)
	b.WriteString(`}`)
	return b.Bytes()
}

// Response is a JSON-RPC 2.0 response with its result left raw.
type Response struct {
	ID     json.RawMessage `json:"id"`
	Result json.RawMessage `json:"result"`
	Error  *RPCError       `json:"error"`
}

// RPCError is a JSON-RPC error object.
type RPCError struct {
	Code    int             `json:"code"`
	Message string          `json:"message"`
	Data    json.RawMessage `json:"data,omitempty"`
}

func (e *RPCError) Error() string {
	if len(e.Data) > 0 && string(e.Data) != "null" {
		return fmt.Sprintf("json-rpc error %d: %s (%s)", e.Code, e.Message, e.Data)
	}
	return fmt.Sprintf("json-rpc error %d: %s", e.Code, e.Message)
}

// HTTPError is a non-200 HTTP answer, e.g. geth's 401 for a bad JWT.
type HTTPError struct {
	Status int
	Body   string
}

func (e *HTTPError) Error() string {
	return fmt.Sprintf("http %d: %s", e.Status, e.Body)
}

// Endpoint is one JSON-RPC HTTP endpoint, authenticated when Secret is set.
type Endpoint struct {
	URL    string
	Secret *Secret // nil: no Authorization header (public HTTP JSON-RPC)
	JWTID  string  // optional id claim in minted tokens
	HTTP   *http.Client
	Now    func() time.Time // token iat source; nil: time.Now

	nextID atomic.Uint64
}

// Post sends body as one JSON-RPC request, with a freshly minted token if the endpoint has a
// secret, and decodes the response envelope. A JSON-RPC error is returned in Response.Error,
// not as err.
func (e *Endpoint) Post(ctx context.Context, body []byte) (*Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.URL, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	if e.Secret != nil {
		now := time.Now
		if e.Now != nil {
			now = e.Now
		}
		token, err := e.Secret.Token(now(), e.JWTID)
		if err != nil {
			return nil, err
		}
		req.Header.Set("Authorization", "Bearer "+token)
	}
	client := e.HTTP
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	if err != nil {
		return nil, fmt.Errorf("read response from %s: %w", e.URL, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, &HTTPError{Status: resp.StatusCode, Body: string(bytes.TrimSpace(raw))}
	}
	var out Response
	if err := json.Unmarshal(raw, &out); err != nil {
		return nil, fmt.Errorf("decode response from %s: %w (body %.200q)", e.URL, err, raw)
	}
	return &out, nil
}

// Send posts r with the given id and decodes the result into result (unless nil).
// A JSON-RPC error is returned as *RPCError.
func (e *Endpoint) Send(ctx context.Context, r Request, id ID, result any) error {
	resp, err := e.Post(ctx, r.Body(id))
	if err != nil {
		return fmt.Errorf("%s: %w", r.Method, err)
	}
	if resp.Error != nil {
		return fmt.Errorf("%s: %w", r.Method, resp.Error)
	}
	if result == nil {
		return nil
	}
	if err := json.Unmarshal(resp.Result, result); err != nil {
		return fmt.Errorf("%s: decode result %.200q: %w", r.Method, resp.Result, err)
	}
	return nil
}

// Call marshals params, sends them with the endpoint's next numeric id and decodes the result.
func (e *Endpoint) Call(ctx context.Context, result any, method string, params ...any) error {
	r, err := NewRequest(method, params...)
	if err != nil {
		return err
	}
	return e.Send(ctx, r, NumberID(e.nextID.Add(1)), result)
}
