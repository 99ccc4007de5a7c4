package image

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// stallProxy forwards to a registry but, for one blob, sends half of it
// and then goes silent until released: a registry that hangs mid-download.
type stallProxy struct {
	Host    string
	stalled chan struct{} // closed when the stall begins
	release func()        // sends the rest of the blob (and ends the stall)
}

func newStallProxy(t *testing.T, upstream, stallDigest string) *stallProxy {
	t.Helper()
	p := &stallProxy{stalled: make(chan struct{})}
	var once, releaseOnce sync.Once
	release := make(chan struct{})
	p.release = func() { releaseOnce.Do(func() { close(release) }) }
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		resp := forward(w, r, upstream)
		if resp == nil {
			return
		}
		defer resp.Body.Close()
		for k, v := range resp.Header {
			w.Header()[k] = v
		}
		w.WriteHeader(resp.StatusCode)
		if r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/blobs/"+stallDigest) {
			half := resp.ContentLength / 2
			_, _ = io.CopyN(w, resp.Body, half)
			w.(http.Flusher).Flush()
			once.Do(func() { close(p.stalled) })
			select {
			case <-r.Context().Done():
				return
			case <-release:
			}
			_, _ = io.Copy(w, resp.Body)
			return
		}
		_, _ = io.Copy(w, resp.Body)
	}))
	t.Cleanup(func() { p.release(); srv.Close() })
	p.Host = strings.TrimPrefix(srv.URL, "http://")
	return p
}

// forward sends r on to the registry at upstream and returns its response
// (the caller closes the body), or answers 502 and returns nil.
func forward(w http.ResponseWriter, r *http.Request, upstream string) *http.Response {
	req, err := http.NewRequestWithContext(r.Context(), r.Method, "http://"+upstream+r.URL.RequestURI(), r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return nil
	}
	req.Header = r.Header.Clone()
	// Follow nothing: the registry's redirects are for the client.
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return nil
	}
	return resp
}
