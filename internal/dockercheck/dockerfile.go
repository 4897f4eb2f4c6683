// Package dockercheck is a static check of the container files (Dockerfile.cuda, .dockerignore,
// docker/compose.yaml, docker/k8s-job.yaml, docker/entrypoint.sh) that runs in `go test` with no
// container engine and no network: `docker build --check` needs a daemon, and no Dockerfile linter is
// packaged for Debian. It parses the Dockerfile the way BuildKit's frontend does (line continuations,
// comments, parser directives, JSON and shell forms, instruction flags) and checks what a build
// would trip over, before anyone runs one:
//   - every instruction and flag is known; JSON forms are string arrays;
//   - the first instruction is FROM (or ARG); every stage is named, once, in lower case; base images
//     carry an explicit tag or digest (not latest);
//   - COPY --from names an earlier stage or a tagged image; several sources go to a directory (/);
//   - variables that Docker expands (FROM, ENV, COPY, WORKDIR, ...) are declared (ARG/ENV) in scope,
//     or are known to come from the base image;
//   - files copied from the build context exist and are not excluded by .dockerignore;
//   - the last stage has an exec-form ENTRYPOINT; a script it names is copied in that stage, is
//     executable, and passes `bash -n`.
//
// It does not run the build: whether apt, pip or cmake succeed inside the images is out of its reach.
package dockercheck

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"strings"
)

// Instruction is one Dockerfile instruction with its continuation lines joined.
type Instruction struct {
	Line  int               // 1-based line of the instruction's first line
	Cmd   string            // upper case: FROM, RUN, ...
	Flags map[string]string // --name=value flags before the arguments
	Args  string            // the rest, continuations joined with a space
	JSON  []string          // the exec (JSON) form's elements, when Args is a JSON array
}

func (in Instruction) String() string { return fmt.Sprintf("line %d: %s", in.Line, in.Cmd) }

var knownFlags = map[string][]string{
	"FROM": {"platform"}, "RUN": {"mount", "network", "security"},
	"COPY":        {"from", "chown", "chmod", "link", "parents", "exclude"},
	"ADD":         {"chown", "chmod", "link", "keep-git-dir", "checksum", "exclude"},
	"HEALTHCHECK": {"interval", "timeout", "start-period", "start-interval", "retries"},
	"CMD":         nil, "LABEL": nil, "MAINTAINER": nil, "EXPOSE": nil, "ENV": nil, "ENTRYPOINT": nil,
	"VOLUME": nil, "USER": nil, "WORKDIR": nil, "ARG": nil, "ONBUILD": nil, "STOPSIGNAL": nil, "SHELL": nil,
}

// jsonForm lists the instructions whose arguments may be a JSON array.
var jsonForm = map[string]bool{"RUN": true, "CMD": true, "ENTRYPOINT": true, "SHELL": true, "VOLUME": true,
	"COPY": true, "ADD": true}

var directiveRe = regexp.MustCompile(`^#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$`)

