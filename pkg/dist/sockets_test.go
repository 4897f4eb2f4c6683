package dist

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/spreadtrain/spreadtrain/pkg/torch"
)

// tcpSocket is one of this process's TCP sockets, from /proc/net/tcp{,6}.
type tcpSocket struct {
	Local  string `json:"local"`
	Listen bool   `json:"listen"`
}

// ownTCPSockets lists the TCP sockets this process holds: the socket inodes of /proc/self/fd matched
// against the kernel's tables, which give the local address each is bound to.
func ownTCPSockets() ([]tcpSocket, error) {
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return nil, err
	}
	mine := map[string]bool{}
	for _, fd := range fds {
		link, err := os.Readlink(filepath.Join("/proc/self/fd", fd.Name()))
		if err == nil && strings.HasPrefix(link, "socket:[") {
			mine[strings.TrimSuffix(strings.TrimPrefix(link, "socket:["), "]")] = true
		}
	}
	var out []tcpSocket
	for _, table := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		raw, err := os.ReadFile(table)
		if err != nil {
			return nil, err
		}
		lines := strings.Split(strings.TrimSpace(string(raw)), "\n")
		for _, line := range lines[1:] {
			f := strings.Fields(line)
			if len(f) < 10 || !mine[f[9]] {
				continue
			}
			ip, port, err := procAddr(f[1])
			if err != nil {
				return nil, fmt.Errorf("%s: %w", table, err)
			}
			out = append(out, tcpSocket{Local: net.JoinHostPort(ip.String(), strconv.Itoa(port)), Listen: f[3] == "0A"})
		}
	}
	return out, nil
}

// procAddr decodes /proc/net/tcp's "0100007F:1F90": the address in 32-bit words of host byte order
// (little-endian here), the port in hex.
func procAddr(s string) (net.IP, int, error) {
	h, p, ok := strings.Cut(s, ":")
	b, err := hex.DecodeString(h)
	if !ok || err != nil || (len(b) != 4 && len(b) != 16) {
		return nil, 0, fmt.Errorf("address %q", s)
	}
	for i := 0; i < len(b); i += 4 {
		b[i], b[i+1], b[i+2], b[i+3] = b[i+3], b[i+2], b[i+1], b[i]
	}
	port, err := strconv.ParseUint(p, 16, 16)
	return net.IP(b), int(port), err
}

// workerSockets: after the group has met and run a collective, each rank writes the TCP sockets it
// holds to $SPREADTRAIN_DIST_OUT/sockets<rank>.json.
func workerSockets(g *Group) error {
	x := torch.Ones([]int64{1024}, torch.Float32, torch.CPU)
	if _, err := g.AllReduceMean([]*torch.Tensor{x}); err != nil {
		return err
	}
	socks, err := ownTCPSockets()
	if err != nil {
		return err
	}
	buf, err := json.Marshal(socks)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(os.Getenv("SPREADTRAIN_DIST_OUT"), fmt.Sprintf("sockets%d.json", g.Rank())), buf, 0o644); err != nil {
		return err
	}
	return g.Barrier() // no rank leaves (closing its sockets) before every rank has looked
}

func readSockets(t *testing.T, dir string, rank int) []tcpSocket {
	t.Helper()
	buf, err := os.ReadFile(filepath.Join(dir, fmt.Sprintf("sockets%d.json", rank)))
	if err != nil {
		t.Fatal(err)
	}
	var socks []tcpSocket
	if err := json.Unmarshal(buf, &socks); err != nil {
		t.Fatal(err)
	}
	return socks
}

func loopbackOnly(socks []tcpSocket) (bad []tcpSocket) {
	for _, s := range socks {
		host, _, _ := net.SplitHostPort(s.Local)
		if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
			bad = append(bad, s)
		}
	}
	return bad
}

// A single-machine launch (Spawn) opens sockets on the loopback interface only: the rendezvous is a
// FileStore, Gloo binds 127.0.0.1. Checked from inside both workers while the group is alive.
func TestSingleNodeListensOnLoopbackOnly(t *testing.T) {
	dir := t.TempDir()
	spawn(t, "sockets", "SPREADTRAIN_DIST_OUT="+dir)
	for r := 0; r < 2; r++ {
		socks := readSockets(t, dir, r)
		if len(socks) == 0 {
			t.Fatalf("rank %d holds no TCP socket: Gloo's pairs were not found, so the check saw nothing", r)
		}
		if bad := loopbackOnly(socks); len(bad) > 0 {
			t.Errorf("rank %d has sockets bound beyond the loopback interface: %+v (all: %+v)", r, bad, socks)
		}
		t.Logf("rank %d: %d TCP sockets, all on loopback: %+v", r, len(socks), socks)
	}
}

