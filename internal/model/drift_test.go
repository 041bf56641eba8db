package model

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/omega-sheaf/omega/trace"
)

// environment lists the spec's actions the kernel does not take: the
// model reads them from what tests do, or infers them.
var environment = []string{"Emit", "Damage"}

// TestFormalDrift keeps formal/OMEGA.tla, formal/OMEGA.cfg, this package
// and formal/README.md from parting: every action of the spec's Next and
// every invariant and property of the cfg has a Go mirror and a row in the
// README, the model has nothing the spec lacks, and every test the README
// names exists.
func TestFormalDrift(t *testing.T) {
	root := filepath.Join("..", "..")
	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join(root, "formal", name))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	tla, cfg, readme := read("OMEGA.tla"), read("OMEGA.cfg"), read("README.md")

	// The actions: the operators Next is made of.
	next := regexp.MustCompile(`(?ms)^Next ==\n(.*?)\n\n`).FindStringSubmatch(tla)
	if next == nil {
		t.Fatal("OMEGA.tla has no Next")
	}
	var actions []string
	for _, m := range regexp.MustCompile(`\b([A-Z][A-Za-z]*)\b`).FindAllStringSubmatch(next[1], -1) {
		name := m[1]
		if isAction(tla, name) && !slices.Contains(actions, name) {
			actions = append(actions, name)
		}
	}
	if len(actions) < 10 {
		t.Fatalf("read %d actions from Next: %v", len(actions), actions)
	}
	for _, a := range actions {
		_, mirrored := Actions[trace.Action(a)]
		if !mirrored && !slices.Contains(environment, a) {
			t.Errorf("action %s of OMEGA.tla has no Go mirror in internal/model", a)
		}
		if !hasRow(readme, a) {
			t.Errorf("action %s has no row in formal/README.md", a)
		}
	}
	for a := range Actions {
		if !slices.Contains(actions, string(a)) {
			t.Errorf("the model's action %s is not an action of OMEGA.tla's Next", a)
		}
	}

	// The invariants and properties the cfg checks.
	invariants := cfgSection(cfg, "INVARIANTS")
	properties := cfgSection(cfg, "PROPERTIES")
	if len(invariants) < 10 || len(properties) == 0 {
		t.Fatalf("read invariants %v and properties %v from OMEGA.cfg", invariants, properties)
	}
	for _, name := range slices.Concat(invariants, properties) {
		if !defined(tla, name) {
			t.Errorf("OMEGA.cfg checks %s, which OMEGA.tla does not define", name)
		}
		if !hasRow(readme, name) {
			t.Errorf("%s has no row in formal/README.md", name)
		}
	}
	for _, name := range invariants {
		if name != "TypeOK" && !slices.ContainsFunc(Invariants, func(i Invariant) bool { return i.Name == name }) {
			t.Errorf("invariant %s of OMEGA.cfg has no Go mirror in internal/model", name)
		}
	}
	for _, inv := range Invariants {
		if !slices.Contains(invariants, inv.Name) {
			t.Errorf("the model's invariant %s is not checked by OMEGA.cfg", inv.Name)
		}
	}

	// Every test the README names exists.
	tests := testNames(t, root)
	for _, m := range regexp.MustCompile("`(Test[A-Za-z0-9_]+)`").FindAllStringSubmatch(readme, -1) {
		if !tests[m[1]] {
			t.Errorf("formal/README.md names %s, which no test file defines", m[1])
		}
	}
}

// defined reports whether the spec defines operator name.
func defined(tla, name string) bool {
	return regexp.MustCompile(`(?m)^` + name + `(\([^)]*\))? ==`).MatchString(tla)
}

// isAction reports whether the spec defines name as an action: an
// operator whose definition primes a variable.
func isAction(tla, name string) bool {
	m := regexp.MustCompile(`(?ms)^` + name + `(\([^)]*\))? ==(.*?)\n\n`).FindStringSubmatch(tla)
	return m != nil && strings.Contains(m[2], "'")
}

func hasRow(readme, name string) bool { return strings.Contains(readme, "\n| "+name+" |") }

// cfgSection returns the names listed under a TLC cfg keyword.
func cfgSection(cfg, keyword string) []string {
	var out []string
	in := false
	for _, line := range strings.Split(cfg, "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) == 0 || strings.HasPrefix(f[0], `\*`):
		case f[0] == keyword:
			in = true
		case in && len(f) == 1 && strings.ToUpper(f[0]) != f[0]:
			out = append(out, f[0])
		default:
			in = false
		}
	}
	return out
}

// testNames returns the names of the test functions of the module's test
// files.
func testNames(t *testing.T, root string) map[string]bool {
	names := map[string]bool{}
	re := regexp.MustCompile(`(?m)^func (Test[A-Za-z0-9_]+)\(`)
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, "_test.go") {
			return err
		}
		b, err := os.ReadFile(path)
		for _, m := range re.FindAllStringSubmatch(string(b), -1) {
			names[m[1]] = true
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return names
}