// Parse splits a Dockerfile into instructions. It supports the default escape character only.
func Parse(src string) ([]Instruction, error) {
	lines := strings.Split(strings.ReplaceAll(src, "\r\n", "\n"), "\n")
	var out []Instruction
	directives := true
	for i := 0; i < len(lines); i++ {
		line := strings.TrimSpace(lines[i])
		if directives {
			if m := directiveRe.FindStringSubmatch(line); m != nil {
				if strings.EqualFold(m[1], "escape") && m[2] != `\` {
					return nil, fmt.Errorf("line %d: escape=%s: this checker knows the default escape only", i+1, m[2])
				}
				continue
			}
			directives = false
		}
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		start := i
		var parts []string
		for {
			cont := strings.HasSuffix(line, `\`)
			if cont {
				line = strings.TrimSuffix(line, `\`)
			}
			parts = append(parts, strings.TrimSpace(line))
			if !cont {
				break
			}
			// comment and empty lines inside a continuation are dropped, as BuildKit does
			for i++; i < len(lines); i++ {
				line = strings.TrimSpace(lines[i])
				if line != "" && !strings.HasPrefix(line, "#") {
					break
				}
			}
			if i >= len(lines) {
				return nil, fmt.Errorf("line %d: the file ends inside a line continuation", start+1)
			}
		}
		ins, err := parseInstruction(start+1, strings.Join(parts, " "))
		if err != nil {
			return nil, err
		}
		out = append(out, ins)
	}
	return out, nil
}

func parseInstruction(line int, text string) (Instruction, error) {
	word, rest, _ := strings.Cut(text, " ")
	ins := Instruction{Line: line, Cmd: strings.ToUpper(word), Flags: map[string]string{}}
	allowed, ok := knownFlags[ins.Cmd]
	if !ok {
		return ins, fmt.Errorf("line %d: unknown instruction %q", line, word)
	}
	rest = strings.TrimSpace(rest)
	for strings.HasPrefix(rest, "--") {
		var flag string
		flag, rest, _ = strings.Cut(rest, " ")
		rest = strings.TrimSpace(rest)
		name, value, _ := strings.Cut(strings.TrimPrefix(flag, "--"), "=")
		if !contains(allowed, name) {
			return ins, fmt.Errorf("line %d: %s has no flag --%s", line, ins.Cmd, name)
		}
		ins.Flags[name] = value
	}
	ins.Args = rest
	if jsonForm[ins.Cmd] && strings.HasPrefix(rest, "[") {
		if err := json.Unmarshal([]byte(rest), &ins.JSON); err != nil {
			return ins, fmt.Errorf("line %d: %s: the exec form must be a JSON array of strings: %v", line, ins.Cmd, err)
		}
	}
	if rest == "" && ins.Cmd != "CMD" && ins.Cmd != "ENTRYPOINT" {
		return ins, fmt.Errorf("line %d: %s needs arguments", line, ins.Cmd)
	}
	return ins, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// Options tune Check.
type Options struct {
	// Inherited are variables the base images define, which Dockerfile instructions may expand
	// (e.g. PATH, LD_LIBRARY_PATH).
	Inherited []string
}

// DefaultInherited are the variables the official images set that Dockerfile.cuda builds on.
var DefaultInherited = []string{"PATH", "LD_LIBRARY_PATH", "HOME", "HOSTNAME"}

type stage struct {
	name string
	vars map[string]bool // ARG and ENV names in scope
	// copied maps destination paths of COPY/ADD from the build context to their source files
	copied map[string]string
}

var (
	stageNameRe = regexp.MustCompile(`^[a-z][a-z0-9._-]*$`)
	imageRe     = regexp.MustCompile(`^([a-z0-9.-]+(:[0-9]+)?/)?[a-z0-9]+([._-][a-z0-9]+)*(/[a-z0-9]+([._-][a-z0-9]+)*)*(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(@sha256:[a-f0-9]{64})?$`)
	varRe       = regexp.MustCompile(`\$(?:\{([A-Za-z_][A-Za-z0-9_]*)(:?[-+?][^}]*)?\}|([A-Za-z_][A-Za-z0-9_]*))`)
	// variables BuildKit defines for FROM lines without a declaration
	automaticArgs = []string{"BUILDPLATFORM", "BUILDOS", "BUILDARCH", "BUILDVARIANT", "TARGETPLATFORM", "TARGETOS",
		"TARGETARCH", "TARGETVARIANT"}
)

// Check parses the Dockerfile at dockerfile and checks it against the build context root (which holds
// .dockerignore). It returns every problem found; none means the file passed.
func Check(root, dockerfile string, opt Options) []error {
	raw, err := os.ReadFile(dockerfile)
	if err != nil {
		return []error{err}
	}
	ins, err := Parse(string(raw))
	if err != nil {
		return []error{err}
	}
	ignore, err := ReadDockerignore(filepath.Join(root, ".dockerignore"))
	if err != nil {
		return []error{err}
	}
	var errs []error
	bad := func(in Instruction, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", in, fmt.Sprintf(format, args...)))
	}
	global := map[string]string{} // ARGs before the first FROM, with their defaults
	var stages []*stage
	var cur *stage
	var entrypoint *Instruction
	for _, in := range ins {
		if cur == nil && in.Cmd != "FROM" && in.Cmd != "ARG" {
			bad(in, "the first instruction must be FROM (or ARG before it)")
			continue
		}
		switch in.Cmd {
		case "ARG":
			name, def, _ := strings.Cut(in.Args, "=")
			if cur == nil {
				global[name] = strings.Trim(def, `"'`)
			} else {
				cur.vars[name] = true // a stage's ARG (re)declares the name, with or without a default
			}
		case "FROM":
			fields := strings.Fields(in.Args)
			if len(fields) != 3 || !strings.EqualFold(fields[1], "AS") {
				bad(in, "every stage needs a name: FROM IMAGE AS NAME")
				fields = append(fields, "", "", "")[:3]
			}
			image, name := fields[0], fields[2]
			for _, v := range varsIn(image) {
				if _, ok := global[v.name]; !ok && !v.hasDefault && !contains(automaticArgs, v.name) {
					bad(in, "$%s is not declared by an ARG before the first FROM", v.name)
				}
			}
			st := &stage{name: name, vars: map[string]bool{}, copied: map[string]string{}}
			if base := stageByName(stages, image); base != nil {
				for k := range base.vars {
					st.vars[k] = true
				}
			} else {
				resolved := expand(image, global)
				if !imageRe.MatchString(resolved) {
					bad(in, "base image %q is not a valid image reference", resolved)
				} else if !hasTag(resolved) || strings.HasSuffix(resolved, ":latest") {
					bad(in, "base image %q: pin a tag or digest (not latest)", resolved)
				}
			}
			if name != "" {
				if !stageNameRe.MatchString(name) {
					bad(in, "stage name %q: use lower-case letters, digits, '-', '_' and '.'", name)
				}
				if stageByName(stages, name) != nil {
					bad(in, "stage name %q is used twice", name)
				}
			}
			stages = append(stages, st)
			cur = st
			entrypoint = nil
		case "ENV":
			checkVars(in, in.Args, cur, opt, bad)
			for _, k := range envKeys(in.Args) {
				cur.vars[k] = true
			}
		case "COPY", "ADD":
			checkVars(in, in.Args, cur, opt, bad)
			checkCopy(in, root, ignore, stages, cur, bad)
		case "WORKDIR", "USER", "VOLUME", "EXPOSE", "LABEL", "STOPSIGNAL":
			checkVars(in, in.Args, cur, opt, bad)
		case "ENTRYPOINT":
			e := in
			entrypoint = &e
		}
	}
	if len(stages) == 0 {
		errs = append(errs, fmt.Errorf("%s: no FROM instruction", dockerfile))
		return errs
	}
	final := stages[len(stages)-1]
	if entrypoint == nil {
		errs = append(errs, fmt.Errorf("the final stage %q has no ENTRYPOINT", final.name))
	} else if entrypoint.JSON == nil || len(entrypoint.JSON) == 0 {
		bad(*entrypoint, "use the exec form (a JSON array), so that signals reach the process")
	} else if exe := entrypoint.JSON[0]; strings.HasPrefix(exe, "/") && !isSystemPath(exe) {
		src, ok := final.copied[exe]
		if !ok {
			bad(*entrypoint, "%s is not copied into the final stage %q", exe, final.name)
		} else if src != "" {
			if err := checkScript(filepath.Join(root, filepath.FromSlash(src)), final, exe); err != nil {
				bad(*entrypoint, "%v", err)
			}
		}
	}
	return errs
}

