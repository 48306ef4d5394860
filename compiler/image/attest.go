package image

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/ftc-dev/ftc/compiler/config"
	"github.com/ftc-dev/ftc/compiler/key"
)

// Artifact types of the documents attached to an image (OCI referrers).
const (
	SBOMArtifactType       = "application/spdx+json"
	ProvenanceArtifactType = "application/vnd.in-toto+json"
)

// Subject is the image a document describes.
type Subject struct {
	// Name is the recipe's name.
	Name string
	// Digest is the image manifest's digest, "sha256:…".
	Digest string
}

// Provenance is what the provenance statement records beyond the spec.
type Provenance struct {
	// RecipeDigest is the digest of the validated recipe (its canonical
	// JSON, --set overrides applied).
	RecipeDigest string
	// LockDigest is the sha256 of ftc.lock as read.
	LockDigest string
	// Version is ftc's version.
	Version string
	// EnvironmentKey is the key of the environment image.
	EnvironmentKey string
}

// SBOM renders an SPDX 2.3 document of the image's software: the base
// image, the locked Python packages and ftc's entrypoints package. It has
// no timestamp but the build's epoch, so it is reproducible.
func SBOM(s *Spec, sub Subject, version string) ([]byte, error) {
	type checksum struct {
		Algorithm string `json:"algorithm"`
		Value     string `json:"checksumValue"`
	}
	type ref struct {
		Category string `json:"referenceCategory"`
		Type     string `json:"referenceType"`
		Locator  string `json:"referenceLocator"`
	}
	type pkg struct {
		ID               string     `json:"SPDXID"`
		Name             string     `json:"name"`
		Version          string     `json:"versionInfo,omitempty"`
		DownloadLocation string     `json:"downloadLocation"`
		FilesAnalyzed    bool       `json:"filesAnalyzed"`
		Purpose          string     `json:"primaryPackagePurpose,omitempty"`
		Checksums        []checksum `json:"checksums,omitempty"`
		ExternalRefs     []ref      `json:"externalRefs,omitempty"`
	}
	type rel struct {
		From string `json:"spdxElementId"`
		Type string `json:"relationshipType"`
		To   string `json:"relatedSpdxElement"`
	}
	hexOf := func(d string) string { return strings.TrimPrefix(d, "sha256:") }
	img := pkg{ID: "SPDXRef-Image", Name: sub.Name, Version: sub.Digest, DownloadLocation: "NOASSERTION", Purpose: "CONTAINER",
		Checksums: []checksum{{"SHA256", hexOf(sub.Digest)}}}
	baseRef, baseDigest, _ := strings.Cut(s.Environment.Base, "@")
	base := pkg{ID: "SPDXRef-Base", Name: baseRef, Version: baseDigest, DownloadLocation: "NOASSERTION", Purpose: "CONTAINER",
		Checksums: []checksum{{"SHA256", hexOf(baseDigest)}}}
	ftc := pkg{ID: "SPDXRef-ftc-entrypoints", Name: "ftc", Version: version, DownloadLocation: "NOASSERTION", Purpose: "APPLICATION"}
	pkgs := []pkg{img, base, ftc}
	rels := []rel{{"SPDXRef-DOCUMENT", "DESCRIBES", img.ID}, {img.ID, "DESCENDANT_OF", base.ID}, {img.ID, "CONTAINS", ftc.ID}}
	for _, p := range s.Environment.Packages {
		q := pkg{ID: "SPDXRef-pypi-" + spdxID(Normalize(p.Name)), Name: p.Name, Version: p.Version, DownloadLocation: "NOASSERTION", Purpose: "LIBRARY",
			ExternalRefs: []ref{{"PACKAGE-MANAGER", "purl", "pkg:pypi/" + Normalize(p.Name) + "@" + p.Version}}}
		for _, h := range p.Hashes {
			q.Checksums = append(q.Checksums, checksum{"SHA256", hexOf(h)})
		}
		pkgs = append(pkgs, q)
		rels = append(rels, rel{img.ID, "CONTAINS", q.ID})
	}
	doc := struct {
		Version       string `json:"spdxVersion"`
		DataLicense   string `json:"dataLicense"`
		ID            string `json:"SPDXID"`
		Name          string `json:"name"`
		Namespace     string `json:"documentNamespace"`
		CreationInfo  any    `json:"creationInfo"`
		Packages      []pkg  `json:"packages"`
		Relationships []rel  `json:"relationships"`
	}{
		Version: "SPDX-2.3", DataLicense: "CC0-1.0", ID: "SPDXRef-DOCUMENT",
		Name:      sub.Name + "@" + sub.Digest,
		Namespace: "https://ftc.dev/spdx/" + hexOf(sub.Digest),
		CreationInfo: map[string]any{
			"created":  time.Unix(s.Epoch, 0).UTC().Format(time.RFC3339),
			"creators": []string{"Tool: ftc-" + version},
		},
		Packages: pkgs, Relationships: rels,
	}
	return marshal(doc)
}

