package doapi

import (
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/digitalocean/godo"
)

// defaultProject makes the account's default project when there is none
// (every DigitalOcean account has one; the provider moves resources there
// before it deletes a project).
func (s *Server) defaultProject() {
	for _, p := range s.st.Projects {
		if p.Project.IsDefault {
			return
		}
	}
	id := newUUID()
	s.st.Projects[id] = &project{Project: godo.Project{ID: id, OwnerUUID: ownerUUID, OwnerID: ownerID, Name: "default",
		Description: "The default project", Purpose: "Just trying out DigitalOcean", Environment: "Development",
		IsDefault: true, CreatedAt: now(), UpdatedAt: now()}}
}

const (
	ownerUUID = "6f5e2b5e-0000-4000-8000-00000000d0c1"
	ownerID   = 4242
)

var environments = []string{"", "Development", "Staging", "Production"}

func (s *Server) project(id string) (*project, error) {
	if id == "default" {
		for _, p := range s.st.Projects {
			if p.Project.IsDefault {
				return p, nil
			}
		}
	}
	p, ok := s.st.Projects[id]
	if !ok {
		return nil, notFound()
	}
	return p, nil
}

func (s *Server) createProject(r *http.Request) (int, any, error) {
	var req godo.CreateProjectRequest
	if err := decode(r, &req); err != nil {
		return 0, nil, err
	}
	if strings.TrimSpace(req.Name) == "" || len(req.Name) > 175 {
		return 0, nil, unprocessable("name is required, at most 175 characters")
	}
	if !slices.Contains(environments, req.Environment) {
		return 0, nil, unprocessable("environment %q: Development, Staging or Production", req.Environment)
	}
	if req.Purpose == "" {
		req.Purpose = "Web Application"
	}
	for _, p := range s.st.Projects {
		if p.Project.Name == req.Name {
			return 0, nil, &apiError{status: http.StatusConflict, ID: "conflict", Message: fmt.Sprintf("a project named %q already exists", req.Name)}
		}
	}
	p := &project{Project: godo.Project{ID: newUUID(), OwnerUUID: ownerUUID, OwnerID: ownerID, Name: req.Name, Description: req.Description,
		Purpose: req.Purpose, Environment: req.Environment, CreatedAt: now(), UpdatedAt: now()}, Resources: []string{}}
	s.st.Projects[p.Project.ID] = p
	return http.StatusCreated, map[string]any{"project": &p.Project}, s.changed()
}

func (s *Server) listProjects(r *http.Request) (int, any, error) {
	var out []*godo.Project
	for _, p := range sortedValues(s.st.Projects) {
		out = append(out, &p.Project)
	}
	return http.StatusOK, page("projects", out, len(out)), nil
}

func (s *Server) getProject(r *http.Request) (int, any, error) {
	p, err := s.project(r.PathValue("id"))
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, map[string]any{"project": &p.Project}, nil
}

// projectUpdate is PATCH or PUT /v2/projects/ID: every field optional.
type projectUpdate struct {
	Name        *string `json:"name"`
	Description *string `json:"description"`
	Purpose     *string `json:"purpose"`
	Environment *string `json:"environment"`
	IsDefault   *bool   `json:"is_default"`
}

func (s *Server) updateProject(r *http.Request) (int, any, error) {
	var req projectUpdate
	if err := decode(r, &req); err != nil {
		return 0, nil, err
	}
	p, err := s.project(r.PathValue("id"))
	if err != nil {
		return 0, nil, err
	}
	if req.Environment != nil && !slices.Contains(environments, *req.Environment) {
		return 0, nil, unprocessable("environment %q: Development, Staging or Production", *req.Environment)
	}
	if req.IsDefault != nil && *req.IsDefault != p.Project.IsDefault {
		return 0, nil, unprocessable("is_default: this stand-in keeps its default project")
	}
	for field, v := range map[*string]*string{&p.Project.Name: req.Name, &p.Project.Description: req.Description, &p.Project.Purpose: req.Purpose, &p.Project.Environment: req.Environment} {
		if v != nil {
			*field = *v
		}
	}
	p.Project.UpdatedAt = now()
	return http.StatusOK, map[string]any{"project": &p.Project}, s.changed()
}

func (s *Server) deleteProject(r *http.Request) (int, any, error) {
	p, err := s.project(r.PathValue("id"))
	if err != nil {
		return 0, nil, err
	}
	if p.Project.IsDefault {
		return 0, nil, unprocessable("cannot delete the default project")
	}
	if len(p.Resources) > 0 {
		return 0, nil, &apiError{status: http.StatusPreconditionFailed, ID: "precondition_failed",
			Message: "cannot delete a project with resources. move or remove the resources first"}
	}
	delete(s.st.Projects, p.Project.ID)
	return http.StatusNoContent, nil, s.changed()
}

func (s *Server) resourceList(p *project) []godo.ProjectResource {
	out := []godo.ProjectResource{}
	for _, urn := range p.Resources {
		out = append(out, godo.ProjectResource{URN: urn, AssignedAt: p.Project.UpdatedAt, Status: "ok",
			Links: &godo.ProjectResourceLinks{Self: "/v2/" + strings.ReplaceAll(strings.TrimPrefix(urn, "do:"), ":", "s/")}})
	}
	return out
}

func (s *Server) projectResources(r *http.Request) (int, any, error) {
	p, err := s.project(r.PathValue("id"))
	if err != nil {
		return 0, nil, err
	}
	res := s.resourceList(p)
	return http.StatusOK, page("resources", res, len(res)), nil
}

// assignResources moves resources into a project: a resource is in one
// project at a time. Only droplets are known resources here.
func (s *Server) assignResources(r *http.Request) (int, any, error) {
	var req struct {
		Resources []string `json:"resources"`
	}
	if err := decode(r, &req); err != nil {
		return 0, nil, err
	}
	p, err := s.project(r.PathValue("id"))
	if err != nil {
		return 0, nil, err
	}
	// Every URN is checked before any moves: a refused request changes
	// nothing.
	for _, urn := range req.Resources {
		var id int
		if _, err := fmt.Sscanf(urn, "do:droplet:%d", &id); err != nil || s.st.Droplets[id] == nil {
			return 0, nil, unprocessable("resources: %q is not the URN of a droplet of this account (do:droplet:ID)", urn)
		}
	}
	for _, urn := range req.Resources {
		for _, other := range s.st.Projects {
			other.Resources = slices.DeleteFunc(other.Resources, func(u string) bool { return u == urn })
		}
		p.Resources = append(p.Resources, urn)
	}
	return http.StatusOK, map[string]any{"resources": s.resourceList(p)}, s.changed()
}
