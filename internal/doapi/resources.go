package doapi

import (
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/digitalocean/godo"
	"golang.org/x/crypto/ssh"
)

func (s *Server) routes() map[string]handler {
	return map[string]handler{
		"POST /v2/account/keys":        s.createKey,
		"GET /v2/account/keys":         s.listKeys,
		"GET /v2/account/keys/{id}":    s.getKey,
		"PUT /v2/account/keys/{id}":    s.renameKey,
		"DELETE /v2/account/keys/{id}": s.deleteKey,

		"POST /v2/tags":                    s.createTag,
		"GET /v2/tags":                     s.listTags,
		"GET /v2/tags/{name}":              s.getTag,
		"DELETE /v2/tags/{name}":           s.deleteTag,
		"POST /v2/tags/{name}/resources":   s.tagResources,
		"DELETE /v2/tags/{name}/resources": s.untagResources,

		"POST /v2/vpcs":        s.createVPC,
		"GET /v2/vpcs":         s.listVPCs,
		"GET /v2/vpcs/{id}":    s.getVPC,
		"PUT /v2/vpcs/{id}":    s.updateVPC,
		"PATCH /v2/vpcs/{id}":  s.updateVPC,
		"DELETE /v2/vpcs/{id}": s.deleteVPC,

		"POST /v2/images":        s.createImage,
		"GET /v2/images":         s.listImages,
		"GET /v2/images/{id}":    s.getImage,
		"PUT /v2/images/{id}":    s.updateImage,
		"DELETE /v2/images/{id}": s.deleteImage,

		"POST /v2/droplets":        s.createDroplet,
		"GET /v2/droplets":         s.listDroplets,
		"GET /v2/droplets/{id}":    s.getDroplet,
		"DELETE /v2/droplets/{id}": s.deleteDroplet,

		"POST /v2/firewalls":        s.createFirewall,
		"GET /v2/firewalls":         s.listFirewalls,
		"GET /v2/firewalls/{id}":    s.getFirewall,
		"PUT /v2/firewalls/{id}":    s.updateFirewall,
		"DELETE /v2/firewalls/{id}": s.deleteFirewall,

		"POST /v2/projects":                s.createProject,
		"GET /v2/projects":                 s.listProjects,
		"GET /v2/projects/{id}":            s.getProject,
		"PATCH /v2/projects/{id}":          s.updateProject,
		"PUT /v2/projects/{id}":            s.updateProject,
		"DELETE /v2/projects/{id}":         s.deleteProject,
		"GET /v2/projects/{id}/resources":  s.projectResources,
		"POST /v2/projects/{id}/resources": s.assignResources,
	}
}

// Regions the stand-in accepts: DigitalOcean's (the provider's list).
var regions = []string{"nyc1", "nyc2", "nyc3", "sgp1", "lon1", "ams2", "ams3", "fra1", "tor1", "sfo1", "sfo2", "sfo3", "blr1", "syd1", "atl1"}

func checkRegion(field, slug string) error {
	if !slices.Contains(regions, slug) {
		return unprocessable("%s %q is not a DigitalOcean region (%s)", field, slug, strings.Join(regions, ", "))
	}
	return nil
}

// --- account keys ---

func (s *Server) createKey(r *http.Request) (int, any, error) {
	var req godo.KeyCreateRequest
	if err := decode(r, &req); err != nil {
		return 0, nil, err
	}
	pub, _, _, _, err := ssh.ParseAuthorizedKey([]byte(req.PublicKey))
	if err != nil {
		return 0, nil, unprocessable("public_key is not an OpenSSH public key: %v", err)
	}
	if strings.TrimSpace(req.Name) == "" {
		return 0, nil, unprocessable("name is required")
	}
	fp := ssh.FingerprintLegacyMD5(pub)
	for _, k := range s.st.Keys {
		if k.Fingerprint == fp {
			return 0, nil, unprocessable("SSH Key is already in use on your account")
		}
	}
	k := &godo.Key{ID: s.st.nextID(), Name: req.Name, Fingerprint: fp, PublicKey: strings.TrimSpace(req.PublicKey)}
	s.st.Keys[k.ID] = k
	return http.StatusCreated, map[string]any{"ssh_key": k}, s.changed()
}

// key finds a key by id or fingerprint, as the API does.
func (s *Server) key(ref string) (*godo.Key, error) {
	if id, err := strconv.Atoi(ref); err == nil {
		if k, ok := s.st.Keys[id]; ok {
			return k, nil
		}
	}
	for _, k := range s.st.Keys {
		if k.Fingerprint == ref {
			return k, nil
		}
	}
	return nil, notFound()
}

func (s *Server) listKeys(r *http.Request) (int, any, error) {
	keys := sortedValues(s.st.Keys)
	return http.StatusOK, page("ssh_keys", keys, len(keys)), nil
}

