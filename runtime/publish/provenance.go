package publish

import (
	"encoding/json"
	"strings"
)

// In-toto and SLSA identifiers of the provenance statement.
const (
	StatementType  = "https://in-toto.io/Statement/v1"
	PredicateType  = "https://slsa.dev/provenance/v1"
	BuildType      = "https://ftc.dev/run/v1"
	ExternalRecipe = "recipe"
)

type resourceDescriptor struct {
	Name        string            `json:"name,omitempty"`
	URI         string            `json:"uri,omitempty"`
	Digest      map[string]string `json:"digest"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

type statementV1 struct {
	Type          string               `json:"_type"`
	Subject       []resourceDescriptor `json:"subject"`
	PredicateType string               `json:"predicateType"`
	Predicate     provenanceV1         `json:"predicate"`
}

type provenanceV1 struct {
	BuildDefinition struct {
		BuildType            string               `json:"buildType"`
		ExternalParameters   map[string]any       `json:"externalParameters"`
		InternalParameters   map[string]any       `json:"internalParameters,omitempty"`
		ResolvedDependencies []resourceDescriptor `json:"resolvedDependencies"`
	} `json:"buildDefinition"`
	RunDetails struct {
		Builder struct {
			ID string `json:"id"`
		} `json:"builder"`
		Metadata struct {
			InvocationID string `json:"invocationId,omitempty"`
			StartedOn    string `json:"startedOn,omitempty"`
			FinishedOn   string `json:"finishedOn,omitempty"`
		} `json:"metadata"`
	} `json:"runDetails"`
}

// statement is the in-toto Statement v1 of the artifact: its subjects
// are the stage outputs (their cache tree digests), its predicate a SLSA
// provenance v1 whose resolved dependencies are the artifact's inputs
// (recipe, its files, data, lock) by sha256, local models by tree digest
// and the image by digest.
func statement(a Artifact, layers []*layer) ([]byte, error) {
	var s statementV1
	s.Type, s.PredicateType = StatementType, PredicateType
	s.Subject = []resourceDescriptor{}
	for _, st := range a.Index.Stages {
		if st.Output == "" {
			continue
		}
		alg, hex, _ := strings.Cut(st.Output, ":")
		s.Subject = append(s.Subject, resourceDescriptor{Name: st.Name, Digest: map[string]string{alg: hex},
			Annotations: map[string]string{"dev.ftc.key": st.Key, "dev.ftc.kind": st.Kind, "dev.ftc.digest": "cache tree"}})
	}
	p := &s.Predicate
	p.BuildDefinition.BuildType = BuildType
	p.BuildDefinition.ExternalParameters = map[string]any{ExternalRecipe: a.Index.RecipeFile}
	if len(a.Index.Flags) > 0 {
		p.BuildDefinition.ExternalParameters["flags"] = a.Index.Flags
	}
	keys := map[string]string{}
	for _, st := range a.Index.Stages {
		keys[st.Name] = st.Key
	}
	p.BuildDefinition.InternalParameters = map[string]any{"stageKeys": keys}
	p.BuildDefinition.ResolvedDependencies = []resourceDescriptor{}
	for _, l := range layers {
		switch l.f.Role {
		case RoleRecipe, RoleRecipeFile, RoleData, RoleLock:
			p.BuildDefinition.ResolvedDependencies = append(p.BuildDefinition.ResolvedDependencies,
				resourceDescriptor{Name: l.f.Name, Digest: map[string]string{"sha256": l.digest.Hex},
					Annotations: map[string]string{"dev.ftc.role": l.f.Role}})
		}
	}
	// A local model is a dependency by its tree digest, carried or not
	// (its files, when carried, are not listed one by one).
	for _, m := range a.Index.Models {
		p.BuildDefinition.ResolvedDependencies = append(p.BuildDefinition.ResolvedDependencies,
			resourceDescriptor{Name: m.Path, Digest: map[string]string{"sha256": m.Tree},
				Annotations: map[string]string{"dev.ftc.role": RoleModel, "dev.ftc.digest": "tree"}})
	}
	if a.Index.Image != "" {
		ref, dg, _ := strings.Cut(a.Index.Image, "@")
		alg, hex, _ := strings.Cut(dg, ":")
		p.BuildDefinition.ResolvedDependencies = append(p.BuildDefinition.ResolvedDependencies,
			resourceDescriptor{Name: "image", URI: "oci://" + ref, Digest: map[string]string{alg: hex}})
	}
	p.RunDetails.Builder.ID = "https://ftc.dev/ftc"
	if a.Builder != "" {
		p.RunDetails.Builder.ID += "@" + a.Builder
	}
	p.RunDetails.Metadata.InvocationID = a.Index.Record
	p.RunDetails.Metadata.StartedOn = a.Index.Started
	p.RunDetails.Metadata.FinishedOn = a.Index.Finished
	return json.MarshalIndent(s, "", "  ")
}
