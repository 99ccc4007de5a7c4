package container

import (
	"context"

	"github.com/crio-appliance/crio/daemon/httpapi"
)

// ContainerInfo answers cAdvisor's GET /containers/<id>.
func (s *Service) ContainerInfo(_ context.Context, id string) (*httpapi.ContainerInfo, bool) {
	c, err := s.Get(id)
	if err != nil {
		return nil, false
	}
	info := &httpapi.ContainerInfo{
		Name: c.Name, Pid: c.Pid, Image: c.ImageName, ImageRef: c.ImageRef,
		CreatedTime: c.CreatedAt, Labels: c.Config.GetLabels(), Annotations: c.Config.GetAnnotations(),
		CrioAnnotations: map[string]string{
			"io.kubernetes.cri-o.ContainerID": c.ID,
			"io.kubernetes.cri-o.SandboxID":   c.PodID,
		},
		LogPath: c.LogPath, Root: c.Rootfs, Sandbox: c.PodID,
	}
	if c.State != StateRunning {
		info.Pid = 0
	}
	if pod, err := s.opts.Pods.Get(c.PodID); err == nil {
		info.IPs = pod.IPs
		if len(pod.IPs) > 0 {
			info.IP = pod.IPs[0]
		}
	}
	return info, true
}
