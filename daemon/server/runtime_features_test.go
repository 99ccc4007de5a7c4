package server

import (
	"context"
	"testing"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/crio-appliance/crio/daemon/container"
)

type handlerLister struct{ ContainerService }

func (handlerLister) RuntimeHandlers() []container.HandlerInfo {
	return []container.HandlerInfo{{Name: "", RecursiveReadOnly: true}, {Name: "runc", RecursiveReadOnly: true}, {Name: "old"}}
}

// Status reports the runtime features and each handler's.
func TestStatusFeatures(t *testing.T) {
	rt := runtimeapi.NewRuntimeServiceClient(dialCRI(t, Options{Containers: handlerLister{}}))
	st, err := rt.Status(context.Background(), &runtimeapi.StatusRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if !st.GetFeatures().GetSupplementalGroupsPolicy() {
		t.Errorf("features %v", st.GetFeatures())
	}
	got := map[string]bool{}
	for _, h := range st.GetRuntimeHandlers() {
		got[h.Name] = h.GetFeatures().GetRecursiveReadOnlyMounts()
		if h.GetFeatures().GetUserNamespaces() {
			t.Errorf("handler %q claims user namespaces", h.Name)
		}
	}
	if len(got) != 3 || !got[""] || !got["runc"] || got["old"] {
		t.Errorf("handlers %v", got)
	}
}
