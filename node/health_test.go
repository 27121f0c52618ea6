package node

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestHealthAndAdvertise starts a pipeline's leader alone (not ready: its later stage is
// missing) and then that stage: /readyz follows readiness, /healthz and /metrics answer
// throughout, and a node listening on 0.0.0.0 gossips the address membership advertises.
func TestHealthAndAdvertise(t *testing.T) {
	lead := startNode(t, "worker-1", "0:3", nil)
	base := "http://" + lead.HTTPAddr()
	if code, _ := get(t, base+"/healthz"); code != 200 {
		t.Errorf("/healthz = %d, want 200", code)
	}
	if code, _ := get(t, base+"/readyz"); code != 503 {
		t.Errorf("/readyz of a leader without its stage = %d, want 503", code)
	}
	gossipHost := strings.Split(lead.member.Addr(), ":")[0]
	if host := strings.Split(lead.GRPCAddr(), ":")[0]; host != gossipHost {
		t.Errorf("GRPCAddr %q on 0.0.0.0: want the gossip host %q", lead.GRPCAddr(), gossipHost)
	}
	if self := lead.member.Self(); self.HTTPAddr != lead.HTTPAddr() {
		t.Errorf("gossiped HTTPAddr %q, want %q", self.HTTPAddr, lead.HTTPAddr())
	}

	stage := startNode(t, "worker-2", "3:5", []string{lead.member.Addr()})
	if code, _ := get(t, "http://"+stage.HTTPAddr()+"/readyz"); code != 200 {
		t.Errorf("/readyz of a later stage = %d, want 200", code)
	}
	waitFor(t, "the leader's /readyz answers 200 once its stage joined", func() bool {
		code, _ := get(t, base+"/readyz")
		return code == 200
	})
	_, metrics := get(t, base+"/metrics")
	for _, want := range []string{"go_goroutines", "kvmesh_kv_blocks"} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}