func (s *Server) getKey(r *http.Request) (int, any, error) {
	k, err := s.key(r.PathValue("id"))
	return http.StatusOK, map[string]any{"ssh_key": k}, err
}

func (s *Server) renameKey(r *http.Request) (int, any, error) {
	var req godo.KeyUpdateRequest
	if err := decode(r, &req); err != nil {
		return 0, nil, err
	}
	k, err := s.key(r.PathValue("id"))
	if err != nil {
		return 0, nil, err
	}
	k.Name = req.Name
	return http.StatusOK, map[string]any{"ssh_key": k}, s.changed()
}

func (s *Server) deleteKey(r *http.Request) (int, any, error) {
	k, err := s.key(r.PathValue("id"))
	if err != nil {
		return 0, nil, err
	}
	delete(s.st.Keys, k.ID)
	return http.StatusNoContent, nil, s.changed()
}

// --- tags ---

var tagRe = regexp.MustCompile(`^[a-zA-Z0-9_:\-]{1,255}$`)

// checkTags refuses a tags field that names something no tag could be.
func checkTags(tags []string) error {
	for _, t := range tags {
		if !tagRe.MatchString(t) {
			return unprocessable("tags: %q is not a tag name", t)
		}
	}
	return nil
}

func (s *Server) createTag(r *http.Request) (int, any, error) {
	var req godo.TagCreateRequest
	if err := decode(r, &req); err != nil {
		return 0, nil, err
	}
	if !tagRe.MatchString(req.Name) {
		return 0, nil, unprocessable("name %q: a tag is 1-255 letters, digits, '_', ':' and '-'", req.Name)
	}
	s.st.Tags[req.Name] = true
	return http.StatusCreated, map[string]any{"tag": s.tag(req.Name)}, s.changed()
}

// tag is name with its counts, every kind present (the provider reads
// each without a nil check).
func (s *Server) tag(name string) *godo.Tag {
	n := 0
	for _, d := range s.st.Droplets {
		if slices.Contains(d.Droplet.Tags, name) {
			n++
		}
	}
	return &godo.Tag{Name: name, Resources: &godo.TaggedResources{
		Count: n, Droplets: &godo.TaggedDropletsResources{Count: n}, Images: &godo.TaggedImagesResources{},
		Volumes: &godo.TaggedVolumesResources{}, VolumeSnapshots: &godo.TaggedVolumeSnapshotsResources{}, Databases: &godo.TaggedDatabasesResources{},
	}}
}

func (s *Server) listTags(r *http.Request) (int, any, error) {
	var tags []*godo.Tag
	for _, n := range sortedKeys(s.st.Tags) {
		tags = append(tags, s.tag(n))
	}
	return http.StatusOK, page("tags", tags, len(tags)), nil
}

func (s *Server) getTag(r *http.Request) (int, any, error) {
	if _, err := byKey(s.st.Tags, r.PathValue("name")); err != nil {
		return 0, nil, err
	}
	return http.StatusOK, map[string]any{"tag": s.tag(r.PathValue("name"))}, nil
}

func (s *Server) deleteTag(r *http.Request) (int, any, error) {
	name := r.PathValue("name")
	if _, err := byKey(s.st.Tags, name); err != nil {
		return 0, nil, err
	}
	delete(s.st.Tags, name)
	for _, d := range s.st.Droplets {
		d.Droplet.Tags = slices.DeleteFunc(d.Droplet.Tags, func(t string) bool { return t == name })
	}
	return http.StatusNoContent, nil, s.changed()
}

func (s *Server) tagResources(r *http.Request) (int, any, error) { return s.retag(r, true) }

func (s *Server) untagResources(r *http.Request) (int, any, error) { return s.retag(r, false) }

// retag adds or removes a tag on droplets (the only resources the
// stand-in tags).
func (s *Server) retag(r *http.Request, add bool) (int, any, error) {
	var req godo.TagResourcesRequest
	if err := decode(r, &req); err != nil {
		return 0, nil, err
	}
	name := r.PathValue("name")
	if _, err := byKey(s.st.Tags, name); err != nil {
		return 0, nil, err
	}
	// Every resource is checked before any changes: a refused request
	// changes nothing.
	var ds []*droplet
	for _, res := range req.Resources {
		id, _ := strconv.Atoi(res.ID)
		d, ok := s.st.Droplets[id]
		if res.Type != godo.DropletResourceType || !ok {
			return 0, nil, unprocessable("resources: %s %q is not a droplet of this account", res.Type, res.ID)
		}
		ds = append(ds, d)
	}
	for _, d := range ds {
		d.Droplet.Tags = slices.DeleteFunc(d.Droplet.Tags, func(t string) bool { return t == name })
		if add {
			d.Droplet.Tags = append(d.Droplet.Tags, name)
		}
	}
	return http.StatusNoContent, nil, s.changed()
}

// --- VPCs ---

