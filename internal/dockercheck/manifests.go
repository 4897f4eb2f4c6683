package dockercheck

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// node helpers over yaml.v3's generic decoding
type obj = map[string]any

func get(m any, keys ...string) any {
	for _, k := range keys {
		mm, ok := m.(obj)
		if !ok {
			return nil
		}
		m = mm[k]
	}
	return m
}

func str(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case int:
		return strconv.Itoa(x)
	case nil:
		return ""
	}
	return fmt.Sprint(v)
}

func list(v any) []any { l, _ := v.([]any); return l }

// CLINames are the command and flag names the spreadtrain CLI defines (read from the sources in
// cmd/spreadtrain), so that arguments in the manifests can be checked for typos without building it.
func CLINames(root string) (map[string]bool, error) {
	files, err := filepath.Glob(filepath.Join(root, "cmd", "spreadtrain", "*.go"))
	if err != nil || len(files) == 0 {
		return nil, fmt.Errorf("no CLI sources under %s/cmd/spreadtrain", root)
	}
	// Name: "x" in commands and flags; str(catGroup, "x", ...), num(...), integer(...), boolean(...) in
	// train's configuration flags
	re := regexp.MustCompile(`(?:Name:\s*|\b(?:str|num|integer|boolean)\(\s*(?:cat\w+,\s*)?)"([a-z0-9-]+)"`)
	names := map[string]bool{}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		raw, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		for _, m := range re.FindAllSubmatch(raw, -1) {
			names[string(m[1])] = true
		}
	}
	// in the course of being added to train (docker/entrypoint.sh passes it through)
	names["nproc-per-node"] = true
	return names, nil
}

// checkArgs checks a container's spreadtrain arguments: a known command, known --flags, a --config
// that is a built-in configuration or a path, and --out under /runs.
func checkArgs(root string, cli map[string]bool, where string, args []any) []error {
	var errs []error
	if len(args) == 0 {
		return []error{fmt.Errorf("%s: no arguments (want e.g. train --config NAME --out /runs/NAME)", where)}
	}
	if c := str(args[0]); !cli[c] {
		errs = append(errs, fmt.Errorf("%s: %q is not a spreadtrain command", where, c))
	}
	for i, a := range args {
		s := str(a)
		if !strings.HasPrefix(s, "--") {
			continue
		}
		name, _, _ := strings.Cut(strings.TrimPrefix(s, "--"), "=")
		if !cli[name] {
			errs = append(errs, fmt.Errorf("%s: spreadtrain has no flag --%s", where, name))
		}
		if i+1 >= len(args) {
			continue
		}
		v := str(args[i+1])
		switch name {
		case "config":
			if !strings.ContainsAny(v, "/.") {
				if _, err := os.Stat(filepath.Join(root, "pkg", "train", "configs", v+".yaml")); err != nil {
					errs = append(errs, fmt.Errorf("%s: --config %s is not a built-in configuration", where, v))
				}
			}
		case "out":
			if !strings.HasPrefix(v, "/runs/") {
				errs = append(errs, fmt.Errorf("%s: --out %s is not on the /runs volume", where, v))
			}
		}
	}
	return errs
}

