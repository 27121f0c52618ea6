package k8s

import (
	"bufio"
	"context"
	"crypto/sha256"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/kvmesh/kvmesh/internal/testcert"
)

// built is the folder holding the router and node binaries, built once per test binary.
var built struct {
	once sync.Once
	dir  string
	err  error
}

// binaries builds cmd/router and cmd/node (the binaries the images hold) and returns
// their folder. The folder is the same on every run from the same checkout, so that go
// build, finding the binaries up to date, does not link them again (linking both takes
// most of this package's test time).
func binaries(t *testing.T) string {
	t.Helper()
	built.once.Do(func() {
		root, err := filepath.Abs("../..")
		if err != nil {
			built.err = err
			return
		}
		sum := sha256.Sum256([]byte(root))
		built.dir = filepath.Join(os.TempDir(), fmt.Sprintf("kvmesh-k8s-test-%x", sum[:6]))
		if built.err = os.MkdirAll(built.dir, 0o755); built.err != nil {
			return
		}
		cmd := exec.Command("go", "build", "-o", built.dir+string(filepath.Separator), "../../cmd/router", "../../cmd/node")
		if out, err := cmd.CombinedOutput(); err != nil {
			built.err = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if built.err != nil {
		t.Fatal(built.err)
	}
	return built.dir
}

// helpFlag matches a flag line of Go's flag usage: "  -name" (a bool) or "  -name type".
var helpFlag = regexp.MustCompile(`(?m)^  -([\w.-]+)( \S+)?$`)

// flagSet returns a flag set declaring the flags that `bin --help` lists, as booleans or
// strings, so that it parses a command line the way the binary would.
func flagSet(t *testing.T, bin string) *flag.FlagSet {
	t.Helper()
	out, err := exec.Command(bin, "--help").CombinedOutput()
	if err != nil {
		t.Fatalf("%s --help: %v\n%s", bin, err, out)
	}
	fs := flag.NewFlagSet(filepath.Base(bin), flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	for _, m := range helpFlag.FindAllStringSubmatch(string(out), -1) {
		if m[2] == "" {
			fs.Bool(m[1], false, "")
		} else {
			fs.String(m[1], "", "")
		}
	}
	if fs.Lookup("id") == nil {
		t.Fatalf("%s --help lists no --id flag; its output changed shape:\n%s", bin, out)
	}
	return fs
}

// podContainer is a container and the workload whose pods run it.
type podContainer struct {
	w   workload
	ctr corev1.Container
}

// containers returns every container of the bundle's workloads.
func containers(b *bundle) []podContainer {
	var out []podContainer
	for _, w := range b.workloads() {
		for _, ctr := range w.template.Spec.Containers {
			out = append(out, podContainer{w, ctr})
		}
	}
	return out
}

// process is a binary started by a test, stopped at its end.
type process struct {
	cmd    *exec.Cmd
	stdout *bufio.Scanner
	done   chan struct{} // closed once the process has exited
}

func start(t *testing.T, bin string, args ...string) *process {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Stderr = &logWriter{t: t, name: filepath.Base(bin)}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &process{cmd: cmd, stdout: bufio.NewScanner(out), done: make(chan struct{})}
	go func() {
		cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		cancel()
		<-p.done
	})
	return p
}

// logWriter keeps a process's stderr for the test log, shown only when the test fails.
type logWriter struct {
	t    *testing.T
	name string
	mu   sync.Mutex // serialises Write: one process writes its stderr from more than one goroutine
}

func (w *logWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, line := range strings.Split(strings.TrimRight(string(p), "\n"), "\n") {
		w.t.Logf("%s: %s", w.name, line)
	}
	return len(p), nil
}

// line returns the first stdout line of p that starts with prefix.
func (p *process) line(t *testing.T, prefix string) string {
	t.Helper()
	for p.stdout.Scan() {
		if s := p.stdout.Text(); strings.HasPrefix(s, prefix) {
			go func() { // keep draining, so that the process never blocks on a full pipe
				for p.stdout.Scan() {
				}
			}()
			return s
		}
	}
	t.Fatalf("%s exited without printing a %q line", p.cmd.Path, prefix)
	return ""
}

// freePort returns a loopback port that was free a moment ago.
func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// status GETs url and returns the status code (0 when the request fails).
func status(url string) int {
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// waitStatus polls url until it answers want, or fails the test at the deadline or when
// one of procs exits.
func waitStatus(t *testing.T, url string, want int, within time.Duration, procs ...*process) {
	t.Helper()
	deadline := time.Now().Add(within)
	got := 0
	for time.Now().Before(deadline) {
		if got = status(url); got == want {
			return
		}
		for _, p := range procs {
			select {
			case <-p.done:
				t.Fatalf("GET %s: status %d, and %s exited: %v", url, got, filepath.Base(p.cmd.Path), p.cmd.ProcessState)
			default:
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("GET %s: status %d after %v, want %d", url, got, within, want)
}

// writeCerts writes a throwaway CA and one certificate it signs, for server and client
// use, that names only the DNS name given (no IP: pods are dialled at IPs no certificate
// lists), as the files the Secret's keys become: ca.crt, tls.crt and tls.key.
func writeCerts(t *testing.T, dir, name string) {
	t.Helper()
	ca := testcert.New(t, dir, "kvmesh")
	cert, key := ca.Issue(t, "node", name)
	for from, to := range map[string]string{ca.CAFile: "ca.crt", cert: "tls.crt", key: "tls.key"} {
		if err := os.Rename(from, filepath.Join(dir, to)); err != nil {
			t.Fatal(err)
		}
	}
}
