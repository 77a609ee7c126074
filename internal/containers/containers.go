// Package containers manages the containers, images and networks the demo
// and the test harness run, through the registrar's small Docker client
// (package docker keeps to the calls the registrar makes: inspect, events,
// exec and signals).
package containers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/deployctl/deployctl/internal/docker"
)

// Stop stops the container, killing it after timeout.
func Stop(ctx context.Context, c *docker.Client, name string, timeout time.Duration) error {
	q := url.Values{"t": {fmt.Sprint(int(timeout.Seconds()))}}
	err := c.DoJSON(ctx, http.MethodPost, "/containers/"+url.PathEscape(name)+"/stop", q, nil, nil)
	var ae *docker.APIError
	if errors.As(err, &ae) && ae.Status == http.StatusNotModified {
		return nil
	}
	return err
}

// Start starts a created or stopped container.
func Start(ctx context.Context, c *docker.Client, name string) error {
	err := c.DoJSON(ctx, http.MethodPost, "/containers/"+url.PathEscape(name)+"/start", nil, nil, nil)
	var ae *docker.APIError
	if errors.As(err, &ae) && ae.Status == http.StatusNotModified {
		return nil
	}
	return err
}

// Remove deletes the container; force kills it first if it runs.
func Remove(ctx context.Context, c *docker.Client, name string, force bool) error {
	q := url.Values{"force": {fmt.Sprint(force)}, "v": {"true"}}
	err := c.DoJSON(ctx, http.MethodDelete, "/containers/"+url.PathEscape(name), q, nil, nil)
	if errors.Is(err, docker.ErrNotFound) {
		return nil
	}
	return err
}

// Mount is a bind mount for CreateSpec.
type Mount struct {
	Source, Target string
	ReadOnly       bool
}

// CreateSpec describes a container to create.
type CreateSpec struct {
	Image   string
	Cmd     []string
	Env     []string
	Labels  map[string]string
	Network string // network mode / network name; "" is the default bridge
	Mounts  []Mount
}

// Create creates (but does not start) a container and returns its id.
func Create(ctx context.Context, c *docker.Client, name string, spec CreateSpec) (string, error) {
	type mount struct {
		Type     string `json:"Type"`
		Source   string `json:"Source"`
		Target   string `json:"Target"`
		ReadOnly bool   `json:"ReadOnly"`
	}
	var mounts []mount
	for _, m := range spec.Mounts {
		mounts = append(mounts, mount{"bind", m.Source, m.Target, m.ReadOnly})
	}
	body := map[string]any{
		"Image":  spec.Image,
		"Cmd":    spec.Cmd,
		"Env":    spec.Env,
		"Labels": spec.Labels,
		"HostConfig": map[string]any{
			"NetworkMode": spec.Network,
			"Mounts":      mounts,
		},
	}
	var out struct {
		ID string `json:"Id"`
	}
	err := c.DoJSON(ctx, http.MethodPost, "/containers/create", url.Values{"name": {name}}, body, &out)
	return out.ID, err
}

// List returns the ids of containers (running or not) carrying label
// ("key" or "key=value").
func List(ctx context.Context, c *docker.Client, label string) ([]string, error) {
	fb, _ := json.Marshal(map[string][]string{"label": {label}})
	var out []struct {
		ID string `json:"Id"`
	}
	if err := c.DoJSON(ctx, http.MethodGet, "/containers/json", url.Values{"all": {"true"}, "filters": {string(fb)}}, nil, &out); err != nil {
		return nil, err
	}
	ids := make([]string, 0, len(out))
	for _, o := range out {
		ids = append(ids, o.ID)
	}
	return ids, nil
}

// Build builds an image tagged tag from a tar build context holding a
// Dockerfile, and returns the build log.
func Build(ctx context.Context, c *docker.Client, tag string, tarContext io.Reader) (string, error) {
	q := url.Values{"t": {tag}, "rm": {"true"}, "forcerm": {"true"}}
	resp, err := c.Do(ctx, http.MethodPost, "/build", q, tarContext, "application/x-tar")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var log strings.Builder
	dec := json.NewDecoder(resp.Body)
	for {
		var m struct {
			Stream string `json:"stream"`
			Error  string `json:"error"`
		}
		if err := dec.Decode(&m); err != nil {
			if errors.Is(err, io.EOF) {
				return log.String(), nil
			}
			return log.String(), fmt.Errorf("docker build %s: %w", tag, err)
		}
		log.WriteString(m.Stream)
		if m.Error != "" {
			return log.String(), fmt.Errorf("docker build %s: %s", tag, m.Error)
		}
	}
}

// ImageExists reports whether an image with that reference exists.
func ImageExists(ctx context.Context, c *docker.Client, ref string) (bool, error) {
	err := c.DoJSON(ctx, http.MethodGet, "/images/"+ref+"/json", nil, nil, nil)
	if errors.Is(err, docker.ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}

// CreateNetwork creates a bridge network with labels and returns its id.
func CreateNetwork(ctx context.Context, c *docker.Client, name string, labels map[string]string) (string, error) {
	var out struct {
		ID string `json:"Id"`
	}
	body := map[string]any{"Name": name, "Driver": "bridge", "Labels": labels, "CheckDuplicate": true}
	err := c.DoJSON(ctx, http.MethodPost, "/networks/create", nil, body, &out)
	return out.ID, err
}

// RemoveNetwork deletes a network; a missing one is not an error.
func RemoveNetwork(ctx context.Context, c *docker.Client, name string) error {
	err := c.DoJSON(ctx, http.MethodDelete, "/networks/"+url.PathEscape(name), nil, nil, nil)
	if errors.Is(err, docker.ErrNotFound) {
		return nil
	}
	return err
}

// ListNetworks returns the names of networks carrying label.
func ListNetworks(ctx context.Context, c *docker.Client, label string) ([]string, error) {
	fb, _ := json.Marshal(map[string][]string{"label": {label}})
	var out []struct {
		Name string `json:"Name"`
	}
	if err := c.DoJSON(ctx, http.MethodGet, "/networks", url.Values{"filters": {string(fb)}}, nil, &out); err != nil {
		return nil, err
	}
	names := make([]string, 0, len(out))
	for _, n := range out {
		names = append(names, n.Name)
	}
	return names, nil
}
