package localcluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	cloudconfig "github.com/deployctl/deployctl/cloud-config"
	"github.com/deployctl/deployctl/internal/atomicfile"
)

// trustFile is the operator's CA bundle (ETCDCTL_CACERT): the CA, or during
// a rotation the old and the new CA together.
func (s *State) trustFile() string { return filepath.Join(s.TLSDir(), "trust.pem") }

// nextTLSDir holds the new CA and the operator's new pair while a rotation
// runs; it becomes TLSDir when the last pass is done.
func (s *State) nextTLSDir() string { return filepath.Join(s.Dir, "tls-next") }

func (s *State) oldTLSDir() string { return filepath.Join(s.Dir, "tls-old") }

// settleTLSDirs finishes a directory swap a crash interrupted: tls-next
// renamed into place, then tls-old removed.
func (s *State) settleTLSDirs() error {
	if _, err := os.Stat(s.TLSDir()); errors.Is(err, os.ErrNotExist) {
		if _, err := os.Stat(s.nextTLSDir()); err == nil {
			if err := os.Rename(s.nextTLSDir(), s.TLSDir()); err != nil {
				return err
			}
		}
	}
	if _, err := os.Stat(s.TLSDir()); err == nil {
		return os.RemoveAll(s.oldTLSDir())
	}
	return nil
}

// RotateCA replaces a TLS cluster's CA and every certificate without an
// outage, with the three passes infra runs when pkiGeneration is raised
// (cloudconfig.RotateTrustScript), each node by node: trust the new CA
// beside the old, install certificates from the new CA, drop the old CA.
// The operator's bundle (ETCDCTL_CACERT) holds both CAs while it runs and
// the operator's root pair changes before the old CA is dropped. The new
// CA waits in tls-next until the last pass is done, so a rotation stopped
// halfway goes on with the same CA when run again.
func RotateCA(ctx context.Context, cfg Config) (*State, error) {
	s, err := loadRotatable(cfg)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	next, err := s.prepareRotation()
	if err != nil {
		return nil, err
	}
	cc := s.cc()
	if err := s.rotationPass(ctx, &cfg, "trust the new CA beside the old", func(int) (string, string, error) { return cc.RotateTrustScript(next.pem), "", nil }); err != nil {
		return nil, err
	}
	if err := s.rotationPass(ctx, &cfg, "certificates from the new CA", func(i int) (string, string, error) {
		files, err := next.nodeTLSFiles(s.Nodes[i].IP)
		if err != nil {
			return "", "", err
		}
		stdin, err := files.Secrets().Stdin()
		return cc.RotateReissueScript(files), stdin, err
	}); err != nil {
		return nil, err
	}
	if err := s.switchOperator(); err != nil {
		return nil, err
	}
	if err := s.rotationPass(ctx, &cfg, "drop the old CA", func(int) (string, string, error) { return cc.RotateDropScript(next.pem), "", nil }); err != nil {
		return nil, err
	}
	if err := s.finishRotation(next); err != nil {
		return nil, err
	}
	cfg.say("CA rotated on %d nodes in %s", len(s.Nodes), time.Since(start).Round(time.Second))
	return s, nil
}

// loadRotatable loads a cluster whose CA can be rotated: TLS on, every
// node bootstrapped, a swap a crash interrupted finished.
func loadRotatable(cfg Config) (*State, error) {
	s, err := Load(cfg.StateDir, cfg.Name)
	if err != nil {
		return nil, err
	}
	if !s.TLS {
		return nil, fmt.Errorf("cluster %s runs etcd without TLS: there is no CA to rotate (deployctl cluster local up --tls makes a cluster with one)", s.Name)
	}
	for _, n := range s.Nodes {
		if !n.Bootstrapped {
			return nil, fmt.Errorf("node %s is not bootstrapped yet: run deployctl cluster local up --name %s first", n.Name, s.Name)
		}
	}
	if err := s.settleTLSDirs(); err != nil {
		return nil, fmt.Errorf("local cluster CA: %w", err)
	}
	return s, nil
}

// prepareRotation makes (or, after a stop halfway, loads) the new CA and
// the operator's pair from it in tls-next, and has the operator trust both
// CAs.
func (s *State) prepareRotation() (*pki, error) {
	cur, err := loadOrMakePKI(s.TLSDir())
	if err != nil {
		return nil, fmt.Errorf("local cluster CA: %w", err)
	}
	if err := os.MkdirAll(s.nextTLSDir(), 0o700); err != nil {
		return nil, err
	}
	next, err := loadOrMakePKI(s.nextTLSDir())
	if err != nil {
		return nil, fmt.Errorf("the new CA: %w", err)
	}
	if err := issueOperator(next, s.nextTLSDir()); err != nil {
		return nil, err
	}
	if err := atomicfile.WriteFile(s.trustFile(), []byte(cur.pem+next.pem), 0o644); err != nil {
		return nil, err
	}
	return next, nil
}

// rotationPass runs one pass's script on each node in turn, showing what
// each printed; a failure stops the rotation (running it again goes on).
func (s *State) rotationPass(ctx context.Context, cfg *Config, pass string, script func(i int) (text, stdin string, err error)) error {
	for i, n := range s.Nodes {
		sc, stdin, err := script(i)
		if err != nil {
			return err
		}
		cfg.say("CA rotation: %s: %s", pass, n.Name)
		sctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
		out, err := s.RunWith(sctx, i, sc, stdin)
		cancel()
		if err != nil {
			return fmt.Errorf("CA rotation, %s on %s: %w (run deployctl cluster local rotate-ca --name %s again to go on)", pass, n.Name, err, s.Name)
		}
		for _, l := range strings.Split(out, "\n") {
			if l = strings.TrimSpace(l); l != "" {
				cfg.say("%s", l)
			}
		}
	}
	return nil
}

// switchOperator gives the operator the root pair from the new CA, while
// every node still trusts both CAs.
func (s *State) switchOperator() error {
	for _, f := range []string{"root-key.pem", "root.pem"} {
		b, err := os.ReadFile(filepath.Join(s.nextTLSDir(), f))
		if err != nil {
			return err
		}
		mode := os.FileMode(0o644)
		if f == "root-key.pem" {
			mode = 0o600
		}
		if err := atomicfile.WriteFile(filepath.Join(s.TLSDir(), f), b, mode); err != nil {
			return err
		}
	}
	return nil
}

// finishRotation makes the new CA the cluster's: tls-next, with the
// operator trusting only it, replaces tls.
func (s *State) finishRotation(next *pki) error {
	if err := atomicfile.WriteFile(filepath.Join(s.nextTLSDir(), "trust.pem"), []byte(next.pem), 0o644); err != nil {
		return err
	}
	if err := os.RemoveAll(s.oldTLSDir()); err != nil {
		return err
	}
	if err := os.Rename(s.TLSDir(), s.oldTLSDir()); err != nil {
		return err
	}
	return s.settleTLSDirs()
}

// issueOperator writes etcd root's pair from ca into dir, once.
func issueOperator(ca *pki, dir string) error {
	key := filepath.Join(dir, "root-key.pem")
	if _, err := os.Stat(key); err == nil {
		return nil
	}
	c, k, err := ca.issue(cloudconfig.RoleRoot)
	if err != nil {
		return err
	}
	if err := atomicfile.WriteFile(filepath.Join(dir, "root.pem"), []byte(c), 0o644); err != nil {
		return err
	}
	return atomicfile.WriteFile(key, []byte(k), 0o600)
}
