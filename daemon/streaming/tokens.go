package streaming

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"sync"
	"time"

	"github.com/crio-appliance/crio/daemon/errdefs"
)

// tokens hands out the one-time tokens of streaming URLs: an Exec,
// Attach or PortForward RPC stores its checked request under a random
// token, and the connection to /<kind>/<token> takes it out again.
//
// Tokens are bounded in number (a client that asks for URLs and never
// connects cannot grow the map) and in lifetime.
type tokens struct {
	mu      sync.Mutex
	entries map[string]tokenEntry
	ttl     time.Duration
	max     int
	now     func() time.Time
}

type tokenEntry struct {
	req     any
	expires time.Time
}

const (
	// tokenTTL is how long a URL stays valid; the kubelet connects at
	// once.
	tokenTTL = time.Minute
	// maxTokens bounds the URLs handed out and not yet used.
	maxTokens = 1000
	// tokenBytes of randomness: 128 bits cannot be guessed.
	tokenBytes = 16
)

// ErrTooManyStreams is returned when maxTokens URLs are outstanding.
var ErrTooManyStreams = errdefs.New(errdefs.ErrResourceExhausted, fmt.Sprintf("more than %d streaming requests are waiting for their client", maxTokens))

func newTokens() *tokens {
	return &tokens{entries: map[string]tokenEntry{}, ttl: tokenTTL, max: maxTokens, now: time.Now}
}

// insert stores req and returns its token.
func (t *tokens) insert(req any) (string, error) {
	var b [tokenBytes]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	tok := base64.RawURLEncoding.EncodeToString(b[:])
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	if len(t.entries) >= t.max {
		for k, e := range t.entries {
			if now.After(e.expires) {
				delete(t.entries, k)
			}
		}
		if len(t.entries) >= t.max {
			return "", ErrTooManyStreams
		}
	}
	t.entries[tok] = tokenEntry{req: req, expires: now.Add(t.ttl)}
	return tok, nil
}

// consume takes the request of tok out; false when there is none or it
// expired.
func (t *tokens) consume(tok string) (any, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	e, ok := t.entries[tok]
	if !ok {
		return nil, false
	}
	delete(t.entries, tok)
	if t.now().After(e.expires) {
		return nil, false
	}
	return e.req, true
}