func spdxID(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '-' {
			b.WriteRune(r)
		} else {
			b.WriteByte('-')
		}
	}
	return b.String()
}

// ProvenanceStatement renders an in-toto statement with a SLSA provenance
// v1 predicate: what was built (the image), from what (recipe digest, lock
// digest, base image, Python packages) and by which ftc. It records no
// time or host, so rebuilding gives the same bytes.
func ProvenanceStatement(s *Spec, sub Subject, p Provenance) ([]byte, error) {
	type dep struct {
		URI    string            `json:"uri"`
		Digest map[string]string `json:"digest"`
	}
	sha := func(d string) map[string]string { return map[string]string{"sha256": strings.TrimPrefix(d, "sha256:")} }
	baseRef, baseDigest, _ := strings.Cut(s.Environment.Base, "@")
	deps := []dep{{URI: "oci://" + baseRef, Digest: sha(baseDigest)}}
	for _, q := range s.Environment.Packages {
		for _, h := range q.Hashes {
			deps = append(deps, dep{URI: "pkg:pypi/" + Normalize(q.Name) + "@" + q.Version, Digest: sha(h)})
		}
	}
	st := map[string]any{
		"_type":         "https://in-toto.io/Statement/v1",
		"subject":       []any{map[string]any{"name": sub.Name, "digest": sha(sub.Digest)}},
		"predicateType": "https://slsa.dev/provenance/v1",
		"predicate": map[string]any{
			"buildDefinition": map[string]any{
				"buildType": "https://ftc.dev/build/v1",
				"externalParameters": map[string]any{
					"recipe": map[string]any{"name": sub.Name, "digest": p.RecipeDigest},
					"lock":   map[string]any{"digest": p.LockDigest},
				},
				"internalParameters": map[string]any{
					"platform": s.Platform.String(), "sourceDateEpoch": s.Epoch, "environmentKey": p.EnvironmentKey,
				},
				"resolvedDependencies": deps,
			},
			"runDetails": map[string]any{
				"builder": map[string]any{"id": "https://ftc.dev/ftc", "version": map[string]string{"ftc": p.Version}},
			},
		},
	}
	return marshal(st)
}

func marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return nil, fmt.Errorf("encoding: %w", err)
	}
	return buf.Bytes(), nil
}

// RecipeDigest identifies a validated recipe (--set overrides applied):
// the sha256 of its canonical JSON and of the files it names.
func RecipeDigest(r *config.Recipe) (string, error) {
	files := map[string]string{}
	for p, f := range r.Files {
		files[p] = f.SHA256
	}
	b, err := key.Canonical(struct {
		Recipe *config.Recipe    `json:"recipe"`
		Files  map[string]string `json:"files"`
	}{r, files})
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:]), nil
}
