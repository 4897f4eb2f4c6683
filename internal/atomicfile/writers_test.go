package atomicfile

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// writeCalls are the calls that create or replace a file by other means than Write. A call listed
// here outside this package is a second way to write a file, which can leave a torn file after a
// crash, unless allowWriters gives the reason it is right where it is.
var writeCalls = map[string][]string{
	"os":        {"Create", "CreateTemp", "OpenFile", "WriteFile", "Rename", "Truncate"},
	"io/ioutil": {"WriteFile", "TempFile"},
}

// allowWriters are the exceptions, as "path/from/module/root.go: pkg.Func", with why.
var allowWriters = map[string]string{
	"pkg/train/metrics.go: os.OpenFile": "metrics.jsonl is an append-only log: fsynced at every " +
		"checkpoint, and a torn last line is dropped on resume (trimMetrics rewrites it through Write)",
	"pkg/tfevents/tfevents.go: os.OpenFile": "a TensorBoard event file is append-only and new per " +
		"invocation (O_EXCL); its records are length- and CRC-framed, so a reader stops at a torn " +
		"tail, and it is fsynced at every metrics sync",
	"bench/trainstep/main.go: os.Create": "a benchmark's CPU profile (pprof streams into the file " +
		"while the benchmark runs), not a program output",
}

// TestEveryWriterGoesThroughAtomicfile parses every non-test Go file of the module and fails on a
// file-writing call (writeCalls, or gonum's Plot.Save: any three-argument .Save call, which writes
// its file with os.Create) that is neither in this package nor in allowWriters.
func TestEveryWriterGoesThroughAtomicfile(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	var found []string
	seen := map[string]bool{}
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		rel = filepath.ToSlash(rel)
		if d.IsDir() {
			name := d.Name()
			if rel != "." && (strings.HasPrefix(name, ".") || name == "testdata" || name == "build" || name == "vendor") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(rel, ".go") || strings.HasSuffix(rel, "_test.go") || strings.HasPrefix(rel, "internal/atomicfile/") {
			return nil
		}
		for _, call := range writersIn(t, path) {
			key := rel + ": " + call
			seen[key] = true
			if _, ok := allowWriters[key]; !ok {
				found = append(found, key)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(found)
	for _, f := range found {
		t.Errorf("%s writes a file outside internal/atomicfile: use atomicfile.Write, or add it to allowWriters with the reason", f)
	}
	// An exception whose call is gone is stale and would hide a future writer in that file.
	for key := range allowWriters {
		if !seen[key] {
			t.Errorf("allowWriters lists %q, which no longer exists: remove it", key)
		}
	}
	if len(seen) == 0 {
		t.Fatalf("found no writer in %s at all: is the module root right?", root)
	}
}

// writersIn returns the file-writing calls in one Go file, as "pkg.Func" or ".Save".
func writersIn(t *testing.T, path string) []string {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.SkipObjectResolution)
	if err != nil {
		t.Fatalf("parse %s: %v", path, err)
	}
	// local import name -> import path, for the packages in writeCalls
	names := map[string]string{}
	for _, imp := range f.Imports {
		p, _ := strconv.Unquote(imp.Path.Value)
		if _, ok := writeCalls[p]; !ok {
			continue
		}
		name := filepath.Base(p)
		if imp.Name != nil {
			name = imp.Name.Name
		}
		names[name] = p
	}
	var out []string
	ast.Inspect(f, func(n ast.Node) bool {
		call, ok := n.(*ast.CallExpr)
		if !ok {
			return true
		}
		sel, ok := call.Fun.(*ast.SelectorExpr)
		if !ok {
			return true
		}
		if sel.Sel.Name == "Save" && len(call.Args) == 3 {
			out = append(out, ".Save")
			return true
		}
		id, ok := sel.X.(*ast.Ident)
		if !ok {
			return true
		}
		if p, ok := names[id.Name]; ok {
			for _, fn := range writeCalls[p] {
				if sel.Sel.Name == fn {
					out = append(out, id.Name+"."+fn)
				}
			}
		}
		return true
	})
	return out
}