func isSystemPath(p string) bool {
	for _, d := range []string{"/bin/", "/sbin/", "/usr/"} {
		if strings.HasPrefix(p, d) {
			return true
		}
	}
	return false
}

func stageByName(stages []*stage, name string) *stage {
	for _, s := range stages {
		if s.name != "" && s.name == name {
			return s
		}
	}
	return nil
}

func hasTag(ref string) bool {
	last := ref[strings.LastIndex(ref, "/")+1:]
	return strings.ContainsAny(last, ":@")
}

type varRef struct {
	name       string
	hasDefault bool
}

// varsIn lists $NAME and ${NAME...} references outside single quotes (Docker does not expand those).
func varsIn(s string) []varRef {
	var out []varRef
	for i, part := range strings.Split(s, "'") {
		if i%2 == 1 {
			continue
		}
		for _, m := range varRe.FindAllStringSubmatchIndex(part, -1) {
			if m[0] > 0 && part[m[0]-1] == '\\' {
				continue
			}
			if m[2] >= 0 {
				mod := ""
				if m[4] >= 0 {
					mod = part[m[4]:m[5]]
				}
				out = append(out, varRef{part[m[2]:m[3]], strings.Contains(mod, "-") || strings.Contains(mod, "+")})
			} else {
				out = append(out, varRef{name: part[m[6]:m[7]]})
			}
		}
	}
	return out
}

func expand(s string, vars map[string]string) string {
	return varRe.ReplaceAllStringFunc(s, func(m string) string {
		sub := varRe.FindStringSubmatch(m)
		name := sub[1] + sub[3]
		if v, ok := vars[name]; ok {
			return v
		}
		if strings.HasPrefix(sub[2], ":-") || strings.HasPrefix(sub[2], "-") {
			return strings.TrimLeft(sub[2], ":-")
		}
		return m
	})
}

func checkVars(in Instruction, text string, cur *stage, opt Options, bad func(Instruction, string, ...any)) {
	for _, v := range varsIn(text) {
		if !cur.vars[v.name] && !v.hasDefault && !contains(opt.Inherited, v.name) {
			bad(in, "$%s is not declared (ARG or ENV) in stage %q", v.name, cur.name)
		}
	}
}

// envKeys reads the names ENV defines: KEY=VALUE pairs (values may be quoted), or the legacy KEY VALUE.
func envKeys(args string) []string {
	toks := splitQuoted(args)
	if len(toks) > 0 && !strings.Contains(toks[0], "=") {
		return toks[:1]
	}
	var keys []string
	for _, t := range toks {
		if k, _, ok := strings.Cut(t, "="); ok {
			keys = append(keys, k)
		}
	}
	return keys
}

