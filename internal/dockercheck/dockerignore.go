package dockercheck

import (
	"errors"
	"io/fs"
	"os"
	"path"
	"regexp"
	"strings"
)

// Dockerignore is a parsed .dockerignore, matched as Docker matches the build context: patterns in
// order, the last one that matches a path or one of its parent folders decides, ! re-includes.
type Dockerignore struct {
	patterns []ignorePattern
}

type ignorePattern struct {
	re      *regexp.Regexp
	exclude bool
}

// ReadDockerignore reads a .dockerignore; a missing file excludes nothing.
func ReadDockerignore(file string) (*Dockerignore, error) {
	raw, err := os.ReadFile(file)
	if errors.Is(err, fs.ErrNotExist) {
		return &Dockerignore{}, nil
	}
	if err != nil {
		return nil, err
	}
	return ParseDockerignore(string(raw))
}

// ParseDockerignore parses .dockerignore text.
func ParseDockerignore(text string) (*Dockerignore, error) {
	d := &Dockerignore{}
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		exclude := true
		if strings.HasPrefix(line, "!") {
			exclude = false
			line = strings.TrimSpace(line[1:])
		}
		p := strings.TrimPrefix(path.Clean("/"+line), "/")
		if p == "" {
			p = "."
		}
		re, err := regexp.Compile("^" + globToRegexp(p) + "$")
		if err != nil {
			return nil, err
		}
		d.patterns = append(d.patterns, ignorePattern{re: re, exclude: exclude})
	}
	return d, nil
}

// globToRegexp converts Docker's pattern syntax (filepath.Match plus **) to a regular expression.
func globToRegexp(p string) string {
	var b strings.Builder
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch {
		case strings.HasPrefix(p[i:], "**/"):
			b.WriteString("(.*/)?")
			i += 2
		case strings.HasPrefix(p[i:], "**"):
			b.WriteString(".*")
			i++
		case c == '*':
			b.WriteString("[^/]*")
		case c == '?':
			b.WriteString("[^/]")
		case c == '[':
			j := strings.IndexByte(p[i:], ']')
			if j < 0 {
				b.WriteString(`\[`)
				continue
			}
			class := p[i+1 : i+j]
			if strings.HasPrefix(class, "!") {
				class = "^" + class[1:]
			}
			b.WriteString("[" + class + "]")
			i += j
		case c == '\\' && i+1 < len(p):
			i++
			b.WriteString(regexp.QuoteMeta(p[i : i+1]))
		default:
			b.WriteString(regexp.QuoteMeta(string(c)))
		}
	}
	return b.String()
}

// Excluded says whether a slash-separated path relative to the context root is left out of the
// build context.
func (d *Dockerignore) Excluded(rel string) bool {
	rel = strings.TrimPrefix(path.Clean("/"+rel), "/")
	// the path and each of its parents, shortest first
	var prefixes []string
	parts := strings.Split(rel, "/")
	for i := range parts {
		prefixes = append(prefixes, strings.Join(parts[:i+1], "/"))
	}
	excluded := false
	for _, p := range d.patterns {
		for _, pre := range prefixes {
			if p.re.MatchString(pre) {
				excluded = p.exclude
				break
			}
		}
	}
	return excluded
}