func (s *Server) createVPC(r *http.Request) (int, any, error) {
	var req godo.VPCCreateRequest
	if err := decode(r, &req); err != nil {
		return 0, nil, err
	}
	if strings.TrimSpace(req.Name) == "" {
		return 0, nil, unprocessable("name is required")
	}
	if err := checkRegion("region", req.RegionSlug); err != nil {
		return 0, nil, err
	}
	if req.IPRange != "" && req.IPRange != s.cfg.VPCRange.String() {
		return 0, nil, unprocessable("ip_range %s: this stand-in's VPCs are its machines' network, %s (leave ip_range unset)", req.IPRange, s.cfg.VPCRange)
	}
	for _, v := range s.st.VPCs {
		if v.Name == req.Name {
			return 0, nil, unprocessable("a VPC named %q already exists", req.Name)
		}
	}
	id := newUUID()
	v := &godo.VPC{ID: id, URN: "do:vpc:" + id, Name: req.Name, Description: req.Description, RegionSlug: req.RegionSlug,
		IPRange: s.cfg.VPCRange.String(), CreatedAt: time.Now().UTC().Truncate(time.Second)}
	s.st.VPCs[id] = v
	return http.StatusCreated, map[string]any{"vpc": v}, s.changed()
}

func (s *Server) listVPCs(r *http.Request) (int, any, error) {
	vpcs := sortedValues(s.st.VPCs)
	return http.StatusOK, page("vpcs", vpcs, len(vpcs)), nil
}

func (s *Server) getVPC(r *http.Request) (int, any, error) {
	v, err := byKey(s.st.VPCs, r.PathValue("id"))
	return http.StatusOK, map[string]any{"vpc": v}, err
}

func (s *Server) updateVPC(r *http.Request) (int, any, error) {
	var req godo.VPCUpdateRequest
	if err := decode(r, &req); err != nil {
		return 0, nil, err
	}
	v, err := byKey(s.st.VPCs, r.PathValue("id"))
	if err != nil {
		return 0, nil, err
	}
	if req.Name != "" {
		v.Name = req.Name
	}
	v.Description = req.Description
	return http.StatusOK, map[string]any{"vpc": v}, s.changed()
}

func (s *Server) deleteVPC(r *http.Request) (int, any, error) {
	id := r.PathValue("id")
	if _, err := byKey(s.st.VPCs, id); err != nil {
		return 0, nil, err
	}
	for _, d := range s.st.Droplets {
		if d.Droplet.VPCUUID == id {
			return 0, nil, &apiError{status: http.StatusForbidden, ID: "forbidden",
				Message: fmt.Sprintf("Can not delete VPC with members (droplet %d)", d.Droplet.ID)}
		}
	}
	delete(s.st.VPCs, id)
	return http.StatusNoContent, nil, s.changed()
}

// --- images ---

func (s *Server) createImage(r *http.Request) (int, any, error) {
	var req godo.CustomImageCreateRequest
	if err := decode(r, &req); err != nil {
		return 0, nil, err
	}
	if strings.TrimSpace(req.Name) == "" || req.Url == "" {
		return 0, nil, unprocessable("name and url are required")
	}
	if err := checkRegion("region", req.Region); err != nil {
		return 0, nil, err
	}
	// Accepted without a download: the machines boot the local node image.
	img := &godo.Image{ID: s.st.nextID(), Name: req.Name, Type: "custom", Distribution: req.Distribution, Regions: []string{req.Region},
		Description: req.Description, Tags: req.Tags, Created: now(), Status: "available", MinDiskSize: 15, SizeGigaBytes: 0.5}
	s.st.Images[img.ID] = img
	answer := *img
	answer.Status, answer.Regions = "NEW", nil // as the API answers an import it has just queued
	return http.StatusAccepted, map[string]any{"image": &answer}, s.changed()
}

func (s *Server) listImages(r *http.Request) (int, any, error) {
	imgs := sortedValues(s.st.Images)
	return http.StatusOK, page("images", imgs, len(imgs)), nil
}

func (s *Server) getImage(r *http.Request) (int, any, error) {
	img, err := byID(r, s.st.Images)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, map[string]any{"image": img}, nil
}

func (s *Server) updateImage(r *http.Request) (int, any, error) {
	var req godo.ImageUpdateRequest
	if err := decode(r, &req); err != nil {
		return 0, nil, err
	}
	img, err := byID(r, s.st.Images)
	if err != nil {
		return 0, nil, err
	}
	if req.Name != "" {
		img.Name = req.Name
	}
	if req.Distribution != "" {
		img.Distribution = req.Distribution
	}
	if req.Description != "" {
		img.Description = req.Description
	}
	return http.StatusOK, map[string]any{"image": img}, s.changed()
}

func (s *Server) deleteImage(r *http.Request) (int, any, error) {
	img, err := byID(r, s.st.Images)
	if err != nil {
		return 0, nil, err
	}
	delete(s.st.Images, img.ID)
	return http.StatusNoContent, nil, s.changed()
}
