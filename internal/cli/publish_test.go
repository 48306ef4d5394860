package cli_test

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/ftc-dev/ftc/internal/cli"
	"github.com/ftc-dev/ftc/internal/registrytest"
)

const publishRecipe = `package recipe

import (
	"ftc.dev/stdlib/gpus"
	"ftc.dev/stdlib/models"
	"ftc.dev/stdlib/profiles"
)

apiVersion:  "ftc.dev/v1alpha1"
name:        "tiny"
environment: profiles.Pinned2025Q1
hardware: gpu: gpus.H100_80G
datasets: chat: {
	file: {path: "data/chat.jsonl", sha256: "a7aa437ed5ff3d9284313a0c594960c563614072ad57bdbe171bd19498abe734"}
	format: "messages"
}
stages: sft: {
	method: "sft"
	model:  models.Qwen25_05BInstruct
	data: train: datasets.chat
	training: {epochs: 1, microBatch: 1, globalBatch: 4}
}
`

// publishTrainer stands in for the launcher and python -m ftc.entry: a
// deterministic output and metrics.
const publishTrainer = `#!/bin/sh
if [ "$1" = sft ]; then
	echo '{"loss": 2.5, "step": 1}' >> metrics.jsonl
	echo '{"loss": 1.5, "step": 2}' >> metrics.jsonl
fi
mkdir -p output && echo "weights of $1" > output/model.safetensors
`

// TestPublishReproduceRegistry pushes a --cpu run to a real registry
// (Debian's docker-registry, its own process on loopback), twice (the
// same manifest digest), then reproduces it from there into a fresh
// directory: keys match, and --rerun sft gives the same output tree.
func TestPublishReproduceRegistry(t *testing.T) {
	reg := registrytest.DockerRegistry(t)
	dir := t.TempDir()
	write := func(p, s string, mode os.FileMode) {
		p = filepath.Join(dir, p)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(s), mode); err != nil {
			t.Fatal(err)
		}
	}
	write("recipe.cue", publishRecipe, 0o644)
	write("data/chat.jsonl", `{"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello."}]}`+"\n", 0o644)
	write("trainer.sh", publishTrainer, 0o755)
	recipe, trainer, cache := filepath.Join(dir, "recipe.cue"), filepath.Join(dir, "trainer.sh"), filepath.Join(dir, "cache")
	t.Setenv("FTC_ENTRYPOINT", "")
	ftc := func(args ...string) (string, string) {
		t.Helper()
		var stdout, stderr bytes.Buffer
		if code := cli.Run(args, &stdout, &stderr); code != 0 {
			t.Fatalf("ftc %s: exit %d\n%s\n%s", strings.Join(args, " "), code, stdout.String(), stderr.String())
		}
		return stdout.String(), stderr.String()
	}
	ftc("run", "--offline", "--cpu", "--cache", cache, "--entrypoint", trainer, recipe)

	ref := reg + "/research/tiny:v1"
	digestRE := regexp.MustCompile(`manifest (sha256:[0-9a-f]{64})`)
	out, _ := ftc("publish", "--cache", cache, recipe, ref)
	first := digestRE.FindStringSubmatch(out)
	if first == nil {
		t.Fatalf("publish printed no digest:\n%s", out)
	}
	if !regexp.MustCompile(`to \S+/research/tiny:v1 \(pushed [0-9.]+ (B|KiB) in [0-9.]+s, [0-9.]+ [KM]?i?B/s\)`).MatchString(out) {
		t.Errorf("publish does not say what it pushed:\n%s", out)
	}
	out, _ = ftc("publish", "--cache", cache, recipe, reg+"/research/tiny:v2")
	if again := digestRE.FindStringSubmatch(out); again == nil || again[1] != first[1] {
		t.Fatalf("publishing the same run twice gave %v, then %v", first[1], again)
	}
	r, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	desc, err := remote.Get(r)
	if err != nil {
		t.Fatal(err)
	}
	if desc.Digest.String() != first[1] {
		t.Fatalf("the registry has %s under %s, publish said %s", desc.Digest, ref, first[1])
	}
	if !strings.Contains(string(desc.Manifest), `"artifactType":"application/vnd.ftc.research.v1"`) {
		t.Fatalf("manifest without the artifact type:\n%s", desc.Manifest)
	}

	// Another directory, a fresh cache: pulled, verified, re-planned, the
	// stages rerun, compared.
	here := filepath.Join(t.TempDir(), "here")
	out, _ = ftc("reproduce", "--dir", here, "--rerun", "sft", "--entrypoint", trainer, ref)
	for _, want := range []string{
		`(?m)^key sft +[0-9a-f]{12} +[0-9a-f]{12} +yes$`,
		`(?m)^output sft \(tree\) +([0-9a-f]{12}) +([0-9a-f]{12}) +yes$`,
		`(?m)^metric sft loss +1\.5 +1\.5 +yes$`,
		`(?m)^reproduced: every check matched`,
	} {
		if !regexp.MustCompile(want).MatchString(out) {
			t.Errorf("reproduce: no match for %s in:\n%s", want, out)
		}
	}
	if _, err := os.Stat(filepath.Join(here, "recipe", "data", "chat.jsonl")); err != nil {
		t.Errorf("the data file was not pulled: %v", err)
	}
}