// The check itself sees a wildcard listener: rank 0's TCPStore asked to listen on every interface
// (MASTER_ADDR 0.0.0.0) is reported.
func TestSocketCheckSeesTCPStoreListener(t *testing.T) {
	skipWithoutGloo(t)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	port, err := FreePort()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cmds := make([]*exec.Cmd, 2)
	var outs [2]bytes.Buffer
	for r := range cmds {
		cmd := exec.Command(exe)
		cmd.Env = append(withoutKeys(os.Environ(), launchKeys...), workerVar+"=sockets", "SPREADTRAIN_DIST_OUT="+dir,
			"RANK="+strconv.Itoa(r), "WORLD_SIZE=2", "LOCAL_RANK="+strconv.Itoa(r), "MASTER_ADDR=0.0.0.0", "MASTER_PORT="+strconv.Itoa(port))
		cmd.Stdout, cmd.Stderr = &outs[r], &outs[r]
		cmd.SysProcAttr = workerAttr()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		cmds[r] = cmd
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for r, cmd := range cmds {
		go func() { <-ctx.Done(); _ = cmd.Process.Kill() }()
		if err := cmd.Wait(); err != nil {
			t.Fatalf("rank %d: %v\n%s", r, err, outs[r].String())
		}
	}
	bad := loopbackOnly(readSockets(t, dir, 0))
	found := false
	for _, s := range bad {
		found = found || (s.Listen && strings.HasSuffix(s.Local, ":"+strconv.Itoa(port)))
	}
	if !found {
		t.Fatalf("rank 0's TCPStore listener on port %d (every interface) was not reported: %+v", port, bad)
	}
	t.Logf("reported as expected: %+v", bad)
}

// Rank 0's TCPStore (a job launched without torchrun, across machines) listens where MASTER_ADDR
// says on a libtorch that can take a bound socket (>= 2.4), not on every interface; 1.13's listens
// on every interface, the limitation README states. Both ranks rendezvous in this process.
func TestMasterStoreListensOnMasterAddr(t *testing.T) {
	port, err := FreePort()
	if err != nil {
		t.Fatal(err)
	}
	env := Env{WorldSize: 2, LocalWorldSize: 1, MasterAddr: "127.0.0.1", MasterPort: port}
	master := make(chan error, 1)
	var store0 *torch.Store
	go func() {
		var err error
		store0, err = rendezvous(env, 30*time.Second)
		master <- err
	}()
	client := env
	client.Rank = 1
	store1, err := rendezvous(client, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer store1.Close()
	if err := <-master; err != nil {
		t.Fatal(err)
	}
	defer store0.Close()
	socks, err := ownTCPSockets()
	if err != nil {
		t.Fatal(err)
	}
	var listening []string
	for _, s := range socks {
		if _, p, _ := net.SplitHostPort(s.Local); s.Listen && p == strconv.Itoa(port) {
			listening = append(listening, s.Local)
		}
	}
	if len(listening) != 1 {
		t.Fatalf("listening on %v: want one socket on port %d", listening, port)
	}
	host, _, _ := net.SplitHostPort(listening[0])
	if torch.StoreTakesSocket() {
		if host != "127.0.0.1" {
			t.Fatalf("the store listens on %s, want 127.0.0.1 (MASTER_ADDR)", listening[0])
		}
	} else if ip := net.ParseIP(host); ip == nil || !ip.IsUnspecified() {
		t.Fatalf("libtorch %s: the store listens on %s; its TCPStore binds every interface", torch.Version(), listening[0])
	}
	t.Logf("libtorch %s: the store listens on %s", torch.Version(), listening[0])
}

// A MASTER_ADDR name that resolves to loopback keeps the wildcard on a job that may span machines
// (Debian maps the hostname to 127.0.1.1: binding there would shut the other machines out), and is
// bound on a job of one machine; a literal address is always bound.
func TestMasterListenerLoopbackNames(t *testing.T) {
	for _, c := range []struct {
		addr        string
		local, want int
		bound       bool
	}{
		{"localhost", 1, 2, false}, {"localhost", 0, 2, false}, {"localhost", 2, 2, true}, {"127.0.0.1", 1, 2, true},
	} {
		fd, _, ok, err := masterListener(Env{WorldSize: c.want, LocalWorldSize: c.local, MasterAddr: c.addr})
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			syscall.Close(fd)
		}
		if ok != c.bound {
			t.Errorf("MASTER_ADDR %s, LOCAL_WORLD_SIZE %d of %d: bound %v, want %v", c.addr, c.local, c.want, ok, c.bound)
		}
	}
}