// splitQuoted splits on unquoted white space, keeping quotes inside the tokens.
func splitQuoted(s string) []string {
	var out []string
	var cur strings.Builder
	var quote rune
	for _, r := range s {
		switch {
		case quote != 0:
			if r == quote {
				quote = 0
			}
			cur.WriteRune(r)
		case r == '"' || r == '\'':
			quote = r
			cur.WriteRune(r)
		case r == ' ' || r == '\t':
			if cur.Len() > 0 {
				out = append(out, cur.String())
				cur.Reset()
			}
		default:
			cur.WriteRune(r)
		}
	}
	if cur.Len() > 0 {
		out = append(out, cur.String())
	}
	return out
}

func checkCopy(in Instruction, root string, ignore *Dockerignore, stages []*stage, cur *stage,
	bad func(Instruction, string, ...any)) {
	args := in.JSON
	if args == nil {
		args = strings.Fields(in.Args)
	}
	if len(args) < 2 {
		bad(in, "%s needs a source and a destination", in.Cmd)
		return
	}
	srcs, dest := args[:len(args)-1], args[len(args)-1]
	if len(srcs) > 1 && !strings.HasSuffix(dest, "/") {
		bad(in, "several sources need a destination folder ending in /, not %q", dest)
	}
	destFor := func(src string) string {
		if strings.HasSuffix(dest, "/") {
			return path.Join(dest, path.Base(src))
		}
		return path.Clean(dest)
	}
	if from, ok := in.Flags["from"]; ok {
		if st := stageByName(stages[:len(stages)-1], from); st == nil {
			switch {
			case from == cur.name:
				bad(in, "COPY --from=%s names the stage it is in", from)
			case !strings.ContainsAny(from, ":@/"):
				bad(in, "COPY --from=%s: no earlier stage has that name (and it is not a tagged image)", from)
			case !imageRe.MatchString(from) || !hasTag(from):
				bad(in, "COPY --from=%s: not an image reference with a tag or digest", from)
			}
		}
		for _, s := range srcs {
			if !strings.HasPrefix(s, "/") {
				bad(in, "COPY --from=%s %s: give the absolute path in that image", from, s)
			}
			cur.copied[destFor(s)] = ""
		}
		return
	}
	for _, s := range srcs {
		if strings.Contains(s, "://") {
			continue // ADD of a URL
		}
		clean := path.Clean(strings.TrimPrefix(s, "./"))
		if path.IsAbs(s) || clean == ".." || strings.HasPrefix(clean, "../") {
			bad(in, "%s: sources must lie inside the build context", s)
			continue
		}
		matches, _ := filepath.Glob(filepath.Join(root, filepath.FromSlash(clean)))
		if len(matches) == 0 {
			bad(in, "%s does not exist in the build context %s", s, root)
			continue
		}
		for _, m := range matches {
			rel, _ := filepath.Rel(root, m)
			if ignore.Excluded(filepath.ToSlash(rel)) {
				bad(in, "%s is excluded from the build context by .dockerignore", filepath.ToSlash(rel))
			}
		}
		cur.copied[destFor(clean)] = clean
	}
	if mode, ok := in.Flags["chmod"]; ok {
		for _, s := range srcs {
			cur.copied[destFor(path.Clean(strings.TrimPrefix(s, "./")))+"#chmod"] = mode
		}
	}
}

// checkScript checks the file an ENTRYPOINT runs: executable once copied, and, for a shell script,
// syntactically valid (bash -n).
func checkScript(file string, st *stage, dest string) error {
	info, err := os.Stat(file)
	if err != nil {
		return err
	}
	mode, hasChmod := st.copied[dest+"#chmod"]
	if info.Mode()&0o111 == 0 && !(hasChmod && strings.ContainsAny(mode[len(mode)-1:], "1357")) {
		return fmt.Errorf("%s is not executable (chmod +x it, or COPY --chmod=0755)", file)
	}
	return ShellSyntax(file)
}

// ShellSyntax runs `bash -n` on a script whose first line names sh or bash; other files pass.
func ShellSyntax(file string) error {
	raw, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	first, _, _ := strings.Cut(string(raw), "\n")
	if !strings.HasPrefix(first, "#!") || !regexp.MustCompile(`\b(ba)?sh\b`).MatchString(first) {
		return nil
	}
	bash, err := exec.LookPath("bash")
	if err != nil {
		return fmt.Errorf("bash -n %s: bash is not installed", file)
	}
	if out, err := exec.Command(bash, "-n", file).CombinedOutput(); err != nil {
		return fmt.Errorf("bash -n %s: %v: %s", file, err, strings.TrimSpace(string(out)))
	}
	return nil
}