// CheckCompose checks docker/compose.yaml: every service builds or names the image, its Dockerfile
// exists, its arguments are spreadtrain's, /data and /runs are mounted, and GPUs are reserved the way
// Compose reads them (deploy.resources.reservations.devices): one service with one GPU and one with
// several and NPROC_PER_NODE.
func CheckCompose(root, file string) []error {
	raw, err := os.ReadFile(file)
	if err != nil {
		return []error{err}
	}
	var doc obj
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		return []error{fmt.Errorf("%s: %v", file, err)}
	}
	cli, err := CLINames(root)
	if err != nil {
		return []error{err}
	}
	services, _ := doc["services"].(obj)
	if len(services) == 0 {
		return []error{fmt.Errorf("%s: no services", file)}
	}
	var errs []error
	single, multi := false, false
	dir := filepath.Dir(file)
	for name, s := range services {
		where := fmt.Sprintf("%s: service %s", filepath.Base(file), name)
		if get(s, "image") == nil && get(s, "build") == nil {
			errs = append(errs, fmt.Errorf("%s: neither image nor build", where))
		}
		if b := get(s, "build"); b != nil {
			ctx := filepath.Join(dir, str(get(b, "context")))
			df := str(get(b, "dockerfile"))
			if df == "" {
				df = "Dockerfile"
			}
			if _, err := os.Stat(filepath.Join(ctx, df)); err != nil {
				errs = append(errs, fmt.Errorf("%s: build: %v", where, err))
			}
		}
		errs = append(errs, checkArgs(root, cli, where, list(get(s, "command")))...)
		mounts := map[string]bool{}
		for _, v := range list(get(s, "volumes")) {
			parts := strings.Split(str(v), ":")
			if len(parts) >= 2 {
				// the source may hold ${VAR:-default}, whose ':' is not a separator
				for _, p := range parts[1:] {
					if strings.HasPrefix(p, "/") {
						mounts[p] = true
					}
				}
			}
		}
		if !mounts["/data"] || !mounts["/runs"] {
			errs = append(errs, fmt.Errorf("%s: mount volumes on /data and /runs", where))
		}
		env, _ := get(s, "environment").(obj)
		if str(env["SPREADTRAIN_DATA"]) != "/data" {
			errs = append(errs, fmt.Errorf("%s: environment SPREADTRAIN_DATA should be /data", where))
		}
		devs := list(get(s, "deploy", "resources", "reservations", "devices"))
		if len(devs) == 0 {
			errs = append(errs, fmt.Errorf("%s: no GPU reservation (deploy.resources.reservations.devices)", where))
		}
		for _, d := range devs {
			caps := list(get(d, "capabilities"))
			hasGPU := false
			for _, c := range caps {
				hasGPU = hasGPU || str(c) == "gpu"
			}
			if !hasGPU || str(get(d, "driver")) != "nvidia" {
				errs = append(errs, fmt.Errorf("%s: a device reservation needs driver: nvidia and capabilities: [gpu]", where))
			}
			switch c := get(d, "count").(type) {
			case int:
				if c == 1 {
					single = true
				} else if c > 1 {
					multi = multi || env["NPROC_PER_NODE"] != nil
				} else {
					errs = append(errs, fmt.Errorf("%s: count %d", where, c))
				}
			case string:
				if c != "all" {
					errs = append(errs, fmt.Errorf("%s: count %q: want a number or all", where, c))
				}
				multi = multi || env["NPROC_PER_NODE"] != nil
			default:
				errs = append(errs, fmt.Errorf("%s: a device reservation needs count (a number or all)", where))
			}
		}
	}
	if !single || !multi {
		errs = append(errs, fmt.Errorf("%s: want a one-GPU service and a multi-GPU one with NPROC_PER_NODE", file))
	}
	return errs
}

