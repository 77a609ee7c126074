package docker

// This file: the calls that manage containers, images and networks for the demo and
// the test harness; the registrar itself uses only Inspect, Events, Exec
// (nginx -t) and Kill (reload), in docker.go.

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
)

// Stop stops the container, killing it after timeout.
func (c *Client) Stop(ctx context.Context, name string, timeout time.Duration) error {
	q := url.Values{"t": {fmt.Sprint(int(timeout.Seconds()))}}
	err := c.doJSON(ctx, http.MethodPost, "/containers/"+url.PathEscape(name)+"/stop", q, nil, nil)
	var ae *APIError
	if errors.As(err, &ae) && ae.Status == http.StatusNotModified {
		return nil
	}
	return err
}

// Start starts a created or stopped container.
func (c *Client) Start(ctx context.Context, name string) error {
	err := c.doJSON(ctx, http.MethodPost, "/containers/"+url.PathEscape(name)+"/start", nil, nil, nil)
	var ae *APIError
	if errors.As(err, &ae) && ae.Status == http.StatusNotModified {
		return nil
	}
	return err
}

// Remove deletes the container; force kills it first if it runs.
func (c *Client) Remove(ctx context.Context, name string, force bool) error {
	q := url.Values{"force": {fmt.Sprint(force)}, "v": {"true"}}
	err := c.doJSON(ctx, http.MethodDelete, "/containers/"+url.PathEscape(name), q, nil, nil)
	if errors.Is(err, ErrNotFound) {
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
func (c *Client) Create(ctx context.Context, name string, spec CreateSpec) (string, error) {
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
	err := c.doJSON(ctx, http.MethodPost, "/containers/create", url.Values{"name": {name}}, body, &out)
	return out.ID, err
}

// List returns the ids of containers (running or not) carrying label
// ("key" or "key=value").
func (c *Client) List(ctx context.Context, label string) ([]string, error) {
	fb, _ := json.Marshal(map[string][]string{"label": {label}})
	var out []struct {
		ID string `json:"Id"`
	}
	if err := c.doJSON(ctx, http.MethodGet, "/containers/json", url.Values{"all": {"true"}, "filters": {string(fb)}}, nil, &out); err != nil {
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
func (c *Client) Build(ctx context.Context, tag string, tarContext io.Reader) (string, error) {
	q := url.Values{"t": {tag}, "rm": {"true"}, "forcerm": {"true"}}
	resp, err := c.do(ctx, http.MethodPost, "/build", q, tarContext, "application/x-tar")
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
func (c *Client) ImageExists(ctx context.Context, ref string) (bool, error) {
	err := c.doJSON(ctx, http.MethodGet, "/images/"+ref+"/json", nil, nil, nil)
	if errors.Is(err, ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}

// CreateNetwork creates a bridge network with labels and returns its id.
func (c *Client) CreateNetwork(ctx context.Context, name string, labels map[string]string) (string, error) {
	var out struct {
		ID string `json:"Id"`
	}
	body := map[string]any{"Name": name, "Driver": "bridge", "Labels": labels, "CheckDuplicate": true}
	err := c.doJSON(ctx, http.MethodPost, "/networks/create", nil, body, &out)
	return out.ID, err
}

// RemoveNetwork deletes a network; a missing one is not an error.
func (c *Client) RemoveNetwork(ctx context.Context, name string) error {
	err := c.doJSON(ctx, http.MethodDelete, "/networks/"+url.PathEscape(name), nil, nil, nil)
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	return err
}

// ListNetworks returns the names of networks carrying label.
func (c *Client) ListNetworks(ctx context.Context, label string) ([]string, error) {
	fb, _ := json.Marshal(map[string][]string{"label": {label}})
	var out []struct {
		Name string `json:"Name"`
	}
	if err := c.doJSON(ctx, http.MethodGet, "/networks", url.Values{"filters": {string(fb)}}, nil, &out); err != nil {
		return nil, err
	}
	names := make([]string, 0, len(out))
	for _, n := range out {
		names = append(names, n.Name)
	}
	return names, nil
}
