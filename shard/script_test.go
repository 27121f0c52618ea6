package shard

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the expected outputs in testdata/*.txt")

// TestScripts runs the placement scenarios in testdata/*.txt, in the style of etcd raft's
// interaction tests: each block is one or more command lines, "----", and the expected
// output, ended by a blank line. Lines starting with # are comments. Commands:
//
//	model layers=L layer=B embed=B head=B kv=B minkv=T   (bytes; minkv in tokens)
//	start ID mem=B [range=F:L] [pipeline=P] [inc=N] [ready]  a worker enters the view
//	assign ID...    the workers ask Assign on one view, as if started together
//	join ID mem=B [range=F:L]                            start, then assign
//	ready ID...     the workers finished loading
//	kill ID...      the workers died or left
//	plan            Build of the view: pipelines, gaps, waiting workers, errors
//	check ID mem=B range=F:L [pipeline=P]                Check of that worker
//
// go test -run TestScripts -update rewrites the expected outputs.
func TestScripts(t *testing.T) {
	files, err := filepath.Glob("testdata/*.txt")
	if err != nil || len(files) == 0 {
		t.Fatalf("no scripts in testdata: %v", err)
	}
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".txt"), func(t *testing.T) { runScript(t, file) })
	}
}

func runScript(t *testing.T, file string) {
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	var out strings.Builder // the file as it should be
	s := newSim(Model{Layers: 1}, 0)
	for i := 0; i < len(lines); {
		if l := lines[i]; l == "" || strings.HasPrefix(l, "#") {
			out.WriteString(l + "\n")
			i++
			continue
		}
		var cmds []string
		start := i + 1
		for ; i < len(lines) && lines[i] != "----"; i++ {
			cmds = append(cmds, lines[i])
		}
		if i == len(lines) {
			t.Fatalf("%s:%d: command without ----", file, start)
		}
		i++ // ----
		var want []string
		for ; i < len(lines) && lines[i] != ""; i++ {
			want = append(want, lines[i])
		}
		var got []string
		for _, c := range cmds {
			got = append(got, s.run(t, fmt.Sprintf("%s:%d", file, start), c)...)
		}
		if len(got) == 0 {
			got = []string{"ok"}
		}
		g, w := strings.Join(got, "\n"), strings.Join(want, "\n")
		if g != w && !*update {
			t.Errorf("%s:%d: %s\ngot:\n%s\nwant:\n%s", file, start, strings.Join(cmds, "; "), g, w)
		}
		out.WriteString(strings.Join(cmds, "\n") + "\n----\n" + g + "\n")
	}
	if *update {
		if err := os.WriteFile(file, []byte(out.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// run executes one script command and returns its output lines.
func (s *sim) run(t *testing.T, pos, line string) []string {
	t.Helper()
	f := strings.Fields(line)
	args := map[string]string{}
	var names []string
	for _, a := range f[1:] {
		if k, v, ok := strings.Cut(a, "="); ok {
			args[k] = v
		} else {
			names = append(names, a)
		}
	}
	num := func(k string) int64 {
		v, ok := args[k]
		if !ok {
			return 0
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			t.Fatalf("%s: %s=%q: %v", pos, k, v, err)
		}
		return n
	}
	worker := func() Worker {
		if len(names) == 0 {
			t.Fatalf("%s: %s: no worker ID", pos, line)
		}
		w := Worker{ID: names[0], MemoryBytes: num("mem"), Pipeline: args["pipeline"], Incarnation: uint64(num("inc"))}
		if v, ok := args["range"]; ok {
			r, err := ParseRange(v)
			if err != nil {
				t.Fatalf("%s: %v", pos, err)
			}
			w.Range = &r
		}
		w.Ready = len(names) > 1 && names[1] == "ready"
		return w
	}
	switch f[0] {
	case "model":
		s.m = Model{Layers: int(num("layers")), LayerBytes: num("layer"), EmbedBytes: num("embed"),
			HeadBytes: num("head"), KVBytesPerToken: num("kv")}
		s.minKV = int(num("minkv"))
		s.workers = map[string]Worker{}
	case "start":
		w := worker()
		s.workers[w.ID] = w
	case "join":
		w := worker()
		s.workers[w.ID] = w
		return s.assign(t, w.ID)
	case "assign":
		return s.assign(t, names...)
	case "ready", "kill":
		for _, id := range names {
			w, ok := s.workers[id]
			switch {
			case !ok:
				t.Fatalf("%s: no worker %q", pos, id)
			case f[0] == "kill":
				delete(s.workers, id)
			default:
				w.Ready = true
				s.workers[id] = w
			}
		}
	case "plan":
		p, errs := s.build(t)
		return strings.Split(strings.TrimSuffix(describe(s.m, p, errs), "\n"), "\n")
	case "check":
		p, _ := s.build(t)
		err := Check(s.m, p, worker())
		if err == nil {
			return []string{"nil"}
		}
		return []string{errName(err) + ": " + err.Error()}
	default:
		t.Fatalf("%s: unknown command %q", pos, f[0])
	}
	return nil
}
