package train

import (
	"path/filepath"
	"testing"
)

// Every experiment configuration parses (no unknown key) and validates, so a user with the data can
// run it as is.
func TestExperimentConfigsValidate(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("..", "..", "experiments", "*", "*.yaml"))
	if err != nil || len(files) < 10 {
		t.Fatalf("experiment configs: %v, found %d", err, len(files))
	}
	for _, f := range files {
		cfg, err := LoadConfig(f)
		if err == nil {
			err = cfg.Normalized().Validate()
		}
		if err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
}
