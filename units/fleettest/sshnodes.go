package fleettest

import (
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// SSHNodes is an in-process sshd for the cluster's machines: one listener
// on loopback (the node a --tunnel reaches), which forwards unix sockets
// (fleet's API) and loopback TCP as OpenSSH does, and the machines, which
// it reaches by their IPs (direct-tcpip to IP:22) without a network: each
// is served in-process with a host key of its own. Every machine, and the
// listener, answers exec and shell requests with the Exec function and
// records them. Only user core with the authorized key logs in.
type SSHNodes struct {
	ln         net.Listener
	authorized ssh.PublicKey
	keys       map[string]ssh.Signer // by host:port
	run        ExecFunc

	mu    sync.Mutex
	execs []Exec
	conns []net.Conn
	wg    sync.WaitGroup
}

// Exec is one command a machine was asked to run ("" for a shell).
type Exec struct {
	Addr    string // the machine's host:port, e.g. 10.132.0.11:22
	User    string
	Command string
	PTY     bool
}

// ExecFunc answers a command; its result is the exit status.
type ExecFunc func(e Exec, stdin io.Reader, stdout, stderr io.Writer) int

// NewSSHNodes listens on loopback and serves machines at the given IPs
// (port 22 behind the listener).
func NewSSHNodes(authorized ssh.PublicKey, machineIPs []string, run ExecFunc) (*SSHNodes, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &SSHNodes{ln: ln, authorized: authorized, keys: map[string]ssh.Signer{}, run: run}
	for _, addr := range append([]string{ln.Addr().String()}, machineAddrs(machineIPs)...) {
		_, k, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			ln.Close()
			return nil, err
		}
		if s.keys[addr], err = ssh.NewSignerFromKey(k); err != nil {
			ln.Close()
			return nil, err
		}
	}
	s.wg.Add(1)
	go s.accept()
	return s, nil
}

func machineAddrs(ips []string) []string {
	var out []string
	for _, ip := range ips {
		out = append(out, net.JoinHostPort(ip, "22"))
	}
	return out
}

// Addr is the listener's host:port.
func (s *SSHNodes) Addr() string { return s.ln.Addr().String() }

// HostKey is the host key of the listener (its Addr) or of a machine
// (IP:22).
func (s *SSHNodes) HostKey(addr string) ssh.PublicKey {
	if k, ok := s.keys[addr]; ok {
		return k.PublicKey()
	}
	return nil
}

// KnownHosts is a known_hosts file pinning every host key.
func (s *SSHNodes) KnownHosts() []byte {
	var b []byte
	for addr, k := range s.keys {
		b = append(b, knownhosts.Line([]string{knownhosts.Normalize(addr)}, k.PublicKey())+"\n"...)
	}
	return b
}

// Execs lists the commands run so far.
func (s *SSHNodes) Execs() []Exec {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Exec(nil), s.execs...)
}

// Close stops listening and drops every connection.
func (s *SSHNodes) Close() {
	s.ln.Close()
	s.mu.Lock()
	for _, c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

func (s *SSHNodes) accept() {
	defer s.wg.Done()
	for {
		nc, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.serve(nc, s.Addr())
	}
}

// serve runs one SSH connection to the machine at addr, in its own
// goroutine, until the connection ends or Close.
func (s *SSHNodes) serve(nc net.Conn, addr string) {
	s.mu.Lock()
	s.conns = append(s.conns, nc)
	s.wg.Add(1)
	s.mu.Unlock()
	go func() {
		defer s.wg.Done()
		defer nc.Close()
		conf := &ssh.ServerConfig{PublicKeyCallback: func(c ssh.ConnMetadata, k ssh.PublicKey) (*ssh.Permissions, error) {
			if c.User() == "core" && string(k.Marshal()) == string(s.authorized.Marshal()) {
				return nil, nil
			}
			return nil, errors.New("not authorized")
		}}
		conf.AddHostKey(s.keys[addr])
		sc, chans, reqs, err := ssh.NewServerConn(nc, conf)
		if err != nil {
			return
		}
		go ssh.DiscardRequests(reqs)
		for nch := range chans {
			s.channel(nch, addr, sc.User())
		}
	}()
}

func (s *SSHNodes) channel(nch ssh.NewChannel, addr, user string) {
	switch nch.ChannelType() {
	case "session":
		ch, reqs, err := nch.Accept()
		if err == nil {
			go s.session(ch, reqs, Exec{Addr: addr, User: user})
		}
	case "direct-tcpip":
		var p struct {
			Host       string
			Port       uint32
			OriginIP   string
			OriginPort uint32
		}
		if err := ssh.Unmarshal(nch.ExtraData(), &p); err != nil {
			nch.Reject(ssh.ConnectionFailed, "bad payload")
			return
		}
		to := net.JoinHostPort(p.Host, strconv.Itoa(int(p.Port)))
		if _, machine := s.keys[to]; machine && to != s.Addr() {
			// The machine behind the node: served in-process.
			here, there := net.Pipe()
			s.serve(there, to)
			forward(nch, here)
			return
		}
		if ip := net.ParseIP(p.Host); ip == nil || !ip.IsLoopback() {
			nch.Reject(ssh.ConnectionFailed, fmt.Sprintf("dial %s: no route to host", to))
			return
		}
		s.dial(nch, "tcp", to)
	case "direct-streamlocal@openssh.com":
		var p struct {
			Path      string
			Reserved0 string
			Reserved1 uint32
		}
		if err := ssh.Unmarshal(nch.ExtraData(), &p); err != nil {
			nch.Reject(ssh.ConnectionFailed, "bad payload")
			return
		}
		s.dial(nch, "unix", p.Path)
	default:
		nch.Reject(ssh.UnknownChannelType, nch.ChannelType())
	}
}

func (s *SSHNodes) dial(nch ssh.NewChannel, network, addr string) {
	c, err := net.Dial(network, addr)
	if err != nil {
		nch.Reject(ssh.ConnectionFailed, err.Error())
		return
	}
	forward(nch, c)
}

// forward accepts nch and copies between it and c until both ends close.
func forward(nch ssh.NewChannel, c net.Conn) {
	ch, reqs, err := nch.Accept()
	if err != nil {
		c.Close()
		return
	}
	go ssh.DiscardRequests(reqs)
	go func() { io.Copy(ch, c); ch.CloseWrite() }()
	go func() { io.Copy(c, ch); c.Close() }()
}

// session answers pty-req, env, exec and shell; the command runs with the
// channel as its stdin and output, then its exit status is sent.
func (s *SSHNodes) session(ch ssh.Channel, reqs <-chan *ssh.Request, e Exec) {
	for req := range reqs {
		switch req.Type {
		case "pty-req":
			e.PTY = true
			req.Reply(true, nil)
		case "env", "window-change":
			req.Reply(true, nil)
		case "exec", "shell":
			if req.Type == "exec" {
				var p struct{ Command string }
				if ssh.Unmarshal(req.Payload, &p) != nil {
					req.Reply(false, nil)
					continue
				}
				e.Command = p.Command
			}
			s.mu.Lock()
			s.execs = append(s.execs, e)
			s.mu.Unlock()
			req.Reply(true, nil)
			go func(e Exec) {
				code := s.run(e, ch, ch, ch.Stderr())
				ch.SendRequest("exit-status", false, ssh.Marshal(struct{ Status uint32 }{uint32(code)}))
				ch.Close()
			}(e)
		default:
			req.Reply(false, nil)
		}
	}
}