// CheckK8s checks docker/k8s-job.yaml: a Job on one GPU, and an Indexed Job whose torchrun variables
// agree with it (RANK from the completion index, WORLD_SIZE = completions = parallelism, MASTER_ADDR
// = rank 0's pod through a headless Service named by the pods' subdomain, a numeric MASTER_PORT), and
// in both, spreadtrain arguments, GPU limits and volume mounts that name defined volumes.
func CheckK8s(root, file string) []error {
	raw, err := os.ReadFile(file)
	if err != nil {
		return []error{err}
	}
	cli, err := CLINames(root)
	if err != nil {
		return []error{err}
	}
	var docs []obj
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	for {
		var d obj
		err := dec.Decode(&d)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return []error{fmt.Errorf("%s: %v", file, err)}
		}
		if d != nil {
			docs = append(docs, d)
		}
	}
	var errs []error
	services := map[string]obj{}
	for _, d := range docs {
		if str(d["apiVersion"]) == "" || str(d["kind"]) == "" || str(get(d, "metadata", "name")) == "" {
			errs = append(errs, fmt.Errorf("%s: every document needs apiVersion, kind and metadata.name", file))
		}
		if str(d["kind"]) == "Service" {
			services[str(get(d, "metadata", "name"))] = d
		}
	}
	single, indexed := false, false
	for _, d := range docs {
		if str(d["kind"]) != "Job" {
			continue
		}
		job := str(get(d, "metadata", "name"))
		where := fmt.Sprintf("%s: Job %s", filepath.Base(file), job)
		if str(d["apiVersion"]) != "batch/v1" {
			errs = append(errs, fmt.Errorf("%s: apiVersion should be batch/v1", where))
		}
		pod := get(d, "spec", "template", "spec")
		if rp := str(get(pod, "restartPolicy")); rp != "Never" && rp != "OnFailure" {
			errs = append(errs, fmt.Errorf("%s: a Job's restartPolicy must be Never or OnFailure, not %q", where, rp))
		}
		volumes := map[string]bool{}
		for _, v := range list(get(pod, "volumes")) {
			volumes[str(get(v, "name"))] = true
		}
		containers := list(get(pod, "containers"))
		if len(containers) == 0 {
			errs = append(errs, fmt.Errorf("%s: no containers", where))
		}
		var env map[string]any
		gpus := 0
		for _, c := range containers {
			cw := where + " container " + str(get(c, "name"))
			if str(get(c, "image")) == "" {
				errs = append(errs, fmt.Errorf("%s: no image", cw))
			}
			errs = append(errs, checkArgs(root, cli, cw, list(get(c, "args")))...)
			gpus, _ = strconv.Atoi(str(get(c, "resources", "limits", "nvidia.com/gpu")))
			if gpus < 1 {
				errs = append(errs, fmt.Errorf("%s: resources.limits nvidia.com/gpu must be >= 1", cw))
			}
			mounted := map[string]bool{}
			for _, m := range list(get(c, "volumeMounts")) {
				if !volumes[str(get(m, "name"))] {
					errs = append(errs, fmt.Errorf("%s: volumeMount %s names no volume", cw, str(get(m, "name"))))
				}
				mounted[str(get(m, "mountPath"))] = true
			}
			if !mounted["/data"] || !mounted["/runs"] {
				errs = append(errs, fmt.Errorf("%s: mount volumes on /data and /runs", cw))
			}
			env = map[string]any{}
			for _, e := range list(get(c, "env")) {
				if v := get(e, "valueFrom"); v != nil {
					env[str(get(e, "name"))] = v
				} else {
					env[str(get(e, "name"))] = str(get(e, "value"))
				}
			}
			if env["SPREADTRAIN_DATA"] != "/data" {
				errs = append(errs, fmt.Errorf("%s: env SPREADTRAIN_DATA should be /data", cw))
			}
		}
		if str(get(d, "spec", "completionMode")) != "Indexed" {
			single = single || gpus == 1
			continue
		}
		indexed = true
		completions, parallelism := str(get(d, "spec", "completions")), str(get(d, "spec", "parallelism"))
		if completions == "" || completions != parallelism || completions != str(env["WORLD_SIZE"]) {
			errs = append(errs, fmt.Errorf("%s: completions (%s), parallelism (%s) and WORLD_SIZE (%v) must agree: every rank runs at once",
				where, completions, parallelism, env["WORLD_SIZE"]))
		}
		if !strings.Contains(str(get(env["RANK"], "fieldRef", "fieldPath")), "job-completion-index") {
			errs = append(errs, fmt.Errorf("%s: RANK should come from the job-completion-index annotation (fieldRef)", where))
		}
		sub := str(get(pod, "subdomain"))
		if want := job + "-0." + sub; sub == "" || env["MASTER_ADDR"] != want {
			errs = append(errs, fmt.Errorf("%s: MASTER_ADDR %v: want rank 0's pod, %s (subdomain %q)", where, env["MASTER_ADDR"], want, sub))
		}
		if svc, ok := services[sub]; !ok {
			errs = append(errs, fmt.Errorf("%s: subdomain %q names no Service in the file", where, sub))
		} else if str(get(svc, "spec", "clusterIP")) != "None" || str(get(svc, "spec", "selector", "job-name")) != job {
			errs = append(errs, fmt.Errorf("%s: Service %s must be headless (clusterIP: None) and select job-name: %s", where, sub, job))
		}
		if p, err := strconv.Atoi(str(env["MASTER_PORT"])); err != nil || p < 1 || p > 65535 {
			errs = append(errs, fmt.Errorf("%s: MASTER_PORT %v is not a port number", where, env["MASTER_PORT"]))
		}
	}
	if !single || !indexed {
		errs = append(errs, fmt.Errorf("%s: want a one-GPU Job and an Indexed Job for several GPUs", file))
	}
	return errs
}
